//! The API access page and `enroll token add`: credentials shown once, stored hashed or
//! sealed, listed, revoked.

use diesel::prelude::*;
use enroll::db::schema::credentials;

use crate::support::*;

/// Creates a credential on the API access page.
pub async fn create_credential(app: &TestApp, name: &str, kind: &str, role: &str) -> Page {
    let form = fields(&[("name", name), ("kind", kind), ("role", role)]);
    app.submit("/settings/api", "/settings/api", &form).await
}

/// Text of the element with this id.
pub fn element_text(page: &Page, id: &str) -> Option<String> {
    let html = page.html();
    let selector = scraper::Selector::parse(&format!("#{id}")).unwrap();
    html.select(&selector)
        .next()
        .map(|e| e.text().collect::<String>().trim().to_owned())
}

/// A SCIM token made by an administrator on the page.
pub async fn scim_token(app: &TestApp, name: &str) -> String {
    let page = create_credential(app, name, "scim", "administrator").await;
    assert_eq!(page.status, 200, "{}", page.text());
    element_text(&page, "new-secret").expect("the new token is shown")
}

/// `enroll token add` against the app's database, with its session key.
pub fn token_command(app: &TestApp) -> std::process::Command {
    let mut command = enroll(&app.data_dir);
    if let Some(database) = &app.data.database {
        command
            .env("ENROLL_DATABASE_URL", &database.url)
            .env("ENROLL_SESSION_KEY", TEST_SESSION_KEY);
    }
    command.args(["token", "add"]);
    command
}

#[derive(Queryable, Debug)]
struct Stored {
    token_hash: Option<String>,
    key_id: Option<String>,
    sealed_secret: Option<String>,
    revoked_at: Option<chrono::NaiveDateTime>,
}

fn stored(app: &TestApp, name: &str) -> Stored {
    credentials::table
        .filter(credentials::name.eq(name))
        .select((
            credentials::token_hash,
            credentials::key_id,
            credentials::sealed_secret,
            credentials::revoked_at,
        ))
        .first(&mut *app.conn())
        .unwrap()
}

on_both_engines! {
    async fn administrators_make_credentials_shown_once_and_stored_only_hashed_or_sealed() {
        let app = spawn_app().await;
        app.login_admin().await;
        let page = app.get("/settings/api").await;
        assert_eq!(page.status, 200);
        assert!(page.text().contains("API access"));
        assert_eq!(page.label_for("name").as_deref(), Some("Name"));
        assert!(page.body.contains("href=\"/settings/api\""), "linked from the navigation");

        let token = scim_token(&app, "Okta").await;
        assert_eq!(token.len(), 43);
        let row = stored(&app, "Okta");
        assert_eq!(row.token_hash.as_deref(), Some(enroll::crypto::sha256_hex(token.as_bytes()).as_str()));
        assert!(row.sealed_secret.is_none());

        let page = create_credential(&app, "onboarding script", "access-key", "helpdesk").await;
        assert_eq!(page.status, 200);
        let key_id = element_text(&page, "new-key-id").unwrap();
        let secret = element_text(&page, "new-secret").unwrap();
        assert!(key_id.starts_with("AKIA") && key_id.len() == 20, "{key_id}");
        assert_eq!(secret.len(), 40);
        assert_eq!(page.headers["cache-control"], "no-store");
        let row = stored(&app, "onboarding script");
        assert_eq!(row.key_id.as_deref(), Some(key_id.as_str()));
        let sealed = row.sealed_secret.unwrap();
        assert!(sealed.starts_with("sealed-v1:") && !sealed.contains(&secret));

        // Listed without secrets, with role and "Never" used.
        let list = app.get("/settings/api").await;
        let text = list.text();
        for expected in ["Okta", "SCIM token", "onboarding script", "Access key", "Help desk", ADMIN_EMAIL, "Never", &key_id] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        assert!(!list.body.contains(&token) && !list.body.contains(&secret));
        assert!(element_text(&list, "new-secret").is_none(), "shown once only");

        // Bad names and a taken one: the form says why, nothing is made.
        for (name, kind, message) in [
            ("", "scim", "Enter a name"),
            ("a\u{0}b", "scim", "Use letters"),
            (&"x".repeat(101) as &str, "scim", "at most 100"),
            ("OKTA", "scim", "exists"),
        ] {
            let page = create_credential(&app, name, kind, "administrator").await;
            assert_eq!(page.status, 422, "{name:?}");
            assert!(page.field_error("name").unwrap_or_default().contains(message), "{name:?}");
        }
        let page = create_credential(&app, "x", "password", "administrator").await;
        assert_eq!(page.status, 422);
        assert!(page.field_error("kind").is_some());
        assert_eq!(app.count("credentials"), 2);

        // Audited under the administrator, never with the secret.
        let audit = app.get("/audit").await.text();
        assert!(audit.contains("Added API credential") && audit.contains("Okta"));
        assert!(!audit.contains(&token) && !audit.contains(&secret));
    }
}

on_both_engines! {
    async fn help_desk_and_forms_without_csrf_are_refused() {
        let app = spawn_app().await;
        let desk = browser();
        app.login_with(&desk, HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        assert_eq!(app.get_with(&desk, "/settings/api").await.status, 403);
        let users = app.get_with(&desk, "/users").await;
        assert!(!users.body.contains("/settings/api"));
        let page = app.get_with(&desk, "/users").await;
        let form = fields(&[("name", "x"), ("kind", "scim"), ("role", "administrator"), ("csrf_token", &page.csrf_token())]);
        assert_eq!(app.post_with(&desk, "/settings/api", &form).await.status, 403);

        app.login_admin().await;
        let form = fields(&[("name", "x"), ("kind", "scim"), ("role", "administrator")]);
        let page = app.post_with(&app.client, "/settings/api", &form).await;
        assert!(page.status >= 400 && page.status < 500, "{}", page.status);
        assert_eq!(app.count("credentials"), 0);
        assert_eq!(app.get("/settings/api/00000000-0000-0000-0000-000000000000/revoke").await.status, 405);
    }
}

on_both_engines! {
    async fn revoking_asks_first_then_keeps_the_row_marked_revoked() {
        let app = spawn_app().await;
        app.login_admin().await;
        scim_token(&app, "Okta").await;
        let id: String = credentials::table
            .select(credentials::id)
            .first(&mut *app.conn())
            .unwrap();
        let path = format!("/settings/api/{id}/revoke");
        let confirm = app.submit("/settings/api", &path, &Vec::new()).await;
        assert_eq!(confirm.status, 200);
        assert!(confirm.text().contains("Revoke SCIM token “Okta”?"));
        assert!(stored(&app, "Okta").revoked_at.is_none());
        let done = app.submit("/settings/api", &path, &fields(&[("confirm", "yes")])).await;
        done.assert_redirect_to("/settings/api");
        let list = app.follow(done).await;
        assert!(list.text().contains("it no longer works"), "{}", list.text());
        assert!(list.text().contains("Revoked"));
        assert!(stored(&app, "Okta").revoked_at.is_some());
        // The name is free again.
        scim_token(&app, "Okta").await;
        let again = app.submit("/settings/api", &path, &fields(&[("confirm", "yes")])).await;
        again.assert_redirect_to("/settings/api");
        assert!(app.get("/audit").await.text().contains("Revoked API credential"));
        assert_eq!(app.submit("/settings/api", "/settings/api/not-an-id/revoke", &Vec::new()).await.status, 404);
    }
}

on_both_engines! {
    async fn token_add_prints_exactly_the_secret_lines() {
        let app = spawn_app().await;
        let out = ok(run(token_command(&app).args(["--kind", "scim", "--name", "Entra"])));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let token = lines[0].strip_prefix("token=").expect("token=<secret>");
        assert_eq!(
            stored(&app, "Entra").token_hash.as_deref(),
            Some(enroll::crypto::sha256_hex(token.as_bytes()).as_str())
        );

        let out = ok(run(token_command(&app).args(["--kind", "access-key", "--name", "script", "--role", "administrator"])));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let key_id = lines[0].strip_prefix("access_key_id=").expect("access_key_id=");
        let secret = lines[1].strip_prefix("secret_access_key=").expect("secret_access_key=");
        assert!(key_id.starts_with("AKIA"));
        assert_eq!(secret.len(), 40);

        for (args, says) in [
            (&["--kind", "access-key", "--name", "no role"][..], "--role"),
            (&["--kind", "scim", "--name", "Entra"][..], "already exists"),
            (&["--kind", "scim", "--name", ""][..], "--name"),
            (&["--kind", "scim", "--name", "x", "--role", "helpdesk"][..], "administrators"),
            (&["--kind", "password", "--name", "x"][..], "invalid value"),
        ] {
            let said = refused(run(token_command(&app).args(args)));
            assert!(said.contains(says), "{args:?}: {said}");
        }
        app.login_admin().await;
        let page = app.get("/settings/api").await.text();
        assert!(page.contains("Entra") && page.contains("script") && page.contains("command line"), "{page}");
    }
}
