//! An attacker's tour: forged and missing CSRF tokens, the wrong role, no session,
//! dead and made-up tokens, hostile input, forged Host headers, session fixation,
//! guessing, and random form bodies.

use diesel::prelude::*;
use enroll::db::schema::{accounts, invitations, outbound_emails, users};

use crate::support::*;

/// Every form the console accepts, with fields that would change something.
fn every_post(ada: &str, account: &str, enrollment_path: &str) -> Vec<(String, Fields)> {
    vec![
        (
            "/users/invite".into(),
            fields(&[
                ("first_name", "Eve"),
                ("last_name", "X"),
                ("email", "eve@example.com"),
                ("action", "send"),
            ]),
        ),
        ("/users/resend".into(), fields(&[("user_id", ada)])),
        (
            "/users/remove".into(),
            fields(&[("user_id", ada), ("confirm", "yes")]),
        ),
        ("/settings/invitations".into(), TestApp::settings_fields()),
        (
            "/accounts".into(),
            fields(&[
                ("email", "eve@example.com"),
                ("role", "administrator"),
                ("password", "eve's long passphrase"),
                ("password_confirmation", "eve's long passphrase"),
            ]),
        ),
        (
            format!("/accounts/{account}/role"),
            fields(&[("role", "administrator")]),
        ),
        (
            format!("/accounts/{account}/password"),
            fields(&[
                ("password", "eve's long passphrase"),
                ("password_confirmation", "eve's long passphrase"),
            ]),
        ),
        (
            format!("/accounts/{account}/disable"),
            fields(&[("confirm", "yes")]),
        ),
        (format!("/accounts/{account}/enable"), Vec::new()),
        (
            "/login".into(),
            fields(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)]),
        ),
        ("/logout".into(), Vec::new()),
        ("/setup".into(), fields(&[("setup_code", "x")])),
        (enrollment_path.to_owned(), Vec::new()),
    ]
}

fn helpdesk_id(app: &TestApp) -> String {
    accounts::table
        .filter(accounts::email_key.eq(HELPDESK_EMAIL))
        .select(accounts::id)
        .first(&mut *app.conn())
        .unwrap()
}

/// A fingerprint of everything stored that an attack could change.
fn stored_state(app: &TestApp) -> (i64, i64, i64, i64, Vec<String>) {
    let mut conn = app.conn();
    let roles: Vec<String> = accounts::table
        .order(accounts::email_key)
        .select(accounts::role)
        .load(&mut *conn)
        .unwrap();
    (
        app.count("users"),
        app.count("invitations"),
        app.count("outbound_emails"),
        app.count("accounts"),
        roles,
    )
}

on_both_engines! {
    async fn every_post_without_or_with_a_wrong_csrf_token_is_refused() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await.assert_redirect_to("/users");
        let link = app.delivered_to("ada@example.com", 1).await.enrollment_path();
        let ada = app.user_id("ada@example.com");
        let before = stored_state(&app);
        let valid = app.get("/users").await.csrf_token();
        let foreign = app.get_with(&browser(), "/login").await.csrf_token();
        for (path, form) in every_post(&ada, &helpdesk_id(&app), &link) {
            for token in [None, Some("forged"), Some(&valid[..20]), Some(foreign.as_str())] {
                let mut form = form.clone();
                if let Some(token) = token {
                    form.push(("csrf_token".into(), token.into()));
                }
                let page = app.post_with(&app.client, &path, &form).await;
                assert_eq!(page.status, 403, "{path} with token {token:?}");
                assert!(page.text().contains("Form expired"), "{path}: {}", page.text());
            }
        }
        assert_eq!(stored_state(&app), before, "nothing changed");
        assert_eq!(app.status_of("ada@example.com").await, "Pending", "still signed in");
    }
}

on_both_engines! {
    async fn administrator_routes_refuse_help_desk_and_anonymous_visitors() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        app.delivered_to("ada@example.com", 1).await;
        let ada = app.user_id("ada@example.com");
        let account = helpdesk_id(&app);
        let before = stored_state(&app);
        let admin_gets = ["/users/invite", "/settings/invitations", "/audit", "/accounts", &format!("/accounts/{account}")];
        let admin_posts: Vec<(String, Fields)> = every_post(&ada, &account, "/unused")
            .into_iter()
            .filter(|(path, _)| {
                !["/users/resend", "/login", "/logout", "/setup", "/unused"].contains(&path.as_str())
            })
            .collect();

        let desk = browser();
        app.login_with(&desk, HELPDESK_EMAIL, HELPDESK_PASSWORD).await.assert_redirect_to("/users");
        for path in admin_gets {
            assert_eq!(app.get_with(&desk, path).await.status, 403, "help desk GET {path}");
        }
        let token = app.get_with(&desk, "/users").await.csrf_token();
        for (path, form) in &admin_posts {
            let mut form = form.clone();
            form.push(("csrf_token".into(), token.clone()));
            assert_eq!(app.post_with(&desk, path, &form).await.status, 403, "help desk POST {path}");
        }

        let nobody = browser();
        for path in admin_gets.iter().chain(&["/users"]) {
            let page = app.get_with(&nobody, path).await;
            assert_eq!(page.status, 303, "anonymous GET {path}");
            assert!(page.location.unwrap().starts_with("/login"));
        }
        let token = app.get_with(&nobody, "/login").await.csrf_token();
        for (path, form) in admin_posts.iter().chain(&[("/users/resend".to_owned(), fields(&[("user_id", &ada)]))]) {
            let mut form = form.clone();
            form.push(("csrf_token".into(), token.clone()));
            app.post_with(&nobody, path, &form).await.assert_redirect_to("/login");
        }
        assert_eq!(stored_state(&app), before, "nothing changed");
        app.deliver_due_emails().await;
        assert_eq!(app.smtp.to("ada@example.com").len(), 1, "nothing was resent");
    }
}

on_both_engines! {
    async fn get_on_a_route_that_changes_things_is_405() {
        let app = spawn_app().await;
        app.login_admin().await;
        let id = helpdesk_id(&app);
        for path in [
            "/logout".to_owned(),
            "/users/resend".to_owned(),
            "/users/remove".to_owned(),
            format!("/accounts/{id}/disable"),
            format!("/accounts/{id}/role"),
        ] {
            let page = app.get(&path).await;
            assert_eq!(page.status, 405, "GET {path}");
            assert_eq!(page.headers.get("allow").unwrap(), "POST");
        }
        assert_eq!(app.get("/users").await.status, 200, "GET /logout did not sign out");
    }
}

on_both_engines! {
    async fn dead_and_made_up_tokens_enroll_nobody() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let people = [
            ("Re", "Sent", "resent@example.com"),
            ("Re", "Moved", "removed@example.com"),
            ("Al", "Ready", "used@example.com"),
            ("Ex", "Pired", "expired@example.com"),
        ];
        app.invite(&people).await.assert_redirect_to("/users");
        let first_link = |email: &str| app.smtp.to(email)[0].enrollment_path();
        app.delivered(4).await;
        app.act_on_users("/users/resend", &[app.user_id("resent@example.com")], &[]).await;
        app.act_on_users("/users/remove", &[app.user_id("removed@example.com")], &[("confirm", "yes")]).await;
        let used = first_link("used@example.com");
        let invitee = browser();
        let token = app.get_with(&invitee, &used).await.csrf_token();
        app.post_with(&invitee, &used, &fields(&[("csrf_token", &token)])).await.assert_redirect_to(&used);
        app.delivered(5).await;

        let attacker = browser();
        let token = app.get_with(&attacker, "/login").await.csrf_token();
        let cases = [
            (first_link("resent@example.com"), 410, "A newer invitation was sent"),
            (first_link("removed@example.com"), 404, "This invitation link is not valid"),
            (used.clone(), 410, "already been used"),
            ("/enroll/ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ".to_owned(), 404, "This invitation link is not valid"),
        ];
        for (path, status, message) in &cases {
            let page = app.post_with(&attacker, path, &fields(&[("csrf_token", &token)])).await;
            assert_eq!(page.status, *status, "{path}");
            assert!(page.text().contains(message), "{path}: {}", page.text());
        }
        app.clock.advance(chrono::TimeDelta::days(8));
        let expired = first_link("expired@example.com");
        let page = app.post_with(&attacker, &expired, &fields(&[("csrf_token", &token)])).await;
        assert_eq!(page.status, 410);
        assert!(page.text().contains("has expired"));
        let enrolled: i64 = users::table
            .filter(users::enrolled_at.is_not_null())
            .count()
            .get_result(&mut *app.conn())
            .unwrap();
        assert_eq!(enrolled, 1, "only the one real join");
    }
}

on_both_engines! {
    async fn hostile_names_and_addresses_are_refused_or_shown_escaped_never_a_server_error() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let long = "A".repeat(5000);
        let names = [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "O'Brien \"The Bobby\" Tables'); DROP TABLE users;--",
            "Ada\r\nBcc: eve@evil.example",
            "Ada\0Lovelace",
            "A\u{202E}da",
            "Аda",
            long.as_str(),
            "{{ 7*7 }}",
        ];
        let emails = [
            "eve@example.com\r\nBcc: eve@evil.example",
            "eve@example.com, mallory@evil.example",
            "\"eve\"@example.com",
            "eve@exаmple.com",
            "<script>@example.com",
            "eve@example.com\0",
            long.as_str(),
        ];
        let mut accepted = Vec::new();
        for (n, name) in names.iter().enumerate() {
            let email = format!("name{n}@example.com");
            let page = app.invite(&[(name, "Tester", email.as_str())]).await;
            assert!([303, 422].contains(&page.status), "{name:?}: {}", page.status);
            if page.status == 303 {
                accepted.push((name.to_string(), email));
            } else {
                assert!(page.field_error("first_name-1").is_some(), "{name:?} refused without a message");
            }
        }
        for email in emails {
            let page = app.invite(&[("Eve", "Tester", email)]).await;
            assert_eq!(page.status, 422, "{email:?} was accepted");
            assert!(page.field_error("email-1").is_some());
        }
        // Accepted names are stored as typed and shown only as text.
        let users_page = app.get("/users?per_page=100").await;
        assert!(!users_page.body.contains("<script>alert(1)</script>"));
        assert!(!users_page.body.contains("<img src=x"));
        for (name, email) in &accepted {
            let stored: String = users::table
                .filter(users::email_key.eq(email))
                .select(users::first_name)
                .first(&mut *app.conn())
                .unwrap();
            assert_eq!(&stored, name);
            if name.chars().count() <= 100 {
                assert!(users_page.text().contains(name.as_str()), "{name} not shown");
            }
        }
        assert!(accepted.iter().any(|(n, _)| n.contains("<script>")), "markup is a legal name");
        assert!(!accepted.iter().any(|(n, _)| n.contains('\r') || n.contains('\0') || n.contains('\u{202E}')));
        // Nothing reached anyone but the invitees themselves.
        for email in app.delivered(accepted.len()).await {
            assert_eq!(email.to.len(), 1);
            assert!(email.to[0].ends_with("@example.com") && email.to[0].starts_with("name"));
            assert!(email.header("Bcc").is_none());
        }
    }
}

on_both_engines! {
    async fn a_forged_host_header_does_not_change_the_link() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let token = app.get("/users/invite").await.csrf_token();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
                ("email", "ada@example.com"),
                ("action", "send"),
                ("csrf_token", &token),
            ])
            .finish();
        let response = app
            .client
            .post(app.url("/users/invite"))
            .header("Host", "evil.example")
            .header("X-Forwarded-Host", "evil.example")
            .header("Forwarded", "host=evil.example;proto=https")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        let email = app.delivered_to("ada@example.com", 1).await;
        assert!(email.enrollment_link().starts_with("https://enroll.example.com/enroll/"));
        assert!(!email.raw.contains("evil.example"));
    }
}

on_both_engines! {
    async fn a_planted_session_cookie_gives_the_attacker_nothing() {
        let app = spawn_app().await;
        // The attacker signs in to get a valid session id of their own...
        let attacker_cookie = sign_in_and_capture_session(&app, HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        // ...and plants it in the victim's browser, which has the sign-in form open; the
        // victim then signs in as administrator.
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let victim = browser_with_jar(jar.clone());
        let form = app.get_with(&victim, "/login").await;
        jar.add_cookie_str(&attacker_cookie, &app.url("/").parse().unwrap());
        let credentials = fields(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("csrf_token", &form.csrf_token())]);
        app.post_with(&victim, "/login", &credentials).await.assert_redirect_to("/users");
        use reqwest::cookie::CookieStore;
        let victim_cookie = jar
            .cookies(&app.url("/").parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap();
        assert!(!victim_cookie.contains(&attacker_cookie), "sign-in issued a new session id");
        assert_eq!(app.get_with(&victim, "/accounts").await.status, 200);
        // The planted id does not carry the victim's administrator session.
        let replay = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/accounts"))
            .header("Cookie", attacker_cookie)
            .send()
            .await
            .unwrap();
        assert_ne!(replay.status(), 200);
    }
}

/// Signs in with a fresh browser and returns the `enroll_session=...` pair it was given.
async fn sign_in_and_capture_session(app: &TestApp, email: &str, password: &str) -> String {
    let client = browser();
    let form_page = app.get_with(&client, "/login").await;
    let form = fields(&[
        ("email", email),
        ("password", password),
        ("csrf_token", &form_page.csrf_token()),
    ]);
    let response = client
        .post(app.url("/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish(),
        )
        .send()
        .await
        .unwrap();
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("enroll_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

on_both_engines! {
    async fn repeated_sign_in_failures_lock_the_account_for_a_while() {
        let app = spawn_app().await;
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(app.login_with(&browser(), ADMIN_EMAIL, "a wrong password guess").await.status);
        }
        assert_eq!(statuses[..5], [401; 5]);
        assert_eq!(statuses[5], 429);
        let locked = app.login_with(&browser(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(locked.status, 429, "even the right password waits");
        assert!(locked.headers.get("retry-after").is_some());
        assert!(locked.text().contains("Too many attempts"));
        let upper = ADMIN_EMAIL.to_uppercase();
        for variant in [format!("{ADMIN_EMAIL}\u{7}"), format!("  {upper} "), format!("\0{ADMIN_EMAIL}")] {
            let page = app.login_with(&browser(), &variant, ADMIN_PASSWORD).await;
            assert_eq!(page.status, 429, "{variant:?} is the same account");
        }
        app.login_with(&browser(), HELPDESK_EMAIL, HELPDESK_PASSWORD)
            .await
            .assert_redirect_to("/users");
    }
}

on_both_engines! {
    async fn behind_a_trusted_proxy_the_client_cannot_choose_its_address() {
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| config.trust_proxy = true),
            ..AppOptions::default()
        })
        .await;
        // The proxy appends the address it saw; whatever comes before is the client's.
        let via_proxy = |client_wrote: &str, proxy_saw: &str| format!("{client_wrote}, {proxy_saw}");
        let scanner = browser();
        let mut statuses = Vec::new();
        for n in 0..12 {
            let response = scanner
                .get(app.url(&format!("/enroll/{n:0>43}")))
                .header("x-forwarded-for", via_proxy(&format!("198.51.100.{n}"), "192.0.2.7"))
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
        }
        assert!(statuses[..10].iter().all(|s| *s == 404), "{statuses:?}");
        assert_eq!(statuses[11], 429, "a new first entry is not a new client");
        let other_client = scanner
            .get(app.url("/enroll/0000000000000000000000000000000000000000000"))
            .header("x-forwarded-for", via_proxy("192.0.2.7", "192.0.2.8"))
            .send()
            .await
            .unwrap();
        assert_eq!(other_client.status(), 404, "another client the proxy saw has its own limit");

        let visitor = browser();
        let login = app.get_with(&visitor, "/login").await;
        let form = fields(&[("email", ADMIN_EMAIL), ("password", "a wrong guess"), ("csrf_token", &login.csrf_token())]);
        let response = visitor
            .post(app.url("/login"))
            .header("x-forwarded-for", via_proxy("203.0.113.9", "192.0.2.9"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        app.login_admin().await;
        let audit = app.get("/audit?action=sign_in_failed").await.text();
        assert!(audit.contains("192.0.2.9"), "{audit}");
        assert!(!audit.contains("203.0.113.9"), "{audit}");
    }
}

on_both_engines! {
    async fn repeated_bad_enrollment_tokens_from_one_address_get_429() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        let link = app.delivered_to("ada@example.com", 1).await.enrollment_path();
        let scanner = browser();
        let mut statuses = Vec::new();
        for n in 0..12 {
            statuses.push(app.get_with(&scanner, &format!("/enroll/{n:0>43}")).await.status);
        }
        assert!(statuses[..10].iter().all(|s| *s == 404), "{statuses:?}");
        assert_eq!(statuses[11], 429);
        assert_eq!(app.get_with(&scanner, &link).await.status, 200, "a real link still opens");
    }
}

on_both_engines! {
    async fn cookies_are_http_only_same_site_and_secure_behind_https() {
        let app = spawn_app().await;
        // A second instance on the same database, started before the settings exist.
        let other = spawn_app_with(AppOptions { data: Some(app.data.clone()), seed_accounts: false, ..AppOptions::default() }).await;
        let login = app.get("/login").await;
        let csrf_cookie = set_cookies(&login).join("\n");
        assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"), "{csrf_cookie}");
        assert!(!csrf_cookie.contains("Secure"), "plain http before any https public URL");

        let form = fields(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("csrf_token", &login.csrf_token())]);
        let response = app
            .client
            .post(app.url("/login"))
            .header("X-Forwarded-Proto", "https")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter()).finish())
            .send()
            .await
            .unwrap();
        let page = Page::read(response).await;
        let session = set_cookies(&page)
            .into_iter()
            .find(|c| c.starts_with("enroll_session="))
            .expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure"] {
            assert!(session.contains(attribute), "{session} lacks {attribute}");
        }

        // Once the public URL is https, every cookie is Secure, whatever the request.
        app.submit("/settings/invitations", "/settings/invitations", &TestApp::settings_fields()).await;
        let fresh = app.get_with(&browser(), "/login").await;
        assert!(set_cookies(&fresh).iter().all(|c| c.contains("Secure")), "{:?}", set_cookies(&fresh));
        // The other instance learns it within its reload interval (10 s).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let cookies = set_cookies(&other.get_with(&browser(), "/login").await);
            if !cookies.is_empty() && cookies.iter().all(|c| c.contains("Secure")) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the other instance still sends {cookies:?}");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

fn set_cookies(page: &Page) -> Vec<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

on_both_engines! {
    async fn sessions_end_when_idle_and_after_their_lifetime() {
        let app = spawn_app().await;
        app.login_admin().await;
        // Active every 50 minutes: the 60-minute idle timeout never strikes...
        for _ in 0..4 {
            app.clock.advance(chrono::TimeDelta::minutes(50));
            assert_eq!(app.get("/users").await.status, 200);
        }
        // ...until 12 hours after sign-in, however active.
        for _ in 0..11 {
            app.clock.advance(chrono::TimeDelta::minutes(50));
            app.get("/users").await;
        }
        app.get("/users").await.assert_redirect_to("/login?next=%2Fusers");

        app.login_admin().await;
        app.clock.advance(chrono::TimeDelta::minutes(61));
        app.get("/users").await.assert_redirect_to("/login?next=%2Fusers");
    }
}

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
