//! Two-factor sign-in (TOTP): set up from the account's own page, the second step at
//! sign-in, recovery codes, throttling, the requirement, and an administrator's reset.
//! Codes come from the tests' own RFC 6238 implementation (support/totp.rs).

use chrono::TimeDelta;
use diesel::prelude::*;
use enroll::db::schema::{accounts, recovery_codes};

use crate::support::*;

/// The code an authenticator app would show now, by the app's clock.
fn code_now(app: &TestApp, secret: &str) -> String {
    totp(secret, app.clock.now().and_utc().timestamp())
}

/// Opens /account and turns two-factor on; returns the secret and the recovery codes.
async fn turn_on(app: &TestApp, client: &reqwest::Client) -> (String, Vec<String>) {
    let page = app.get_with(client, "/account").await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("Set up two-factor sign-in"));
    assert_eq!(page.label_for("code").as_deref(), Some("Code"));
    assert!(page.body.contains("<svg"), "a QR code drawn by the server");
    let secret = page
        .element_text("#totp-secret")
        .expect("the secret as text");
    let setup = page.input_value("input[name=setup]").unwrap();
    let form = fields(&[
        ("code", &code_now(app, &secret)),
        ("setup", &setup),
        ("csrf_token", &page.csrf_token()),
    ]);
    let done = app.post_with(client, "/account/two-factor", &form).await;
    assert_eq!(done.status, 200, "{}", done.text());
    let codes = done.elements_text("#recovery-codes code");
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

/// Signs in with the password; expects the second step.
async fn password_step(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> Page {
    let page = app.login_with(client, email, password).await;
    assert_eq!(page.status, 303, "{}", page.text());
    assert!(
        page.location
            .as_deref()
            .unwrap_or_default()
            .starts_with("/login/two-factor")
    );
    let step = app
        .get_with(client, page.location.as_deref().unwrap())
        .await;
    assert_eq!(step.status, 200);
    step
}

async fn verify(app: &TestApp, client: &reqwest::Client, step: &Page, code: &str) -> Page {
    let form = fields(&[
        ("code", code),
        ("next", ""),
        ("csrf_token", &step.csrf_token()),
    ]);
    app.post_with(client, "/login/two-factor", &form).await
}

on_both_engines! {
    async fn two_factor_is_set_up_on_the_account_page_and_asked_at_sign_in() {
        let app = spawn_app().await;
        app.login_admin().await;
        let page = app.get("/account").await;
        // A wrong first code leaves it off, with the same secret shown again.
        let secret = page.element_text("#totp-secret").unwrap();
        let wrong = app.post_with(&app.client, "/account/two-factor", &fields(&[
            ("code", "000000"),
            ("setup", &page.input_value("input[name=setup]").unwrap()),
            ("csrf_token", &page.csrf_token()),
        ])).await;
        assert_eq!(wrong.status, 422);
        assert!(wrong.field_error("code").unwrap().contains("not right"));
        assert_eq!(wrong.element_text("#totp-secret").as_deref(), Some(secret.as_str()));

        let (secret, codes) = turn_on(&app, &app.client).await;
        // Stored sealed, codes hashed.
        let stored: Option<String> = accounts::table
            .filter(accounts::email_key.eq(ADMIN_EMAIL))
            .select(accounts::totp_secret)
            .first(&mut *app.conn())
            .unwrap();
        let stored = stored.expect("a stored secret");
        assert!(!stored.contains(&secret) && stored.len() > 40);
        let hashes: Vec<String> = recovery_codes::table.select(recovery_codes::code_hash).load(&mut *app.conn()).unwrap();
        assert_eq!(hashes.len(), 10);
        assert!(codes.iter().all(|c| hashes.iter().all(|h| !h.contains(&c.replace('-', "")))));
        assert!(app.get("/account").await.text().contains("Two-factor sign-in is on"));

        // The password alone is not a sign-in.
        let client = browser();
        let step = password_step(&app, &client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert!(step.text().contains("Two-factor sign-in"));
        assert_eq!(step.label_for("code").as_deref(), Some("Code"));
        assert!(step.body.contains(">Verify</button>"));
        for path in ["/users", "/account", "/accounts", "/audit"] {
            let page = app.get_with(&client, path).await;
            assert_eq!(page.status, 303, "{path}");
            assert!(page.location.unwrap().starts_with("/login"), "{path}");
        }
        // The code that turned it on cannot sign in (same time step).
        let refused = verify(&app, &client, &step, &code_now(&app, &secret)).await;
        assert_eq!(refused.status, 401);
        assert!(refused.field_error("code").unwrap().contains("used already"));
        // The next step's code does, once.
        app.clock.advance(TimeDelta::seconds(30));
        let code = code_now(&app, &secret);
        verify(&app, &client, &step, &code).await.assert_redirect_to("/users");
        assert_eq!(app.get_with(&client, "/users").await.status, 200);
        let other = browser();
        let step = password_step(&app, &other, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(verify(&app, &other, &step, &code).await.status, 401);

        // A recovery code works once, in the same field.
        let signed_in = verify(&app, &other, &step, &codes[3].to_uppercase()).await;
        signed_in.assert_redirect_to("/users");
        let third = browser();
        let step = password_step(&app, &third, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(verify(&app, &third, &step, &codes[3]).await.status, 401);

        let audit = app.get("/audit?action=sign_in").await.text();
        assert!(audit.contains("password and second factor"), "{audit}");
        assert!(audit.contains("password and recovery code (9 left)"), "{audit}");
        let failed = app.get("/audit?action=sign_in_failed").await.text();
        assert!(failed.contains("wrong, expired or already used second-factor code"));
    }
}

on_both_engines! {
    async fn codes_are_throttled_like_passwords() {
        let app = spawn_app().await;
        app.login_admin().await;
        turn_on(&app, &app.client).await;
        let client = browser();
        let step = password_step(&app, &client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let mut statuses = Vec::new();
        for _ in 0..8 {
            statuses.push(verify(&app, &client, &step, "123456").await.status);
        }
        // The password try counted too: five tries per account, then a wait.
        assert!(statuses.contains(&429), "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    }
}

on_both_engines! {
    async fn required_two_factor_is_set_up_at_the_next_sign_in_and_can_be_reset() {
        let app = spawn_app().await;
        app.login_admin().await;
        let page = app.get("/accounts").await;
        assert_eq!(page.label_for("require_two_factor").as_deref(), Some("Require two-factor sign-in for every password account"));
        app.submit("/accounts", "/accounts/two-factor-policy", &fields(&[("require_two_factor", "yes")]))
            .await
            .assert_redirect_to("/accounts");

        // The help desk account has none: it must set it up before it is signed in.
        let desk = browser();
        let setup = password_step(&app, &desk, HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        assert!(setup.text().contains("Set up two-factor sign-in"));
        assert_eq!(app.get_with(&desk, "/users").await.status, 303);
        let secret = setup.element_text("#totp-secret").unwrap();
        let form = fields(&[
            ("code", &code_now(&app, &secret)),
            ("setup", &setup.input_value("input[name=setup]").unwrap()),
            ("next", ""),
            ("csrf_token", &setup.csrf_token()),
        ]);
        let done = app.post_with(&desk, "/login/two-factor/setup", &form).await;
        assert_eq!(done.status, 200, "{}", done.text());
        assert_eq!(done.elements_text("#recovery-codes code").len(), 10);
        assert_eq!(app.get_with(&desk, "/users").await.status, 200);

        // An administrator resets it (a lost phone): audited; the next sign-in sets it up again.
        let id = app.account_id(HELPDESK_EMAIL);
        assert!(app.get(&format!("/accounts/{id}")).await.body.contains("Reset two-factor sign-in"));
        app.submit(&format!("/accounts/{id}"), &format!("/accounts/{id}/two-factor/reset"), &fields(&[]))
            .await
            .assert_redirect_to(&format!("/accounts/{id}"));
        let audit = app.get("/audit").await.text();
        assert!(audit.contains("two-factor sign-in reset; recovery codes deleted"), "{audit}");
        assert!(audit.contains("two-factor sign-in required for every password account"), "{audit}");
        assert!(audit.contains("password and second factor (set up at sign-in)"), "{audit}");
        assert_eq!(app.count("recovery_codes"), 0);
        let again = browser();
        let setup = password_step(&app, &again, HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        assert!(setup.text().contains("Set up two-factor sign-in"));

        // Not required any more: the password alone signs in.
        app.submit("/accounts", "/accounts/two-factor-policy", &fields(&[])).await.assert_redirect_to("/accounts");
        app.login_with(&browser(), HELPDESK_EMAIL, HELPDESK_PASSWORD).await.assert_redirect_to("/users");
        // Help desk cannot reset anyone's.
        let admin_id = app.account_id(ADMIN_EMAIL);
        let page = app.get_with(&desk, "/users").await;
        let form = fields(&[("csrf_token", &page.csrf_token())]);
        assert_eq!(app.post_with(&desk, &format!("/accounts/{admin_id}/two-factor/reset"), &form).await.status, 403);
    }
}
