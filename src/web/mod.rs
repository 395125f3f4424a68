//! The web console: one module per page, the extractors they share, and the URL map.
//! This file is the URL map; shared request plumbing is in [`request`].

pub mod a4b;
pub mod accounts;
pub mod api_access;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod csrf;
pub mod enroll;
pub mod error;
pub mod health;
pub mod invite;
pub mod layout;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod request;
pub mod scim;
pub mod server;
pub mod session;
pub mod settings;
pub mod sso;
pub mod two_factor;
pub mod users;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use request::see_other;

/// Every route, in one place.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/login/two-factor", web::get().to(two_factor::code_form))
        .route("/login/two-factor", web::post().to(two_factor::verify))
        .route(
            "/login/two-factor/setup",
            web::post().to(two_factor::set_up_at_sign_in),
        )
        .route("/login/oidc", web::get().to(sso::start))
        .route("/login/oidc/callback", web::get().to(sso::callback))
        .route("/account", web::get().to(two_factor::own_account))
        .route("/account/two-factor", web::post().to(two_factor::turn_on))
        .route(
            "/accounts/two-factor-policy",
            web::post().to(two_factor::policy),
        )
        .route("/setup", web::get().to(auth::setup_form))
        .route("/setup", web::post().to(auth::setup))
        .route("/users", web::get().to(users::list))
        .route("/users/invite", web::get().to(invite::form))
        .route("/users/invite", web::post().to(invite::submit))
        .route("/users/invite/import", web::post().to(invite::import))
        .route("/users/export.csv", web::get().to(users::export))
        .route("/users/resend", web::post().to(users::resend))
        .route("/users/remove", web::post().to(users::remove))
        .route("/settings/invitations", web::get().to(settings::form))
        .route("/settings/invitations", web::post().to(settings::submit))
        .route("/settings/api", web::get().to(api_access::show))
        .route("/settings/api", web::post().to(api_access::create))
        .route(
            "/settings/api/{id}/revoke",
            web::post().to(api_access::revoke),
        )
        .route("/enroll/{token}", web::get().to(enroll::show))
        .route("/enroll/{token}", web::post().to(enroll::join))
        .route("/accounts", web::get().to(accounts::list))
        .route("/accounts", web::post().to(accounts::add))
        .route("/accounts/{id}", web::get().to(accounts::show))
        .route("/accounts/{id}/role", web::post().to(accounts::change_role))
        .route(
            "/accounts/{id}/password",
            web::post().to(accounts::reset_password),
        )
        .route("/accounts/{id}/disable", web::post().to(accounts::disable))
        .route("/accounts/{id}/enable", web::post().to(accounts::enable))
        .route(
            "/accounts/{id}/two-factor/reset",
            web::post().to(two_factor::reset),
        )
        .route("/audit", web::get().to(audit::list));
    // Routes that change things answer GET with 405, not a page.
    cfg.route(
        "/users/remove-expired",
        web::get().to(users::remove_expired_form),
    )
    .route(
        "/users/remove-expired",
        web::post().to(users::remove_expired),
    );
    for path in [
        "/logout",
        "/users/invite/import",
        "/users/resend",
        "/users/remove",
        "/accounts/{id}/role",
        "/accounts/{id}/password",
        "/accounts/{id}/disable",
        "/accounts/{id}/enable",
        "/accounts/{id}/two-factor/reset",
        "/accounts/two-factor-policy",
        "/account/two-factor",
        "/login/two-factor/setup",
        "/settings/api/{id}/revoke",
    ] {
        cfg.route(path, web::route().to(method_not_allowed));
    }
    // Last: every fixed /users/... path above wins over the id.
    cfg.route("/users/{id}", web::get().to(users::history));
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .content_type("text/plain; charset=utf-8")
        .body("This address only accepts form submissions (POST).")
}

async fn home() -> HttpResponse {
    see_other("/users")
}
