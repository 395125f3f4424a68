//! Enrollment status, derived from stored facts at the moment of reading: nothing
//! stores "Pending", so nothing can forget to turn it into "Expired".

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::MultiBackend;
use crate::db::schema::{invitations, users};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrollmentStatus {
    /// Queued, not yet accepted by the mail server.
    Sending,
    /// Sent, and the token is valid.
    Pending,
    /// The token is past its expiry.
    Expired,
    /// The mail server refused the email, or never took it after all retries.
    DeliveryFailed,
    Enrolled,
    /// Deactivated by the identity provider (SCIM `active: false`): kept and listed,
    /// every link dead, nothing sent.
    Deactivated,
    /// Made without an invitation (through the API): nothing was sent yet.
    NotInvited,
}

/// The expiry of a user's placeholder invitation, which stands for "not invited yet".
/// Every user keeps exactly one live invitation row, so that the queries joining on it
/// stay as they are; a user made without an invitation holds one that was never sent,
/// whose token nobody was given, and that never expires (so it is never Expired,
/// never reminded, never removed as expired). Sending the first invitation supersedes
/// it like any resend.
pub fn not_invited_expiry() -> NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .unwrap_or(NaiveDateTime::MAX)
}

/// Whether the user joined or was deactivated, and whether their live invitation went out
/// or bounced: all the status rule needs to know of those, besides the expiry. Selected as
/// such (`IS NOT NULL`) wherever users are listed.
#[derive(Debug, Clone, Copy, Default, Queryable, Selectable)]
#[diesel(check_for_backend(MultiBackend))]
pub struct StatusFlags {
    #[diesel(
        select_expression = users::deactivated_at.is_not_null(),
        select_expression_type = diesel::dsl::IsNotNull<users::deactivated_at>
    )]
    pub deactivated: bool,
    #[diesel(
        select_expression = users::enrolled_at.is_not_null(),
        select_expression_type = diesel::dsl::IsNotNull<users::enrolled_at>
    )]
    pub enrolled: bool,
    #[diesel(
        select_expression = invitations::sent_at.is_not_null(),
        select_expression_type = diesel::dsl::IsNotNull<invitations::sent_at>
    )]
    pub sent: bool,
    #[diesel(
        select_expression = invitations::delivery_failed_at.is_not_null(),
        select_expression_type = diesel::dsl::IsNotNull<invitations::delivery_failed_at>
    )]
    pub delivery_failed: bool,
}

/// The facts a status is derived from: the user's and their live invitation's. The expiry
/// is a `NaiveDateTime` or any other measure of time (the search index keeps microseconds).
#[derive(Debug, Clone, Copy)]
pub struct StatusFacts<T = NaiveDateTime> {
    pub flags: StatusFlags,
    pub expires_at: T,
}

type LiveInvitationJoin = diesel::dsl::And<
    diesel::dsl::Eq<invitations::user_id, users::id>,
    diesel::dsl::IsNull<invitations::superseded_at>,
>;

/// `users` joined with each user's live invitation: every user has exactly one.
pub type UsersWithLiveInvitation =
    diesel::dsl::InnerJoinOn<users::table, invitations::table, LiveInvitationJoin>;

/// The FROM clause of [`UsersWithLiveInvitation`], which filters are checked against.
pub type UsersWithLiveInvitationSource =
    diesel::dsl::InnerJoinQuerySource<users::table, invitations::table, LiveInvitationJoin>;

pub type StatusFilter = Box<
    dyn BoxableExpression<
            UsersWithLiveInvitationSource,
            MultiBackend,
            SqlType = diesel::sql_types::Bool,
        >,
>;

pub fn users_with_live_invitation() -> UsersWithLiveInvitation {
    users::table.inner_join(
        invitations::table.on(invitations::user_id
            .eq(users::id)
            .and(invitations::superseded_at.is_null())),
    )
}

/// Never joined, and the invitation ended by `cutoff`: what "Remove expired
/// invitations" removes.
pub fn expired_by(cutoff: NaiveDateTime) -> StatusFilter {
    // Users an identity provider deactivated are its to remove.
    Box::new(
        users::enrolled_at
            .is_null()
            .and(users::deactivated_at.is_null())
            .and(invitations::expires_at.le(cutoff)),
    )
}

/// "Expires within 3 days": still open, and not for long.
pub const EXPIRING_SOON_DAYS: i64 = 3;

/// "Expires within 3 days": invitations still open, and not for long.
pub fn expiring_soon_filter(now: NaiveDateTime) -> StatusFilter {
    Box::new(
        users::enrolled_at
            .is_null()
            .and(users::deactivated_at.is_null())
            .and(invitations::delivery_failed_at.is_null())
            .and(invitations::expires_at.gt(now))
            .and(invitations::expires_at.le(now + chrono::TimeDelta::days(EXPIRING_SOON_DAYS))),
    )
}

impl EnrollmentStatus {
    /// In the order the Users page lists them.
    pub const ALL: [Self; 7] = [
        Self::NotInvited,
        Self::Pending,
        Self::Sending,
        Self::Expired,
        Self::DeliveryFailed,
        Self::Enrolled,
        Self::Deactivated,
    ];

    pub fn derive(facts: &StatusFacts, now: NaiveDateTime) -> Self {
        Self::derive_at(facts, &now, &not_invited_expiry())
    }

    /// [`EnrollmentStatus::derive`] over any measure of time: `not_invited_from` is
    /// [`not_invited_expiry`] in it.
    pub fn derive_at<T: PartialOrd>(facts: &StatusFacts<T>, now: &T, not_invited_from: &T) -> Self {
        let flags = &facts.flags;
        if flags.deactivated {
            Self::Deactivated
        } else if flags.enrolled {
            Self::Enrolled
        } else if facts.expires_at >= *not_invited_from {
            Self::NotInvited
        } else if flags.delivery_failed {
            Self::DeliveryFailed
        } else if facts.expires_at <= *now {
            Self::Expired
        } else if !flags.sent {
            Self::Sending
        } else {
            Self::Pending
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Sending => "Sending",
            Self::Pending => "Pending",
            Self::Expired => "Expired",
            Self::DeliveryFailed => "Delivery failed",
            Self::Enrolled => "Enrolled",
            Self::NotInvited => "Not invited",
            Self::Deactivated => "Deactivated",
        }
    }

    /// The value in URLs (`?status=delivery_failed`).
    pub fn slug(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Pending => "pending",
            Self::Expired => "expired",
            Self::DeliveryFailed => "delivery_failed",
            Self::Enrolled => "enrolled",
            Self::NotInvited => "not_invited",
            Self::Deactivated => "deactivated",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.slug() == slug)
    }

    /// The SQL condition equivalent to [`EnrollmentStatus::derive`] giving `self`.
    pub fn sql_filter(self, now: NaiveDateTime) -> StatusFilter {
        let active = users::deactivated_at.is_null();
        let not_enrolled = active.and(users::enrolled_at.is_null());
        let not_failed = invitations::delivery_failed_at.is_null();
        match self {
            Self::Deactivated => Box::new(users::deactivated_at.is_not_null()),
            Self::Enrolled => Box::new(active.and(users::enrolled_at.is_not_null())),
            Self::DeliveryFailed => {
                Box::new(not_enrolled.and(invitations::delivery_failed_at.is_not_null()))
            }
            Self::Expired => Box::new(
                not_enrolled
                    .and(not_failed)
                    .and(invitations::expires_at.le(now)),
            ),
            Self::Sending => Box::new(
                not_enrolled
                    .and(not_failed)
                    .and(invitations::expires_at.gt(now))
                    .and(invitations::expires_at.lt(not_invited_expiry()))
                    .and(invitations::sent_at.is_null()),
            ),
            Self::NotInvited => {
                Box::new(not_enrolled.and(invitations::expires_at.ge(not_invited_expiry())))
            }
            Self::Pending => Box::new(
                not_enrolled
                    .and(not_failed)
                    .and(invitations::expires_at.gt(now))
                    .and(invitations::sent_at.is_not_null()),
            ),
        }
    }

    /// Badge colour class on the Users page.
    pub fn css_class(self) -> &'static str {
        match self {
            Self::Sending => "badge badge-sending",
            Self::Pending => "badge badge-pending",
            Self::Expired => "badge badge-expired",
            Self::DeliveryFailed => "badge badge-failed",
            Self::Enrolled => "badge badge-enrolled",
            Self::NotInvited => "badge badge-not-invited",
            Self::Deactivated => "badge badge-deactivated",
        }
    }
}

impl std::fmt::Display for EnrollmentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn now() -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc()
    }

    fn facts() -> StatusFacts {
        StatusFacts {
            flags: StatusFlags::default(),
            expires_at: now() + TimeDelta::days(7),
        }
    }

    #[test]
    fn status_follows_the_facts() {
        let now = now();
        assert_eq!(
            EnrollmentStatus::derive(&facts(), now),
            EnrollmentStatus::Sending
        );
        let base = facts();
        let sent = StatusFacts {
            flags: StatusFlags {
                sent: true,
                ..base.flags
            },
            ..base
        };
        assert_eq!(
            EnrollmentStatus::derive(&sent, now),
            EnrollmentStatus::Pending
        );
        let expired = StatusFacts {
            expires_at: now,
            ..sent
        };
        assert_eq!(
            EnrollmentStatus::derive(&expired, now),
            EnrollmentStatus::Expired
        );
        let failed = StatusFacts {
            flags: StatusFlags {
                delivery_failed: true,
                ..expired.flags
            },
            ..expired
        };
        assert_eq!(
            EnrollmentStatus::derive(&failed, now),
            EnrollmentStatus::DeliveryFailed
        );
        let enrolled = StatusFacts {
            flags: StatusFlags {
                enrolled: true,
                ..failed.flags
            },
            ..failed
        };
        assert_eq!(
            EnrollmentStatus::derive(&enrolled, now),
            EnrollmentStatus::Enrolled
        );
        let not_invited = StatusFacts {
            expires_at: not_invited_expiry(),
            ..facts()
        };
        assert_eq!(
            EnrollmentStatus::derive(&not_invited, now),
            EnrollmentStatus::NotInvited
        );
        let deactivated = StatusFacts {
            flags: StatusFlags {
                deactivated: true,
                ..enrolled.flags
            },
            ..enrolled
        };
        assert_eq!(
            EnrollmentStatus::derive(&deactivated, now),
            EnrollmentStatus::Deactivated
        );
    }

    #[test]
    fn slugs_round_trip() {
        for status in EnrollmentStatus::ALL {
            assert_eq!(EnrollmentStatus::from_slug(status.slug()), Some(status));
        }
        assert_eq!(EnrollmentStatus::from_slug("bogus"), None);
    }
}
