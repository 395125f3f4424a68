//! What an identity provider does over SCIM, on the same rows and rules as the console:
//! creating a user is inviting them (email queued in the same transaction); changing
//! names or `externalId`; deactivating (every link dead, queued mail cancelled, the user
//! kept) and reactivating (a fresh invitation).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::*;
use crate::users::{EmailAddress, PersonName};

pub enum ProvisionOutcome {
    /// Made; the link is for the log when email goes to files (none when created
    /// deactivated: nothing is sent then).
    Created {
        user_id: String,
        link: Option<QueuedLink>,
    },
    /// The address belongs to a user already.
    Taken,
}

/// The state a PUT or a PATCH asks for.
pub struct ScimChange {
    pub email: EmailAddress,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub external_id: Option<String>,
    pub active: bool,
}

pub enum UpdateOutcome {
    Updated {
        link: Option<QueuedLink>,
    },
    NotFound,
    /// `If-Match` named another version than the user's.
    VersionMismatch,
    /// The address (userName) differs: it is the user's identity and cannot change.
    EmailChanged,
}

/// Creates one user with an invitation and its email, as "Send invite" does; `active:
/// false` creates them deactivated, with a dead invitation and nothing sent.
#[allow(clippy::too_many_arguments)]
pub fn provision(
    conn: &mut DbConnection,
    change: &Change<'_>,
    settings: &InvitationSettings,
    key: &MailKey,
    invitee: &NewInvitee,
    external_id: Option<String>,
    active: bool,
) -> Result<ProvisionOutcome, Error> {
    let user_id = uuid::Uuid::now_v7().to_string();
    let (first, email) = (invitee.first_name.as_str(), invitee.email.as_str());
    let new_user = NewUser {
        external_id,
        deactivated_at: (!active).then_some(change.now),
        ..NewUser::new(&user_id, invitee, change)
    };
    // Made before the write transaction, as invite's are.
    let mut fresh = fresh_invitation(change, settings, key, &user_id, first, email)?;
    let mut events = vec![
        NewAuditEvent::new(
            change.now,
            change.actor,
            Action::Invite,
            Some(email),
            invitee.display_name(),
        )
        .about_user(&user_id),
    ];
    if !active {
        fresh.invitation.expires_at = change.now;
        fresh.emails.clear();
        events.push(
            NewAuditEvent::new(
                change.now,
                change.actor,
                Action::Deactivate,
                Some(email),
                "created deactivated: no invitation sent",
            )
            .about_user(&user_id),
        );
    }
    let key = invitee.email.key();
    let result: Result<ProvisionOutcome, Error> = write_transaction(conn, move |conn| {
        if !existing_email_keys(conn, std::slice::from_ref(&key))?.is_empty() {
            return Ok(ProvisionOutcome::Taken);
        }
        insert_rows!(conn, users::table, [new_user])?;
        insert_fresh(conn, std::slice::from_ref(&fresh))?;
        audit::record(conn, &events)?;
        Ok(ProvisionOutcome::Created {
            user_id,
            link: active.then_some(fresh.link),
        })
    });
    match result {
        // The same address was created at the same moment by another request: one
        // user, one email; this one is told it is taken.
        Err(error) if error.is_unique_violation() => Ok(ProvisionOutcome::Taken),
        other => other,
    }
}

/// What the version (ETag) and the representation of a user are made of.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(check_for_backend(crate::db::MultiBackend))]
pub struct ScimUserRow {
    #[diesel(select_expression = users::id)]
    pub id: String,
    #[diesel(select_expression = users::first_name)]
    pub first_name: String,
    #[diesel(select_expression = users::last_name)]
    pub last_name: String,
    #[diesel(select_expression = users::email)]
    pub email: String,
    #[diesel(select_expression = users::email_key)]
    pub email_key: String,
    #[diesel(select_expression = users::external_id)]
    pub external_id: Option<String>,
    #[diesel(select_expression = users::provisioned_by)]
    pub provisioned_by: Option<String>,
    #[diesel(select_expression = users::created_at, deserialize_as = crate::db::Stamp)]
    pub created_at: NaiveDateTime,
    #[diesel(select_expression = users::updated_at, deserialize_as = crate::db::MaybeStamp)]
    pub updated_at: Option<NaiveDateTime>,
    #[diesel(select_expression = users::enrolled_at, deserialize_as = crate::db::MaybeStamp)]
    pub enrolled_at: Option<NaiveDateTime>,
    #[diesel(select_expression = users::deactivated_at, deserialize_as = crate::db::MaybeStamp)]
    pub deactivated_at: Option<NaiveDateTime>,
    #[diesel(select_expression = invitations::id)]
    pub invitation_id: String,
    #[diesel(select_expression = invitations::created_at, deserialize_as = crate::db::Stamp)]
    pub invitation_created_at: NaiveDateTime,
    #[diesel(select_expression = invitations::expires_at, deserialize_as = crate::db::Stamp)]
    pub expires_at: NaiveDateTime,
    #[diesel(select_expression = invitations::sent_at, deserialize_as = crate::db::MaybeStamp)]
    pub sent_at: Option<NaiveDateTime>,
    #[diesel(select_expression = invitations::delivery_failed_at, deserialize_as = crate::db::MaybeStamp)]
    pub delivery_failed_at: Option<NaiveDateTime>,
}

impl ScimUserRow {
    pub fn status(&self, now: NaiveDateTime) -> crate::users::EnrollmentStatus {
        crate::users::EnrollmentStatus::derive(
            &crate::users::status::StatusFacts {
                flags: crate::users::status::StatusFlags {
                    deactivated: self.deactivated_at.is_some(),
                    enrolled: self.enrolled_at.is_some(),
                    sent: self.sent_at.is_some(),
                    delivery_failed: self.delivery_failed_at.is_some(),
                },
                expires_at: self.expires_at,
            },
            now,
        )
    }

    /// The latest change to the user or their invitation.
    pub fn last_modified(&self) -> NaiveDateTime {
        [
            Some(self.created_at),
            self.updated_at,
            Some(self.invitation_created_at),
            self.enrolled_at,
            self.sent_at,
            self.delivery_failed_at,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(self.created_at)
    }

    /// The ETag: changes whenever anything SCIM shows of the user does.
    pub fn version(&self, now: NaiveDateTime) -> String {
        let facts = format!(
            "{}\n{}\n{}\n{}\n{:?}\n{:?}\n{:?}\n{}\n{}",
            self.id,
            self.email,
            self.first_name,
            self.last_name,
            self.external_id,
            self.deactivated_at,
            self.enrolled_at,
            self.invitation_id,
            self.status(now).slug()
        );
        format!(
            "W/\"{}\"",
            &crate::crypto::sha256_hex(facts.as_bytes())[..16]
        )
    }
}

/// One user as SCIM shows them.
pub fn find(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<ScimUserRow>> {
    crate::users::status::users_with_live_invitation()
        .filter(users::id.eq(user_id))
        .select(ScimUserRow::as_select())
        .first(conn)
        .optional()
}

/// A page of users matching a SCIM filter, in a stable order (ids are time-ordered
/// UUIDs), and how many match in all.
pub fn page(
    conn: &mut DbConnection,
    filter: &crate::scim::filter::UserFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(i64, Vec<ScimUserRow>)> {
    if filter.impossible {
        return Ok((0, Vec::new()));
    }
    let query = || {
        let mut boxed = crate::users::status::users_with_live_invitation().into_boxed();
        if let Some(key) = &filter.email_key {
            boxed = boxed.filter(users::email_key.eq(key.clone()));
        }
        if let Some(external_id) = &filter.external_id {
            boxed = boxed.filter(users::external_id.eq(external_id.clone()));
        }
        boxed
    };
    let total: i64 = query().count().get_result(conn)?;
    let rows = query()
        .order(users::id.asc())
        .offset(offset)
        .limit(limit)
        .select(ScimUserRow::as_select())
        .load(conn)?;
    Ok((total, rows))
}

/// Sets a user to the state a PUT or PATCH asks for, in one transaction, after
/// `if_match` (a version from [`ScimUserRow::version`]) is checked against the user as
/// locked. `reactivation` is the fresh invitation to use if the user is reactivated
/// (made before the transaction, as every email is).
pub fn update(
    conn: &mut DbConnection,
    change: &Change<'_>,
    user_id: &str,
    desired: &ScimChange,
    if_match: Option<&str>,
    reactivation: Option<FreshInvitationFor>,
) -> Result<UpdateOutcome, Error> {
    write_transaction(conn, |conn| {
        if lock_users(conn, &[user_id.to_owned()])?.is_empty() {
            return Ok(UpdateOutcome::NotFound);
        }
        let Some(current) = find(conn, user_id)? else {
            return Ok(UpdateOutcome::NotFound);
        };
        if let Some(expected) = if_match
            && expected.trim() != "*"
            && !expected
                .split(',')
                .any(|tag| tag.trim() == current.version(change.now))
        {
            return Ok(UpdateOutcome::VersionMismatch);
        }
        if desired.email.key() != current.email_key {
            return Ok(UpdateOutcome::EmailChanged);
        }
        let mut events = Vec::new();
        let (first, last) = (desired.first_name.as_str(), desired.last_name.as_str());
        let renamed = first != current.first_name || last != current.last_name;
        let external_changed = desired.external_id != current.external_id;
        if renamed || external_changed {
            diesel::update(users::table.filter(users::id.eq(user_id)))
                .set((
                    users::first_name.eq(first),
                    users::last_name.eq(last),
                    users::name_key.eq(name_key(first, last)),
                    users::search_key.eq(search_key(first, last, &current.email)),
                    users::external_id.eq(&desired.external_id),
                    users::updated_at.eq(change.now),
                ))
                .execute(conn)?;
            let mut detail = Vec::new();
            if renamed {
                detail.push(format!(
                    "name {} {} → {first} {last}",
                    current.first_name, current.last_name
                ));
            }
            if external_changed {
                detail.push("externalId changed".to_owned());
            }
            events.push(
                NewAuditEvent::new(
                    change.now,
                    change.actor,
                    Action::UserChange,
                    Some(&current.email),
                    detail.join("; "),
                )
                .about_user(user_id),
            );
        }
        let mut link = None;
        match (desired.active, current.deactivated_at.is_some()) {
            (false, false) => {
                diesel::update(users::table.filter(users::id.eq(user_id)))
                    .set((
                        users::deactivated_at.eq(change.now),
                        users::updated_at.eq(change.now),
                    ))
                    .execute(conn)?;
                // The live link dies now; older ones are dead already.
                diesel::update(
                    invitations::table
                        .filter(invitations::id.eq(&current.invitation_id))
                        .filter(invitations::used_at.is_null())
                        .filter(invitations::expires_at.gt(change.now)),
                )
                .set(invitations::expires_at.eq(change.now))
                .execute(conn)?;
                let all: Vec<String> = invitations::table
                    .filter(invitations::user_id.eq(user_id))
                    .select(invitations::id)
                    .load(conn)?;
                outbox::cancel_unsent(
                    conn,
                    &all,
                    &[EmailKind::Invitation.as_str(), EmailKind::Reminder.as_str()],
                )?;
                events.push(
                    NewAuditEvent::new(
                        change.now,
                        change.actor,
                        Action::Deactivate,
                        Some(&current.email),
                        "links stopped working; queued email cancelled",
                    )
                    .about_user(user_id),
                );
            }
            (true, true) => {
                diesel::update(users::table.filter(users::id.eq(user_id)))
                    .set((
                        users::deactivated_at.eq(None::<NaiveDateTime>),
                        users::updated_at.eq(change.now),
                    ))
                    .execute(conn)?;
                let detail = if current.enrolled_at.is_some() {
                    "had joined: member again, no invitation needed".to_owned()
                } else {
                    let fresh = reactivation
                        .filter(|f| f.user_id == user_id && f.recipient_key == current.email_key)
                        .ok_or_else(|| {
                            Error::Unexpected(anyhow::anyhow!(
                                "no invitation was made for a user being reactivated"
                            ))
                        })?
                        .fresh;
                    diesel::update(
                        invitations::table
                            .filter(invitations::user_id.eq(user_id))
                            .filter(invitations::superseded_at.is_null()),
                    )
                    .set(invitations::superseded_at.eq(change.now))
                    .execute(conn)?;
                    insert_fresh(conn, std::slice::from_ref(&fresh))?;
                    link = Some(fresh.link);
                    "a fresh invitation was sent".to_owned()
                };
                events.push(
                    NewAuditEvent::new(
                        change.now,
                        change.actor,
                        Action::Reactivate,
                        Some(&current.email),
                        detail,
                    )
                    .about_user(user_id),
                );
            }
            _ => {}
        }
        audit::record(conn, &events)?;
        Ok(UpdateOutcome::Updated { link })
    })
}

/// A fresh invitation made ahead of a reactivation, for this user and address.
pub struct FreshInvitationFor {
    user_id: String,
    recipient_key: String,
    fresh: FreshInvitation,
}

/// Makes the invitation a reactivation would send, when `user_id` is deactivated and
/// has not joined; none otherwise.
pub fn prepare_reactivation(
    conn: &mut DbConnection,
    change: &Change<'_>,
    settings: &InvitationSettings,
    key: &MailKey,
    user_id: &str,
) -> Result<Option<FreshInvitationFor>, Error> {
    let Some(user) = find(conn, user_id)? else {
        return Ok(None);
    };
    if user.deactivated_at.is_none() || user.enrolled_at.is_some() {
        return Ok(None);
    }
    let fresh = fresh_invitation(
        change,
        settings,
        key,
        user_id,
        &user.first_name,
        &user.email,
    )?;
    Ok(Some(FreshInvitationFor {
        user_id: user.id,
        recipient_key: user.email_key,
        fresh,
    }))
}
