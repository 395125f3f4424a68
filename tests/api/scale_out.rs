//! Several instances on one PostgreSQL database: shared sessions, shared work, every
//! email sent once, and an instance killed mid-batch losing nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use enroll::accounts::{self, NewPassword, Role};
use enroll::clock::Clock;
use enroll::db::schema::{invitations, outbound_emails, users};
use enroll::db::{DatabaseUrl, Db};
use enroll::users::EmailAddress;
use secrecy::SecretString;

use crate::instances::Instance;
use crate::support::*;

pub(crate) fn connect(database: &PostgresDatabase) -> Db {
    Db::connect(&DatabaseUrl::parse(&database.url).unwrap(), 2).unwrap()
}

pub(crate) fn add_administrator(db: &Db) {
    let email = EmailAddress::parse(ADMIN_EMAIL).unwrap();
    let hash = NewPassword::parse(&SecretString::from(ADMIN_PASSWORD), ADMIN_EMAIL)
        .unwrap()
        .hash()
        .unwrap();
    accounts::create(
        &mut db.get().unwrap(),
        Clock::system().now(),
        &email,
        &hash,
        Role::Administrator,
    )
    .unwrap();
}

/// A person at a browser, using whichever instance the load balancer picked.
pub(crate) struct Person {
    client: reqwest::Client,
}

impl Person {
    pub(crate) fn new() -> Self {
        Self { client: browser() }
    }

    pub(crate) async fn get(&self, instance: &Instance, path: &str) -> Page {
        Page::read(self.client.get(instance.url(path)).send().await.unwrap()).await
    }

    pub(crate) async fn post(&self, instance: &Instance, path: &str, form: &Fields) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let response = self
            .client
            .post(instance.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Page::read(response).await
    }

    pub(crate) async fn submit(
        &self,
        instance: &Instance,
        form_page: &str,
        action: &str,
        form: &Fields,
    ) -> Page {
        let token = self.get(instance, form_page).await.csrf_token();
        let mut form = form.clone();
        form.push(("csrf_token".into(), token));
        self.post(instance, action, &form).await
    }

    pub(crate) async fn sign_in_and_set_up(&self, instance: &Instance) {
        let form = fields(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)]);
        self.submit(instance, "/login", "/login", &form)
            .await
            .assert_redirect_to("/users");
        let page = self
            .submit(
                instance,
                "/settings/invitations",
                "/settings/invitations",
                &TestApp::settings_fields(),
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.text());
    }

    pub(crate) async fn invite(&self, instance: &Instance, emails: &[String]) {
        let mut form = Fields::new();
        for (n, email) in emails.iter().enumerate() {
            form.push(("first_name".into(), format!("Person{n}")));
            form.push(("last_name".into(), "Example".into()));
            form.push(("email".into(), email.clone()));
        }
        form.push(("action".into(), "send".into()));
        let page = self
            .submit(instance, "/users/invite", "/users/invite", &form)
            .await;
        page.assert_redirect_to("/users");
    }

    async fn on_selected(
        &self,
        instance: &Instance,
        action: &str,
        ids: &[String],
        extra: &[(&str, &str)],
    ) -> Page {
        let mut form: Fields = ids
            .iter()
            .map(|id| ("user_id".to_owned(), id.clone()))
            .collect();
        form.extend(fields(extra));
        self.submit(instance, "/users", action, &form).await
    }
}

/// Two instances on one fresh PostgreSQL database, mailing one SMTP server. Both start
/// at once: one applies the migrations, the other waits for it.
pub(crate) async fn two_instances() -> (PostgresDatabase, TestSmtp, Instance, Instance) {
    let database = PostgresDatabase::create();
    let smtp = TestSmtp::start();
    let smtp_url = smtp.url();
    let (a, b) = tokio::join!(
        Instance::start(&database.url, &smtp_url),
        Instance::start(&database.url, &smtp_url)
    );
    (database, smtp, a, b)
}

fn user_ids(db: &Db, emails: &[String]) -> Vec<String> {
    let keys: Vec<String> = emails.iter().map(|e| e.to_ascii_lowercase()).collect();
    users::table
        .filter(users::email_key.eq_any(keys))
        .select(users::id)
        .load(&mut *db.get().unwrap())
        .unwrap()
}

pub(crate) fn per_recipient(smtp: &TestSmtp) -> HashMap<String, Vec<ReceivedEmail>> {
    let mut map: HashMap<String, Vec<ReceivedEmail>> = HashMap::new();
    for email in smtp.received() {
        for to in &email.to {
            map.entry(to.to_ascii_lowercase())
                .or_default()
                .push(email.clone());
        }
    }
    map
}

#[tokio::test]
#[cfg_attr(
    not(enroll_test_postgres),
    ignore = "needs PostgreSQL: set ENROLL_TEST_POSTGRES_URL"
)]
async fn two_instances_share_sessions_and_work_and_send_each_email_once() {
    require_postgres();
    let (database, smtp, a, b) = two_instances().await;
    let db = connect(&database);
    add_administrator(&db);

    let admin = Person::new();
    admin.sign_in_and_set_up(&a).await;
    // The session made on A works on B.
    let on_b = admin.get(&b, "/users").await;
    assert_eq!(on_b.status, 200, "a session from A is valid on B");

    let everyone: Vec<String> = (0..200)
        .map(|n| format!("user{n:03}@example.com"))
        .collect();
    for batch in everyone.chunks(50) {
        admin.invite(&a, batch).await;
    }
    smtp.wait_for(200).await;

    let resent = &everyone[..50];
    let page = admin
        .on_selected(&b, "/users/resend", &user_ids(&db, resent), &[])
        .await;
    page.assert_redirect_to("/users");
    smtp.wait_for(250).await;

    let removed = &everyone[50..70];
    let page = admin
        .on_selected(
            &a,
            "/users/remove",
            &user_ids(&db, removed),
            &[("confirm", "yes")],
        )
        .await;
    page.assert_redirect_to("/users");
    let removed_at = Instant::now();
    // Both workers keep polling; nothing more may go out.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let received = smtp.received();
    let by_recipient = per_recipient(&smtp);
    eprintln!(
        "scale-out: {} emails received for 200 invites and 50 resends through two instances",
        received.len()
    );
    assert_eq!(
        received.len(),
        250,
        "exactly one email per invite and per resend"
    );
    for email in &everyone {
        let expected = if resent.contains(email) { 2 } else { 1 };
        assert_eq!(by_recipient[email].len(), expected, "{email}");
    }
    for email in removed {
        assert!(
            by_recipient[email]
                .iter()
                .all(|m| m.received_at < removed_at),
            "{email} got email after removal"
        );
    }

    // Every latest link works through either instance; older and removed ones do not.
    let invitee = Person::new();
    for (n, email) in everyone.iter().enumerate() {
        let emails = &by_recipient[email];
        let latest = emails.last().unwrap().enrollment_path();
        let via = if n % 2 == 0 { &a } else { &b };
        let page = invitee.get(via, &latest).await;
        if removed.contains(email) {
            assert_eq!(page.status, 404, "{email}");
        } else {
            assert_eq!(page.status, 200, "{email}: {}", page.text());
            assert!(page.text().contains("Join organization"));
        }
        if emails.len() == 2 {
            let first = emails[0].enrollment_path();
            assert_eq!(invitee.get(&a, &first).await.status, 410, "{email}");
            assert_eq!(invitee.get(&b, &first).await.status, 410, "{email}");
        }
    }

    // Join through B; A sees it.
    for email in &everyone[100..110] {
        let path = by_recipient[email].last().unwrap().enrollment_path();
        let person = Person::new();
        let token = person.get(&b, &path).await.csrf_token();
        person
            .post(&b, &path, &fields(&[("csrf_token", &token)]))
            .await
            .assert_redirect_to(&path);
    }
    let enrolled = admin.get(&a, "/users?status=enrolled").await;
    assert!(
        enrolled.text().contains("Enrolled 10"),
        "{}",
        enrolled.text()
    );
}

#[tokio::test]
#[cfg_attr(
    not(enroll_test_postgres),
    ignore = "needs PostgreSQL: set ENROLL_TEST_POSTGRES_URL"
)]
async fn an_instance_killed_mid_batch_leaves_its_claimed_email_to_the_other() {
    require_postgres();
    let database = PostgresDatabase::create();
    let smtp = TestSmtp::start();
    smtp.delay_each_message(Duration::from_millis(100));
    let mut a = Instance::start(&database.url, &smtp.url()).await;
    let db = connect(&database);
    add_administrator(&db);
    let admin = Person::new();
    admin.sign_in_and_set_up(&a).await;
    let everyone: Vec<String> = (0..60)
        .map(|n| format!("batch{n:02}@example.com"))
        .collect();
    admin.invite(&a, &everyone).await;

    smtp.wait_for(5).await;
    let claimed: i64 = outbound_emails::table
        .filter(outbound_emails::status.eq("sending"))
        .count()
        .get_result(&mut *db.get().unwrap())
        .unwrap();
    assert!(claimed > 0, "A holds claimed emails when it dies");
    a.kill();
    let delivered_by_a = smtp.received().len();

    let b = Instance::start(&database.url, &smtp.url()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while per_recipient(&smtp).len() < everyone.len() {
        assert!(
            Instant::now() < deadline,
            "B did not deliver what A had claimed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let total = smtp.received().len();
    let duplicates = total - everyone.len();
    eprintln!(
        "kill test: {claimed} emails claimed by A when killed, {delivered_by_a} received before the kill, \
         {total} received in all for {} invitations: {duplicates} duplicate(s)",
        everyone.len()
    );
    // Only an email in the middle of its SMTP conversation can be sent twice: the
    // server had taken it but A died before recording that. One per mail thread at most.
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
async fn resend_and_remove_of_one_user_at_once_through_two_instances_stay_consistent() {
    require_postgres();
    run_on(Engine::Postgres, async {
        let first = spawn_app_with(AppOptions {
            background_mail: true,
            ..AppOptions::default()
        })
        .await;
        // Both instances' workers send to one mail server.
        let second = spawn_app_with_smtp(
            AppOptions {
                data: Some(first.data.clone()),
                seed_accounts: false,
                background_mail: true,
                ..AppOptions::default()
            },
            first.smtp.clone(),
        )
        .await;
        first.set_up_invitations().await;
        second.login_admin().await;
        let emails: Vec<String> = (0..10).map(|n| format!("race{n}@example.com")).collect();
        let people: Vec<(&str, &str, &str)> = emails
            .iter()
            .map(|e| ("Race", "Case", e.as_str()))
            .collect();
        first.invite(&people).await.assert_redirect_to("/users");
        first.smtp.wait_for(10).await;

        for email in &emails {
            let id = first.user_id(email);
            let (resend, remove) = tokio::join!(
                first.act_on_users("/users/resend", std::slice::from_ref(&id), &[]),
                second.act_on_users(
                    "/users/remove",
                    std::slice::from_ref(&id),
                    &[("confirm", "yes")]
                ),
            );
            assert_eq!(resend.status, 303, "resend: {}", resend.text());
            assert_eq!(remove.status, 303, "remove: {}", remove.text());
        }
        let mut conn = first.conn();
        let users_left: i64 = users::table.count().get_result(&mut *conn).unwrap();
        let live_tokens: i64 = invitations::table
            .filter(invitations::superseded_at.is_null())
            .count()
            .get_result(&mut *conn)
            .unwrap();
        let pending_email: i64 = outbound_emails::table
            .filter(outbound_emails::status.eq_any(["queued", "sending"]))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        assert_eq!((users_left, live_tokens, pending_email), (0, 0, 0));
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    not(enroll_test_postgres),
    ignore = "needs PostgreSQL: set ENROLL_TEST_POSTGRES_URL"
)]
async fn readiness_fails_while_another_instance_holds_the_migration_lock() {
    require_postgres();
    let database = PostgresDatabase::create();
    let smtp = TestSmtp::start();
    let mut lock = diesel::PgConnection::establish(&database.url).unwrap();
    diesel::sql_query(format!(
        "SELECT pg_advisory_lock({})",
        enroll::db::MIGRATION_LOCK_ID
    ))
    .execute(&mut lock)
    .unwrap();
    let instance = Instance::spawn(&database.url, &smtp.url());
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let live = client.get(instance.url("/livez")).send().await.unwrap();
        assert_eq!(live.status(), 200);
        let ready = client.get(instance.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        let page = client.get(instance.url("/login")).send().await.unwrap();
        assert_eq!(page.status(), 503, "the console waits for its database");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    diesel::sql_query(format!(
        "SELECT pg_advisory_unlock({})",
        enroll::db::MIGRATION_LOCK_ID
    ))
    .execute(&mut lock)
    .unwrap();
    instance.wait_until_ready().await;
    assert_eq!(
        client
            .get(instance.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
