//! "Set up user invitations": what every invitation says and where its link points.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use url::Url;

use crate::db::DbConnection;
use crate::db::schema::invitation_settings;
use crate::values::name::is_disallowed;
use crate::values::{EmailAddress, InvalidInput};

pub const DEFAULT_VALIDITY_DAYS: i32 = 7;
pub const MIN_VALIDITY_DAYS: i32 = 1;
pub const MAX_VALIDITY_DAYS: i32 = 30;
pub const MAX_ORGANIZATION_NAME_LENGTH: usize = 100;
pub const MAX_SENDER_NAME_LENGTH: usize = 100;
pub const MAX_CUSTOM_MESSAGE_LENGTH: usize = 2000;
pub const MAX_URL_LENGTH: usize = 2000;

/// Saved, valid settings. Only [`InvitationSettings::parse`] and the database make one.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = invitation_settings)]
// Turning reminders off stores NULL rather than leaving the old value.
#[diesel(treat_none_as_null = true)]
pub struct InvitationSettings {
    pub organization_name: String,
    pub contact_email: String,
    pub sender_name: String,
    pub sender_address: String,
    pub public_url: String,
    pub validity_days: i32,
    pub custom_message: String,
    pub after_join_url: String,
    /// Send one reminder this many days before an invitation expires.
    pub reminder_days: Option<i32>,
}

/// The settings form as typed.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SettingsInput {
    #[serde(default)]
    pub organization_name: String,
    #[serde(default)]
    pub contact_email: String,
    #[serde(default)]
    pub sender_name: String,
    #[serde(default)]
    pub sender_address: String,
    #[serde(default)]
    pub public_url: String,
    #[serde(default)]
    pub validity_days: String,
    #[serde(default)]
    pub custom_message: String,
    #[serde(default)]
    pub after_join_url: String,
    #[serde(default)]
    pub reminder_days: String,
}

/// One message per field that is wrong.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SettingsErrors {
    pub organization_name: Option<String>,
    pub contact_email: Option<String>,
    pub sender_name: Option<String>,
    pub sender_address: Option<String>,
    pub public_url: Option<String>,
    pub validity_days: Option<String>,
    pub custom_message: Option<String>,
    pub after_join_url: Option<String>,
    pub reminder_days: Option<String>,
}

impl SettingsErrors {
    pub fn count(&self) -> usize {
        [
            &self.organization_name,
            &self.contact_email,
            &self.sender_name,
            &self.sender_address,
            &self.public_url,
            &self.validity_days,
            &self.custom_message,
            &self.after_join_url,
            &self.reminder_days,
        ]
        .iter()
        .filter(|e| e.is_some())
        .count()
    }
}

impl From<&InvitationSettings> for SettingsInput {
    fn from(s: &InvitationSettings) -> Self {
        Self {
            organization_name: s.organization_name.clone(),
            contact_email: s.contact_email.clone(),
            sender_name: s.sender_name.clone(),
            sender_address: s.sender_address.clone(),
            public_url: s.public_url.clone(),
            validity_days: s.validity_days.to_string(),
            custom_message: s.custom_message.clone(),
            after_join_url: s.after_join_url.clone(),
            reminder_days: s.reminder_days.map(|d| d.to_string()).unwrap_or_default(),
        }
    }
}

impl InvitationSettings {
    pub fn parse(input: &SettingsInput) -> Result<Self, Box<SettingsErrors>> {
        let mut errors = SettingsErrors::default();
        let organization_name = single_line(
            &input.organization_name,
            "organization name",
            MAX_ORGANIZATION_NAME_LENGTH,
        )
        .map_err(|e| errors.organization_name = Some(e.to_string()));
        let contact_email = EmailAddress::parse(&input.contact_email)
            .map_err(|e| errors.contact_email = Some(e.to_string()));
        let sender_name = single_line(&input.sender_name, "sender name", MAX_SENDER_NAME_LENGTH)
            .map_err(|e| errors.sender_name = Some(e.to_string()));
        let sender_address = EmailAddress::parse(&input.sender_address)
            .map_err(|e| errors.sender_address = Some(e.to_string()));
        let public_url =
            public_url(&input.public_url).map_err(|e| errors.public_url = Some(e.to_string()));
        let validity_days = validity_days(&input.validity_days)
            .map_err(|e| errors.validity_days = Some(e.to_string()));
        let custom_message = custom_message(&input.custom_message)
            .map_err(|e| errors.custom_message = Some(e.to_string()));
        let after_join_url = optional_web_url(&input.after_join_url)
            .map_err(|e| errors.after_join_url = Some(e.to_string()));
        let reminder_days =
            reminder_days(&input.reminder_days, validity_days.as_ref().ok().copied())
                .map_err(|e| errors.reminder_days = Some(e.to_string()));

        match (
            organization_name,
            contact_email,
            sender_name,
            sender_address,
            public_url,
            validity_days,
            custom_message,
            after_join_url,
            reminder_days,
        ) {
            (
                Ok(organization_name),
                Ok(contact_email),
                Ok(sender_name),
                Ok(sender_address),
                Ok(public_url),
                Ok(validity_days),
                Ok(custom_message),
                Ok(after_join_url),
                Ok(reminder_days),
            ) => Ok(Self {
                organization_name,
                contact_email: contact_email.to_string(),
                sender_name,
                sender_address: sender_address.to_string(),
                public_url,
                validity_days,
                custom_message,
                after_join_url,
                reminder_days,
            }),
            _ => Err(Box::new(errors)),
        }
    }

    /// Sensible first values for the form, taken from what we know.
    pub fn suggested_input(public_url: &str, administrator_email: &str) -> SettingsInput {
        SettingsInput {
            public_url: public_url.to_owned(),
            validity_days: DEFAULT_VALIDITY_DAYS.to_string(),
            contact_email: administrator_email.to_owned(),
            ..SettingsInput::default()
        }
    }

    pub fn load(conn: &mut DbConnection) -> QueryResult<Option<Self>> {
        invitation_settings::table
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// Saves (first time or after) in the caller's transaction.
    pub fn save(
        &self,
        conn: &mut DbConnection,
        now: NaiveDateTime,
        account_id: Option<&str>,
    ) -> QueryResult<()> {
        let updated = diesel::update(invitation_settings::table.find(1))
            .set((
                self,
                invitation_settings::updated_at.eq(now),
                invitation_settings::updated_by.eq(account_id),
            ))
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(invitation_settings::table)
                .values((
                    invitation_settings::id.eq(1),
                    self,
                    invitation_settings::updated_at.eq(now),
                    invitation_settings::updated_by.eq(account_id),
                ))
                .execute(conn)?;
        }
        Ok(())
    }

    /// What changed, for the audit log ("organization name, public URL").
    pub fn describe_changes(before: Option<&Self>, after: &Self) -> String {
        let Some(before) = before else {
            return "invitations set up".to_owned();
        };
        let fields = [
            (
                "organization name",
                before.organization_name != after.organization_name,
            ),
            (
                "contact email address",
                before.contact_email != after.contact_email,
            ),
            ("sender name", before.sender_name != after.sender_name),
            (
                "sender address",
                before.sender_address != after.sender_address,
            ),
            ("public URL", before.public_url != after.public_url),
            ("days valid", before.validity_days != after.validity_days),
            (
                "custom message",
                before.custom_message != after.custom_message,
            ),
            (
                "after joining, go to",
                before.after_join_url != after.after_join_url,
            ),
            ("reminder", before.reminder_days != after.reminder_days),
        ];
        let changed: Vec<&str> = fields
            .iter()
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| *name)
            .collect();
        if changed.is_empty() {
            "saved without changes".to_owned()
        } else {
            format!("changed {}", changed.join(", "))
        }
    }
}

fn single_line(input: &str, what: &str, max: usize) -> Result<String, InvalidInput> {
    let value = input.trim();
    if value.is_empty() {
        return Err(InvalidInput::new(format!("Enter the {what}.")));
    }
    if value.chars().count() > max {
        return Err(InvalidInput::new(format!(
            "The {what} can be at most {max} characters long."
        )));
    }
    if value.chars().any(is_disallowed) {
        return Err(InvalidInput::new(format!(
            "The {what} cannot contain line breaks, control or invisible characters."
        )));
    }
    Ok(value.to_owned())
}

fn custom_message(input: &str) -> Result<String, InvalidInput> {
    // Browsers send CRLF; keep plain line breaks, nothing else invisible.
    let value = input.trim().replace("\r\n", "\n");
    if value.chars().count() > MAX_CUSTOM_MESSAGE_LENGTH {
        return Err(InvalidInput::new(format!(
            "The custom message can be at most {MAX_CUSTOM_MESSAGE_LENGTH} characters long."
        )));
    }
    if value.chars().any(|c| c != '\n' && is_disallowed(c)) {
        return Err(InvalidInput::new(
            "The custom message cannot contain control or invisible characters.",
        ));
    }
    Ok(value)
}

/// Blank for no reminder; otherwise whole days, fewer than the invitation stays valid.
fn reminder_days(input: &str, validity_days: Option<i32>) -> Result<Option<i32>, InvalidInput> {
    let value = input.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let days: i32 = value.parse().map_err(|_| {
        InvalidInput::new("Enter a whole number of days, or leave it empty for no reminder.")
    })?;
    let most = validity_days.unwrap_or(MAX_VALIDITY_DAYS) - 1;
    if days < 1 || days > most {
        return Err(InvalidInput::new(reminder_range_message(most)));
    }
    Ok(Some(days))
}

/// What to enter when at most `most` days are allowed, said as a person would: not
/// "1 to 1 days", and no range at all when invitations are too short for a reminder.
fn reminder_range_message(most: i32) -> String {
    const WHY: &str =
        "A reminder goes out at least a day after the invitation and before it expires";
    match most {
        ..=0 => format!("{WHY}, so invitations valid for 1 day have none: leave it empty."),
        1 => format!("{WHY}: enter 1, or leave it empty."),
        _ => format!("{WHY}: enter 1 to {most} days, or leave it empty."),
    }
}

fn validity_days(input: &str) -> Result<i32, InvalidInput> {
    let message = || {
        InvalidInput::new(format!(
            "Enter a whole number of days from {MIN_VALIDITY_DAYS} to {MAX_VALIDITY_DAYS}."
        ))
    };
    let days: i32 = input.trim().parse().map_err(|_| message())?;
    if (MIN_VALIDITY_DAYS..=MAX_VALIDITY_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(message())
    }
}

/// An absolute http(s) URL with a host, no credentials, nothing after the path.
fn web_url(input: &str, what: &str) -> Result<Url, InvalidInput> {
    let value = input.trim();
    if value.len() > MAX_URL_LENGTH || value.chars().any(|c| c.is_control() || c == ' ') {
        return Err(InvalidInput::new(format!(
            "Enter the {what} as a web address without spaces."
        )));
    }
    let url = Url::parse(value).map_err(|_| {
        InvalidInput::new(format!(
            "Enter the {what} as a full web address, like https://example.com."
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(InvalidInput::new(format!(
            "The {what} must start with https:// (or http://) and name a host."
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidInput::new(format!(
            "The {what} cannot contain a user name or password."
        )));
    }
    Ok(url)
}

fn public_url(input: &str) -> Result<String, InvalidInput> {
    if input.trim().is_empty() {
        return Err(InvalidInput::new(
            "Enter the address at which invitees reach this console, like https://enroll.example.com.",
        ));
    }
    let url = web_url(input, "public URL")?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InvalidInput::new(
            "The public URL cannot have a ? query or # fragment: links are added after its path.",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn optional_web_url(input: &str) -> Result<String, InvalidInput> {
    if input.trim().is_empty() {
        return Ok(String::new());
    }
    Ok(web_url(input, "page to go to after joining")?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_input() -> SettingsInput {
        SettingsInput {
            organization_name: "Example Corp".into(),
            contact_email: "it@example.com".into(),
            sender_name: "Example IT".into(),
            sender_address: "no-reply@example.com".into(),
            public_url: "https://enroll.example.com/".into(),
            validity_days: "7".into(),
            custom_message: "Welcome!\r\nSee you soon.".into(),
            after_join_url: String::new(),
            reminder_days: "2".into(),
        }
    }

    #[test]
    fn valid_settings_are_normalized() {
        let settings = InvitationSettings::parse(&valid_input()).unwrap();
        assert_eq!(settings.public_url, "https://enroll.example.com");
        assert_eq!(settings.custom_message, "Welcome!\nSee you soon.");
        assert_eq!(settings.validity_days, 7);
    }

    #[test]
    fn every_wrong_field_gets_its_own_message() {
        let input = SettingsInput {
            organization_name: " ".into(),
            contact_email: "it@".into(),
            sender_name: "IT\r\nBcc: x@evil.com".into(),
            sender_address: "nope".into(),
            public_url: "javascript:alert(1)".into(),
            validity_days: "31".into(),
            custom_message: "x".repeat(2001),
            after_join_url: "ftp://example.com".into(),
            reminder_days: "0".into(),
        };
        let errors = InvitationSettings::parse(&input).unwrap_err();
        assert_eq!(errors.count(), 9, "{errors:?}");
    }

    #[test]
    fn reminders_come_before_expiry() {
        for (reminder, ok) in [
            ("", true),
            ("1", true),
            ("6", true),
            ("7", false),
            ("0", false),
            ("x", false),
        ] {
            let input = SettingsInput {
                reminder_days: reminder.into(),
                ..valid_input()
            };
            assert_eq!(InvitationSettings::parse(&input).is_ok(), ok, "{reminder}");
        }
    }

    #[test]
    fn the_reminder_range_reads_as_a_person_would_say_it() {
        let message = |validity: &str, reminder: &str| {
            let input = SettingsInput {
                validity_days: validity.into(),
                reminder_days: reminder.into(),
                ..valid_input()
            };
            InvitationSettings::parse(&input)
                .unwrap_err()
                .reminder_days
                .unwrap()
        };
        assert!(message("7", "7").ends_with(": enter 1 to 6 days, or leave it empty."));
        assert!(message("2", "2").ends_with(": enter 1, or leave it empty."));
        assert!(
            message("1", "1").ends_with("invitations valid for 1 day have none: leave it empty.")
        );
        for (validity, reminder) in [("7", "7"), ("2", "2"), ("1", "1")] {
            assert!(!message(validity, reminder).contains("1 to 1"));
        }
    }

    #[test]
    fn validity_is_one_to_thirty_days() {
        for (days, ok) in [
            ("0", false),
            ("1", true),
            ("30", true),
            ("31", false),
            ("x", false),
        ] {
            let input = SettingsInput {
                validity_days: days.into(),
                reminder_days: String::new(),
                ..valid_input()
            };
            assert_eq!(InvitationSettings::parse(&input).is_ok(), ok, "{days}");
        }
    }
}
