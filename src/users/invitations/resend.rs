//! Resending: a new token and email each, the older ones dead at once.

use std::collections::HashMap;

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use super::*;
use crate::users::status::not_invited_expiry;

#[derive(Default)]
pub struct ResendReport {
    /// Everyone sent a fresh invitation, including `first_sent`.
    pub resent: Vec<UserLabel>,
    /// Of those, the users who had never been invited (made through the API).
    pub first_sent: Vec<UserLabel>,
    pub already_enrolled: Vec<UserLabel>,
    /// Deactivated by their identity provider, which manages them: never resent here.
    pub deactivated: Vec<UserLabel>,
    /// Resent too often in the last hour, with when they can be resent again.
    pub rate_limited: Vec<(UserLabel, NaiveDateTime)>,
    /// Selected, but gone by the time we looked (removed meanwhile).
    pub missing: usize,
    pub links: Vec<QueuedLink>,
}

/// For users resent `limit` times within the last hour (each resend supersedes one
/// invitation), the moment the oldest of those leaves the hour.
fn resend_waits(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    users: &[UserIdentity],
    limit: u32,
) -> QueryResult<HashMap<String, NaiveDateTime>> {
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let hour_ago = now - TimeDelta::hours(1);
    let recent: Vec<(String, Option<NaiveDateTime>)> = invitations::table
        .filter(invitations::user_id.eq_any(&ids))
        .filter(invitations::superseded_at.gt(hour_ago))
        // Sending the first invitation supersedes a placeholder: not a resend.
        .filter(invitations::expires_at.lt(not_invited_expiry()))
        .order(invitations::superseded_at.desc())
        .select((invitations::user_id, invitations::superseded_at))
        .load(conn)?;
    let mut per_user: HashMap<String, Vec<NaiveDateTime>> = HashMap::new();
    for (user_id, at) in recent {
        per_user.entry(user_id).or_default().extend(at);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(per_user
        .into_iter()
        .filter(|(_, times)| times.len() >= limit)
        .filter_map(|(user_id, times)| {
            // Newest first: the limit-th newest resend is the one that must age out.
            let blocking = times.get(limit.checked_sub(1)?)?;
            Some((user_id, *blocking + TimeDelta::hours(1)))
        })
        .collect())
}

/// Gives each selected, not-yet-enrolled user a new token and a new email; their older
/// tokens stop working in the same transaction.
pub fn resend(
    conn: &mut DbConnection,
    change: &Change<'_>,
    settings: &InvitationSettings,
    key: &MailKey,
    user_ids: &[String],
    per_hour_limit: u32,
) -> Result<ResendReport, Error> {
    // The emails are made before the write transaction, as invite's are: rendering
    // them inside it would hold SQLite's one write lock meanwhile. Who gets one is only
    // decided once the users are locked; an email made for someone who turns out not
    // to need it is dropped.
    let mut prepared: HashMap<String, FreshInvitation> = HashMap::new();
    for user in find_users(conn, user_ids)? {
        if user.enrolled_at.is_none() && user.deactivated_at.is_none() {
            let fresh = fresh_invitation(
                change,
                settings,
                key,
                &user.id,
                &user.first_name,
                &user.email,
            )?;
            prepared.insert(user.id, fresh);
        }
    }
    write_transaction(conn, |conn| {
        let selected = lock_users(conn, user_ids)?;
        let mut report = ResendReport {
            missing: user_ids.len().saturating_sub(selected.len()),
            ..ResendReport::default()
        };
        let (deactivated, selected): (Vec<_>, Vec<_>) = selected
            .into_iter()
            .partition(|u| u.deactivated_at.is_some());
        report.deactivated = deactivated.iter().map(UserIdentity::label).collect();
        let (enrolled, not_enrolled): (Vec<_>, Vec<_>) =
            selected.into_iter().partition(|u| u.enrolled_at.is_some());
        report.already_enrolled = enrolled.iter().map(UserIdentity::label).collect();
        let next_allowed = resend_waits(conn, change.now, &not_enrolled, per_hour_limit)?;
        let (limited, to_resend): (Vec<_>, Vec<_>) = not_enrolled
            .into_iter()
            .partition(|u| next_allowed.contains_key(&u.id));
        report.rate_limited = limited
            .iter()
            .map(|u| (u.label(), next_allowed[&u.id]))
            .collect();
        if to_resend.is_empty() {
            return Ok(report);
        }
        let ids: Vec<String> = to_resend.iter().map(|u| u.id.clone()).collect();
        let live: Vec<(String, String, NaiveDateTime)> = invitations::table
            .filter(invitations::user_id.eq_any(&ids))
            .filter(invitations::superseded_at.is_null())
            .select((
                invitations::id,
                invitations::user_id,
                invitations::expires_at,
            ))
            .load(conn)?;
        let never_invited: std::collections::HashSet<String> = live
            .iter()
            .filter(|(_, _, expires_at)| *expires_at >= not_invited_expiry())
            .map(|(_, user_id, _)| user_id.clone())
            .collect();
        let superseded: Vec<String> = live.into_iter().map(|(id, ..)| id).collect();
        diesel::update(invitations::table.filter(invitations::id.eq_any(&superseded)))
            .set(invitations::superseded_at.eq(change.now))
            .execute(conn)?;
        outbox::cancel_unsent(
            conn,
            &superseded,
            &[EmailKind::Invitation.as_str(), EmailKind::Reminder.as_str()],
        )?;
        let mut fresh = Vec::with_capacity(to_resend.len());
        let mut events = Vec::with_capacity(to_resend.len());
        for user in &to_resend {
            // Everyone not enrolled when locked was not enrolled before: made above.
            fresh.push(prepared.remove(&user.id).ok_or_else(|| {
                Error::Unexpected(anyhow::anyhow!("no email was made for a user to resend to"))
            })?);
            let first = never_invited.contains(&user.id);
            if first {
                report.first_sent.push(user.label());
            }
            events.push(
                NewAuditEvent::new(
                    change.now,
                    change.actor,
                    if first {
                        Action::Invite
                    } else {
                        Action::Resend
                    },
                    Some(&user.email),
                    user.label().name,
                )
                .about_user(&user.id),
            );
        }
        insert_fresh(conn, &fresh)?;
        audit::record(conn, &events)?;
        report.resent = to_resend.iter().map(UserIdentity::label).collect();
        report.links = fresh.into_iter().map(|f| f.link).collect();
        Ok(report)
    })
}
