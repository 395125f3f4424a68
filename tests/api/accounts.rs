//! Console accounts and the audit log.

use crate::support::*;

/// Opens /accounts and adds an account through the form.
async fn add_account(app: &TestApp, email: &str, role: &str, password: &str, again: &str) -> Page {
    let form = fields(&[
        ("email", email),
        ("role", role),
        ("password", password),
        ("password_confirmation", again),
    ]);
    app.submit("/accounts", "/accounts", &form).await
}

fn account_id(app: &TestApp, email: &str) -> String {
    use diesel::prelude::*;
    use enroll::db::schema::accounts;
    accounts::table
        .filter(accounts::email_key.eq(email.to_ascii_lowercase()))
        .select(accounts::id)
        .first(&mut *app.conn())
        .unwrap()
}

on_both_engines! {
    async fn administrators_add_accounts_with_strict_passwords() {
        let app = spawn_app().await;
        app.login_admin().await;
        let page = app.get("/accounts").await;
        assert_eq!(page.status, 200);
        assert!(page.text().contains(ADMIN_EMAIL) && page.text().contains(HELPDESK_EMAIL));
        assert_eq!(page.label_for("role").as_deref(), Some("Role"));

        for (email, password, again, field, message) in [
            ("not-an-address", "a long enough passphrase", "a long enough passphrase", "email", "@"),
            ("kim@example.com", "too short", "too short", "password", "at least 12"),
            ("kim@example.com", "KIM@example.com", "KIM@example.com", "password", "cannot be the account's email"),
            ("kim@example.com", "a long enough passphrase", "another passphrase", "password_confirmation", "not the same"),
            (ADMIN_EMAIL, "a long enough passphrase", "a long enough passphrase", "email", "already exists"),
        ] {
            let page = add_account(&app, email, "helpdesk", password, again).await;
            assert_eq!(page.status, 422, "{email}/{password}");
            let error = page.field_error(field).unwrap_or_default();
            assert!(error.contains(message), "{field}: {error}");
            assert_eq!(page.input_value("#email").as_deref(), Some(email));
        }
        assert_eq!(app.count("accounts"), 2);

        let page = add_account(&app, "kim@example.com", "helpdesk", "kim's own passphrase", "kim's own passphrase").await;
        page.assert_redirect_to("/accounts");
        assert!(app.follow(page).await.text().contains("Added Help desk account kim@example.com."));
        let kim = browser();
        app.login_with(&kim, "kim@example.com", "kim's own passphrase")
            .await
            .assert_redirect_to("/users");
        for path in ["/accounts", "/audit", "/settings/invitations", "/users/invite"] {
            assert_eq!(app.get_with(&kim, path).await.status, 403, "{path}");
        }
        let users = app.get_with(&kim, "/users").await;
        assert!(!users.text().contains("Console accounts"));
        assert!(!users.text().contains("Audit log"));
    }
}

on_both_engines! {
    async fn a_role_change_applies_to_open_sessions_at_once() {
        let app = spawn_app().await;
        app.login_admin().await;
        let desk = browser();
        app.login_with(&desk, HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        assert_eq!(app.get_with(&desk, "/accounts").await.status, 403);

        let id = account_id(&app, HELPDESK_EMAIL);
        let path = format!("/accounts/{id}");
        let page = app
            .submit(&path, &format!("{path}/role"), &fields(&[("role", "administrator")]))
            .await;
        page.assert_redirect_to(&path);
        assert!(app.follow(page).await.text().contains("is now Administrator"));
        assert_eq!(app.get_with(&desk, "/accounts").await.status, 200, "no new sign-in needed");

        app.submit(&path, &format!("{path}/role"), &fields(&[("role", "helpdesk")]))
            .await
            .assert_redirect_to(&path);
        assert_eq!(app.get_with(&desk, "/accounts").await.status, 403);
    }
}

on_both_engines! {
    async fn the_last_active_administrator_is_protected() {
        let app = spawn_app().await;
        app.login_admin().await;
        let me = account_id(&app, ADMIN_EMAIL);
        let path = format!("/accounts/{me}");
        let page = app
            .submit(&path, &format!("{path}/role"), &fields(&[("role", "helpdesk")]))
            .await;
        page.assert_redirect_to(&path);
        assert!(app.follow(page).await.text().contains("last active administrator"));
        let page = app
            .submit(&path, &format!("{path}/disable"), &fields(&[("confirm", "yes")]))
            .await;
        assert!(app.follow(page).await.text().contains("last active administrator"));
        assert_eq!(app.get("/accounts").await.status, 200, "still an administrator");

        add_account(&app, "second@example.com", "administrator", "second admin passphrase", "second admin passphrase")
            .await
            .assert_redirect_to("/accounts");
        app.submit(&path, &format!("{path}/role"), &fields(&[("role", "helpdesk")]))
            .await
            .assert_redirect_to(&path);
        assert_eq!(app.get("/accounts").await.status, 403, "demoted once another administrator exists");
    }
}

on_both_engines! {
    async fn disabling_an_account_ends_its_sessions_and_can_revoke_its_invitations() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        add_account(&app, "leaver@example.com", "administrator", "leaving soon passphrase", "leaving soon passphrase")
            .await
            .assert_redirect_to("/accounts");
        let leaver = browser();
        app.login_with(&leaver, "leaver@example.com", "leaving soon passphrase")
            .await
            .assert_redirect_to("/users");
        let token = app.get_with(&leaver, "/users/invite").await.csrf_token();
        let form = fields(&[
            ("first_name", "Ada"), ("last_name", "Lovelace"), ("email", "ada@example.com"),
            ("first_name", "Alan"), ("last_name", "Turing"), ("email", "alan@example.com"),
            ("action", "send"), ("csrf_token", &token),
        ]);
        app.post_with(&leaver, "/users/invite", &form).await.assert_redirect_to("/users");
        let link = app.delivered_to("ada@example.com", 1).await.enrollment_path();
        app.delivered_to("alan@example.com", 1).await;
        // One of them joins before the account is disabled; that membership stays.
        let alan = browser();
        let alan_link = app.smtp.to("alan@example.com")[0].enrollment_path();
        let token = app.get_with(&alan, &alan_link).await.csrf_token();
        app.post_with(&alan, &alan_link, &fields(&[("csrf_token", &token)])).await;

        let id = account_id(&app, "leaver@example.com");
        let path = format!("/accounts/{id}");
        let confirm = app.submit(&path, &format!("{path}/disable"), &Vec::new()).await;
        assert_eq!(confirm.status, 200);
        assert!(confirm.text().contains("Also revoke the 1 pending invitation this account sent"), "{}", confirm.text());
        let form = fields(&[
            ("confirm", "yes"),
            ("revoke_invitations", "yes"),
            ("csrf_token", &confirm.csrf_token()),
        ]);
        let done = app.post_with(&app.client, &format!("{path}/disable"), &form).await;
        done.assert_redirect_to(&path);
        assert!(app.follow(done).await.text().contains("disabled and signed out everywhere"));

        app.get_with(&leaver, "/users").await.assert_redirect_to("/login?next=%2Fusers");
        let again = app.login_with(&browser(), "leaver@example.com", "leaving soon passphrase").await;
        assert_eq!(again.status, 401);
        assert!(again.text().contains("do not match an active account"));

        assert_eq!(app.get_with(&browser(), &link).await.status, 410, "revoked link");
        assert_eq!(app.status_of("ada@example.com").await, "Expired");
        assert_eq!(app.status_of("alan@example.com").await, "Enrolled");

        app.submit(&path, &format!("{path}/enable"), &Vec::new()).await.assert_redirect_to(&path);
        app.login_with(&browser(), "leaver@example.com", "leaving soon passphrase")
            .await
            .assert_redirect_to("/users");
    }
}

on_both_engines! {
    async fn a_password_reset_signs_the_account_out_everywhere() {
        let app = spawn_app().await;
        app.login_admin().await;
        let desk = browser();
        app.login_with(&desk, HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        let id = account_id(&app, HELPDESK_EMAIL);
        let path = format!("/accounts/{id}");
        let refused = app
            .submit(&path, &format!("{path}/password"), &fields(&[("password", "short"), ("password_confirmation", "short")]))
            .await;
        assert_eq!(refused.status, 422);
        assert!(refused.field_error("password").unwrap().contains("at least 12"));
        let page = app
            .submit(
                &path,
                &format!("{path}/password"),
                &fields(&[("password", "a brand new passphrase"), ("password_confirmation", "a brand new passphrase")]),
            )
            .await;
        page.assert_redirect_to(&path);
        app.get_with(&desk, "/users").await.assert_redirect_to("/login?next=%2Fusers");
        assert_eq!(app.login_with(&browser(), HELPDESK_EMAIL, HELPDESK_PASSWORD).await.status, 401);
        app.login_with(&browser(), HELPDESK_EMAIL, "a brand new passphrase")
            .await
            .assert_redirect_to("/users");
    }
}

on_both_engines! {
    async fn the_audit_log_records_who_did_what_to_whom_from_where() {
        let app = spawn_app().await;
        // A password typed into the Email field must not end up in the log.
        assert_eq!(app.login_with(&browser(), "MyOwnPassw0rd!", "x").await.status, 401);
        assert_eq!(app.login_with(&browser(), ADMIN_EMAIL, "not the password at all").await.status, 401);
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com"), ("Alan", "Turing", "alan@example.com")]).await;
        let ada = app.user_id("ada@example.com");
        let alan = app.user_id("alan@example.com");
        // Sent before the resend, which would otherwise cancel it unsent.
        app.delivered_to("ada@example.com", 1).await;
        app.act_on_users("/users/resend", std::slice::from_ref(&ada), &[]).await;
        app.act_on_users("/users/remove", std::slice::from_ref(&alan), &[("confirm", "yes")]).await;
        let link = app.delivered_to("ada@example.com", 2).await.enrollment_path();
        let invitee = browser();
        let token = app.get_with(&invitee, &link).await.csrf_token();
        app.post_with(&invitee, &link, &fields(&[("csrf_token", &token)])).await;

        let page = app.get("/audit").await;
        assert_eq!(page.status, 200);
        let rows: Vec<String> = {
            let html = page.html();
            let selector = scraper::Selector::parse("tbody tr").unwrap();
            html.select(&selector)
                .map(|r| r.text().collect::<Vec<_>>().join(" ").split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        let expected_newest_first = [
            ("Joined", "invitee", "ada@example.com"),
            ("Removed", ADMIN_EMAIL, "alan@example.com"),
            ("Resent invitation", ADMIN_EMAIL, "ada@example.com"),
            ("Invited", ADMIN_EMAIL, "alan@example.com"),
            ("Invited", ADMIN_EMAIL, "ada@example.com"),
            ("Changed invitation settings", ADMIN_EMAIL, ""),
            ("Signed in", ADMIN_EMAIL, ""),
            ("Sign-in failed", "anonymous", ADMIN_EMAIL),
            ("Sign-in failed", "anonymous", "no account with the address typed"),
        ];
        assert!(rows.len() >= expected_newest_first.len(), "{rows:?}");
        assert!(!page.text().contains("MyOwnPassw0rd"));
        for (row, (action, actor, subject)) in rows.iter().zip(expected_newest_first) {
            assert!(row.contains(action) && row.contains(actor) && row.contains(subject), "{row} vs {action}/{actor}/{subject}");
            assert!(row.contains("127.0.0.1"), "the client address is recorded: {row}");
        }

        let table_text = |page: &Page| {
            let html = page.html();
            let selector = scraper::Selector::parse("tbody").unwrap();
            html.select(&selector).map(|t| t.text().collect::<String>()).collect::<String>()
        };
        let resends = table_text(&app.get("/audit?action=resend").await);
        assert!(resends.contains("Resent invitation"));
        assert!(!resends.contains("Removed") && !resends.contains("Invited"));
        let about_alan = table_text(&app.get("/audit?subject=ALAN%40example").await);
        assert!(about_alan.contains("alan@example.com"));
        assert!(!about_alan.contains("ada@example.com"));
        let by_nobody = app.get("/audit?actor=nobody").await;
        assert!(by_nobody.text().contains("No entries match"));
    }
}

on_both_engines! {
    async fn the_audit_log_pages_back_in_time() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let people: Vec<(String, String, String)> = (0..60)
            .map(|n| (format!("P{n}"), "Example".to_owned(), format!("p{n:02}@example.com")))
            .collect();
        app.invite(&people).await.assert_redirect_to("/users");
        let first = app.get("/audit?action=invite").await;
        let count = |page: &Page| page.html().select(&scraper::Selector::parse("tbody tr").unwrap()).count();
        assert_eq!(count(&first), 50);
        let older = first
            .html()
            .select(&scraper::Selector::parse("a[rel=next]").unwrap())
            .next()
            .and_then(|a| a.value().attr("href").map(str::to_owned))
            .expect("an Older entries link");
        let second = app.get(&older).await;
        assert_eq!(count(&second), 10);
        assert!(second.text().contains("Invited"));
    }
}
