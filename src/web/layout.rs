//! What every console page shows around its content: the header with the account and
//! the sections its role may use, flash messages, and the CSRF token for its forms.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use actix_web_flash_messages::{IncomingFlashMessages, Level};
use futures_util::future::LocalBoxFuture;

use super::csrf::CsrfToken;
use super::error::AppError;
use super::session::SignedIn;
use crate::principal::Principal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Users,
    Settings,
    Accounts,
    ApiAccess,
    Audit,
    None,
}

pub struct Flash {
    pub css_class: &'static str,
    pub text: String,
}

pub struct Layout {
    pub account_email: String,
    pub role_label: &'static str,
    pub is_administrator: bool,
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
    pub section: Section,
}

impl Layout {
    pub fn in_section(mut self, section: Section) -> Self {
        self.section = section;
        self
    }

    pub fn is_section(&self, name: &str) -> bool {
        matches!(
            (self.section, name),
            (Section::Users, "users")
                | (Section::Settings, "settings")
                | (Section::Accounts, "accounts")
                | (Section::ApiAccess, "api")
                | (Section::Audit, "audit")
        )
    }
}

/// Flash messages as the templates show them.
pub fn flashes(incoming: &IncomingFlashMessages) -> Vec<Flash> {
    incoming
        .iter()
        .map(|m| Flash {
            css_class: match m.level() {
                Level::Error => "flash flash-error",
                Level::Warning => "flash flash-warning",
                Level::Success => "flash flash-success",
                _ => "flash flash-info",
            },
            text: m.content().to_owned(),
        })
        .collect()
}

/// A signed-in page request: the account and the layout around the page.
pub struct ConsolePage {
    pub account: SignedIn,
    pub layout: Layout,
}

impl ConsolePage {
    /// The signed-in account as the one acting.
    pub fn principal(&self, req: &HttpRequest, state: &super::request::AppState) -> Principal {
        Principal::account(
            &self.account.account_id,
            &self.account.email,
            self.account.role,
            super::request::client_ip(req, state.config.trust_proxy),
        )
    }

    /// Administrator-only pages and actions; help desk gets 403.
    pub fn require_administrator(&self) -> Result<(), AppError> {
        if self.account.is_administrator() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

impl FromRequest for ConsolePage {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let account = SignedIn::from_request(req, payload).into_inner();
        let token = CsrfToken::from_request(req, payload).into_inner();
        let incoming = IncomingFlashMessages::from_request(req, payload);
        Box::pin(async move {
            let account = account?;
            let token = token?;
            // Unreadable flash cookies are dropped, not an error page.
            let flashes = incoming.await.map(|i| flashes(&i)).unwrap_or_default();
            Ok(Self {
                layout: Layout {
                    account_email: account.email.clone(),
                    role_label: account.role.label(),
                    is_administrator: account.is_administrator(),
                    csrf_token: token.0,
                    flashes,
                    section: Section::None,
                },
                account,
            })
        })
    }
}

/// Flash messages in a signed cookie, as actix-web-flash-messages keeps them, except
/// that a response clears the cookie only when the request had one: the library's store
/// adds an empty cookie to every response otherwise.
pub struct FlashCookies {
    inner: actix_web_flash_messages::storage::CookieMessageStore,
    cookie_name: String,
}

impl FlashCookies {
    pub fn new(signing_key: actix_web::cookie::Key, cookie_name: &str) -> Self {
        Self {
            inner: actix_web_flash_messages::storage::CookieMessageStore::builder(signing_key)
                .cookie_name(cookie_name.to_owned())
                .build(),
            cookie_name: cookie_name.to_owned(),
        }
    }
}

impl actix_web_flash_messages::storage::FlashMessageStore for FlashCookies {
    fn load(
        &self,
        request: &HttpRequest,
    ) -> Result<
        Vec<actix_web_flash_messages::FlashMessage>,
        actix_web_flash_messages::storage::LoadError,
    > {
        self.inner.load(request)
    }

    fn store(
        &self,
        messages: &[actix_web_flash_messages::FlashMessage],
        request: HttpRequest,
        response: &mut actix_web::dev::ResponseHead,
    ) -> Result<(), actix_web_flash_messages::storage::StoreError> {
        if messages.is_empty() && request.cookie(&self.cookie_name).is_none() {
            return Ok(());
        }
        self.inner.store(messages, request, response)
    }
}
