//! "Set up user invitations": validation, preview, saving, changing.

use crate::support::*;

on_both_engines! {
    async fn wrong_settings_are_refused_field_by_field_and_kept() {
        let app = spawn_app().await;
        app.login_admin().await;
        let form = fields(&[
            ("organization_name", ""),
            ("contact_email", "help@"),
            ("sender_name", "IT\r\nBcc: eve@evil.example"),
            ("sender_address", "noreply"),
            ("public_url", "javascript:alert(1)"),
            ("validity_days", "31"),
            ("custom_message", "Hello"),
            ("after_join_url", "not a url"),
            ("action", "save"),
        ]);
        let page = app
            .submit("/settings/invitations", "/settings/invitations", &form)
            .await;
        assert_eq!(page.status, 422);
        for field in [
            "organization_name",
            "contact_email",
            "sender_name",
            "sender_address",
            "public_url",
            "validity_days",
            "after_join_url",
        ] {
            assert!(
                page.field_error(field).is_some(),
                "no message beside {field}"
            );
        }
        assert!(
            page.field_error("validity_days")
                .unwrap()
                .contains("from 1 to 30")
        );
        assert_eq!(page.input_value("#contact_email").as_deref(), Some("help@"));
        assert_eq!(page.input_value("#validity_days").as_deref(), Some("31"));
        assert!(page.body.contains(">Hello</textarea>"));
        assert_eq!(app.count("invitation_settings"), 0);
    }
}

on_both_engines! {
    async fn preview_shows_the_email_without_saving_then_save_stores_it() {
        let app = spawn_app().await;
        app.login_admin().await;
        let first = app.get("/settings/invitations").await;
        assert_eq!(
            first.input_value("#validity_days").as_deref(),
            Some("7"),
            "default is 7 days"
        );
        for (id, label) in [
            ("organization_name", "Organization name"),
            ("contact_email", "Contact email address"),
            ("sender_name", "Sender name"),
            ("sender_address", "Sender address"),
            ("public_url", "Public URL"),
            ("validity_days", "Days an invitation stays valid"),
            ("custom_message", "Custom message"),
            ("after_join_url", "After joining, go to"),
        ] {
            assert_eq!(first.label_for(id).as_deref(), Some(label));
        }

        let mut form = TestApp::settings_fields();
        form.retain(|(k, _)| k != "action");
        form.push(("action".into(), "preview".into()));
        let preview = app
            .submit("/settings/invitations", "/settings/invitations", &form)
            .await;
        assert_eq!(preview.status, 200);
        let text = preview.text();
        assert!(text.contains("Email preview"), "{text}");
        assert!(
            text.contains("You're invited to join Example Corp"),
            "{text}"
        );
        assert!(text.contains("Welcome aboard!"), "{text}");
        assert!(preview.body.contains("srcdoc="));
        assert_eq!(
            app.count("invitation_settings"),
            0,
            "a preview saves nothing"
        );

        let saved = app
            .submit(
                "/settings/invitations",
                "/settings/invitations",
                &TestApp::settings_fields(),
            )
            .await;
        saved.assert_redirect_to("/users/invite");
        let invite = app.follow(saved).await;
        assert!(invite.text().contains("Invitations are set up"));
        assert_eq!(
            invite.label_for("email-1").as_deref(),
            Some("Email address")
        );
        assert!(
            invite.text().contains("Microsoft Exchange"),
            "the Exchange reminder is shown"
        );

        // Changing them later keeps working and is recorded.
        let mut changed = TestApp::settings_fields();
        changed[0].1 = "Example Group".into();
        let page = app
            .submit("/settings/invitations", "/settings/invitations", &changed)
            .await;
        page.assert_redirect_to("/settings/invitations");
        let page = app.follow(page).await;
        assert_eq!(
            page.input_value("#organization_name").as_deref(),
            Some("Example Group")
        );

        use diesel::prelude::*;
        use enroll::db::schema::audit_events;
        let details: Vec<String> = audit_events::table
            .filter(audit_events::action.eq("settings_change"))
            .order(audit_events::occurred_at)
            .select(audit_events::detail)
            .load(&mut *app.conn())
            .unwrap();
        assert_eq!(
            details,
            vec!["invitations set up", "changed organization name"]
        );
    }
}

on_both_engines! {
    async fn the_reminder_range_is_said_as_a_person_would() {
        let app = spawn_app().await;
        app.login_admin().await;
        let message = |validity: &'static str, reminder: &'static str| {
            let mut form = TestApp::settings_fields();
            for (name, value) in form.iter_mut() {
                match name.as_str() {
                    "validity_days" => *value = validity.to_owned(),
                    "reminder_days" => *value = reminder.to_owned(),
                    _ => {}
                }
            }
            form
        };
        for (validity, reminder, expected) in [
            ("2", "2", ": enter 1, or leave it empty."),
            ("7", "9", ": enter 1 to 6 days, or leave it empty."),
            ("1", "1", "invitations valid for 1 day have none: leave it empty."),
        ] {
            let page = app
                .submit(
                    "/settings/invitations",
                    "/settings/invitations",
                    &message(validity, reminder),
                )
                .await;
            assert_eq!(page.status, 422);
            let error = page.field_error("reminder_days").expect("a reminder message");
            assert!(error.ends_with(expected), "valid {validity} days: {error}");
            assert!(!error.contains("1 to 1"), "{error}");
        }
        assert_eq!(app.count("invitation_settings"), 0);
    }
}

on_both_engines! {
    async fn a_clear_text_public_url_is_saved_with_a_warning_beside_it() {
        // Enrollment links start with the public URL: over http:// they, and the
        // session cookies of whoever follows them, cross the network readable by anyone
        // on the way. Loopback is the exception (a trial on one's own computer).
        let app = spawn_app().await;
        app.set_up_invitations_with(&[("public_url", "http://enroll.example.com")])
            .await;
        let page = app.get("/settings/invitations").await;
        assert_eq!(page.input_value("#public_url").as_deref(), Some("http://enroll.example.com"));
        let html = page.html();
        let warning = scraper::Selector::parse(".field #public_url-warning").unwrap();
        let warning = html
            .select(&warning)
            .next()
            .map(|w| w.text().collect::<String>())
            .expect("a warning beside the public URL");
        assert!(warning.contains("https://"), "{warning}");
        assert!(
            page.body.contains("aria-describedby=\"public_url-hint public_url-warning\""),
            "the warning is tied to its field"
        );
        // The same on a preview, before anything is saved.
        let mut form = TestApp::settings_fields();
        form.retain(|(name, _)| name != "public_url" && name != "action");
        form.push(("public_url".into(), "http://10.0.0.5:8080".into()));
        form.push(("action".into(), "preview".into()));
        let preview = app
            .submit("/settings/invitations", "/settings/invitations", &form)
            .await;
        assert_eq!(preview.status, 200);
        assert!(preview.body.contains("id=\"public_url-warning\""));
        for safe in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "https://enroll.example.com",
        ] {
            let mut form = TestApp::settings_fields();
            for field in &mut form {
                if field.0 == "public_url" {
                    field.1 = safe.to_owned();
                }
            }
            let saved = app
                .submit("/settings/invitations", "/settings/invitations", &form)
                .await;
            assert_eq!(saved.status, 303, "{safe}: {}", saved.text());
            let page = app.get("/settings/invitations").await;
            assert!(!page.body.contains("public_url-warning"), "{safe}");
        }
    }
}
