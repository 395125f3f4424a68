//! What a token leads to, and joining with it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::*;

/// What a token is good for right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    Valid(Invitee),
    Used(Invitee),
    Expired(Invitee),
    /// A newer invitation was sent to the same person.
    Superseded(Invitee),
    /// Never issued, or its user was removed: the two look the same to the visitor, so
    /// that a link never tells whoever holds it that someone was once invited.
    Unknown,
}

/// The invitee and organization an enrollment page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    pub email: String,
    pub first_name: String,
    pub organization: String,
    pub contact_email: String,
    pub after_join_url: String,
    pub expires_at: NaiveDateTime,
}

type InviteeColumns = (
    users::email,
    users::first_name,
    invitation_settings::organization_name,
    invitation_settings::contact_email,
    invitation_settings::after_join_url,
    invitations::expires_at,
    invitations::used_at,
    invitations::superseded_at,
);

const INVITEE_COLUMNS: InviteeColumns = (
    users::email,
    users::first_name,
    invitation_settings::organization_name,
    invitation_settings::contact_email,
    invitation_settings::after_join_url,
    invitations::expires_at,
    invitations::used_at,
    invitations::superseded_at,
);

type InviteeRow = (
    String,
    String,
    String,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

pub fn look_up(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<TokenState> {
    let row: Option<InviteeRow> = invitations::table
        .inner_join(users::table)
        .inner_join(invitation_settings::table.on(invitation_settings::id.eq(1)))
        .filter(invitations::token_hash.eq(token_hash))
        .select(INVITEE_COLUMNS)
        .first(conn)
        .optional()?;
    let Some((
        email,
        first_name,
        organization,
        contact_email,
        after_join_url,
        expires_at,
        used_at,
        superseded_at,
    )) = row
    else {
        return Ok(TokenState::Unknown);
    };
    let invitee = Invitee {
        email,
        first_name,
        organization,
        contact_email,
        after_join_url,
        expires_at,
    };
    Ok(if used_at.is_some() {
        TokenState::Used(invitee)
    } else if superseded_at.is_some() {
        TokenState::Superseded(invitee)
    } else if expires_at <= now {
        TokenState::Expired(invitee)
    } else {
        TokenState::Valid(invitee)
    })
}

pub enum EnrollOutcome {
    Enrolled(Invitee),
    Refused(TokenState),
}

/// Consumes the token with one conditional update: of two simultaneous requests,
/// exactly one finds it unused.
pub fn enroll(
    conn: &mut DbConnection,
    change: &Change<'_>,
    token_hash: &str,
) -> Result<EnrollOutcome, Error> {
    write_transaction(conn, |conn| {
        lock_user_of_token(conn, token_hash)?;
        let consumed = diesel::update(
            invitations::table
                .filter(invitations::token_hash.eq(token_hash))
                .filter(invitations::used_at.is_null())
                .filter(invitations::superseded_at.is_null())
                .filter(invitations::expires_at.gt(change.now)),
        )
        .set(invitations::used_at.eq(change.now))
        .execute(conn)?;
        if consumed == 0 {
            return Ok(EnrollOutcome::Refused(look_up(
                conn, token_hash, change.now,
            )?));
        }
        let (invitation_id, user_id): (String, String) = invitations::table
            .filter(invitations::token_hash.eq(token_hash))
            .select((invitations::id, invitations::user_id))
            .first(conn)?;
        diesel::update(users::table.find(&user_id))
            .set(users::enrolled_at.eq(change.now))
            .execute(conn)?;
        outbox::cancel_unsent(conn, &[invitation_id], &[EmailKind::Reminder.as_str()])?;
        let TokenState::Used(invitee) = look_up(conn, token_hash, change.now)? else {
            return Err(Error::Unexpected(anyhow::anyhow!(
                "an invitation just used does not read as used"
            )));
        };
        audit::record(
            conn,
            &[NewAuditEvent::new(
                change.now,
                change.actor,
                Action::Enroll,
                Some(&invitee.email),
                format!("joined {}", invitee.organization),
            )
            .about_user(&user_id)],
        )?;
        Ok(EnrollOutcome::Enrolled(invitee))
    })
}
