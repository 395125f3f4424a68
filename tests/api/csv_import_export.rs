//! "Import from CSV" on the invite page and "Export CSV" on the Users page.

use crate::support::*;

/// Uploads `content` as a CSV file from the invite page, as a browser would.
async fn import(app: &TestApp, file_name: &str, content: Vec<u8>) -> Page {
    let form_page = app.get("/users/invite").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", form_page.csrf_token())
        .text(
            "submission_key",
            form_page
                .input_value("input[name=submission_key]")
                .unwrap_or_default(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(content)
                .file_name(file_name.to_owned())
                .mime_str("text/csv")
                .unwrap(),
        );
    let response = app
        .client
        .post(app.url("/users/invite/import"))
        .header("Origin", &app.address)
        .multipart(form)
        .send()
        .await
        .unwrap();
    Page::read(response).await
}

on_both_engines! {
    async fn an_imported_file_fills_the_form_for_review_and_nothing_is_sent_until_send_invite() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Already", "Here", "here@example.com")]).await;
        let file = "\u{feff}First name,Last name,Email address\r\n\
                    Ada,Lovelace,ada@example.com\r\n\
                    \"O'Brien, Jr\",Bob,bob@example.com\r\n\
                    ,,\r\n\
                    Eve,Typo,eve@example\r\n\
                    Here,Again,HERE@example.com\r\n";
        let page = import(&app, "people.csv", file.as_bytes().to_vec()).await;
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(page.text().contains("4 people read from people.csv. Nothing has been sent"), "{}", page.text());
        assert_eq!(page.input_values("first_name"), vec!["Ada", "O'Brien, Jr", "Eve", "Here"]);
        assert_eq!(
            page.input_values("email"),
            vec!["ada@example.com", "bob@example.com", "eve@example", "HERE@example.com"]
        );
        assert!(page.field_error("email-3").unwrap().contains("internet domain"));
        assert!(page.field_error("email-4").unwrap().contains("already belongs to a user"));
        assert!(page.field_error("email-1").is_none());
        assert!(page.text().contains("2 rows need attention"));
        assert_eq!(app.count("users"), 1, "nothing saved by an import");

        // The reviewed rows, corrected, go out with Send invite.
        let form = fields(&[
            ("first_name", "Ada"), ("last_name", "Lovelace"), ("email", "ada@example.com"),
            ("first_name", "O'Brien, Jr"), ("last_name", "Bob"), ("email", "bob@example.com"),
            ("first_name", "Eve"), ("last_name", "Typo"), ("email", "eve@example.com"),
            ("action", "send"),
            ("submission_key", &page.input_value("input[name=submission_key]").unwrap()),
            ("csrf_token", &page.csrf_token()),
        ]);
        app.post_with(&app.client, "/users/invite", &form).await.assert_redirect_to("/users");
        assert_eq!(app.count("users"), 4);
        app.delivered(4).await;
    }
}

on_both_engines! {
    async fn semicolons_other_header_names_and_bad_files_are_handled() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let semicolons = "email;surname;given name\nada@example.com;Lovelace;Ada\n";
        let page = import(&app, "excel.csv", semicolons.as_bytes().to_vec()).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.input_values("first_name"), vec!["Ada"]);
        assert_eq!(page.input_values("last_name"), vec!["Lovelace"]);

        for (content, message) in [
            (b"name,mail\nAda,ada@example.com\n".to_vec(), "has no First name column and Last name column"),
            (b"\xff\xfe\x00A\x00d\x00a".to_vec(), "not UTF-8 text"),
            (Vec::new(), "Choose a CSV file"),
            (b"first,last,email\n".to_vec(), "nobody in it"),
            (
                format!("first,last,email\n{}", "a,b,c@example.com\n".repeat(1001)).into_bytes(),
                "at most 1000 people; this file has 1001",
            ),
        ] {
            let page = import(&app, "bad.csv", content).await;
            assert_eq!(page.status, 422);
            assert!(page.text().contains(message), "{message}: {}", page.text());
        }
        assert_eq!(app.count("users"), 0);
    }
}

on_both_engines! {
    async fn a_thousand_imported_rows_fill_the_form() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let mut file = String::from("First name,Last name,Email address\n");
        for n in 0..1000 {
            file.push_str(&format!("Person,Number{n},person{n}@example.com\n"));
        }
        let page = import(&app, "big.csv", file.into_bytes()).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.input_values("email").len(), 1000);
        assert!(page.field_error("email-1000").is_none());
    }
}

on_both_engines! {
    async fn an_upload_without_the_csrf_token_is_refused() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"first,last,email\na,b,c@example.com\n".to_vec())
                .file_name("x.csv"),
        );
        let response = app
            .client
            .post(app.url("/users/invite/import"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    }
}

on_both_engines! {
    async fn export_downloads_the_current_view_with_formulas_defused() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[
            ("Ada", "Lovelace", "ada@example.com"),
            ("=HYPERLINK(\"http://evil.example\")", "Formula", "formula@example.com"),
            ("Alan", "Turing", "alan@example.com"),
        ])
        .await;
        let link = app.delivered_to("alan@example.com", 1).await.enrollment_path();
        let invitee = browser();
        let token = app.get_with(&invitee, &link).await.csrf_token();
        app.post_with(&invitee, &link, &fields(&[("csrf_token", &token)])).await;

        let users = app.get("/users").await;
        assert!(users.body.contains("href=\"/users/export.csv\""));
        let page = app.get("/users/export.csv").await;
        assert_eq!(page.status, 200);
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert!(page.headers["content-disposition"].to_str().unwrap().contains("attachment; filename=\"enroll-users-"));
        let body = page.body.trim_start_matches('\u{feff}');
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], r#""First name","Last name","Email address","Status","Invited (UTC)","Expires (UTC)""#);
        assert_eq!(lines.len(), 4, "{body}");
        assert!(lines.iter().any(|l| l.starts_with(r#""'=HYPERLINK(""http://evil.example"")","Formula","#)), "{body}");
        assert!(lines.iter().any(|l| l.starts_with(r#""Alan","Turing","alan@example.com","Enrolled","#)));

        let pending = app.get("/users/export.csv?status=enrolled").await;
        let body = pending.body.trim_start_matches('\u{feff}');
        assert_eq!(body.lines().count(), 2, "{body}");
        let searched = app.get("/users/export.csv?q=lovelace").await;
        assert!(searched.body.contains("ada@example.com") && !searched.body.contains("alan@example.com"));

        let desk = browser();
        app.login_with(&desk, HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        assert_eq!(app.get_with(&desk, "/users/export.csv").await.status, 403);
        let audit = app.get("/audit?action=export").await;
        assert!(audit.text().contains("Exported users (CSV)"));
    }
}

on_both_engines! {
    async fn export_defuses_formulas_after_a_separator_and_quotes_every_field() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[
            ("Ada;=HYPERLINK(\"http://evil.example\")", "Lovelace", "ada@example.com"),
            ("Bob", "Smith, @SUM(A1)", "bob@example.com"),
            ("Carl", "Doe; -2+3", "carl@example.com"),
        ])
        .await
        .assert_redirect_to("/users");
        let page = app.get("/users/export.csv?sort=email").await;
        let body = page.body.trim_start_matches('\u{feff}');
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 4, "{body}");
        assert!(lines[1].starts_with(r#""Ada;'=HYPERLINK(""http://evil.example"")","Lovelace","ada@example.com","#), "{body}");
        assert!(lines[2].starts_with(r#""Bob","Smith,' @SUM(A1)","bob@example.com","#), "{body}");
        assert!(lines[3].starts_with(r#""Carl","Doe;' -2+3","carl@example.com","#), "{body}");
        // Split as a spreadsheet that ignores quotes would, on either separator: no cell
        // starts a formula.
        for line in &lines {
            for cell in line.split([';', ',']) {
                let cell = cell.trim_start_matches('"').trim_start();
                assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell:?} in {line}");
            }
            assert!(line.starts_with('"') && line.ends_with('"'), "every field quoted: {line}");
        }
    }
}

on_both_engines! {
    async fn exporting_more_users_than_one_batch_streams_them_all_in_order() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let people: Vec<(String, String, String)> = (0..1100)
            .map(|n| ("Person".to_owned(), format!("N{n:04}"), format!("p{n:04}@example.com")))
            .collect();
        for chunk in people.chunks(550) {
            app.invite(chunk).await.assert_redirect_to("/users");
        }
        let page = app.get("/users/export.csv?sort=email&dir=desc").await;
        let body = page.body.trim_start_matches('\u{feff}');
        let emails: Vec<&str> = body.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().trim_matches('"')).collect();
        assert_eq!(emails.len(), 1100);
        assert_eq!(emails[0], "p1099@example.com");
        assert_eq!(emails[1099], "p0000@example.com");
    }
}
