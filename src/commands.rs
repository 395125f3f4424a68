//! What each subcommand does.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;

use crate::accounts::{NewPassword, Role};
use crate::clock::Clock;
use crate::config::{AdminCommand, Cli, Command, Config, TokenCommand, TokenKind};
use crate::db::{self, Db};
use crate::mail::MailQueue;
use crate::operations::{AccountAdded, Operations};
use crate::principal::Principal;
use crate::startup::Application;
use crate::values::EmailAddress;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    crate::telemetry::init(&cli.config.log, cli.config.log_format);
    cli.config.validate()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config),
        Command::Migrate => migrate(&cli.config),
        Command::Admin {
            command: AdminCommand::Add { email, role },
        } => add_account(&cli.config, &email, role),
        Command::Backup { to } => backup(&cli.config, &to),
        Command::Restore { from } => restore(&cli.config, &from),
        Command::Doctor => crate::doctor::run(&cli.config),
        Command::Token {
            command: TokenCommand::Add { kind, name, role },
        } => add_token(&cli.config, kind, &name, role),
    }
}

/// What to keep with a PostgreSQL dump, said wherever PostgreSQL backups come up.
const POSTGRES_BACKUP: &str = "keep ENROLL_SESSION_KEY (and any key that encrypts secrets) \
     with the dump, in a safe place of their own: without the session key every console \
     session ends when restored";

fn sqlite_path(config: &Config, command: &str, postgres_tool: &str) -> anyhow::Result<PathBuf> {
    let url = config.database_url()?;
    url.sqlite_path().ok_or_else(|| {
        anyhow::anyhow!(
            "`enroll {command}` copies SQLite databases only; this one is PostgreSQL ({}). \
             Use {postgres_tool}, and {POSTGRES_BACKUP}",
            url.redacted()
        )
    })
}

fn backup(config: &Config, to: &Path) -> anyhow::Result<()> {
    let database = sqlite_path(
        config,
        "backup",
        "pg_dump (pg_dump --format=custom --file=enroll.dump \"$ENROLL_DATABASE_URL\")",
    )?;
    let summary = crate::backup::backup_sqlite(&database, to)?;
    println!(
        "Backed up {} to {} ({} users, {} invitations); it passed SQLite's integrity check.",
        database.display(),
        to.display(),
        summary.users,
        summary.invitations
    );
    Ok(())
}

fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    let database = sqlite_path(
        config,
        "restore",
        "pg_restore (pg_restore --clean --dbname=\"$ENROLL_DATABASE_URL\" enroll.dump)",
    )?;
    let summary = crate::backup::restore_sqlite(from, &database)
        .map_err(|e| e.context(format!("nothing was changed in {}", database.display())))?;
    println!(
        "Restored {} from {} ({} users, {} invitations{}). Start the console again (or restart it).",
        database.display(),
        from.display(),
        summary.users,
        summary.invitations,
        match summary.migrations_applied {
            0 => String::new(),
            n => format!("; {n} migration(s) applied"),
        }
    );
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config).await?;
        app.run_until_stopped().await?;
        Ok(())
    })
}

fn connect(config: &Config) -> anyhow::Result<Db> {
    Db::connect(&config.database_url()?, 2)
}

fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = connect(config)?;
    let mut conn = db.get()?;
    let applied = db::run_migrations(&mut conn)?;
    println!("Database is up to date ({applied} migration(s) applied).");
    Ok(())
}

fn add_account(config: &Config, email: &str, role: Role) -> anyhow::Result<()> {
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let password = password_from_env_or_terminal()?;
    let new_password = NewPassword::parse(&password, email.as_str())
        .map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let db = connect(config)?;
    db::run_migrations(&mut *db.get()?)?;
    let ops = Operations::new(
        db,
        Clock::system(),
        MailQueue::unattended(),
        config.resend_limit_per_hour,
    );
    let added = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(ops.add_account(
            &Principal::command_line(),
            email.clone(),
            role,
            new_password,
        ))?;
    if let AccountAdded::AlreadyExists = added {
        anyhow::bail!("an account for {email} already exists");
    }
    println!("Added {} account {email}.", role.label());
    Ok(())
}

fn add_token(
    config: &Config,
    kind: TokenKind,
    name: &str,
    role: Option<Role>,
) -> anyhow::Result<()> {
    use crate::credentials::{CredentialKey, CredentialKind, CredentialName, IssuedSecret};
    use crate::operations::CredentialAdded;
    use secrecy::ExposeSecret;

    let name = CredentialName::parse(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let (kind, role) = match (kind, role) {
        (TokenKind::Scim, None | Some(Role::Administrator)) => {
            (CredentialKind::Scim, Role::Administrator)
        }
        (TokenKind::Scim, Some(_)) => {
            anyhow::bail!("--role: SCIM tokens act as administrators; leave --role out")
        }
        (TokenKind::AccessKey, Some(role)) => (CredentialKind::AccessKey, role),
        (TokenKind::AccessKey, None) => {
            anyhow::bail!("--role administrator|helpdesk is required for an access key")
        }
    };
    let url = config.database_url()?;
    // The same secret the server derives its keys from: an access key sealed under any
    // other could never be checked.
    let key = match kind {
        CredentialKind::AccessKey => {
            CredentialKey::derive(&crate::startup::session_secret(config, url.engine())?)
        }
        CredentialKind::Scim => CredentialKey::ephemeral(),
    };
    let db = connect(config)?;
    db::run_migrations(&mut *db.get()?)?;
    let ops = Operations::new(
        db,
        Clock::system(),
        MailQueue::unattended(),
        config.resend_limit_per_hour,
    )
    .with_credential_key(key);
    let added = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(ops.create_credential(&Principal::command_line(), kind, name.clone(), role))?;
    match added {
        CredentialAdded::NameTaken => anyhow::bail!(
            "a credential named \"{}\" already exists; revoke it first or pick another name",
            name.as_str()
        ),
        CredentialAdded::Added(_, IssuedSecret::Scim { token }) => {
            println!("token={}", token.expose_secret());
        }
        CredentialAdded::Added(_, IssuedSecret::AccessKey { key_id, secret }) => {
            println!("access_key_id={key_id}");
            println!("secret_access_key={}", secret.expose_secret());
        }
    }
    Ok(())
}

fn password_from_env_or_terminal() -> anyhow::Result<SecretString> {
    if let Ok(password) = std::env::var("ENROLL_ADMIN_PASSWORD") {
        return Ok(SecretString::from(password));
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "set ENROLL_ADMIN_PASSWORD, or run this on a terminal to type the password"
    );
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let second =
        rpassword::prompt_password("Password again: ").context("cannot read the password")?;
    anyhow::ensure!(first == second, "the two passwords are not the same");
    Ok(SecretString::from(first))
}
