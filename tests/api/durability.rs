//! Restarts: sessions survive them, and no queued email is lost. The email tests run the
//! app's background worker, since its sending across restarts is what they test.

use crate::support::*;

on_both_engines! {
    async fn a_restart_keeps_people_signed_in() {
        let data = TestData::new(current_engine());
        let first = spawn_app_with(AppOptions {
            data: Some(data.clone()),
            ..AppOptions::default()
        })
        .await;
        first.login_admin().await;
        let cookie = first.cookie_header();
        drop(first);

        let second = spawn_app_with(AppOptions {
            data: Some(data),
            seed_accounts: false,
            ..AppOptions::default()
        })
        .await;
        let response = browser()
            .get(second.url("/users"))
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "the session key was kept in the data folder"
        );
    }
}

on_both_engines! {
    async fn email_queued_while_the_mail_server_is_down_is_sent_after_a_restart() {
        let data = TestData::new(current_engine());
        // Nothing listens on this port: every delivery attempt fails for now.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("smtp://127.0.0.1:{}", closed.local_addr().unwrap().port());
        drop(closed);
        let first = spawn_app_with(AppOptions {
            data: Some(data.clone()),
            smtp_url: Some(dead_url),
            background_mail: true,
            ..AppOptions::default()
        })
        .await;
        first.set_up_invitations().await;
        first
            .invite(&[
                ("Ada", "Lovelace", "ada@example.com"),
                ("Alan", "Turing", "alan@example.com"),
            ])
            .await
            .assert_redirect_to("/users");
        assert_eq!(first.status_of("ada@example.com").await, "Sending");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(
            first.status_of("ada@example.com").await,
            "Sending",
            "still retrying"
        );
        drop(first);

        let second = spawn_app_with(AppOptions {
            data: Some(data),
            seed_accounts: false,
            background_mail: true,
            ..AppOptions::default()
        })
        .await;
        // The retry is scheduled with backoff; move time past it rather than wait.
        second.clock.advance(chrono::TimeDelta::minutes(5));
        let emails = second.smtp.wait_for(2).await;
        assert_eq!(emails.len(), 2);
        second.login_admin().await;
        second.wait_for_status("ada@example.com", "Pending").await;
        let link = second
            .smtp
            .wait_for_nth_to("ada@example.com", 1)
            .await
            .enrollment_path();
        assert_eq!(second.get_with(&browser(), &link).await.status, 200);

        use diesel::prelude::*;
        use enroll::db::schema::outbound_emails;
        let bodies: Vec<Option<String>> = outbound_emails::table
            .select(outbound_emails::body_text)
            .load(&mut *second.conn())
            .unwrap();
        assert!(
            bodies.iter().all(Option::is_none),
            "bodies holding links are erased once sent"
        );
    }
}

on_both_engines! {
    async fn without_a_mail_server_email_is_written_to_files() {
        let app = spawn_app_with(AppOptions {
            mail_to_files: true,
            background_mail: true,
            ..AppOptions::default()
        })
        .await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")])
            .await
            .assert_redirect_to("/users");
        // Pending once the file is written in full.
        app.wait_for_status("ada@example.com", "Pending").await;
        let mail_dir = app.data_dir.join("mail");
        let file = std::fs::read_dir(&mail_dir)
            .into_iter()
            .flatten()
            .flatten()
            .find(|entry| entry.path().extension().is_some_and(|e| e == "eml"))
            .unwrap_or_else(|| panic!("no .eml file in {}", mail_dir.display()))
            .path();
        let email = ReceivedEmail::from_file(&file);
        assert_eq!(email.subject(), "You're invited to join Example Corp");
        let page = app.get_with(&browser(), &email.enrollment_path()).await;
        assert_eq!(page.status, 200);
        assert!(page.text().contains("ada@example.com"));
    }
}

on_both_engines! {
    async fn the_data_folder_and_every_file_the_app_creates_are_private() {
        use std::os::unix::fs::PermissionsExt;
        // A data folder the app must create itself (the test's own is made by tempfile).
        let app = spawn_app_with(AppOptions {
            mail_to_files: true,
            tweak: Some(|config| config.data_dir = config.data_dir.join("fresh")),
            ..AppOptions::default()
        })
        .await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com")]).await;
        assert_eq!(app.deliver_due_emails().await, 1);
        let data = app.data_dir.join("fresh");
        let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777;
        let mut checked = vec![(data.clone(), 0o700), (data.join("mail"), 0o700)];
        for entry in std::fs::read_dir(data.join("mail")).unwrap() {
            checked.push((entry.unwrap().path(), 0o600));
        }
        if current_engine() == Engine::Sqlite {
            // The session key, and the database with its journal files (open in WAL mode).
            for file in ["session.key", "enroll.db", "enroll.db-wal", "enroll.db-shm"] {
                checked.push((data.join(file), 0o600));
            }
        }
        assert!(checked.iter().any(|(path, _)| path.extension().is_some_and(|e| e == "eml")), "{checked:?}");
        for (path, expected) in &checked {
            assert_eq!(mode(path), *expected, "{} is {:o}", path.display(), mode(path));
        }
    }
}
