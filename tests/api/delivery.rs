//! Invitations that arrive: delivery under mail-server faults, restarts, double
//! submission, resend limits, reminders, email quality, per-user history.
//!
//! The fault, restart and lease tests run the app's own background worker and wait for
//! it (with a deadline), since the worker is what they test; so do the header and DKIM
//! tests, so that the worker's own message building is what they check. The others send
//! with `deliver_due_emails` and read the inbox at once.

use std::time::Duration;

use chrono::TimeDelta;
use diesel::prelude::*;
use enroll::db::schema::{outbound_emails, users};

use crate::smtp_faults::{Fault, FaultySmtp};
use crate::support::*;

/// An app whose mail goes through the fault proxy, sent by its background worker.
pub(crate) async fn app_behind(
    proxy: &FaultySmtp,
    data: Option<std::sync::Arc<TestData>>,
    seed: bool,
) -> TestApp {
    spawn_app_with_smtp(
        AppOptions {
            smtp_url: Some(proxy.url()),
            data,
            seed_accounts: seed,
            tweak: Some(|config| config.smtp_timeout_seconds = 1),
            background_mail: true,
            ..AppOptions::default()
        },
        proxy.smtp.clone(),
    )
    .await
}

/// The most delivery attempts any queued email has had.
pub(crate) fn max_attempts(app: &TestApp) -> i32 {
    outbound_emails::table
        .select(diesel::dsl::max(outbound_emails::attempts))
        .first::<Option<i32>>(&mut *app.conn())
        .unwrap()
        .unwrap_or(0)
}

pub(crate) async fn wait_for_attempts(app: &TestApp, attempts: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while max_attempts(app) < attempts {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} attempts",
            max_attempts(app)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn last_errors(app: &TestApp) -> Vec<String> {
    outbound_emails::table
        .select(outbound_emails::last_error)
        .load::<Option<String>>(&mut *app.conn())
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

/// Waits for the background worker to deliver `n` emails and a moment longer than a
/// retry takes, then checks that exactly `n` came.
pub(crate) async fn assert_exactly(smtp: &TestSmtp, n: usize) {
    smtp.wait_for(n).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(smtp.received().len(), n, "exactly {n} emails");
}

/// Delivers what is due now, then checks that exactly `n` emails came in all.
pub(crate) async fn assert_delivered_exactly(app: &TestApp, n: usize) {
    app.deliver_due_emails().await;
    assert_eq!(app.smtp.received().len(), n, "exactly {n} emails");
}

on_both_engines! {
    async fn a_mail_server_down_for_a_while_gets_every_email_once_even_across_a_restart() {
        let proxy = FaultySmtp::start(Fault::Refuse);
        let first = app_behind(&proxy, None, true).await;
        first.set_up_invitations().await;
        first
            .invite(&[("Ada", "L", "ada@example.com"), ("Alan", "T", "alan@example.com"), ("Grace", "H", "grace@example.com")])
            .await
            .assert_redirect_to("/users");
        wait_for_attempts(&first, 2).await;
        assert_eq!(first.status_of("ada@example.com").await, "Sending");
        assert!(last_errors(&first).iter().any(|e| e.to_lowercase().contains("refused")), "{:?}", last_errors(&first));

        // The console restarts while the server is still down: nothing is lost.
        let data = first.data.clone();
        drop(first);
        let second = app_behind(&proxy, Some(data), false).await;
        second.login_admin().await;
        assert_eq!(second.status_of("grace@example.com").await, "Sending");
        proxy.set(Fault::None);
        assert_exactly(&proxy.smtp, 3).await;
        for email in ["ada@example.com", "alan@example.com", "grace@example.com"] {
            second.wait_for_status(email, "Pending").await;
        }
    }
}

on_both_engines! {
    async fn a_busy_server_answering_421_is_retried_until_it_takes_the_email() {
        let proxy = FaultySmtp::start(Fault::Busy);
        let app = app_behind(&proxy, None, true).await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com"), ("Alan", "T", "alan@example.com")]).await;
        wait_for_attempts(&app, 2).await;
        assert!(last_errors(&app).iter().any(|e| e.contains("421")), "{:?}", last_errors(&app));
        assert_eq!(app.status_of("ada@example.com").await, "Sending");
        proxy.set(Fault::None);
        assert_exactly(&proxy.smtp, 2).await;
        app.wait_for_status("alan@example.com", "Pending").await;
    }
}

on_both_engines! {
    async fn a_connection_cut_mid_message_is_retried_and_delivered_once() {
        let proxy = FaultySmtp::start(Fault::DropDuringData);
        let app = app_behind(&proxy, None, true).await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com"), ("Alan", "T", "alan@example.com")]).await;
        wait_for_attempts(&app, 2).await;
        assert!(proxy.connections() >= 2);
        assert!(proxy.smtp.received().is_empty(), "a cut message is not a delivered one");
        proxy.set(Fault::None);
        assert_exactly(&proxy.smtp, 2).await;
        app.wait_for_status("ada@example.com", "Pending").await;
    }
}

on_both_engines! {
    async fn a_stalled_server_times_out_and_the_email_goes_later() {
        let proxy = FaultySmtp::start(Fault::Stall);
        let app = app_behind(&proxy, None, true).await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com")]).await;
        wait_for_attempts(&app, 2).await;
        assert!(
            last_errors(&app).iter().any(|e| e.to_lowercase().contains("timed out") || e.to_lowercase().contains("timeout")),
            "{:?}",
            last_errors(&app)
        );
        assert_eq!(app.status_of("ada@example.com").await, "Sending");
        proxy.set(Fault::None);
        assert_exactly(&proxy.smtp, 1).await;
        app.wait_for_status("ada@example.com", "Pending").await;
    }
}

on_both_engines! {
    async fn a_refused_mailbox_is_delivery_failed_with_the_reason_and_can_be_resent() {
        let proxy = FaultySmtp::start(Fault::None);
        proxy.smtp.refuse_recipients_containing("ada");
        let app = app_behind(&proxy, None, true).await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com")]).await;
        app.wait_for_status("ada@example.com", "Delivery failed").await;
        let users = app.get("/users").await;
        assert!(users.text().contains("550"), "{}", users.text());
        assert!(users.text().contains("Resend invitation"));
        let history = app.get(&format!("/users/{}", app.user_id("ada@example.com"))).await;
        assert!(history.text().contains("could not be delivered"), "{}", history.text());
        assert!(history.text().contains("550"));

        proxy.smtp.clear_refusals();
        app.act_on_users("/users/resend", &[app.user_id("ada@example.com")], &[]).await;
        proxy.smtp.wait_for(1).await;
        app.wait_for_status("ada@example.com", "Pending").await;
    }
}

on_both_engines! {
    async fn after_the_retry_horizon_the_email_is_delivery_failed() {
        let proxy = FaultySmtp::start(Fault::Refuse);
        let app = app_behind(&proxy, None, true).await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com")]).await;
        wait_for_attempts(&app, 1).await;
        app.clock.advance(TimeDelta::hours(49));
        app.login_admin().await;
        app.wait_for_status("ada@example.com", "Delivery failed").await;
        assert!(app.get("/users").await.text().contains("gave up after"));
    }
}

on_both_engines! {
    async fn email_still_queued_for_a_superseded_or_removed_invitation_is_never_sent() {
        let proxy = FaultySmtp::start(Fault::Refuse);
        let app = app_behind(&proxy, None, true).await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com"), ("Bob", "R", "bob@example.com")]).await;
        wait_for_attempts(&app, 1).await;
        app.act_on_users("/users/resend", &[app.user_id("ada@example.com")], &[]).await;
        app.act_on_users("/users/remove", &[app.user_id("bob@example.com")], &[("confirm", "yes")])
            .await
            .assert_redirect_to("/users");
        proxy.set(Fault::None);
        assert_exactly(&proxy.smtp, 1).await;
        let ada = proxy.smtp.to("ada@example.com");
        assert_eq!(ada.len(), 1, "only the newest invitation goes out");
        assert_eq!(app.get_with(&browser(), &ada[0].enrollment_path()).await.status, 200);
        assert!(proxy.smtp.to("bob@example.com").is_empty());
    }
}

on_both_engines! {
    async fn pressing_send_invite_twice_invites_once() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let form_page = app.get("/users/invite").await;
        let key = form_page.input_value("input[name=submission_key]").expect("an idempotency key");
        let form = fields(&[
            ("first_name", "Ada"), ("last_name", "L"), ("email", "ada@example.com"),
            ("first_name", "Alan"), ("last_name", "T"), ("email", "alan@example.com"),
            ("action", "send"),
            ("submission_key", &key),
            ("csrf_token", &form_page.csrf_token()),
        ]);
        // Two at once (two clicks in flight), then the same form again (a reload).
        let (first, second) = tokio::join!(
            app.post_with(&app.client, "/users/invite", &form),
            app.post_with(&app.client, "/users/invite", &form)
        );
        first.assert_redirect_to("/users");
        second.assert_redirect_to("/users");
        let again = app.post_with(&app.client, "/users/invite", &form).await;
        again.assert_redirect_to("/users");
        assert!(app.follow(again).await.text().contains("already sent"));
        assert_eq!(app.count("users"), 2);
        assert_delivered_exactly(&app, 2).await;

        // "Add another user" keeps the key, so the form sent after it is the same form.
        let form_page = app.get("/users/invite").await;
        let key = form_page.input_value("input[name=submission_key]").unwrap();
        let added = app
            .post_with(
                &app.client,
                "/users/invite",
                &fields(&[("first_name", "Grace"), ("last_name", "H"), ("email", "grace@example.com"), ("action", "add_row"), ("submission_key", &key), ("csrf_token", &form_page.csrf_token())]),
            )
            .await;
        assert_eq!(added.input_value("input[name=submission_key]").as_deref(), Some(key.as_str()));
    }
}

on_both_engines! {
    async fn resends_are_limited_per_user_per_hour() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com"), ("Alan", "T", "alan@example.com")]).await;
        let ada = app.user_id("ada@example.com");
        let alan = app.user_id("alan@example.com");
        app.delivered_to("ada@example.com", 1).await;
        for n in 0..5 {
            let page = app.act_on_users("/users/resend", std::slice::from_ref(&ada), &[]).await;
            assert!(app.follow(page).await.text().contains("Invitation resent to 1 user"));
            // Sent before the next resend, which would otherwise cancel it unsent.
            app.delivered_to("ada@example.com", n + 2).await;
        }
        let page = app.act_on_users("/users/resend", &[ada.clone(), alan.clone()], &[]).await;
        let text = app.follow(page).await.text();
        assert!(text.contains("Invitation resent to 1 user: Alan T."), "{text}");
        assert!(text.contains("already resent 5 times in the last hour, not resent: Ada L. Try again after"), "{text}");
        assert_delivered_exactly(&app, 1 + 5 + 1 + 1).await;

        // An hour later (the session kept alive meanwhile) Ada can be resent again.
        app.clock.advance(TimeDelta::minutes(31));
        app.get("/users").await;
        app.clock.advance(TimeDelta::minutes(31));
        let page = app.act_on_users("/users/resend", std::slice::from_ref(&ada), &[]).await;
        assert!(app.follow(page).await.text().contains("Invitation resent to 1 user: Ada L."));
    }
}

on_both_engines! {
    async fn emails_name_the_organization_and_carry_proper_headers() {
        // Sent by the background worker: its message building is what is checked here
        // (enroll_flow checks the same headers on an email `deliver_due_emails` sent).
        let app = spawn_app_with(AppOptions { background_mail: true, ..AppOptions::default() }).await;
        app.set_up_invitations_with(&[("sender_name", "IT Service Desk")]).await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        let email = app.smtp.wait_for_nth_to("ada@example.com", 1).await;
        let from = email.header("From").unwrap();
        assert!(from.contains("IT Service Desk at Example Corp") && from.contains("<no-reply@example.com>"), "{from}");
        let message_id = email.header("Message-ID").unwrap();
        assert!(message_id.starts_with('<') && message_id.ends_with("@example.com>"), "{message_id}");
        assert!(email.header("Date").is_some());
        assert!(email.header("Content-Type").unwrap().starts_with("multipart/alternative"));
        let text = email.text();
        assert!(text.contains(&format!("{ADMIN_EMAIL} has invited you to join Example Corp")), "{text}");
        assert!(text.contains("expires on ") && text.contains(" UTC (in 7 days)"), "{text}");
        assert!(email.html().contains("Join Example Corp"));
    }
}

#[tokio::test]
async fn emails_are_dkim_signed_when_a_key_is_configured() {
    let app = spawn_app_with(AppOptions {
        tweak: Some(|config| {
            let key_file = config.data_dir.join("dkim.key");
            // A fixed Ed25519 test key (32 bytes, base64).
            std::fs::write(&key_file, "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap();
            config.dkim_domain = Some("example.com".into());
            config.dkim_selector = Some("enroll2026".into());
            config.dkim_key_file = Some(key_file);
        }),
        // The worker signs, with the key the app loaded at start.
        background_mail: true,
        ..AppOptions::default()
    })
    .await;
    app.set_up_invitations().await;
    app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
    let email = app.smtp.wait_for_nth_to("ada@example.com", 1).await;
    let signature = email.header("DKIM-Signature").expect("a DKIM signature");
    for part in [
        "d=example.com",
        "s=enroll2026",
        "a=ed25519-sha256",
        "bh=",
        "b=",
    ] {
        assert!(
            signature.replace(' ', "").contains(part),
            "{signature} lacks {part}"
        );
    }
}

on_both_engines! {
    async fn the_user_page_tells_the_whole_story_without_links() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        app.delivered_to("ada@example.com", 1).await;
        let ada = app.user_id("ada@example.com");
        app.act_on_users("/users/resend", std::slice::from_ref(&ada), &[]).await;
        let link = app.delivered_to("ada@example.com", 2).await.enrollment_path();
        let invitee = browser();
        let token = app.get_with(&invitee, &link).await.csrf_token();
        app.post_with(&invitee, &link, &fields(&[("csrf_token", &token)])).await;

        let desk = browser();
        app.login_with(&desk, HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        let page = app.get_with(&desk, &format!("/users/{ada}")).await;
        assert_eq!(page.status, 200);
        let text = page.text();
        let order = [
            format!("Invited by {ADMIN_EMAIL}"),
            "Invitation email queued".to_owned(),
            "Invitation email accepted by the mail server".to_owned(),
            format!("Invitation resent by {ADMIN_EMAIL}"),
            "Joined".to_owned(),
        ];
        let mut position = 0;
        for step in &order {
            let found = text[position..].find(step.as_str()).unwrap_or_else(|| panic!("{step} missing or out of order: {text}"));
            position += found + step.len();
        }
        assert!(!page.body.contains("/enroll/"), "no link on the history page");
        assert!(!page.body.contains(&link[8..]), "no token on the history page");
        assert!(!text.contains("audit log"), "help desk gets no audit link");
        assert_eq!(app.get_with(&desk, "/users/not-a-uuid").await.status, 404);
        assert_eq!(app.get_with(&desk, &format!("/users/{}", uuid::Uuid::new_v4())).await.status, 404);
    }
}

on_both_engines! {
    async fn expiring_soon_is_a_filter_and_long_expired_invitations_can_be_removed() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com")]).await;
        app.clock.advance(TimeDelta::days(3));
        app.login_admin().await;
        app.invite(&[("Alan", "T", "alan@example.com")]).await;
        app.clock.advance(TimeDelta::days(2));
        app.login_admin().await;
        let page = app.get("/users?status=expiring_soon").await;
        assert!(page.text().contains("ada@example.com"), "{}", page.text());
        assert!(!page.text().contains("alan@example.com"));
        assert!(page.text().contains("Expires within 3 days 1"), "{}", page.text());

        app.clock.advance(TimeDelta::days(34));
        app.login_admin().await;
        let confirm = app.get("/users/remove-expired?days=30").await;
        assert_eq!(confirm.status, 200);
        assert!(confirm.text().contains("1 user will be removed"), "{}", confirm.text());
        assert!(confirm.text().contains("ada@example.com") && !confirm.text().contains("alan@example.com"));
        assert_eq!(app.count("users"), 2, "the confirmation page removes nothing");
        let form = fields(&[("days", "30"), ("confirm", "yes"), ("csrf_token", &confirm.csrf_token())]);
        let done = app.post_with(&app.client, "/users/remove-expired", &form).await;
        done.assert_redirect_to("/users");
        assert!(app.follow(done).await.text().contains("Removed 1 user whose invitation expired more than 30 days ago"));
        let left: Vec<String> = users::table.select(users::email).load(&mut *app.conn()).unwrap();
        assert_eq!(left, vec!["alan@example.com"]);
        let bad = app.get("/users/remove-expired?days=-3").await;
        assert!(bad.field_error("days").is_some());
    }
}

on_both_engines! {
    async fn tens_of_thousands_of_expired_invitations_are_removed_at_once() {
        use enroll::audit::Actor;
        use enroll::mail::MailKey;
        use enroll::settings::InvitationSettings;
        use enroll::users::invitations::{self, Change};
        use enroll::users::{EmailAddress, NewInvitee, PersonName};
        // More users than SQLite takes bound values in one statement (32,766).
        const EXPIRED: usize = 33_000;
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let mut conn = app.conn();
        let settings = InvitationSettings::load(&mut conn).unwrap().unwrap();
        let actor = Actor::anonymous(None);
        let change = Change { now: app.clock.now(), actor: &actor };
        let people: Vec<NewInvitee> = (0..EXPIRED)
            .map(|n| NewInvitee {
                first_name: PersonName::parse("Test", "first name").unwrap(),
                last_name: PersonName::parse(&format!("Person {n}"), "last name").unwrap(),
                email: EmailAddress::parse(&format!("person.{n}@example.com")).unwrap(),
            })
            .collect();
        for batch in people.chunks(1000) {
            invitations::invite(&mut conn, &change, &settings, &MailKey::ephemeral(), batch, None).unwrap();
        }
        // Not the point here, and 33,000 emails would only keep the mail thread busy.
        diesel::update(outbound_emails::table).set(outbound_emails::status.eq("cancelled")).execute(&mut *conn).unwrap();
        drop(conn);
        app.clock.advance(TimeDelta::days(40));
        app.login_admin().await;
        app.invite(&[("Alan", "T", "alan@example.com")]).await;

        let confirm = app.get("/users/remove-expired?days=30").await;
        assert!(confirm.text().contains("33000 users will be removed"), "{}", confirm.text());
        let form = fields(&[("days", "30"), ("confirm", "yes"), ("csrf_token", &confirm.csrf_token())]);
        let done = app.post_with(&app.client, "/users/remove-expired", &form).await;
        done.assert_redirect_to("/users");
        assert!(app.follow(done).await.text().contains("Removed 33000 users"));
        let left: Vec<String> = users::table.select(users::email).load(&mut *app.conn()).unwrap();
        assert_eq!(left, vec!["alan@example.com"]);
        assert_eq!(app.count("invitations"), 1);
    }
}

on_both_engines! {
    async fn a_slow_mail_server_gets_each_email_once_even_past_the_batch_lease() {
        // One batch of five, each taking 1.2 s to be accepted: the batch outlives the
        // 3-second lease it was claimed under, and a second mail thread is polling.
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| {
                config.mail_workers = 2;
                config.mail_lease_seconds = 3;
                config.smtp_timeout_seconds = 2;
            }),
            background_mail: true,
            ..AppOptions::default()
        })
        .await;
        app.smtp.delay_each_message(Duration::from_millis(1200));
        app.set_up_invitations().await;
        let people: Vec<(String, String, String)> =
            (0..5).map(|n| (format!("Person{n}"), "Slow".to_owned(), format!("slow{n}@example.com"))).collect();
        app.invite(&people).await.assert_redirect_to("/users");
        for (_, _, email) in &people {
            app.wait_for_status(email, "Pending").await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut recipients: Vec<String> = app.smtp.received().into_iter().flat_map(|m| m.to).collect();
        recipients.sort();
        let expected: Vec<String> = people.iter().map(|(_, _, e)| (*e).to_owned()).collect();
        assert_eq!(recipients, expected, "each invitee gets exactly one email");
    }
}
