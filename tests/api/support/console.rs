//! What a test does through the console over HTTP, as a person with a browser would:
//! open pages, submit forms, sign in, set up invitations, invite, act on users.

use std::time::{Duration, Instant};

use scraper::Selector;

use super::{ADMIN_EMAIL, ADMIN_PASSWORD, Fields, Page, TestApp, fields, urlencode};

impl TestApp {
    pub async fn get_with(&self, client: &reqwest::Client, path: &str) -> Page {
        let response = client.get(self.url(path)).send().await.expect("GET works");
        Page::read(response).await
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_with(&self.client, path).await
    }

    /// Follows a redirect chain the way a browser does, up to five hops.
    pub async fn follow(&self, mut page: Page) -> Page {
        for _ in 0..5 {
            if page.status != 303 && page.status != 302 {
                break;
            }
            let location = page.location.clone().expect("a Location header");
            page = self.get(&location).await;
        }
        page
    }

    pub async fn post_with(&self, client: &reqwest::Client, path: &str, form: &Fields) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let response = client
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", &self.address)
            .body(body)
            .send()
            .await
            .expect("POST works");
        Page::read(response).await
    }

    /// Posts a form with the CSRF token of the page at `form_page`, as a browser would
    /// after opening that page.
    pub async fn submit(&self, form_page: &str, action: &str, form: &Fields) -> Page {
        let page = self.get(form_page).await;
        let mut form = form.clone();
        form.push(("csrf_token".to_owned(), page.csrf_token()));
        self.post_with(&self.client, action, &form).await
    }

    pub async fn login_with(&self, client: &reqwest::Client, email: &str, password: &str) -> Page {
        let page = self.get_with(client, "/login").await;
        let form = fields(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &page.csrf_token()),
        ]);
        self.post_with(client, "/login", &form).await
    }

    pub async fn login_admin(&self) {
        let page = self
            .login_with(&self.client, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await;
        page.assert_redirect_to("/users");
    }

    pub fn settings_fields() -> Fields {
        fields(&[
            ("organization_name", "Example Corp"),
            ("contact_email", "it-help@example.com"),
            ("sender_name", "Example Corp IT"),
            ("sender_address", "no-reply@example.com"),
            ("public_url", "https://enroll.example.com"),
            ("validity_days", "7"),
            ("custom_message", "Welcome aboard!\nSee you on Monday."),
            ("after_join_url", "https://intranet.example.com/welcome"),
            ("reminder_days", ""),
            ("action", "save"),
        ])
    }

    /// Signs in as administrator and saves the settings with some fields changed.
    pub async fn set_up_invitations_with(&self, changes: &[(&str, &str)]) {
        self.login_admin().await;
        let mut form = Self::settings_fields();
        for (name, value) in changes {
            if let Some(field) = form.iter_mut().find(|(k, _)| k == name) {
                field.1 = (*value).to_owned();
            }
        }
        let page = self
            .submit("/settings/invitations", "/settings/invitations", &form)
            .await;
        assert_eq!(page.status, 303, "settings were not saved: {}", page.text());
    }

    /// Signs in as administrator and saves the invitation settings.
    pub async fn set_up_invitations(&self) {
        self.login_admin().await;
        let page = self
            .submit(
                "/settings/invitations",
                "/settings/invitations",
                &Self::settings_fields(),
            )
            .await;
        assert_eq!(page.status, 303, "settings were not saved: {}", page.text());
    }

    /// Invites people (first, last, email) through the form; returns the response.
    pub async fn invite<S: AsRef<str>>(&self, people: &[(S, S, S)]) -> Page {
        let mut form: Fields = Vec::new();
        for (first, last, email) in people {
            form.push(("first_name".into(), first.as_ref().into()));
            form.push(("last_name".into(), last.as_ref().into()));
            form.push(("email".into(), email.as_ref().into()));
        }
        form.push(("action".into(), "send".into()));
        self.submit("/users/invite", "/users/invite", &form).await
    }

    /// Selects users by id on the Users page and presses a button.
    pub async fn act_on_users(&self, action: &str, ids: &[String], extra: &[(&str, &str)]) -> Page {
        let mut form: Fields = ids
            .iter()
            .map(|id| ("user_id".to_owned(), id.clone()))
            .collect();
        form.extend(fields(extra));
        self.submit("/users", action, &form).await
    }

    /// The status label shown for this user on the Users page.
    pub async fn status_of(&self, email: &str) -> String {
        let page = self.get(&format!("/users?q={}", urlencode(email))).await;
        let html = page.html();
        let row_selector = Selector::parse("tbody tr").unwrap();
        let badge = Selector::parse(".badge").unwrap();
        for row in html.select(&row_selector) {
            let text: String = row.text().collect();
            if text.contains(email) {
                return row
                    .select(&badge)
                    .next()
                    .map(|b| b.text().collect::<String>().trim().to_owned())
                    .unwrap_or_default();
            }
        }
        panic!("{email} is not on the Users page: {}", page.text());
    }

    /// For tests of the background worker (the others call `deliver_due_emails` and read
    /// `status_of` at once): waits until the user shows this status.
    pub async fn wait_for_status(&self, email: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.status_of(email).await;
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{email} stayed {now}, expected {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
