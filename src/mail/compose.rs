//! Invitation emails, rendered from templates/email/invitation/ into outbox rows.

use askama::Template;
use chrono::NaiveDateTime;

use super::outbox::{EmailKind, NewOutboundEmail};
use crate::settings::InvitationSettings;
use crate::time_format;

#[derive(Template)]
#[template(path = "email/invitation/subject.txt")]
struct InvitationSubject<'a> {
    organization: &'a str,
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

/// Renders an invitation email for one invitee.
#[allow(clippy::too_many_arguments)]
pub fn render_invitation(
    settings: &InvitationSettings,
    first_name: &str,
    recipient: &str,
    inviter: &str,
    link: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<RenderedEmail, askama::Error> {
    let content = InvitationContent {
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
            organization: &settings.organization_name,
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

impl RenderedEmail {
    /// An outbox row that sends this email to `recipient`, due now.
    pub fn into_outbound(
        self,
        settings: &InvitationSettings,
        invitation_id: &str,
        recipient: &str,
        kind: EmailKind,
        due_at: NaiveDateTime,
        now: NaiveDateTime,
    ) -> NewOutboundEmail {
        NewOutboundEmail::new(
            invitation_id,
            kind,
            &settings.sender_name,
            &settings.sender_address,
            Some(&settings.contact_email),
            recipient,
            self,
            due_at,
            now,
        )
    }
}
