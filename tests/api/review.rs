//! Defects a security review found, each with the test that showed it.

use crate::support::*;
use enroll::accounts::{self, Role, setup_code};

/// Twenty people submit the setup page with the one code at the same moment.
async fn race_setup_once() -> i64 {
    let app = spawn_app_with(AppOptions {
        seed_accounts: false,
        // Enough threads and connections for the set-ups to really run at once.
        tweak: Some(|config| {
            config.http_workers = Some(4);
            config.db_pool_size = 8;
        }),
        ..AppOptions::default()
    })
    .await;
    let code = setup_code::issue(&mut app.conn(), app.clock.now()).unwrap();
    let mut forms = Vec::new();
    for n in 0..20 {
        let client = browser();
        let page = app.get_with(&client, "/setup").await;
        let email = format!("admin{n}@example.com");
        let form = fields(&[
            ("setup_code", &code),
            ("email", &email),
            ("password", ADMIN_PASSWORD),
            ("password_confirmation", ADMIN_PASSWORD),
            ("csrf_token", &page.csrf_token()),
        ]);
        forms.push((client, form));
    }
    let answers = futures_util::future::join_all(
        forms
            .iter()
            .map(|(client, form)| app.post_with(client, "/setup", form)),
    )
    .await;
    for answer in &answers {
        assert!(answer.status < 500, "set-up answered {}", answer.status);
    }
    app.count("accounts")
}

on_both_engines! {
    async fn one_setup_code_makes_one_administrator_however_many_use_it_at_once() {
        // Racing on PostgreSQL made two administrators in about half the rounds.
        for round in 0..4 {
            assert_eq!(race_setup_once().await, 1, "round {round}");
        }
    }
}

/// A browser behind the trusted proxy, which says the client is at `address`.
fn browser_at(address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    reqwest::Client::builder()
        .cookie_provider(std::sync::Arc::new(reqwest::cookie::Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

on_both_engines! {
    async fn disabling_an_account_while_its_invitations_are_resent_never_deadlocks() {
        // Disabling with "revoke its invitations" locked every administrator FOR UPDATE,
        // which waits for the key-share lock a resend's new invitation takes on the
        // account that sends it, while the resend waited for users the revocation had
        // locked: PostgreSQL ended one of them with a deadlock (500).
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| {
                config.resend_limit_per_hour = 1000;
                // Each sender signs in from an address of its own.
                config.trust_proxy = true;
            }),
            ..AppOptions::default()
        })
        .await;
        app.set_up_invitations().await;
        for round in 0..50 {
            let sender_email = format!("sender{round}@example.com");
            app.add_account(&sender_email, ADMIN_PASSWORD, Role::Administrator);
            let sender_id = accounts::find_by_email(&mut app.conn(), &sender_email)
                .unwrap()
                .unwrap()
                .id;
            let sender = browser_at(&format!("10.0.{round}.1"));
            app.login_with(&sender, &sender_email, ADMIN_PASSWORD)
                .await
                .assert_redirect_to("/users");
            let invite = app.get_with(&sender, "/users/invite").await;
            let mut form = fields(&[("csrf_token", &invite.csrf_token()), ("action", "send")]);
            let invitees: Vec<String> = (0..2)
                .map(|n| format!("person{n}.round{round}@example.com"))
                .collect();
            for email in &invitees {
                form.push(("first_name".into(), "Person".into()));
                form.push(("last_name".into(), format!("Round{round}")));
                form.push(("email".into(), email.clone()));
            }
            app.post_with(&sender, "/users/invite", &form)
                .await
                .assert_redirect_to("/users");
            let users = app.get("/users").await;
            let mut resend = fields(&[("csrf_token", &users.csrf_token())]);
            for email in &invitees {
                resend.push(("user_id".into(), app.user_id(email)));
            }
            let disable = fields(&[
                ("csrf_token", &users.csrf_token()),
                ("confirm", "yes"),
                ("revoke_invitations", "yes"),
            ]);
            let disable_path = format!("/accounts/{sender_id}/disable");
            let (disabled, resent) = tokio::join!(
                app.post_with(&app.client, &disable_path, &disable),
                app.post_with(&app.client, "/users/resend", &resend),
            );
            assert_eq!(disabled.status, 303, "round {round}: disable");
            assert_eq!(resent.status, 303, "round {round}: resend");
        }
    }
}
