//! The HTTP server: middleware, sessions, flash messages and the routes, on a listener
//! it is given.

use std::net::TcpListener;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use actix_web_flash_messages::FlashMessagesFramework;
use tracing_actix_web::TracingLogger;

use super::error::AppError;
use super::layout::FlashCookies;
use super::middleware::{
    RedactedRootSpan, ready_gate, record_request, secure_cookies, security_headers,
};
use super::request::AppState;
use super::session::{self, DbSessionStore};
use super::{assets, csrf, health, metrics};
use crate::sessions::SessionRecords;

pub fn http_server(
    state: AppState,
    cookie_key: Key,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let store = DbSessionStore::new(SessionRecords::new(
        state.db.clone(),
        state.clock.clone(),
        state.config.session_idle(),
        state.config.session_lifetime(),
        state.ops.session_cache(),
    ));
    let workers = state
        .config
        .http_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let blocking_threads = (state.config.db_pool_size as usize)
        .div_ceil(workers)
        .max(2);
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(store.clone(), cookie_key.clone())
            .cookie_name(session::COOKIE_NAME.to_owned())
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_secure(false)
            .cookie_content_security(CookieContentSecurity::Signed)
            .session_lifecycle(BrowserSession::default().state_ttl(
                actix_web::cookie::time::Duration::seconds(
                    i64::try_from(data.config.session_idle().as_secs()).unwrap_or(3600),
                ),
            ))
            .build();
        let flashes =
            FlashMessagesFramework::builder(FlashCookies::new(cookie_key.clone(), "enroll_flash"))
                .build();
        App::new()
            .app_data(data.clone())
            .app_data(csrf::payload_config())
            .app_data(
                actix_multipart::form::MultipartFormConfig::default()
                    .total_limit(3 * 1024 * 1024)
                    .memory_limit(3 * 1024 * 1024)
                    .error_handler(|error, _| {
                        AppError::BadRequest(format!("The upload could not be read: {error}"))
                            .into()
                    }),
            )
            .wrap(from_fn(secure_cookies))
            .wrap(security_headers())
            .wrap(TracingLogger::<RedactedRootSpan>::new())
            // Outermost: the latency includes every other layer.
            .wrap(from_fn(record_request))
            .route("/livez", web::get().to(health::livez))
            .route("/metrics", web::get().to(metrics::metrics))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/static/{name}", web::get().to(assets::asset))
            .route("/favicon.ico", web::get().to(assets::favicon))
            // Machines: no session, no cookies, no CSRF (a bearer token, or an access
            // key's signature, instead).
            .service(
                web::scope("/scim/v2")
                    .wrap(from_fn(ready_gate))
                    .configure(super::scim::routes)
                    .default_service(web::to(super::scim::not_found)),
            )
            .service(
                web::scope("/a4b")
                    .wrap(from_fn(ready_gate))
                    .configure(super::a4b::routes),
            )
            .service(
                web::scope("")
                    .wrap(sessions)
                    .wrap(flashes)
                    // Probes and assets above get no CSRF cookie; every page does.
                    .wrap(from_fn(csrf::middleware))
                    .wrap(from_fn(ready_gate))
                    .configure(super::routes)
                    .default_service(web::to(|| async {
                        Err::<actix_web::HttpResponse, _>(AppError::NotFound)
                    })),
            )
    })
    .workers(workers)
    // Blocking work is database work: more threads than connections would only queue
    // (and hold memory) waiting for one.
    .worker_max_blocking_threads(blocking_threads)
    .listen(listener)?
    .run();
    Ok(server)
}
