//! Users made without an invitation (the API's CreateUser), and revoking one user's
//! invitation (its RevokeInvitation).

use diesel::prelude::*;

use super::*;
use crate::users::status::not_invited_expiry;
use crate::users::tags::{self, Tag};

/// A user to make without inviting them yet.
pub struct UninvitedUser {
    pub invitee: NewInvitee,
    /// The caller's own id for them (the API's UserId), unique.
    pub api_user_id: String,
    /// Repeating a request with the same token makes nothing new.
    pub client_request_token: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    Created {
        user_id: String,
    },
    /// The same request (same token, same UserId) was made before: its user.
    AlreadyCreated {
        user_id: String,
    },
    EmailInUse,
    UserIdInUse,
    /// The token was used before for another UserId.
    TokenInUse,
    TooManyTags,
}

/// The user an earlier request with this token made, and their UserId.
fn made_with_token(conn: &mut DbConnection, token: &str) -> QueryResult<Option<(String, String)>> {
    users::table
        .filter(users::client_request_token.eq(token))
        .select((users::id, users::api_user_id.assume_not_null()))
        .first(conn)
        .optional()
}

fn conflict(conn: &mut DbConnection, user: &UninvitedUser) -> QueryResult<Option<CreateOutcome>> {
    if let Some(token) = &user.client_request_token
        && let Some((id, api_user_id)) = made_with_token(conn, token)?
    {
        return Ok(Some(if api_user_id == user.api_user_id {
            CreateOutcome::AlreadyCreated { user_id: id }
        } else {
            CreateOutcome::TokenInUse
        }));
    }
    if !existing_email_keys(conn, &[user.invitee.email.key()])?.is_empty() {
        return Ok(Some(CreateOutcome::EmailInUse));
    }
    let id_taken: bool = diesel::select(diesel::dsl::exists(
        users::table.filter(users::api_user_id.eq(&user.api_user_id)),
    ))
    .get_result(conn)?;
    Ok(id_taken.then_some(CreateOutcome::UserIdInUse))
}

/// Makes the user, shown as Not invited, with their tags and audit entry; no email.
pub fn create_uninvited(
    conn: &mut DbConnection,
    change: &Change<'_>,
    user: &UninvitedUser,
) -> Result<CreateOutcome, Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let invitee = &user.invitee;
    let email = invitee.email.as_str();
    let result = write_transaction(conn, |conn| {
        if let Some(outcome) = conflict(conn, user)? {
            return Ok(outcome);
        }
        insert_rows!(
            conn,
            users::table,
            [NewUser {
                api_user_id: user.api_user_id.clone(),
                client_request_token: user.client_request_token.clone(),
                ..NewUser::new(&id, invitee, change)
            }]
        )?;
        insert_placeholder(conn, change, &id)?;
        if !tags::set(conn, &id, &user.tags)? {
            return Err(Error::Invalid(too_many_tags()));
        }
        audit::record(
            conn,
            &[NewAuditEvent::new(
                change.now,
                change.actor,
                Action::Create,
                Some(email),
                invitee.display_name(),
            )
            .about_user(&id)],
        )?;
        Ok(CreateOutcome::Created {
            user_id: id.clone(),
        })
    });
    match result {
        Err(Error::Invalid(_)) => Ok(CreateOutcome::TooManyTags),
        // The same request, address or UserId arrived meanwhile: say which.
        Err(error) if error.is_unique_violation() => {
            Ok(conflict(conn, user)?.unwrap_or(CreateOutcome::EmailInUse))
        }
        other => other,
    }
}

fn too_many_tags() -> crate::values::InvalidInput {
    crate::values::InvalidInput::new(format!(
        "A user can have at most {} tags.",
        tags::MAX_TAGS_PER_USER
    ))
}

/// The live invitation of someone not invited yet: never sent, a token nobody was
/// given, never expiring (see [`not_invited_expiry`]).
fn insert_placeholder(
    conn: &mut DbConnection,
    change: &Change<'_>,
    user_id: &str,
) -> QueryResult<()> {
    let unissued = EnrollmentToken::generate();
    insert_rows!(
        conn,
        invitations::table,
        [NewInvitation {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
            token_hash: unissued.hash(),
            created_at: change.now,
            created_by: change.actor.account_id.clone(),
            expires_at: not_invited_expiry(),
        }]
    )?;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The link stopped working; the user reads as Expired and can be sent a new one.
    Revoked,
    /// Nothing to revoke: never invited, or already ended.
    NoOpenInvitation,
    AlreadyEnrolled,
    NotFound,
}

/// Ends this user's open invitation now and stops its unsent emails, as disabling the
/// account that sent it does; the user stays.
pub fn revoke(
    conn: &mut DbConnection,
    change: &Change<'_>,
    user_id: &str,
) -> Result<RevokeOutcome, Error> {
    write_transaction(conn, |conn| {
        let Some(user) = lock_users(conn, &[user_id.to_owned()])?.pop() else {
            return Ok(RevokeOutcome::NotFound);
        };
        if user.enrolled_at.is_some() {
            return Ok(RevokeOutcome::AlreadyEnrolled);
        }
        let open: Option<String> = invitations::table
            .filter(invitations::user_id.eq(&user.id))
            .filter(invitations::superseded_at.is_null())
            .filter(invitations::used_at.is_null())
            .filter(invitations::expires_at.gt(change.now))
            .filter(invitations::expires_at.lt(not_invited_expiry()))
            .select(invitations::id)
            .first(conn)
            .optional()?;
        let Some(invitation_id) = open else {
            return Ok(RevokeOutcome::NoOpenInvitation);
        };
        diesel::update(invitations::table.find(&invitation_id))
            .set(invitations::expires_at.eq(change.now))
            .execute(conn)?;
        outbox::cancel_unsent(
            conn,
            std::slice::from_ref(&invitation_id),
            &[EmailKind::Invitation.as_str(), EmailKind::Reminder.as_str()],
        )?;
        audit::record(
            conn,
            &[NewAuditEvent::new(
                change.now,
                change.actor,
                Action::Revoke,
                Some(&user.email),
                "revoked through the API",
            )
            .about_user(&user.id)],
        )?;
        Ok(RevokeOutcome::Revoked)
    })
}

/// Adds or replaces tags on a user, or removes some, with an audit entry. `None` when
/// the user does not exist; `Some(false)` when they would have too many tags.
pub fn change_tags(
    conn: &mut DbConnection,
    change: &Change<'_>,
    user_id: &str,
    add: &[Tag],
    remove: &[String],
) -> Result<Option<bool>, Error> {
    write_transaction(conn, |conn| {
        let Some(user) = lock_users(conn, &[user_id.to_owned()])?.pop() else {
            return Ok(None);
        };
        if !add.is_empty() && !tags::set(conn, &user.id, add)? {
            return Ok(Some(false));
        }
        let removed = if remove.is_empty() {
            0
        } else {
            tags::remove(conn, &user.id, remove)?
        };
        let detail = if add.is_empty() {
            format!("removed {removed} tag(s)")
        } else {
            let listed: Vec<String> = add
                .iter()
                .map(|t| format!("{}={}", t.key(), t.value()))
                .collect();
            format!("set {}", listed.join(", "))
        };
        audit::record(
            conn,
            &[NewAuditEvent::new(
                change.now,
                change.actor,
                Action::Tag,
                Some(&user.email),
                detail,
            )
            .about_user(&user.id)],
        )?;
        Ok(Some(true))
    })
}
