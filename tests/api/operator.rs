//! What an operator runs beside the console: `enroll backup`, `enroll restore` and
//! `enroll doctor`, through the built binary.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::prelude::*;

use crate::support::*;

/// SQLite's own verdict and every user's address.
fn integrity_and_emails(database: &Path) -> (String, Vec<String>) {
    #[derive(QueryableByName)]
    struct Integrity {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let mut conn = diesel::SqliteConnection::establish(database.to_str().unwrap()).unwrap();
    let integrity = diesel::sql_query("PRAGMA integrity_check")
        .load::<Integrity>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|row| row.integrity_check)
        .collect::<Vec<_>>()
        .join("; ");
    use enroll::db::schema::{invitations, users};
    let emails = users::table
        .inner_join(invitations::table)
        .select(users::email)
        .load::<String>(&mut conn)
        .unwrap();
    (integrity, emails)
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_every_invitation_committed_before_it() {
    run_on(Engine::Sqlite, async {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let committed = Mutex::new(Vec::<String>::new());
        let backup_done = AtomicBool::new(false);
        let backup_file = app.data_dir.join("backup.db");
        // Invitations in batches of ten, committed one batch per request, until the
        // backup is done.
        let load = async {
            let mut batch = 0;
            while !backup_done.load(Ordering::Relaxed) {
                let emails: Vec<String> = (0..10)
                    .map(|n| format!("load-{batch}-{n}@example.com"))
                    .collect();
                let people: Vec<(&str, &str, &str)> = emails
                    .iter()
                    .map(|email| ("Load", "Test", email.as_str()))
                    .collect();
                let page = app.invite(&people).await;
                assert_eq!(page.status, 303, "{}", page.text());
                committed.lock().unwrap().extend(emails);
                batch += 1;
            }
            batch
        };
        let backup = async {
            while committed.lock().unwrap().len() < 50 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let before = committed.lock().unwrap().clone();
            let (data_dir, to) = (app.data_dir.clone(), backup_file.clone());
            let output = tokio::task::spawn_blocking(move || {
                run(enroll(&data_dir).args(["backup", "--to"]).arg(&to))
            })
            .await
            .unwrap();
            backup_done.store(true, Ordering::Relaxed);
            (before, ok(output))
        };
        let (batches, (before, said)) = tokio::join!(load, backup);
        assert!(said.contains("Backed up"), "{said}");
        assert!(batches >= 5, "{batches}");

        // Restored where there is no database yet, and over an existing one.
        let fresh = tempfile::tempdir().unwrap();
        ok(run(enroll(fresh.path())
            .args(["restore", "--from"])
            .arg(&backup_file)));
        let existing = tempfile::tempdir().unwrap();
        ok(run(enroll(existing.path()).arg("migrate")));
        ok(run(enroll(existing.path())
            .args(["restore", "--from"])
            .arg(&backup_file)));
        for dir in [fresh.path(), existing.path()] {
            let (integrity, emails) = integrity_and_emails(&dir.join("enroll.db"));
            assert_eq!(integrity, "ok");
            let missing: Vec<&String> = before.iter().filter(|e| !emails.contains(e)).collect();
            assert!(
                missing.is_empty(),
                "lost committed invitations: {missing:?}"
            );
            // Whole batches only: each request's invitations are one transaction.
            assert_eq!(emails.len() % 10, 0, "{}", emails.len());
        }
        // The restored database serves: an app started on it lists a restored user.
        let restored = spawn_app_with(AppOptions {
            data: Some(std::sync::Arc::new(TestData {
                dir: existing,
                database: None,
            })),
            seed_accounts: false,
            ..AppOptions::default()
        })
        .await;
        restored.login_admin().await;
        let page = restored.get(&format!("/users?q={}", before[0])).await;
        assert!(page.text().contains(&before[0]), "{}", page.text());
    })
    .await;
}

/// The database file's bytes, to show that a refused restore changed nothing.
fn bytes_of(database: &Path) -> Vec<u8> {
    std::fs::read(database).unwrap()
}

#[test]
fn restore_refuses_a_damaged_or_foreign_file_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    ok(run(enroll(dir.path()).arg("migrate")));
    ok(run(enroll(dir.path())
        .args([
            "admin",
            "add",
            "--email",
            "ops@example.com",
            "--role",
            "administrator",
        ])
        .env("ENROLL_ADMIN_PASSWORD", "an operator passphrase")));
    let database = dir.path().join("enroll.db");
    let backup = dir.path().join("good.db");
    ok(run(enroll(dir.path())
        .args(["backup", "--to"])
        .arg(&backup)));
    let before = bytes_of(&database);

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a database at all").unwrap();
    // A backup with a stretch of its pages overwritten.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&backup).unwrap();
    let len = bytes.len();
    for byte in &mut bytes[len / 3..len / 3 + 8192] {
        *byte = 0x5a;
    }
    std::fs::write(&damaged, bytes).unwrap();
    // A SQLite database of something else.
    let foreign = dir.path().join("foreign.db");
    let mut conn = diesel::SqliteConnection::establish(foreign.to_str().unwrap()).unwrap();
    diesel::sql_query("CREATE TABLE users (id TEXT PRIMARY KEY)")
        .execute(&mut conn)
        .unwrap();
    drop(conn);

    for (file, reason) in [
        (&garbage, "is not a SQLite database"),
        (&damaged, "cannot be restored"),
        (&foreign, "not an Enroll database"),
        (&dir.path().join("missing.db"), "there is no file"),
    ] {
        let said = refused(run(enroll(dir.path())
            .args(["restore", "--from"])
            .arg(file)));
        assert!(said.contains(reason), "{file:?}: {said}");
        assert!(said.contains("nothing was changed"), "{file:?}: {said}");
        assert!(
            bytes_of(&database) == before,
            "{file:?} changed the database"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The good one still restores.
    ok(run(enroll(dir.path())
        .args(["restore", "--from"])
        .arg(&backup)));
}

#[test]
fn backup_of_postgresql_points_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["backup --to x.db", "restore --from x.db"] {
        let said = refused(run(enroll(dir.path())
            .args(command.split(' '))
            .env("ENROLL_DATABASE_URL", "postgres://enroll@db.invalid/enroll")));
        assert!(
            said.contains("pg_dump") || said.contains("pg_restore"),
            "{said}"
        );
        assert!(said.contains("ENROLL_SESSION_KEY"), "{said}");
    }
}

/// `enroll` for the test's engine, its database migrated.
fn migrated(data: &TestData) -> impl Fn() -> Command + '_ {
    let command = move || {
        let mut command = enroll(data.path());
        if let Some(database) = &data.database {
            command.env("ENROLL_DATABASE_URL", &database.url);
        }
        command
    };
    ok(run(command().arg("migrate")));
    command
}

on_both_engines! {
    async fn doctor_passes_with_a_reachable_mail_server_and_a_fresh_database() {
        let data = TestData::new(current_engine());
        let smtp = TestSmtp::start();
        let enroll = migrated(&data);
        let said = ok(run(enroll().arg("doctor").env("ENROLL_SMTP_URL", smtp.url())));
        assert!(said.contains("ok    database"), "{said}");
        assert!(said.contains("ok    mail server"), "{said}");
        assert!(said.contains("Every check passed"), "{said}");
        let clock = if current_engine() == Engine::Postgres { "ok    clock" } else { "skip  clock" };
        assert!(said.contains(clock), "{said}");
    }
}

on_both_engines! {
    async fn doctor_fails_readably_on_a_closed_mail_port() {
        let data = TestData::new(current_engine());
        let enroll = migrated(&data);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let output = run(enroll()
            .arg("doctor")
            .env("ENROLL_SMTP_URL", format!("smtp://127.0.0.1:{port}")));
        assert_eq!(output.status.code(), Some(1));
        let said = said(&output);
        assert!(
            said.contains(&format!("FAIL  mail server: cannot use the mail server at 127.0.0.1:{port}")),
            "{said}"
        );
        assert!(said.contains("Connection refused"), "{said}");
        assert!(said.contains("1 check(s) failed: mail server"), "{said}");
        assert!(said.contains("ok    database"), "{said}");
    }
}

#[test]
fn doctor_prints_the_dkim_record_to_publish_and_fails_without_a_database() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.key");
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    std::fs::write(&key, base64::engine::general_purpose::STANDARD.encode(seed)).unwrap();
    let output = run(enroll(dir.path())
        .arg("doctor")
        .env("ENROLL_DKIM_DOMAIN", "example.invalid")
        .env("ENROLL_DKIM_SELECTOR", "enroll")
        .env("ENROLL_DKIM_KEY_FILE", &key));
    let said = refused(output);
    assert!(
        said.contains("enroll._domainkey.example.invalid. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{said}"
    );
    // A reserved domain is not looked up: the test sends no DNS query.
    assert!(
        said.contains("warn  DKIM: example.invalid is a reserved name"),
        "{said}"
    );
    // No database yet: the doctor says how to make one, and does not create it.
    assert!(said.contains("there is no database"), "{said}");
    assert!(!dir.path().join("enroll.db").exists());
}
