//! An email goes out once even when its outcome cannot be recorded at first, and the
//! file transport keeps one file per email.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use enroll::db::DbConnection;
use enroll::db::schema::outbound_emails;

use crate::support::*;

/// Makes the database refuse to mark any email as sent (a trigger), or stop refusing.
fn refuse_recording_sent(app: &TestApp, refuse: bool) {
    let mut conn = app.conn();
    let sql = match (&mut *conn, refuse) {
        (DbConnection::Sqlite(_), true) => {
            "CREATE TRIGGER refuse_sent BEFORE UPDATE OF status ON outbound_emails \
             WHEN NEW.status = 'sent' BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
        }
        (DbConnection::Sqlite(_), false) => "DROP TRIGGER refuse_sent;",
        (DbConnection::Postgresql(_), true) => {
            "CREATE FUNCTION refuse_sent() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; \
             CREATE TRIGGER refuse_sent BEFORE UPDATE ON outbound_emails FOR EACH ROW \
             WHEN (NEW.status = 'sent') EXECUTE FUNCTION refuse_sent();"
        }
        (DbConnection::Postgresql(_), false) => "DROP TRIGGER refuse_sent ON outbound_emails;",
    };
    diesel::connection::SimpleConnection::batch_execute(&mut *conn, sql).unwrap();
}

on_both_engines! {
    async fn an_email_whose_sending_cannot_be_recorded_is_not_sent_again() {
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| {
                // A short lease, so that an email let go of would be due again soon; and a
                // second thread, which would take it up.
                config.smtp_timeout_seconds = 1;
                config.mail_lease_seconds = 2;
                config.mail_workers = 2;
            }),
            background_mail: true,
            ..AppOptions::default()
        })
        .await;
        app.set_up_invitations().await;
        refuse_recording_sent(&app, true);
        let failures_before = app.db.metrics().mail_outcome_record_failures_total();

        app.invite(&[("Ada", "Lovelace", "ada@example.com")])
            .await
            .assert_redirect_to("/users");
        app.smtp.wait_for(1).await;
        let delivered = Instant::now();
        // Wait until the worker has been refused for well over a lease (when a worker that
        // let go would have sent the email again), or has sent it again.
        let deadline = delivered + Duration::from_secs(30);
        loop {
            let retried = app.db.metrics().mail_outcome_record_failures_total()
                >= failures_before + 3;
            if app.smtp.received().len() > 1
                || (retried && delivered.elapsed() > Duration::from_secs(6))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the worker never tried to record the outcome again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            app.smtp.received().len(),
            1,
            "sent again while its outcome could not be recorded"
        );

        refuse_recording_sent(&app, false);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status: String = outbound_emails::table
                .select(outbound_emails::status)
                .first(&mut *app.conn())
                .unwrap();
            if status == "sent" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the email stayed {status} after the fault cleared"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.wait_for_status("ada@example.com", "Pending").await;
        assert_eq!(app.smtp.received().len(), 1, "exactly one delivery");
    }
}

fn message(subject: &str) -> lettre::Message {
    lettre::Message::builder()
        .from("Example Corp <no-reply@example.com>".parse().unwrap())
        .to("ada@example.com".parse().unwrap())
        .subject(subject)
        .body("Welcome".to_owned())
        .unwrap()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_file_transport_writes_one_file_per_email_and_a_repeat_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = enroll::mail::Mailer::files(dir.path()).unwrap();
    let first = uuid::Uuid::now_v7().to_string();
    let second = uuid::Uuid::now_v7().to_string();

    mailer.send(message("First try"), &first).unwrap();
    mailer.send(message("Second try"), &first).unwrap();
    assert_eq!(files_in(dir.path()), [format!("{first}.eml")]);
    let email = ReceivedEmail::from_file(&dir.path().join(format!("{first}.eml")));
    assert_eq!(
        email.subject(),
        "Second try",
        "the repeat replaced the file"
    );

    mailer.send(message("Another email"), &second).unwrap();
    let mut expected = [format!("{first}.eml"), format!("{second}.eml")];
    expected.sort();
    assert_eq!(files_in(dir.path()), expected, "no temporary file is left");
}
