//! Invitation emails, rendered from templates/email/invitation/ into outbox rows.

use askama::Template;
use chrono::NaiveDateTime;

use crate::settings::InvitationSettings;
use crate::time_format;

#[derive(Template)]
#[template(path = "email/invitation/subject.txt")]
struct InvitationSubject<'a> {
    invitation: &'a InvitationContent<'a>,
}

/// Everything the text and HTML bodies show.
#[derive(Template)]
#[template(path = "email/invitation/body.txt")]
struct InvitationText<'a> {
    invitation: &'a InvitationContent<'a>,
}

#[derive(Template)]
#[template(path = "email/invitation/body.html")]
struct InvitationHtml<'a> {
    invitation: &'a InvitationContent<'a>,
}

pub struct InvitationContent<'a> {
    /// A reminder of an invitation sent earlier (same link), rather than the invitation.
    pub reminder: bool,
    pub organization: &'a str,
    pub first_name: &'a str,
    pub recipient: &'a str,
    pub inviter: &'a str,
    pub custom_message: &'a str,
    pub link: &'a str,
    pub expires: String,
    pub contact_email: &'a str,
}

impl InvitationContent<'_> {
    pub fn custom_message_lines(&self) -> impl Iterator<Item = &str> {
        self.custom_message.lines()
    }
}

pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Who the email is for and what it carries.
pub struct Invitee<'a> {
    pub first_name: &'a str,
    pub recipient: &'a str,
    pub inviter: &'a str,
    pub link: &'a str,
    pub expires_at: NaiveDateTime,
}

/// Renders an invitation email for one invitee, as of `now`.
pub fn render_invitation(
    settings: &InvitationSettings,
    invitee: &Invitee<'_>,
    now: NaiveDateTime,
) -> Result<RenderedEmail, askama::Error> {
    render(settings, invitee, now, false)
}

/// Renders the reminder of that invitation, as it reads when sent at `send_at`.
pub fn render_reminder(
    settings: &InvitationSettings,
    invitee: &Invitee<'_>,
    send_at: NaiveDateTime,
) -> Result<RenderedEmail, askama::Error> {
    render(settings, invitee, send_at, true)
}

fn render(
    settings: &InvitationSettings,
    invitee: &Invitee<'_>,
    now: NaiveDateTime,
    reminder: bool,
) -> Result<RenderedEmail, askama::Error> {
    let Invitee {
        first_name,
        recipient,
        inviter,
        link,
        expires_at,
    } = *invitee;
    let content = InvitationContent {
        reminder,
        organization: &settings.organization_name,
        first_name,
        recipient,
        inviter,
        custom_message: &settings.custom_message,
        link,
        expires: time_format::expiry_in_words(expires_at, now),
        contact_email: &settings.contact_email,
    };
    Ok(RenderedEmail {
        subject: InvitationSubject {
            invitation: &content,
        }
        .render()?
        .trim()
        .to_owned(),
        text: InvitationText {
            invitation: &content,
        }
        .render()?,
        html: InvitationHtml {
            invitation: &content,
        }
        .render()?,
    })
}

/// The From display name carries the organization's name, so that invitees recognize
/// who writes ("IT Service Desk at Example Corp").
pub fn sender_display_name(settings: &InvitationSettings) -> String {
    let sender = settings.sender_name.trim();
    let organization = settings.organization_name.trim();
    if sender.to_lowercase().contains(&organization.to_lowercase()) {
        sender.to_owned()
    } else {
        format!("{sender} at {organization}")
    }
}
