//! The command line: help, migrate, and adding accounts from a script.

use std::process::Command;

use crate::support::*;

#[test]
fn help_documents_every_option_with_its_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let help_of = |args: &[&str]| {
        let output = enroll(dir.path()).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let help = help_of(&["--help"]);
    let add_help = help_of(&["admin", "add", "--help"]);
    // Every variable the code reads, found in the source so that a new one cannot be
    // left out of the help.
    let mut variables = std::collections::BTreeSet::new();
    let mut sources = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(path) = sources.pop() {
        if path.is_dir() {
            sources.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices("\"ENROLL_") {
                let name: String = text[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                variables.insert(name);
            }
        }
    }
    assert!(variables.len() > 20, "{variables:?}");
    for variable in &variables {
        let documented = if variable.starts_with("ENROLL_ADMIN_") {
            &add_help
        } else {
            &help
        };
        assert!(
            documented.contains(variable.as_str()),
            "the help does not mention {variable}"
        );
    }
    assert!(
        help.contains("ENROLL_ADMIN_PASSWORD"),
        "the top-level help points to it too"
    );
    for command in ["serve", "migrate", "admin"] {
        assert!(help.contains(command), "--help does not list {command}");
    }
}

#[test]
fn migrate_then_admin_add_creates_an_account_that_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let output = enroll(dir.path()).arg("migrate").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("enroll.db").exists());

    let output = enroll(dir.path())
        .args([
            "admin",
            "add",
            "--email",
            "ops@example.com",
            "--role",
            "administrator",
        ])
        .env("ENROLL_ADMIN_PASSWORD", "an operator passphrase")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("Added Administrator account ops@example.com")
    );

    // Refused additions: (arguments after `admin add`, password, what stderr says, why).
    let refused: [(&[&str], &str, &str, &str); 3] = [
        (
            &["--email", "someone@example.com"],
            "an operator passphrase",
            "--role <ROLE>",
            "the role is never assumed",
        ),
        (
            &["--email", "OPS@example.com", "--role", "helpdesk"],
            "an operator passphrase",
            "already exists",
            "the address is taken, whatever its case",
        ),
        (
            &["--email", "weak@example.com", "--role", "helpdesk"],
            "short",
            "at least 12",
            "a weak password",
        ),
    ];
    for (args, password, says, why) in refused {
        let output = enroll(dir.path())
            .args(["admin", "add"])
            .args(args)
            .env("ENROLL_ADMIN_PASSWORD", password)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{why}: {args:?} was accepted");
        assert!(stderr.contains(says), "{why}: {args:?} said {stderr}");
    }
}

on_both_engines! {
    async fn an_account_added_from_the_command_line_signs_in() {
        let app = spawn_app_with(AppOptions {
            seed_accounts: false,
            ..AppOptions::default()
        })
        .await;
        let mut command = enroll(&app.data_dir);
        if let Some(database) = &app.data.database {
            command.env("ENROLL_DATABASE_URL", &database.url);
        }
        let output = command
            .args([
                "admin",
                "add",
                "--email",
                "ops@example.com",
                "--role",
                "helpdesk",
            ])
            .env("ENROLL_ADMIN_PASSWORD", "an operator passphrase")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let page = app
            .login_with(&app.client, "ops@example.com", "an operator passphrase")
            .await;
        page.assert_redirect_to("/users");
        let users = app.get("/users").await;
        assert!(users.text().contains("Help desk"));
        assert!(!users.text().contains("Invite user"));
    }
}

/// A configuration refused at start with a message that says what to fix.
struct RefusedConfiguration {
    command: &'static str,
    environment: &'static [(&'static str, &'static str)],
    /// What stderr says.
    says: &'static str,
    why: &'static str,
}

const REFUSED_CONFIGURATIONS: &[RefusedConfiguration] = &[
    RefusedConfiguration {
        command: "migrate",
        environment: &[("ENROLL_DATABASE_URL", "mysql://localhost/enroll")],
        says: "unsupported scheme",
        why: "a mistyped database URL is not turned into a file",
    },
    RefusedConfiguration {
        command: "serve",
        environment: &[
            ("ENROLL_LISTEN", "127.0.0.1:0"),
            (
                "ENROLL_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/enroll",
            ),
        ],
        says: "ENROLL_SESSION_KEY is required with PostgreSQL",
        why: "PostgreSQL without a session key",
    },
    RefusedConfiguration {
        command: "serve",
        environment: &[
            ("ENROLL_LISTEN", "127.0.0.1:0"),
            ("ENROLL_MAIL_WORKERS", "0"),
        ],
        says: "ENROLL_MAIL_WORKERS must be at least 1",
        why: "an instance that would never send email",
    },
];

#[test]
fn refused_configurations_say_what_to_fix() {
    for RefusedConfiguration {
        command,
        environment,
        says,
        why,
    } in REFUSED_CONFIGURATIONS
    {
        let dir = tempfile::tempdir().unwrap();
        let output = enroll(dir.path())
            .arg(command)
            .envs(environment.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{why}: {environment:?} was accepted"
        );
        assert!(
            stderr.contains(says),
            "{why}: {environment:?} said {stderr}"
        );
    }
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "lists the binary's libraries with ldd, on Linux"
)]
fn the_binary_needs_no_system_database_or_tls_library() {
    let output = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_enroll"))
        .output()
        .expect("ldd lists the binary's libraries (Debian package libc-bin)");
    let libraries = String::from_utf8_lossy(&output.stdout);
    for library in ["libpq", "libssl", "libcrypto", "libsqlite3"] {
        assert!(
            !libraries.contains(library),
            "the binary links {library}:\n{libraries}"
        );
    }
}

#[test]
fn help_and_debug_output_never_show_secrets() {
    const PASSWORD: &str = "db-pa55word-in-the-url";
    let url = format!("postgres://enroll:{PASSWORD}@db.internal:5432/enroll");
    let dir = tempfile::tempdir().unwrap();
    let output = enroll(dir.path())
        .env("ENROLL_DATABASE_URL", &url)
        .env(
            "ENROLL_SMTP_URL",
            "smtp://mailer:smtp-pa55word@smtp.internal:587",
        )
        .env(
            "ENROLL_SESSION_KEY",
            "session-secret-of-at-least-32-characters",
        )
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("ENROLL_DATABASE_URL"), "{help}");
    for secret in [PASSWORD, "smtp-pa55word", "session-secret"] {
        assert!(!help.contains(secret), "--help prints {secret}: {help}");
    }

    use clap::Parser as _;
    let cli = enroll::config::Cli::try_parse_from(["enroll", "--database-url", &url]).unwrap();
    assert!(cli.config.database_url().is_ok());
    let debug = format!("{:?}", cli.config);
    assert!(
        !debug.contains(PASSWORD),
        "Debug prints the password: {debug}"
    );
}
