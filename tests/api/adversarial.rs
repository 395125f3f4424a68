//! An attacker's tour: forged and missing CSRF tokens, the wrong role, no session,
//! dead and made-up tokens, hostile input, forged Host headers, session fixation,
//! guessing, and random form bodies.

use diesel::prelude::*;
use enroll::db::schema::{accounts, users};

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
            let page = app.invite(&[(*name, "Tester", email.as_str())]).await;
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
