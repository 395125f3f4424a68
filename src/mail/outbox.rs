//! The transactional outbox: emails are rows written in the same transaction as the
//! invitation they carry, then claimed, sent and settled by the worker.
//!
//! A row is due when `status` is `queued` or `sending` and `next_attempt_at` has passed.
//! Claiming sets `sending` and moves `next_attempt_at` to the end of a lease, so a row
//! claimed by an instance that died becomes due again once its lease runs out.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use super::compose::RenderedEmail;
use super::seal::MailKey;
use crate::db::schema::{invitations, outbound_emails, users};
use crate::db::{
    Db, DbConnection, Engine, engine_of, insert_rows, unflushed_write_transaction,
    write_transaction,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    Invitation,
    Reminder,
}

impl EmailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::Reminder => "reminder",
        }
    }
}

pub mod status {
    pub const QUEUED: &str = "queued";
    pub const SENDING: &str = "sending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbound_emails)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewOutboundEmail {
    id: String,
    invitation_id: Option<String>,
    kind: &'static str,
    sender_name: String,
    sender_address: String,
    reply_to: Option<String>,
    recipient: String,
    message_id: String,
    subject: String,
    /// Sealed with the [`MailKey`]: they hold the live link.
    body_text: Option<String>,
    body_html: Option<String>,
    status: &'static str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    created_at: NaiveDateTime,
}

impl NewOutboundEmail {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        invitation_id: &str,
        kind: EmailKind,
        sender_name: &str,
        sender_address: &str,
        reply_to: Option<&str>,
        recipient: &str,
        rendered: RenderedEmail,
        key: &MailKey,
        due_at: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Self {
        let id = uuid::Uuid::now_v7();
        let id_text = id.to_string();
        let domain = sender_address
            .rsplit_once('@')
            .map_or("enroll.invalid", |(_, domain)| domain);
        Self {
            body_text: Some(key.seal(&id_text, &rendered.text)),
            body_html: Some(key.seal(&id_text, &rendered.html)),
            id: id_text,
            invitation_id: Some(invitation_id.to_owned()),
            kind: kind.as_str(),
            sender_name: sender_name.to_owned(),
            sender_address: sender_address.to_owned(),
            reply_to: reply_to.map(str::to_owned),
            recipient: recipient.to_owned(),
            // Fixed when queued, so that a retried email keeps its identity.
            message_id: format!("<{}@{}>", id.simple(), domain),
            // The subject holds no link, and stays readable for the history page.
            subject: rendered.subject,
            status: status::QUEUED,
            attempts: 0,
            next_attempt_at: due_at,
            created_at: now,
        }
    }
}

pub fn enqueue(conn: &mut DbConnection, emails: &[NewOutboundEmail]) -> QueryResult<()> {
    insert_rows!(conn, outbound_emails::table, emails)?;
    Ok(())
}

/// Seals the bodies of emails queued by a version that stored them readable, so that an
/// upgrade leaves no link in the database; returns how many were sealed.
pub fn seal_plain_bodies(conn: &mut DbConnection, key: &MailKey) -> QueryResult<usize> {
    write_transaction(conn, |conn| {
        let plain: Vec<(String, Option<String>, Option<String>)> = outbound_emails::table
            .filter(outbound_emails::status.eq_any([status::QUEUED, status::SENDING]))
            .filter(outbound_emails::body_text.is_not_null())
            .filter(outbound_emails::body_text.not_like(format!("{}%", super::seal::PREFIX)))
            .select((
                outbound_emails::id,
                outbound_emails::body_text,
                outbound_emails::body_html,
            ))
            .load(conn)?;
        for (id, text, html) in &plain {
            let seal = |body: &Option<String>| body.as_deref().map(|b| key.seal(id, b));
            diesel::update(outbound_emails::table.find(id))
                .set((
                    outbound_emails::body_text.eq(seal(text)),
                    outbound_emails::body_html.eq(seal(html)),
                ))
                .execute(conn)?;
        }
        Ok(plain.len())
    })
}

/// Stops the not-yet-sent emails of these invitations (superseded, or their invitee
/// enrolled): nobody should receive a link that is already dead.
pub fn cancel_unsent(
    conn: &mut DbConnection,
    invitation_ids: &[String],
    kinds: &[&str],
) -> QueryResult<usize> {
    let mut cancelled = 0;
    for chunk in invitation_ids.chunks(crate::db::MAX_BOUND_PER_QUERY) {
        cancelled += diesel::update(
            outbound_emails::table
                .filter(outbound_emails::invitation_id.eq_any(chunk))
                .filter(outbound_emails::kind.eq_any(kinds))
                .filter(outbound_emails::status.eq_any([status::QUEUED, status::SENDING])),
        )
        .set((
            outbound_emails::status.eq(status::CANCELLED),
            outbound_emails::body_text.eq(None::<String>),
            outbound_emails::body_html.eq(None::<String>),
            outbound_emails::claim_token.eq(None::<String>),
        ))
        .execute(conn)?;
    }
    Ok(cancelled)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbound_emails)]
pub struct ClaimedEmail {
    pub id: String,
    pub invitation_id: Option<String>,
    pub kind: String,
    pub sender_name: String,
    pub sender_address: String,
    pub reply_to: Option<String>,
    pub recipient: String,
    pub message_id: String,
    pub subject: String,
    /// Sealed (see [`MailKey::open`]).
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub attempts: i32,
    pub created_at: NaiveDateTime,
}

/// Who claims: a token of this claim, and the instance making it (whose death, seen
/// through its lock, frees the claim before the lease runs out).
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub token: &'a str,
    pub instance: &'a str,
}

/// Claims up to `limit` due emails for `claim_token` until `now + lease`.
/// On PostgreSQL, rows another instance is claiming at this moment are skipped, not
/// waited for; on SQLite the write lock already makes claims take turns.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    claim: Claim<'_>,
    lease: TimeDelta,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let Claim {
        token: claim_token,
        instance,
    } = claim;
    write_transaction(conn, |conn| {
        // One query per status, each reading the (status, next_attempt_at) index in order
        // and stopping at `limit`: with both statuses in one query the database read and
        // sorted every due row for every claim (3,000 rows for a claim of 5). Other
        // instances skip what one has locked instead of waiting for it.
        let mut due: Vec<(NaiveDateTime, String)> = Vec::new();
        for state in [status::QUEUED, status::SENDING] {
            let rows: Vec<(NaiveDateTime, String)> = crate::db::locked!(
                conn,
                [for_update().skip_locked()],
                outbound_emails::table
                    .filter(outbound_emails::status.eq(state))
                    .filter(outbound_emails::next_attempt_at.le(now))
                    .order(outbound_emails::next_attempt_at)
                    .limit(limit)
                    .select((outbound_emails::next_attempt_at, outbound_emails::id)),
                load
            )?;
            due.extend(rows);
        }
        // The earliest due of both.
        due.sort();
        let ids: Vec<String> = due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|(_, id)| id)
            .collect();
        let claimed = (
            outbound_emails::status.eq(status::SENDING),
            outbound_emails::claim_token.eq(claim_token),
            outbound_emails::claimed_by.eq(instance),
            outbound_emails::next_attempt_at.eq(now + lease),
            outbound_emails::attempts.eq(outbound_emails::attempts + 1),
        );
        match engine_of(conn) {
            // One statement for the batch: on PostgreSQL an email's cost is mostly its
            // round trips to the database.
            Engine::Postgres => {
                diesel::update(outbound_emails::table.filter(outbound_emails::id.eq_any(&ids)))
                    .set(claimed)
                    .execute(conn)?;
            }
            // One row at a time, by its key: with `id IN (...)` SQLite scans the whole
            // table when its statistics were taken while the outbox was nearly empty.
            Engine::Sqlite => {
                for id in &ids {
                    diesel::update(outbound_emails::table.find(id))
                        .set(claimed)
                        .execute(conn)?;
                }
            }
        }
        Ok(ids)
    })
}

/// The claimed email, if it is still ours to send (not cancelled, removed or taken over).
/// On PostgreSQL the row stays locked until the caller's transaction ends, so a removal
/// or resend waits for the send to finish instead of racing it.
pub fn load_claimed(
    conn: &mut DbConnection,
    id: &str,
    claim_token: &str,
) -> QueryResult<Option<ClaimedEmail>> {
    // Every writer takes row locks in the order user, invitation, email (removal
    // cascades that way), so the invitation is locked before the email. Each lock is one
    // statement, and whether the invitation stands is read in the second: on PostgreSQL
    // an email's cost is mostly its round trips to the database. Whatever ends an
    // invitation (replacing, removing, joining) writes its row, which the first statement
    // locked, so the second one sees it.
    let _: Option<String> = crate::db::locked!(
        conn,
        for_update,
        invitations::table
            .filter(invitations::id.nullable().eq(invitation_of(id)))
            .select(invitations::id),
        first
    )
    .optional()?;
    let claimed: Option<(ClaimedEmail, bool)> = crate::db::locked!(
        conn,
        for_update,
        ours(id, claim_token).select((ClaimedEmail::as_select(), invitation_stands())),
        first
    )
    .optional()?;
    match claimed {
        Some((_, false)) => {
            cancel_claimed(conn, id, claim_token)?;
            Ok(None)
        }
        Some((email, true)) => Ok(Some(email)),
        None => Ok(None),
    }
}

/// Email `id`, if it is claimed with `claim_token` and not yet sent.
#[diesel::dsl::auto_type]
fn ours<'a>(id: &'a str, claim_token: &'a str) -> _ {
    let sending: &'static str = status::SENDING;
    outbound_emails::table
        .filter(outbound_emails::id.eq(id))
        .filter(outbound_emails::claim_token.eq(claim_token))
        .filter(outbound_emails::status.eq(sending))
}

/// The invitation email `id` carries, as a subquery.
#[diesel::dsl::auto_type]
fn invitation_of<'a>(id: &'a str) -> _ {
    outbound_emails::table
        .find(id)
        .select(outbound_emails::invitation_id)
        .single_value()
}

/// Whether the invitation an email carries still stands (or it carries none): neither
/// replaced nor removed, and its invitee not yet joined. Replacing and removing also
/// cancel or delete the email; this catches an email whose row they did not reach.
/// Lookups by key in subqueries, not a join: SQLite scanned both tables for the join
/// under statistics taken while they were nearly empty.
#[diesel::dsl::auto_type]
fn invitation_stands() -> _ {
    let invitee = invitations::table
        .filter(
            invitations::id
                .nullable()
                .eq(outbound_emails::invitation_id),
        )
        .filter(invitations::superseded_at.is_null())
        .select(invitations::user_id)
        .single_value();
    outbound_emails::invitation_id
        .is_null()
        .or(diesel::dsl::exists(
            users::table
                .filter(users::id.nullable().eq(invitee))
                .filter(users::enrolled_at.is_null()),
        ))
}

/// Whether a claimed email may still go out, read just before it is handed to the mail
/// server (see [`deliver_claimed`]): still ours, and its invitation still standing.
fn still_to_send(conn: &mut DbConnection, id: &str, claim_token: &str) -> QueryResult<bool> {
    let stands: Option<bool> = ours(id, claim_token)
        .select(invitation_stands())
        .first(conn)
        .optional()?;
    Ok(stands == Some(true))
}

/// Cancels an email that we hold the claim of, so that it does not come back when the
/// lease runs out.
fn cancel_claimed(conn: &mut DbConnection, id: &str, claim_token: &str) -> QueryResult<usize> {
    diesel::update(ours(id, claim_token))
        .set((
            outbound_emails::status.eq(status::CANCELLED),
            outbound_emails::body_text.eq(None::<String>),
            outbound_emails::body_html.eq(None::<String>),
            outbound_emails::claim_token.eq(None::<String>),
        ))
        .execute(conn)
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    RetryAt(NaiveDateTime, String),
    Failed(String),
}

impl Outcome {
    /// Whether the outcome must be recorded however long that takes. Sent and failed for
    /// good must: left unrecorded, the claim's lease runs out and the email is sent again.
    /// A retry need not: the lease running out has the same effect as recording it.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::RetryAt(..))
    }

    /// For logs: the reason a server gave may quote the recipient.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::RetryAt(..) => "retry",
            Self::Failed(_) => "failed for good",
        }
    }
}

/// A final outcome that the database would not take: the caller keeps trying to
/// record it, and must never send the email again.
#[derive(Debug)]
pub struct Unrecorded {
    pub email: ClaimedEmail,
    pub outcome: Outcome,
    pub error: anyhow::Error,
}

/// Moves the end of the claim's lease to `until`, if the claim is still ours.
fn renew_lease(
    conn: &mut DbConnection,
    id: &str,
    claim_token: &str,
    until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        outbound_emails::table
            .filter(outbound_emails::id.eq(id))
            .filter(outbound_emails::claim_token.eq(claim_token)),
    )
    .set(outbound_emails::next_attempt_at.eq(until))
    .execute(conn)
}

/// Records the outcome of sending `email`, if the claim still holds.
pub fn settle(
    conn: &mut DbConnection,
    email: &ClaimedEmail,
    claim_token: &str,
    outcome: &Outcome,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let mine = outbound_emails::table
        .filter(outbound_emails::id.eq(&email.id))
        .filter(outbound_emails::claim_token.eq(claim_token));
    let is_invitation = email.kind == EmailKind::Invitation.as_str();
    match outcome {
        Outcome::Sent => {
            // Whoever holds the claim by now: an email that went out must never become
            // due again, even if recording it took so long that the claim was taken over.
            // Cancelled, failed and sent rows stay as they are.
            let updated = diesel::update(
                outbound_emails::table
                    .filter(outbound_emails::id.eq(&email.id))
                    .filter(outbound_emails::status.eq_any([status::QUEUED, status::SENDING])),
            )
            .set((
                outbound_emails::status.eq(status::SENT),
                outbound_emails::sent_at.eq(now),
                outbound_emails::body_text.eq(None::<String>),
                outbound_emails::body_html.eq(None::<String>),
                outbound_emails::claim_token.eq(None::<String>),
                outbound_emails::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
            if updated == 1
                && is_invitation
                && let Some(invitation_id) = &email.invitation_id
            {
                diesel::update(invitations::table.find(invitation_id))
                    .set(invitations::sent_at.eq(now))
                    .execute(conn)?;
            }
        }
        Outcome::RetryAt(at, reason) => {
            diesel::update(mine)
                .set((
                    outbound_emails::status.eq(status::QUEUED),
                    outbound_emails::next_attempt_at.eq(at),
                    outbound_emails::claim_token.eq(None::<String>),
                    outbound_emails::last_error.eq(reason),
                ))
                .execute(conn)?;
        }
        Outcome::Failed(reason) => {
            let updated = diesel::update(mine)
                .set((
                    outbound_emails::status.eq(status::FAILED),
                    outbound_emails::failed_at.eq(now),
                    outbound_emails::body_text.eq(None::<String>),
                    outbound_emails::body_html.eq(None::<String>),
                    outbound_emails::claim_token.eq(None::<String>),
                    outbound_emails::last_error.eq(reason),
                ))
                .execute(conn)?;
            if updated == 1
                && is_invitation
                && let Some(invitation_id) = &email.invitation_id
            {
                diesel::update(invitations::table.find(invitation_id))
                    .set((
                        invitations::delivery_failed_at.eq(now),
                        invitations::delivery_error.eq(reason),
                    ))
                    .execute(conn)?;
                // A reminder of an invitation that never arrived would be the first the
                // invitee hears of it; a resend queues a new pair.
                cancel_unsent(
                    conn,
                    std::slice::from_ref(invitation_id),
                    &[EmailKind::Reminder.as_str()],
                )?;
            }
        }
    }
    Ok(())
}

/// Sends one claimed email and records the outcome: `prepare` builds the message
/// (opening its sealed body, signing it), `send` hands it to the mail server. A final
/// outcome that could not be recorded is handed back (see [`record_again`]), not dropped.
/// `conn` is the sender's for its whole batch: taking one from the pool for each email
/// cost PostgreSQL a round trip more (the pool's check that it is alive), as much as one
/// of the email's own statements.
///
/// On PostgreSQL the row is locked for the whole attempt, so that two instances never
/// send it and a concurrent removal or resend either waits for it or stops it first.
/// On SQLite (one instance) a transaction held across the SMTP conversation would block
/// every other writer, so the claim is re-checked and its lease renewed, no transaction
/// is open while the message is prepared, the claim and the invitation are read once
/// more just before the message is handed over, and the outcome is recorded in a short
/// transaction of its own. Renewing per email matters: the batch was claimed under one
/// lease, and the sends before this one may have used most of it, after which another
/// mail thread would claim this email again and send it twice.
///
/// The window left on SQLite is the SMTP conversation itself (at most the SMTP
/// timeout): an invitation replaced or removed, or its invitee joining, while the server
/// takes the message, does not stop it. The link it carries is dead by then (replaced,
/// removed) or used (joined), so the invitee gets a link that no longer works, never
/// one that does.
pub fn deliver_claimed<M>(
    conn: &mut DbConnection,
    id: &str,
    claim_token: &str,
    lease: TimeDelta,
    clock: &crate::clock::Clock,
    prepare: impl FnOnce(&ClaimedEmail) -> Result<M, Outcome>,
    send: impl FnOnce(&ClaimedEmail, M) -> Outcome,
) -> anyhow::Result<Option<Unrecorded>> {
    // Set once the attempt is made: from then on a failure is a failure to record.
    let mut attempted = None;
    let result: anyhow::Result<()> = match engine_of(conn) {
        // Not waiting for the WAL flush halves the cost of an email (the flush was most
        // of it). What this gives up: if the database server itself crashes (not enroll)
        // within about half a second of an outcome's commit, that outcome is lost and the
        // email goes out again once its lease ends; like SQLite's `synchronous = NORMAL`
        // on a power cut. The claim stays durable.
        Engine::Postgres => unflushed_write_transaction(conn, |conn| {
            let Some(email) = load_claimed(conn, id, claim_token)? else {
                return Ok(());
            };
            let outcome = prepare(&email).map_or_else(|failed| failed, |m| send(&email, m));
            let settled = settle(conn, &email, claim_token, &outcome, clock.now());
            attempted = Some((email, outcome));
            settled
        })
        .map_err(anyhow::Error::from),
        Engine::Sqlite => {
            let claimed = write_transaction(conn, |conn| {
                renew_lease(conn, id, claim_token, clock.now() + lease)?;
                load_claimed(conn, id, claim_token)
            })?;
            let Some(email) = claimed else {
                return Ok(None);
            };
            let outcome = match prepare(&email) {
                Err(failed) => failed,
                Ok(message) => {
                    // A removal, resend or joining may have committed since the claim was
                    // read; reading needs no write lock.
                    if !still_to_send(conn, id, claim_token)? {
                        write_transaction(conn, |conn| cancel_claimed(conn, id, claim_token))?;
                        return Ok(None);
                    }
                    send(&email, message)
                }
            };
            let settled = write_transaction(conn, |conn| {
                settle(conn, &email, claim_token, &outcome, clock.now())
            })
            .map_err(anyhow::Error::from);
            attempted = Some((email, outcome));
            settled
        }
    };
    match (result, attempted) {
        (Ok(()), _) => Ok(None),
        (Err(error), Some((email, outcome))) if outcome.is_final() => Ok(Some(Unrecorded {
            email,
            outcome,
            error,
        })),
        (Err(error), _) => Err(error),
    }
}

/// One more try at recording an outcome that the database refused before. When it is
/// refused again, the claim's lease is renewed if it can be, so that neither another
/// thread nor another instance takes the email up again while we keep trying.
pub fn record_again(
    db: &Db,
    unrecorded: &Unrecorded,
    claim_token: &str,
    lease: TimeDelta,
    clock: &crate::clock::Clock,
) -> anyhow::Result<()> {
    let mut conn = db.get()?;
    let recorded = write_transaction(&mut conn, |conn| {
        settle(
            conn,
            &unrecorded.email,
            claim_token,
            &unrecorded.outcome,
            clock.now(),
        )
    });
    if let Err(error) = recorded {
        // Best effort: whatever stopped the record likely stops this too.
        let _ = write_transaction(&mut conn, |conn| {
            renew_lease(conn, &unrecorded.email.id, claim_token, clock.now() + lease)
        });
        return Err(error.into());
    }
    Ok(())
}
