//! Liveness, health and readiness for load balancers and orchestrators.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpResponse, web};

use super::request::AppState;
use crate::db::DbError;

/// False until this instance's migrations are done (another instance may hold the
/// migration lock for a while).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Answers without touching anything: the process is up.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// The database answers.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok"),
        Err(error) => {
            tracing::warn!(%error, "health check: database unavailable");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("database unavailable")
        }
    }
}

/// Ready to serve the console: migrations applied, and the database answers on a
/// connection free within a second (an instance whose every connection is busy should
/// get no more traffic for now).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if !state.readiness.is_ready() {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("starting: database migrations are running");
    }
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok"),
        Err(DbError::Pool(_)) => {
            let pool = state.db.pool_use();
            tracing::warn!(
                in_use = pool.open - pool.idle,
                max = pool.max,
                "not ready: no database connection free"
            );
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("busy: no database connection free")
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unavailable");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("database unavailable")
        }
    }
}
