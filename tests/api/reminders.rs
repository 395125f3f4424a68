//! Reminders, and what a copy of the database shows of the links waiting in the outbox:
//! nothing usable.

use chrono::TimeDelta;
use diesel::prelude::*;
use enroll::db::schema::outbound_emails;

use crate::delivery::*;
use crate::smtp_faults::{Fault, FaultySmtp};
use crate::support::*;

on_both_engines! {
    async fn a_reminder_goes_before_expiry_to_those_who_have_not_joined() {
        let app = spawn_app().await;
        app.set_up_invitations_with(&[("reminder_days", "2")]).await;
        app.invite(&[("Ada", "L", "ada@example.com"), ("Alan", "T", "alan@example.com"), ("Grace", "H", "grace@example.com")]).await;
        let alan_link = app.delivered_to("alan@example.com", 1).await.enrollment_path();
        let invitee = browser();
        let token = app.get_with(&invitee, &alan_link).await.csrf_token();
        app.post_with(&invitee, &alan_link, &fields(&[("csrf_token", &token)])).await;
        let grace = app.user_id("grace@example.com");
        app.act_on_users("/users/remove", &[grace], &[("confirm", "yes")]).await;
        assert_delivered_exactly(&app, 3).await;

        // Four days on, nothing yet; after day five, Ada's reminder.
        app.clock.advance(TimeDelta::days(4));
        assert_delivered_exactly(&app, 3).await;
        app.clock.advance(TimeDelta::days(1) + TimeDelta::minutes(1));
        let reminder = app.delivered_to("ada@example.com", 2).await;
        assert!(reminder.subject().starts_with("Reminder: your invitation to join Example Corp"));
        assert!(reminder.text().contains("in 2 days"), "{}", reminder.text());
        let first = app.smtp.to("ada@example.com")[0].enrollment_path();
        assert_eq!(reminder.enrollment_path(), first, "the reminder carries the same link");
        assert_eq!(app.get_with(&browser(), &first).await.status, 200);
        assert_delivered_exactly(&app, 4).await;
        assert_eq!(app.smtp.to("alan@example.com").len(), 1, "joined: no reminder");

        app.login_admin().await;
        let history = app.get(&format!("/users/{}", app.user_id("ada@example.com"))).await;
        assert!(history.text().contains("Reminder accepted by the mail server"), "{}", history.text());
    }
}

/// Every text an outbox row holds, one string per row.
fn outbox_rows(app: &TestApp) -> Vec<String> {
    type Texts = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Texts> = outbound_emails::table
        .select((
            outbound_emails::recipient,
            outbound_emails::subject,
            outbound_emails::body_text,
            outbound_emails::body_html,
            outbound_emails::last_error,
        ))
        .load(&mut *app.conn())
        .unwrap();
    rows.into_iter()
        .map(|(a, b, c, d, e)| format!("{a} {b} {c:?} {d:?} {e:?}"))
        .collect()
}

on_both_engines! {
    async fn no_usable_link_can_be_read_from_the_database_while_emails_wait() {
        let app = spawn_app().await;
        app.set_up_invitations_with(&[("reminder_days", "2")]).await;
        app.invite(&[("Ada", "L", "ada@example.com")]).await;
        // Queued: the invitation, and the reminder due in five days.
        let queued = outbox_rows(&app);
        assert_eq!(queued.len(), 2);
        for row in &queued {
            assert!(!row.contains("/enroll/"), "a queued row holds a link: {row}");
            // Phrases with a space: sealed text (base64) can hold "Join" by chance, never these.
            assert!(!row.contains("Hello Ada") && !row.contains("Join Example Corp"), "a queued body is readable: {row}");
        }
        let bodies: Vec<(Option<String>, Option<String>)> = outbound_emails::table
            .select((outbound_emails::body_text, outbound_emails::body_html))
            .load(&mut *app.conn())
            .unwrap();
        for body in bodies.into_iter().flat_map(|(text, html)| [text, html]).flatten() {
            let sealed = body.strip_prefix("sealed-v1:").unwrap_or_else(|| panic!("a queued body is not sealed: {body}"));
            let base64 = |b: u8| b.is_ascii_alphanumeric() || b"+/=".contains(&b);
            assert!(!sealed.is_empty() && sealed.bytes().all(base64), "a queued body is readable: {body}");
        }
        let link = app.delivered_to("ada@example.com", 1).await.enrollment_path();
        let token = link.rsplit('/').next().unwrap().to_owned();
        for row in outbox_rows(&app) {
            assert!(!row.contains(&token), "the waiting reminder holds the token: {row}");
        }
        // Nor anywhere in the database's files, freed pages and journal included.
        for file in ["enroll.db", "enroll.db-wal"] {
            if let Ok(bytes) = std::fs::read(app.data_dir.join(file)) {
                assert!(!String::from_utf8_lossy(&bytes).contains(&token), "{file} holds the token");
            }
        }
        // The worker still opens the reminder when it is due.
        app.clock.advance(TimeDelta::days(5) + TimeDelta::minutes(1));
        let reminder = app.delivered_to("ada@example.com", 2).await;
        assert!(reminder.subject().starts_with("Reminder:"));
        assert_eq!(reminder.enrollment_path(), link);
        assert_eq!(app.get_with(&browser(), &link).await.status, 200);
    }
}

on_both_engines! {
    async fn an_invitation_refused_for_good_takes_its_reminder_with_it() {
        let app = spawn_app().await;
        app.smtp.refuse_recipients_containing("ada");
        app.set_up_invitations_with(&[("reminder_days", "2")]).await;
        app.invite(&[("Ada", "L", "ada@example.com")]).await;
        app.deliver_due_emails().await;
        app.assert_status("ada@example.com", "Delivery failed").await;
        let kinds: Vec<(String, String)> = outbound_emails::table
            .order(outbound_emails::kind)
            .select((outbound_emails::kind, outbound_emails::status))
            .load(&mut *app.conn())
            .unwrap();
        assert_eq!(
            kinds,
            [("invitation".to_owned(), "failed".to_owned()), ("reminder".to_owned(), "cancelled".to_owned())]
        );
        app.smtp.clear_refusals();
        app.clock.advance(TimeDelta::days(6));
        assert_eq!(app.deliver_due_emails().await, 0, "no reminder of an invitation that never arrived");
        assert!(app.smtp.to("ada@example.com").is_empty());
    }
}

on_both_engines! {
    async fn a_mail_servers_reply_loses_its_control_characters_before_pages_and_logs() {
        let proxy = FaultySmtp::start(Fault::Hostile);
        let app = spawn_app_with(AppOptions { smtp_url: Some(proxy.url()), ..AppOptions::default() }).await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "L", "ada@example.com")]).await;
        app.deliver_due_emails().await;
        app.assert_status("ada@example.com", "Delivery failed").await;
        let reasons: Vec<Option<String>> = outbound_emails::table.select(outbound_emails::last_error).load(&mut *app.conn()).unwrap();
        let reason = reasons[0].clone().unwrap();
        assert!(reason.contains("Go away") && reason.contains("INFO enroll: admin signed in"), "{reason:?}");
        assert!(!reason.chars().any(char::is_control), "{reason:?}");
        for path in ["/users".to_owned(), format!("/users/{}", app.user_id("ada@example.com"))] {
            let page = app.get(&path).await;
            assert!(page.text().contains("Go away"), "{path}: {}", page.text());
            assert!(!page.body.contains(['\u{1b}', '\u{7}', '\r']), "{path} shows control characters");
        }
    }
}
