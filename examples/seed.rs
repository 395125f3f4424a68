//! Seeds a database for the benchmark: an administrator, invitation settings, and
//! users invited through the same code the console uses, then set to a realistic mix
//! of statuses. Prints a cursor deep in the Users list.
//!
//! cargo run --release --example seed -- --database-url bench.db --users 100000

use std::time::Duration;

use anyhow::Context;
use chrono::TimeDelta;
use clap::Parser;
use diesel::prelude::*;
use enroll::accounts::{self, NewPassword, Role};
use enroll::audit::Actor;
use enroll::clock::Clock;
use enroll::db::schema::{invitations, outbound_emails, users};
use enroll::db::{DatabaseUrl, Db, QueryLimits, write_transaction};
use enroll::settings::InvitationSettings;
use enroll::users::invitations::{self as ops, Change};
use enroll::users::list::{Cursor, SortKey};
use enroll::users::{EmailAddress, NewInvitee, PersonName};
use secrecy::SecretString;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    #[arg(long, default_value = "bench@example.com")]
    admin_email: String,
    #[arg(long, default_value = "benchmark passphrase")]
    admin_password: String,
    /// Also this many help-desk accounts, desk<n>@example.com, with the same password
    /// (a help desk of many people searching at once)
    #[arg(long, default_value_t = 0)]
    desk_accounts: usize,
    /// Leave the planner's statistics as seeding left them (issue 15: the app must cope
    /// right after a bulk load, before anyone runs ANALYZE)
    #[arg(long)]
    no_analyze: bool,
}

const FIRST: [&str; 40] = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Dennis",
    "Ken",
    "Radia",
    "Tim",
    "Vint",
    "Hedy",
    "Katherine",
    "Dorothy",
    "Mary",
    "Linus",
    "Guido",
    "Bjarne",
    "James",
    "Anders",
    "Yukihiro",
    "Larry",
    "Rasmus",
    "Brendan",
    "Sophie",
    "Ruth",
    "Karen",
    "Leslie",
    "Niklaus",
    "Tony",
    "Robin",
    "Shafi",
    "Silvio",
    "Whitfield",
    "Martin",
    "Adi",
    "Ron",
];
const LAST: [&str; 50] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Hamilton",
    "Ritchie",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Cerf",
    "Lamarr",
    "Johnson",
    "Vaughan",
    "Jackson",
    "Torvalds",
    "van Rossum",
    "Stroustrup",
    "Gosling",
    "Hejlsberg",
    "Matsumoto",
    "Wall",
    "Lerdorf",
    "Eich",
    "Wilson",
    "Teitelman",
    "Spärck Jones",
    "Lamport",
    "Wirth",
    "Hoare",
    "Milner",
    "Goldwasser",
    "Micali",
    "Diffie",
    "Hellman",
    "Shamir",
    "Rivest",
    "Adleman",
    "Kay",
    "Engelbart",
    "Sutherland",
    "Backus",
    "Codd",
    "Gray",
    "Stonebraker",
    "Cook",
    "Karp",
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = DatabaseUrl::parse(&args.database_url)?;
    // A bulk load has no deadline: marking a million emails sent is one statement, which
    // can take longer than the server's 30-second write deadline.
    let no_deadline = QueryLimits::new(Duration::from_secs(2), Duration::ZERO, 1);
    let db = Db::connect_with(&url, 2, no_deadline)?;
    let mut conn = db.get()?;
    enroll::db::run_migrations(&mut conn)?;
    let clock = Clock::system();
    let now = clock.now();

    let email = EmailAddress::parse(&args.admin_email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = NewPassword::parse(
        &SecretString::from(args.admin_password.clone()),
        email.as_str(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .hash()?;
    let admin_id = accounts::create(&mut conn, now, &email, &hash, Role::Administrator)
        .context("the database must be empty")?;
    for n in 0..args.desk_accounts {
        let desk = EmailAddress::parse(&format!("desk{n}@example.com"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let hash = NewPassword::parse(
            &SecretString::from(args.admin_password.clone()),
            desk.as_str(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .hash()?;
        accounts::create(&mut conn, now, &desk, &hash, Role::Helpdesk)?;
    }
    let settings = InvitationSettings {
        organization_name: "Example Corp".into(),
        contact_email: "it-help@example.com".into(),
        sender_name: "Example Corp IT".into(),
        sender_address: "no-reply@example.com".into(),
        public_url: "https://enroll.example.com".into(),
        validity_days: 14,
        custom_message: "Welcome aboard!".into(),
        after_join_url: String::new(),
        reminder_days: None,
    };
    settings.save(&mut conn, now, Some(&admin_id))?;

    let actor = Actor::account(&admin_id, email.as_str(), None);
    let mail_key = enroll::mail::MailKey::ephemeral();
    let started = std::time::Instant::now();
    for batch in (0..args.users).collect::<Vec<_>>().chunks(1000) {
        let invitees: Vec<NewInvitee> = batch
            .iter()
            .map(|&n| {
                let (first, last) = (FIRST[n % FIRST.len()], LAST[(n / FIRST.len()) % LAST.len()]);
                let address = format!(
                    "{}.{}.{n}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase().replace([' ', 'ä'], "")
                );
                Ok(NewInvitee {
                    first_name: PersonName::parse(first, "first name")
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                    last_name: PersonName::parse(last, "last name")
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                    email: EmailAddress::parse(&address)
                        .map_err(|e| anyhow::anyhow!("{address}: {e}"))?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let change = Change { now, actor: &actor };
        // Every email is marked sent below: its sealed body is never opened.
        ops::invite(&mut conn, &change, &settings, &mail_key, &invitees, None)
            .map_err(|e| anyhow::anyhow!("invite failed: {e}"))?;
    }
    eprintln!("invited {} users in {:.1?}", args.users, started.elapsed());

    // Everything was delivered; then a mix: 20% enrolled, 10% expired, 4% delivery
    // failed, 3% still sending, the rest pending.
    write_transaction(&mut conn, |conn| {
        diesel::update(outbound_emails::table)
            .set((
                outbound_emails::status.eq("sent"),
                outbound_emails::sent_at.eq(now),
                outbound_emails::body_text.eq(None::<String>),
                outbound_emails::body_html.eq(None::<String>),
            ))
            .execute(conn)?;
        diesel::update(invitations::table)
            .set(invitations::sent_at.eq(now))
            .execute(conn)?;
        let ids: Vec<String> = users::table.order(users::id).select(users::id).load(conn)?;
        let pick = |modulo: &[usize]| -> Vec<String> {
            ids.iter()
                .enumerate()
                .filter(|(n, _)| modulo.contains(&(n % 100)))
                .map(|(_, id)| id.clone())
                .collect()
        };
        let enrolled = pick(&(0..20).collect::<Vec<_>>());
        let expired = pick(&(20..30).collect::<Vec<_>>());
        let failed = pick(&(30..34).collect::<Vec<_>>());
        let sending = pick(&(34..37).collect::<Vec<_>>());
        for chunk in enrolled.chunks(500) {
            diesel::update(users::table.filter(users::id.eq_any(chunk)))
                .set(users::enrolled_at.eq(now))
                .execute(conn)?;
            diesel::update(invitations::table.filter(invitations::user_id.eq_any(chunk)))
                .set(invitations::used_at.eq(now))
                .execute(conn)?;
        }
        for chunk in expired.chunks(500) {
            diesel::update(invitations::table.filter(invitations::user_id.eq_any(chunk)))
                .set(invitations::expires_at.eq(now - TimeDelta::days(1)))
                .execute(conn)?;
        }
        for chunk in failed.chunks(500) {
            diesel::update(invitations::table.filter(invitations::user_id.eq_any(chunk)))
                .set((
                    invitations::sent_at.eq(None::<chrono::NaiveDateTime>),
                    invitations::delivery_failed_at.eq(now),
                    invitations::delivery_error.eq("550 5.1.1 Mailbox unavailable"),
                ))
                .execute(conn)?;
        }
        for chunk in sending.chunks(500) {
            diesel::update(invitations::table.filter(invitations::user_id.eq_any(chunk)))
                .set(invitations::sent_at.eq(None::<chrono::NaiveDateTime>))
                .execute(conn)?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    if !args.no_analyze {
        enroll::db::optimize(&mut conn)?;
    }

    // A cursor halfway down the list sorted by name, for the deep-page benchmark.
    let (name_key, id): (String, String) = users::table
        .order((users::name_key, users::id))
        .offset(i64::try_from(args.users / 2)?)
        .select((users::name_key, users::id))
        .first(&mut conn)?;
    println!(
        "{}",
        Cursor {
            sort: SortKey::Name,
            value: name_key,
            id
        }
        .encode()
    );
    Ok(())
}
