//! The whole flow: set up, invite with "Add another user", read the emails, join.

use crate::support::*;

on_both_engines! {
    async fn invite_three_people_and_each_joins_through_their_email() {
        let app = spawn_app().await;
        app.set_up_invitations().await;

        // "Add another user" without JavaScript: the form comes back with one more row and
        // every value kept.
        let first = fields(&[
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
            ("email", "ada@example.com"),
            ("action", "add_row"),
        ]);
        let page = app.submit("/users/invite", "/users/invite", &first).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.input_values("first_name"), vec!["Ada", ""]);
        assert_eq!(page.input_values("email"), vec!["ada@example.com", ""]);
        assert_eq!(
            page.label_for("first_name-2").as_deref(),
            Some("First name")
        );
        assert_eq!(app.count("users"), 0, "adding a row saves nothing");

        let page = app
            .invite(&[
                ("Ada", "Lovelace", "ada@example.com"),
                ("Alan", "Turing", "alan@example.com"),
                ("Grace", "Hopper", "Grace.Hopper@Example.com"),
            ])
            .await;
        page.assert_redirect_to("/users");
        let users_page = app.follow(page).await;
        assert!(
            users_page
                .text()
                .contains("Invitations on their way to 3 users."),
            "{}",
            users_page.text()
        );
        assert!(users_page.text().contains("Resources › Users"));

        let emails = app.delivered(3).await;
        assert_eq!(emails.len(), 3);
        let grace = app
            .delivered_to("Grace.Hopper@Example.com", 1)
            .await;
        assert_eq!(grace.subject(), "You're invited to join Example Corp");
        let text = grace.text();
        assert!(text.contains("Hello Grace,"), "{text}");
        assert!(
            text.contains("Welcome aboard!\nSee you on Monday."),
            "{text}"
        );
        assert!(text.contains("it-help@example.com"), "{text}");
        assert!(text.contains("expires on "), "{text}");
        assert!(text.contains("(in 7 days)"), "{text}");
        assert!(
            grace
                .enrollment_link()
                .starts_with("https://enroll.example.com/enroll/")
        );
        let html = grace.html();
        assert!(html.contains("Example Corp") && html.contains(&grace.enrollment_link()));
        assert!(
            grace
                .header("From")
                .unwrap()
                .contains("no-reply@example.com")
        );
        assert_eq!(
            grace.header("Reply-To").as_deref(),
            Some("it-help@example.com")
        );
        assert!(grace.header("Message-ID").is_some());
        assert!(grace.header("Date").is_some());

        app.assert_status("ada@example.com", "Pending").await;

        // Opening the link (as a mail scanner would) changes nothing, however often.
        let invitee = browser();
        let path = grace.enrollment_path();
        for _ in 0..3 {
            let page = app.get_with(&invitee, &path).await;
            assert_eq!(page.status, 200);
            let text = page.text();
            assert!(text.contains("Example Corp"), "{text}");
            assert!(text.contains("Grace.Hopper@Example.com"), "{text}");
            assert!(text.contains("Join organization"), "{text}");
            assert!(text.contains("it-help@example.com"), "{text}");
        }
        assert_eq!(app.status_of("Grace.Hopper@Example.com").await, "Pending");

        let page = app.get_with(&invitee, &path).await;
        let join = fields(&[("csrf_token", &page.csrf_token())]);
        let joined = app.post_with(&invitee, &path, &join).await;
        joined.assert_redirect_to(&path);
        let welcome = app.get_with(&invitee, &path).await;
        assert_eq!(welcome.status, 200);
        assert!(
            welcome.text().contains("You have joined Example Corp"),
            "{}",
            welcome.text()
        );
        assert!(
            welcome
                .body
                .contains("https://intranet.example.com/welcome")
        );

        assert_eq!(app.status_of("Grace.Hopper@Example.com").await, "Enrolled");
        assert_eq!(app.status_of("ada@example.com").await, "Pending");

        // Single use: the same link cannot enroll again, and says so.
        let again = app.post_with(&invitee, &path, &join).await;
        assert_eq!(again.status, 410);
        assert!(
            again.text().contains("already been used"),
            "{}",
            again.text()
        );
        let later = app.get_with(&browser(), &path).await;
        assert_eq!(later.status, 410);
    }
}

on_both_engines! {
    async fn two_simultaneous_joins_with_one_token_enroll_once() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        let email = app.delivered_to("ada@example.com", 1).await;
        let path = email.enrollment_path();

        let (a, b) = (browser(), browser());
        let token_a = app.get_with(&a, &path).await.csrf_token();
        let token_b = app.get_with(&b, &path).await.csrf_token();
        let (form_a, form_b) = (
            fields(&[("csrf_token", &token_a)]),
            fields(&[("csrf_token", &token_b)]),
        );
        let (first, second) = tokio::join!(
            app.post_with(&a, &path, &form_a),
            app.post_with(&b, &path, &form_b),
        );
        let mut statuses = vec![first.status, second.status];
        statuses.sort();
        assert_eq!(statuses, vec![303, 410], "exactly one join wins");

        use diesel::prelude::*;
        use enroll::db::schema::audit_events;
        let joins: i64 = audit_events::table
            .filter(audit_events::action.eq("enroll"))
            .count()
            .get_result(&mut *app.conn())
            .unwrap();
        assert_eq!(joins, 1);
    }
}

on_both_engines! {
    async fn expired_and_made_up_tokens_get_clear_pages() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        let path = app
            .delivered_to("ada@example.com", 1)
            .await
            .enrollment_path();

        app.clock.advance(chrono::TimeDelta::days(8));
        let invitee = browser();
        let page = app.get_with(&invitee, &path).await;
        assert_eq!(page.status, 410);
        assert!(
            page.text().contains("This invitation has expired"),
            "{}",
            page.text()
        );
        assert!(page.text().contains("Ask an administrator to resend it"));
        assert!(page.text().contains("it-help@example.com"));
        assert!(!page.text().contains("Join organization"));
        let token = app.get_with(&invitee, "/login").await.csrf_token();
        let refused = app
            .post_with(&invitee, &path, &fields(&[("csrf_token", &token)]))
            .await;
        assert_eq!(refused.status, 410);
        // Eight days later the administrator's session has ended too.
        app.login_admin().await;
        assert_eq!(app.status_of("ada@example.com").await, "Expired");

        for made_up in [
            "/enroll/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "/enroll/nonsense",
            "/enroll/%3Cscript%3E",
        ] {
            let page = app.get_with(&invitee, made_up).await;
            assert_eq!(page.status, 404, "{made_up}");
            assert!(
                page.text().contains("This invitation link is not valid"),
                "{}",
                page.text()
            );
            assert!(page.text().contains("it-help@example.com"));
        }
    }
}

on_both_engines! {
    async fn refused_delivery_shows_delivery_failed() {
        let app = spawn_app().await;
        app.smtp.refuse_recipients_containing("nobody");
        app.set_up_invitations().await;
        app.invite(&[
            ("Ada", "Lovelace", "ada@example.com"),
            ("No", "Body", "nobody@example.com"),
        ])
        .await;
        app.deliver_due_emails().await;
        app.assert_status("nobody@example.com", "Delivery failed")
            .await;
        let page = app.get("/users?status=delivery_failed").await;
        assert!(
            page.text().contains("550"),
            "the server's reason is shown: {}",
            page.text()
        );
        app.assert_status("ada@example.com", "Pending").await;
        assert!(app.smtp.to("nobody@example.com").is_empty());
    }
}

on_both_engines! {
    async fn fifty_people_in_one_submission() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let people: Vec<(String, String, String)> = (1..=50)
            .map(|n| {
                (
                    format!("First{n}"),
                    format!("Last{n}"),
                    format!("person{n}@example.com"),
                )
            })
            .collect();
        let page = app.invite(&people).await;
        page.assert_redirect_to("/users");
        assert_eq!(app.count("users"), 50);
        assert_eq!(app.count("invitations"), 50);
        let emails = app.delivered(50).await;
        let recipients: std::collections::HashSet<String> =
            emails.iter().flat_map(|e| e.to.clone()).collect();
        assert_eq!(recipients.len(), 50, "one email per person");
    }
}
