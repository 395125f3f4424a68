//! Instances that fail or change things while others run, with the product's own timings:
//! a killed instance's claimed email goes out through another well before its lease
//! ends, an account disabled through one instance is signed out on another at once, and
//! an access key revoked through one is refused by another once notified.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use enroll::accounts::{self, NewPassword, Role};
use enroll::clock::Clock;
use enroll::db::schema::outbound_emails;
use enroll::users::EmailAddress;
use secrecy::SecretString;
use serde_json::json;

use crate::a4b::A4b;
use crate::credentials::element_text;
use crate::instances::Instance;
use crate::scale_out::{Person, add_administrator, connect, per_recipient, two_instances};
use crate::support::*;

/// What an instance uses when nothing is configured: a claim's lease (120 s) and how
/// often an idle instance looks for work and for dead instances.
const PRODUCT_TIMINGS: [(&str, &str); 2] = [
    ("ENROLL_MAIL_LEASE_SECONDS", "120"),
    ("ENROLL_MAIL_POLL_MS", "5000"),
];

/// The goal: a dead instance's email is on its way through another within this time.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test]
#[cfg_attr(
    not(enroll_test_postgres),
    ignore = "needs PostgreSQL: set ENROLL_TEST_POSTGRES_URL"
)]
async fn a_killed_instances_claimed_email_goes_out_through_another_long_before_its_lease_ends() {
    require_postgres();
    let database = PostgresDatabase::create();
    let smtp = TestSmtp::start();
    // Slow enough that the instance holds claimed email when it dies.
    smtp.delay_each_message(Duration::from_millis(200));
    let mut a = Instance::start_with_env(&database.url, &smtp.url(), &PRODUCT_TIMINGS).await;
    let b = Instance::start_with_env(&database.url, &smtp.url(), &PRODUCT_TIMINGS).await;
    let db = connect(&database);
    add_administrator(&db);
    let admin = Person::new();
    admin.sign_in_and_set_up(&a).await;
    let everyone: Vec<String> = (0..60)
        .map(|n| format!("failover{n:02}@example.com"))
        .collect();
    admin.invite(&a, &everyone).await;
    smtp.wait_for(3).await;

    let a_id = a.instance_id();
    let claimed_by_a = |db: &enroll::db::Db| -> Vec<String> {
        outbound_emails::table
            .filter(outbound_emails::status.eq("sending"))
            .filter(outbound_emails::claimed_by.eq(&a_id))
            .select(outbound_emails::id)
            .load(&mut *db.get().unwrap())
            .unwrap()
    };
    let mut held = claimed_by_a(&db);
    let deadline = Instant::now() + Duration::from_secs(10);
    while held.is_empty() {
        assert!(Instant::now() < deadline, "A never held claimed email");
        tokio::time::sleep(Duration::from_millis(20)).await;
        held = claimed_by_a(&db);
    }
    a.kill();
    let killed_at = Instant::now();
    // What A held when it died (a claim it made since the query above counts too).
    let held: HashSet<String> = held.into_iter().chain(claimed_by_a(&db)).collect();

    loop {
        let sent: i64 = outbound_emails::table
            .filter(outbound_emails::id.eq_any(&held))
            .filter(outbound_emails::status.eq("sent"))
            .count()
            .get_result(&mut *db.get().unwrap())
            .unwrap();
        if sent == held.len() as i64 {
            break;
        }
        assert!(
            killed_at.elapsed() < FAILOVER_DEADLINE,
            "{sent} of the {} emails A held were sent by B within {FAILOVER_DEADLINE:?} (lease: 120 s)",
            held.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "failover: {} emails held by the killed instance sent by the other within {:.1?}",
        held.len(),
        killed_at.elapsed()
    );

    // Everything else goes out too, once each but for what A was handing to the server
    // when it died (the server had it; A could not record it): one per mail thread.
    let deadline = Instant::now() + Duration::from_secs(60);
    while per_recipient(&smtp).len() < everyone.len() {
        assert!(Instant::now() < deadline, "B did not send everything");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let duplicates = smtp.received().len() - everyone.len();
    assert!(duplicates <= 2, "{duplicates} duplicates");
    let unsent: i64 = outbound_emails::table
        .filter(outbound_emails::status.ne("sent"))
        .count()
        .get_result(&mut *db.get().unwrap())
        .unwrap();
    assert_eq!(unsent, 0, "everything is recorded as sent");
    drop(b);
}

#[tokio::test]
#[cfg_attr(
    not(enroll_test_postgres),
    ignore = "needs PostgreSQL: set ENROLL_TEST_POSTGRES_URL"
)]
async fn an_account_disabled_through_one_instance_is_signed_out_on_the_others_at_once() {
    require_postgres();
    let (database, _smtp, a, b) = two_instances().await;
    let db = connect(&database);
    add_administrator(&db);
    let hash = NewPassword::parse(&SecretString::from(HELPDESK_PASSWORD), HELPDESK_EMAIL)
        .unwrap()
        .hash()
        .unwrap();
    let desk_account = accounts::create(
        &mut db.get().unwrap(),
        Clock::system().now(),
        &EmailAddress::parse(HELPDESK_EMAIL).unwrap(),
        &hash,
        Role::Helpdesk,
    )
    .unwrap();
    let admin = Person::new();
    admin.sign_in_and_set_up(&a).await;
    let desk = Person::new();
    let form = fields(&[("email", HELPDESK_EMAIL), ("password", HELPDESK_PASSWORD)]);
    desk.submit(&b, "/login", "/login", &form)
        .await
        .assert_redirect_to("/users");
    // B has checked the session (and may remember it) several times.
    for _ in 0..3 {
        assert_eq!(desk.get(&b, "/users").await.status, 200);
    }

    let path = format!("/accounts/{desk_account}");
    admin
        .submit(
            &a,
            &path,
            &format!("{path}/disable"),
            &fields(&[("confirm", "yes")]),
        )
        .await
        .assert_redirect_to(&path);
    desk.get(&b, "/users")
        .await
        .assert_redirect_to("/login?next=%2Fusers");
    // And the other way round: a role change made through B applies on A.
    let admin_id = accounts::find_by_email(&mut db.get().unwrap(), ADMIN_EMAIL)
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(admin.get(&a, "/users").await.status, 200);
    let other = Person::new();
    add_second_administrator(&db);
    let form = fields(&[
        ("email", "second@example.com"),
        ("password", ADMIN_PASSWORD),
    ]);
    other
        .submit(&b, "/login", "/login", &form)
        .await
        .assert_redirect_to("/users");
    let admin_path = format!("/accounts/{admin_id}");
    other
        .submit(
            &b,
            &admin_path,
            &format!("{admin_path}/role"),
            &fields(&[("role", "helpdesk")]),
        )
        .await
        .assert_redirect_to(&admin_path);
    // A role change keeps the session but not the rights: A knows at once.
    assert_eq!(
        admin.get(&a, "/accounts").await.status,
        403,
        "demoted through B"
    );
}

#[tokio::test]
#[cfg_attr(
    not(enroll_test_postgres),
    ignore = "needs PostgreSQL: set ENROLL_TEST_POSTGRES_URL"
)]
async fn an_access_key_revoked_through_one_instance_is_refused_by_the_others_once_notified() {
    require_postgres();
    let (database, _smtp, a, b) = two_instances().await;
    add_administrator(&connect(&database));
    let admin = Person::new();
    admin.sign_in_and_set_up(&a).await;
    let made = admin
        .submit(
            &a,
            "/settings/api",
            "/settings/api",
            &fields(&[
                ("name", "nightly sync"),
                ("kind", "access-key"),
                ("role", "administrator"),
            ]),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let key_id = element_text(&made, "new-key-id").expect("the key id is shown");
    let secret = element_text(&made, "new-secret").expect("the secret is shown");
    let on_b = A4b::at(
        b.url("/a4b"),
        key_id.clone(),
        secret.clone(),
        "nightly sync",
    );
    let on_a = A4b::at(a.url("/a4b"), key_id, secret, "nightly sync");
    // Both instances have checked the key (and may remember it) several times.
    for _ in 0..3 {
        on_b.call("SearchUsers", json!({})).await.ok();
        on_a.call("SearchUsers", json!({})).await.ok();
    }

    let page = admin.get(&a, "/settings/api").await;
    let form = scraper::Selector::parse("form[action$='/revoke']").unwrap();
    let action = page
        .html()
        .select(&form)
        .next()
        .and_then(|f| f.value().attr("action"))
        .expect("a revoke button")
        .to_owned();
    let done = admin
        .submit(&a, "/settings/api", &action, &fields(&[("confirm", "yes")]))
        .await;
    assert!(done.status < 400, "{}", done.text());
    // A knows at once (it made the change). B knows when PostgreSQL's notification
    // reaches it, which can be a moment after A has answered: the key must be refused
    // there within a bound far above that, never served past it.
    on_a.call("SearchUsers", json!({}))
        .await
        .refused(403, "UnrecognizedClientException");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = on_b.call("SearchUsers", json!({})).await;
        if answer.status != 200 || Instant::now() > deadline {
            answer.refused(403, "UnrecognizedClientException");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn add_second_administrator(db: &enroll::db::Db) {
    let hash = NewPassword::parse(&SecretString::from(ADMIN_PASSWORD), "second@example.com")
        .unwrap()
        .hash()
        .unwrap();
    accounts::create(
        &mut db.get().unwrap(),
        Clock::system().now(),
        &EmailAddress::parse("second@example.com").unwrap(),
        &hash,
        Role::Administrator,
    )
    .unwrap();
}
