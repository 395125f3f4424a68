//! The stylesheet and the small progressive-enhancement script, built into the binary
//! so that it runs from any folder.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};

/// Bumped with each release so that browsers fetch new assets (`?v=` in the pages).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const STYLESHEET: &str = include_str!("../../static/app.css");
const SCRIPT: &str = include_str!("../../static/app.js");

pub async fn asset(name: web::Path<String>) -> HttpResponse {
    let (body, content_type) = match name.as_str() {
        "app.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(86_400),
        ]))
        .body(body)
}
