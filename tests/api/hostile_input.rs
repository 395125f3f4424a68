//! Random and hostile input anywhere: random invite forms, NUL bytes and junk in every
//! field and parameter, and tokens that must never reach the log.

use diesel::prelude::*;
use enroll::db::schema::{invitations, outbound_emails, users};

use crate::support::*;

/// Random invite form bodies: never a server error, and never a user without exactly
/// one live invitation and one queued email.
#[test]

fn random_invite_forms_never_fail_or_half_write() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(async {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app
    });
    let token = runtime.block_on(app.get("/users/invite")).csrf_token();

    let text = prop_oneof![
        Just(String::new()),
        "[A-Za-z' -]{1,20}",
        "[a-z0-9.]{1,12}@[a-z]{1,8}\\.(com|org|example)",
        any::<String>(),
        "\\PC{0,150}",
        Just("<script>alert(1)</script>".to_owned()),
        Just("x@y.com\r\nBcc: z@evil.example".to_owned()),
        Just("\u{0}".to_owned()),
    ];
    let row = (text.clone(), text.clone(), text.clone());
    let field_name = prop_oneof![
        Just("first_name".to_owned()),
        Just("last_name".to_owned()),
        Just("email".to_owned()),
        Just("action".to_owned()),
        "[a-z_]{1,10}",
    ];
    let strategy = (
        prop::collection::vec(row, 0..6),
        prop::collection::vec((field_name, text), 0..3),
        prop_oneof![Just("send"), Just("add_row"), Just(""), Just("bogus")],
    );
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&strategy, |(rows, extra, action)| {
            let mut form: Fields = Vec::new();
            for (first, last, email) in rows {
                form.push(("first_name".into(), first));
                form.push(("last_name".into(), last));
                form.push(("email".into(), email));
            }
            form.extend(extra);
            form.push(("action".into(), action.to_owned()));
            form.push(("csrf_token".into(), token.clone()));
            let page = runtime.block_on(app.post_with(&app.client, "/users/invite", &form));
            prop_assert!(page.status < 500, "{} for {form:?}", page.status);
            let mut conn = app.conn();
            let users: i64 = users::table.count().get_result(&mut *conn).unwrap();
            let live: i64 = invitations::table
                .filter(invitations::superseded_at.is_null())
                .count()
                .get_result(&mut *conn)
                .unwrap();
            let emails: i64 = outbound_emails::table
                .count()
                .get_result(&mut *conn)
                .unwrap();
            prop_assert_eq!((users, live), (users, users));
            prop_assert_eq!(emails, users);
            Ok(())
        })
        .unwrap();
    drop(app);
}

#[tokio::test]
async fn tokens_never_reach_the_log() {
    use crate::instances::Instance;
    let smtp = TestSmtp::start();
    let instance = Instance::spawn_with(None, &smtp.url(), "debug");
    instance.wait_until_ready().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_enroll"))
        .env_clear()
        .env("ENROLL_DATA_DIR", instance.data_dir())
        .env("ENROLL_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .args([
            "admin",
            "add",
            "--email",
            ADMIN_EMAIL,
            "--role",
            "administrator",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let admin = browser();
    let get = |client: &reqwest::Client, path: &str| {
        let request = client.get(instance.url(path));
        async move { Page::read(request.send().await.unwrap()).await }
    };
    let post = |client: &reqwest::Client, path: &str, form: Fields| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let request = client
            .post(instance.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        async move { Page::read(request.send().await.unwrap()).await }
    };
    let token = get(&admin, "/login").await.csrf_token();
    post(
        &admin,
        "/login",
        fields(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf_token", &token),
        ]),
    )
    .await
    .assert_redirect_to("/users");
    let mut settings = TestApp::settings_fields();
    settings.push((
        "csrf_token".into(),
        get(&admin, "/settings/invitations").await.csrf_token(),
    ));
    assert_eq!(
        post(&admin, "/settings/invitations", settings).await.status,
        303
    );
    let token = get(&admin, "/users/invite").await.csrf_token();
    post(
        &admin,
        "/users/invite",
        fields(&[
            ("first_name", "Ada"),
            ("last_name", "L"),
            ("email", "ada@example.com"),
            ("action", "send"),
            ("csrf_token", &token),
        ]),
    )
    .await
    .assert_redirect_to("/users");
    let email = smtp.wait_for_nth_to("ada@example.com", 1).await;
    let path = email.enrollment_path();
    let secret = path.trim_start_matches("/enroll/").to_owned();
    let invitee = browser();
    let token = get(&invitee, &path).await.csrf_token();
    post(&invitee, &path, fields(&[("csrf_token", &token)]))
        .await
        .assert_redirect_to(&path);
    get(&invitee, &path).await;
    get(&invitee, &format!("{path}x")).await;

    let log = instance.log();
    assert!(
        log.contains("/enroll/{token}"),
        "requests are logged by route pattern"
    );
    assert!(!log.contains(&secret), "the token appears in the log");
    assert!(!log.contains(ADMIN_PASSWORD));
}

on_both_engines! {
    async fn nul_bytes_and_junk_anywhere_never_cause_a_server_error() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let token = app.get("/users").await.csrf_token();
        for path in [
            "/users?q=%00%01",
            "/users?q=a%00b&status=pending",
            "/audit?actor=%00&subject=x%00y&action=%00",
            "/accounts/%00",
            "/accounts/not-an-id",
            "/users/%00",
            "/enroll/%00",
            "/users/export.csv?q=%00",
            "/login?next=%00",
        ] {
            let page = app.get(path).await;
            assert!(page.status < 500, "{path}: {}", page.status);
        }
        // Page cursors are opaque, but the client can write its own.
        let id = "019ac0de-7a2b-7c3d-8e4f-0123456789ab";
        let cursor = |text: String| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
        };
        for sort in ["name", "email", "invited", "status"] {
            for value in ["a\0b", "pending\u{1e}a\0b", "2026-01-01T00:00:00Z"] {
                for (direction, position) in [("after", format!("{value}\u{1f}{id}")), ("before", format!("{value}\u{1f}x\0y"))] {
                    let path = format!("/users?sort={sort}&{direction}={}", cursor(format!("{sort}\u{1f}{position}")));
                    let page = app.get(&path).await;
                    assert_eq!(page.status, 200, "{path}");
                }
            }
        }
        for position in ["2026-01-01T00:00:00Z\u{1f}a\0b".to_owned(), format!("\0\u{1f}{id}")] {
            let path = format!("/audit?before={}", cursor(position));
            assert_eq!(app.get(&path).await.status, 200, "{path}");
        }
        for (path, form) in [
            ("/users/resend", fields(&[("user_id", "\0"), ("user_id", "x\0y")])),
            ("/users/remove", fields(&[("user_id", "\0"), ("confirm", "yes")])),
            ("/accounts/%00/role", fields(&[("role", "\0")])),
            ("/accounts/%00/disable", fields(&[("confirm", "yes")])),
            ("/settings/invitations", fields(&[("organization_name", "A\0"), ("public_url", "\0"), ("action", "save")])),
            ("/accounts", fields(&[("email", "\0@example.com"), ("role", "\0"), ("password", "\0"), ("password_confirmation", "\0")])),
        ] {
            let mut form = form;
            form.push(("csrf_token".into(), token.clone()));
            let page = app.post_with(&app.client, path, &form).await;
            assert!(page.status < 500, "POST {path}: {}", page.status);
        }
        let visitor = browser();
        let login = app.get_with(&visitor, "/login").await;
        let page = app
            .post_with(
                &visitor,
                "/login",
                &fields(&[("email", "nobody\0@example.com"), ("password", "\0"), ("csrf_token", &login.csrf_token())]),
            )
            .await;
        assert_eq!(page.status, 401, "sign-in with NUL is an ordinary failure");
    }
}
