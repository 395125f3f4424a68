//! What each subcommand does.

use std::io::IsTerminal;

use anyhow::Context;
use secrecy::SecretString;

use crate::accounts::{self, NewPassword, Role};
use crate::audit::{self, Action, Actor, NewAuditEvent};
use crate::clock::Clock;
use crate::config::{AdminCommand, Cli, Command, Config};
use crate::db::{self, Db, write_transaction};
use crate::startup::Application;
use crate::users::EmailAddress;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    crate::telemetry::init(&cli.config.log, cli.config.log_format);
    cli.config.validate()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config),
        Command::Migrate => migrate(&cli.config),
        Command::Admin {
            command: AdminCommand::Add { email, role },
        } => add_account(&cli.config, &email, role),
    }
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
    let hash = new_password.hash()?;
    let db = connect(config)?;
    let mut conn = db.get()?;
    db::run_migrations(&mut conn)?;
    let now = Clock::system().now();
    write_transaction(&mut conn, |conn| {
        let id = accounts::create(conn, now, &email, &hash, role).map_err(|e| match e {
            accounts::CreateAccountError::AlreadyExists => {
                anyhow::anyhow!("an account for {email} already exists")
            }
            other => other.into(),
        })?;
        accounts::setup_code::clear(conn)?;
        audit::record(
            conn,
            &[NewAuditEvent::new(
                now,
                &Actor::command_line(),
                Action::AccountAdd,
                Some(email.as_str()),
                format!("{} account {id}, from the command line", role.label()),
            )],
        )?;
        Ok::<_, anyhow::Error>(())
    })?;
    println!("Added {} account {email}.", role.label());
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
