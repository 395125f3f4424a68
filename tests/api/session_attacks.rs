//! Attacks on sessions and sign-in: planted cookies, guessing, forged client addresses,
//! cookie flags, idle and absolute expiry.

use crate::support::*;

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
