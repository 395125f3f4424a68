//! Signing in and out, the first administrator, CSRF on every form.

use enroll::accounts::setup_code;

use crate::support::*;

on_both_engines! {
    async fn pages_need_a_signed_in_account() {
        let app = spawn_app().await;
        let page = app.get("/users?status=pending").await;
        page.assert_redirect_to("/login?next=%2Fusers%3Fstatus%3Dpending");
        let login = app.get("/login?next=%2Fusers%3Fstatus%3Dpending").await;
        assert_eq!(login.label_for("email").as_deref(), Some("Email"));
        assert_eq!(login.label_for("password").as_deref(), Some("Password"));
        assert!(login.text().contains("Sign in"));
        let form = fields(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("next", "/users?status=pending"),
            ("csrf_token", &login.csrf_token()),
        ]);
        app.post_with(&app.client, "/login", &form)
            .await
            .assert_redirect_to("/users?status=pending");
    }
}

on_both_engines! {
    async fn wrong_passwords_get_one_message_and_keep_the_email() {
        let app = spawn_app().await;
        for (email, password) in [
            (ADMIN_EMAIL, "wrong password entirely"),
            ("nobody@example.com", ADMIN_PASSWORD),
        ] {
            let page = app.login_with(&app.client, email, password).await;
            assert_eq!(page.status, 401);
            assert!(
                page.text()
                    .contains("That email and password do not match an active account.")
            );
            assert_eq!(page.input_value("#email").as_deref(), Some(email));
            assert!(page.input_value("#password").is_none_or(|p| p.is_empty()));
        }
        app.get("/users")
            .await
            .assert_redirect_to("/login?next=%2Fusers");
    }
}

on_both_engines! {
    async fn signing_out_ends_the_session_for_good() {
        let app = spawn_app().await;
        app.login_admin().await;
        let users = app.get("/users").await;
        assert_eq!(users.status, 200);
        assert!(users.text().contains(ADMIN_EMAIL));
        assert!(users.text().contains("Sign out"));

        // Keep a copy of the session cookie, as an attacker who stole it would.
        let stolen = app.cookie_header();
        assert!(stolen.contains("enroll_session="));

        let page = app.submit("/users", "/logout", &Vec::new()).await;
        page.assert_redirect_to("/login");
        let login = app.follow(page).await;
        assert!(login.text().contains("You have signed out."));
        app.get("/users")
            .await
            .assert_redirect_to("/login?next=%2Fusers");

        let replay = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/users"))
            .header("Cookie", stolen)
            .send()
            .await
            .unwrap();
        assert_eq!(
            replay.status(),
            303,
            "the old cookie no longer opens the console"
        );
        assert_eq!(app.count("sessions"), 0);
    }
}

on_both_engines! {
    async fn the_setup_page_creates_the_first_administrator_once() {
        let app = spawn_app_with(AppOptions {
            seed_accounts: false,
            ..AppOptions::default()
        })
        .await;
        app.get("/users")
            .await
            .assert_redirect_to("/login?next=%2Fusers");
        let code = setup_code::issue(&mut app.conn(), app.clock.now()).unwrap();

        let page = app.get("/setup").await;
        assert_eq!(page.status, 200);
        assert_eq!(page.label_for("setup_code").as_deref(), Some("Setup code"));
        let wrong = fields(&[
            ("setup_code", "AAAA-BBBB-CCCC-DDDD"),
            ("email", "root@example.com"),
            ("password", "short"),
            ("password_confirmation", "other"),
        ]);
        let refused = app.submit("/setup", "/setup", &wrong).await;
        assert_eq!(refused.status, 422);
        assert!(
            refused
                .field_error("setup_code")
                .unwrap()
                .contains("not the current setup code")
        );
        assert!(
            refused
                .field_error("password")
                .unwrap()
                .contains("at least 12")
        );
        assert!(refused.field_error("password_confirmation").is_some());
        assert_eq!(
            refused.input_value("#email").as_deref(),
            Some("root@example.com")
        );
        assert_eq!(app.count("accounts"), 0);

        let right = fields(&[
            ("setup_code", &code.to_lowercase()),
            ("email", "root@example.com"),
            ("password", "a long enough passphrase"),
            ("password_confirmation", "a long enough passphrase"),
        ]);
        let created = app.submit("/setup", "/setup", &right).await;
        created.assert_redirect_to("/settings/invitations");
        let settings = app.follow(created).await;
        assert!(settings.text().contains("Set up user invitations"));
        assert!(settings.text().contains("root@example.com"));
        assert_eq!(app.count("accounts"), 1);
        assert_eq!(app.count("setup_codes"), 0, "the code is used up");

        app.get_with(&browser(), "/setup")
            .await
            .assert_redirect_to("/login");
    }
}

on_both_engines! {
    async fn pages_carry_security_headers() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        let link = app
            .delivered_to("ada@example.com", 1)
            .await
            .enrollment_path();
        for path in [
            "/users",
            "/login",
            "/settings/invitations",
            link.as_str(),
            "/no/such/page",
        ] {
            let page = app.get(path).await;
            let header = |name: &str| {
                page.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let csp = header("content-security-policy");
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
                "{path}: {csp}"
            );
            assert!(csp.contains("frame-ancestors 'none'"), "{path}");
            assert_eq!(header("x-frame-options"), "DENY", "{path}");
            assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
            assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
            assert_eq!(header("cache-control"), "no-store", "{path}");
        }
        let session = app.cookie_header();
        assert!(session.contains("enroll_session="));
    }
}

on_both_engines! {
    async fn posts_from_another_site_are_refused() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let token = app.get("/users").await.csrf_token();
        let response = app
            .client
            .post(app.url("/logout"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", "https://evil.example")
            .body(format!("csrf_token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        let response = app
            .client
            .post(app.url("/logout"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Sec-Fetch-Site", "cross-site")
            .body(format!("csrf_token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(app.get("/users").await.status, 200, "still signed in");
    }
}
