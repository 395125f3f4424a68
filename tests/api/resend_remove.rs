//! Resend invitation and Remove user, on selected rows.

use crate::support::*;

on_both_engines! {
    async fn resend_sends_a_new_link_and_kills_the_old_one() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[
            ("Ada", "Lovelace", "ada@example.com"),
            ("Alan", "Turing", "alan@example.com"),
        ])
        .await;
        let old = app.delivered_to("ada@example.com", 1).await;
        let alan_link = app
            .delivered_to("alan@example.com", 1)
            .await
            .enrollment_path();

        // Alan joins; resending to him is skipped and said so.
        let invitee = browser();
        let token = app.get_with(&invitee, &alan_link).await.csrf_token();
        app.post_with(&invitee, &alan_link, &fields(&[("csrf_token", &token)]))
            .await
            .assert_redirect_to(&alan_link);

        let ids = vec![
            app.user_id("ada@example.com"),
            app.user_id("alan@example.com"),
        ];
        let page = app.act_on_users("/users/resend", &ids, &[]).await;
        page.assert_redirect_to("/users");
        let page = app.follow(page).await;
        let text = page.text();
        assert!(
            text.contains("Invitation resent to 1 user: Ada Lovelace."),
            "{text}"
        );
        assert!(
            text.contains("1 already enrolled, not resent: Alan Turing."),
            "{text}"
        );

        let new = app.delivered_to("ada@example.com", 2).await;
        assert_ne!(new.enrollment_path(), old.enrollment_path());
        let dead = app.get_with(&browser(), &old.enrollment_path()).await;
        assert_eq!(dead.status, 410);
        assert!(
            dead.text().contains("A newer invitation was sent"),
            "{}",
            dead.text()
        );
        let live = app.get_with(&browser(), &new.enrollment_path()).await;
        assert_eq!(live.status, 200);
        assert!(live.text().contains("Join organization"));
        assert_eq!(
            app.smtp.to("alan@example.com").len(),
            1,
            "enrolled users get nothing"
        );

        // A help-desk account may resend too.
        let helpdesk = browser();
        app.login_with(&helpdesk, HELPDESK_EMAIL, HELPDESK_PASSWORD)
            .await
            .assert_redirect_to("/users");
        let users = app.get_with(&helpdesk, "/users").await;
        let form = fields(&[("user_id", &ids[0]), ("csrf_token", &users.csrf_token())]);
        app.post_with(&helpdesk, "/users/resend", &form)
            .await
            .assert_redirect_to("/users");
        let third = app.delivered_to("ada@example.com", 3).await;
        assert_eq!(
            app.get_with(&browser(), &new.enrollment_path())
                .await
                .status,
            410
        );
        assert_eq!(
            app.get_with(&browser(), &third.enrollment_path())
                .await
                .status,
            200
        );
    }
}

on_both_engines! {
    async fn remove_asks_first_then_the_link_stops_working() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[
            ("Ada", "Lovelace", "ada@example.com"),
            ("Alan", "Turing", "alan@example.com"),
        ])
        .await;
        let link = app
            .delivered_to("ada@example.com", 1)
            .await
            .enrollment_path();
        let ada = app.user_id("ada@example.com");

        let confirm = app
            .act_on_users("/users/remove", std::slice::from_ref(&ada), &[])
            .await;
        assert_eq!(confirm.status, 200);
        let text = confirm.text();
        assert!(text.contains("Remove this user?"), "{text}");
        assert!(text.contains("Ada Lovelace"), "{text}");
        assert!(!text.contains("Alan Turing"));
        assert_eq!(app.count("users"), 2, "nothing removed before confirming");

        let form = fields(&[
            ("user_id", &ada),
            ("confirm", "yes"),
            ("return_to", "/users"),
            ("csrf_token", &confirm.csrf_token()),
        ]);
        let done = app.post_with(&app.client, "/users/remove", &form).await;
        done.assert_redirect_to("/users");
        let users = app.follow(done).await;
        assert!(
            users.text().contains("Removed 1 user: Ada Lovelace."),
            "{}",
            users.text()
        );
        assert!(!users.text().contains("ada@example.com"));
        assert_eq!(app.count("users"), 1);
        assert_eq!(app.count("invitations"), 1, "her invitation went with her");

        let page = app.get_with(&browser(), &link).await;
        assert_eq!(page.status, 404);
        assert!(page.text().contains("This invitation link is not valid"));
        let post = app
            .post_with(&browser(), &link, &fields(&[("csrf_token", "x")]))
            .await;
        assert_eq!(post.status, 403);
    }
}

on_both_engines! {
    async fn selecting_nobody_says_so() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        for action in ["/users/resend", "/users/remove"] {
            let page = app.act_on_users(action, &[], &[]).await;
            page.assert_redirect_to("/users");
            assert!(
                app.follow(page)
                    .await
                    .text()
                    .contains("Select at least one user")
            );
        }
    }
}

on_both_engines! {
    async fn help_desk_cannot_invite_remove_or_change_settings() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        let ada = app.user_id("ada@example.com");
        let helpdesk = browser();
        app.login_with(&helpdesk, HELPDESK_EMAIL, HELPDESK_PASSWORD)
            .await
            .assert_redirect_to("/users");
        let users = app.get_with(&helpdesk, "/users").await;
        assert!(users.text().contains("Resend invitation"));
        assert!(!users.text().contains("Remove user"));
        assert!(!users.text().contains("Invite user"));
        let token = users.csrf_token();
        for (path, form) in [
            (
                "/users/remove",
                fields(&[
                    ("user_id", &ada),
                    ("confirm", "yes"),
                    ("csrf_token", &token),
                ]),
            ),
            (
                "/users/invite",
                fields(&[
                    ("first_name", "E"),
                    ("last_name", "V"),
                    ("email", "eve@example.com"),
                    ("action", "send"),
                    ("csrf_token", &token),
                ]),
            ),
            ("/settings/invitations", {
                let mut f = TestApp::settings_fields();
                f.push(("csrf_token".into(), token.clone()));
                f
            }),
        ] {
            let page = app.post_with(&helpdesk, path, &form).await;
            assert_eq!(page.status, 403, "{path}");
        }
        for path in ["/users/invite", "/settings/invitations"] {
            assert_eq!(app.get_with(&helpdesk, path).await.status, 403, "{path}");
        }
        assert_eq!(app.count("users"), 1);
    }
}

on_both_engines! {
    async fn an_email_loaded_for_sending_is_not_sent_once_replaced_removed_or_joined() {
        use chrono::TimeDelta;
        use diesel::prelude::*;
        use enroll::audit::Actor;
        use enroll::db::schema::{invitations as invitation_rows, outbound_emails, users};
        use enroll::mail::MailKey;
        use enroll::mail::outbox::{self, ClaimedEmail, Outcome};
        use enroll::settings::InvitationSettings;
        use enroll::users::invitations::{self, Change, Removal};

        let app = spawn_app().await;
        app.set_up_invitations_with(&[("reminder_days", "2")]).await;
        app.invite(&[("Ada", "L", "ada@example.com"), ("Bob", "M", "bob@example.com"), ("Carl", "N", "carl@example.com")]).await;
        let (db, clock) = (app.db.clone(), app.clock.clone());
        // What happens to each invitee while their email is on its way out, as the
        // console does it: Ada's invitation is resent, Bob removed, Carl joins.
        let change = move |recipient: &str| {
            let mut conn = db.get().unwrap();
            let actor = Actor::anonymous(None);
            let change = Change { now: clock.now(), actor: &actor };
            let user: String = users::table.filter(users::email.eq(recipient)).select(users::id).first(&mut *conn).unwrap();
            match recipient {
                "ada@example.com" => {
                    let settings = InvitationSettings::load(&mut conn).unwrap().unwrap();
                    invitations::resend(&mut conn, &change, &settings, &MailKey::ephemeral(), &[user], 5).unwrap();
                }
                "bob@example.com" => {
                    invitations::remove(&mut conn, &change, Removal::Selected(vec![user])).unwrap();
                }
                _ => {
                    // As joining does: the user enrolled, the reminder cancelled.
                    diesel::update(users::table.find(&user)).set(users::enrolled_at.eq(clock.now())).execute(&mut *conn).unwrap();
                    let invitation: Vec<String> = invitation_rows::table.filter(invitation_rows::user_id.eq(&user)).select(invitation_rows::id).load(&mut *conn).unwrap();
                    outbox::cancel_unsent(&mut conn, &invitation, &["reminder"]).unwrap();
                }
            }
        };
        let (db, clock) = (app.db.clone(), app.clock.clone());
        let during = current_engine() == Engine::Sqlite;
        let sent = tokio::task::spawn_blocking(move || {
            let (claim, lease) = ("test-claim", TimeDelta::seconds(60));
            let by = outbox::Claim { token: claim, instance: "test-instance" };
            let ids = outbox::claim_due(&mut db.get().unwrap(), clock.now(), by, lease, 10).unwrap();
            assert_eq!(ids.len(), 3, "the three invitations, not their reminders");
            let mut sent = Vec::new();
            for id in &ids {
                // On PostgreSQL the email's rows stay locked until it is sent, so the
                // console's change waits: it comes first here. On SQLite nothing is held
                // while the message is prepared, which is when the change comes.
                let recipient: String = outbound_emails::table.find(id).select(outbound_emails::recipient).first(&mut *db.get().unwrap()).unwrap();
                if !during {
                    change(&recipient);
                }
                outbox::deliver_claimed(
                    &mut db.get().unwrap(),
                    id,
                    claim,
                    lease,
                    &clock,
                    |email: &ClaimedEmail| {
                        if during {
                            change(&email.recipient);
                        }
                        Ok::<_, Outcome>(())
                    },
                    |email, ()| {
                        sent.push(email.recipient.clone());
                        Outcome::Sent
                    },
                )
                .unwrap();
            }
            sent
        })
        .await
        .unwrap();
        assert_eq!(sent, Vec::<String>::new(), "sent after the invitation was replaced, removed or joined");
        let left: Vec<(String, String, String)> = outbound_emails::table
            .order((outbound_emails::recipient, outbound_emails::kind, outbound_emails::created_at))
            .select((outbound_emails::recipient, outbound_emails::kind, outbound_emails::status))
            .load(&mut *app.conn())
            .unwrap();
        let left: Vec<(&str, &str, &str)> = left.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
        assert_eq!(
            left,
            [
                ("ada@example.com", "invitation", "cancelled"),
                ("ada@example.com", "invitation", "queued"),
                ("ada@example.com", "reminder", "cancelled"),
                ("ada@example.com", "reminder", "queued"),
                ("carl@example.com", "invitation", "cancelled"),
                ("carl@example.com", "reminder", "cancelled"),
            ]
        );
    }
}
