//! Single sign-on attempts in progress: created when the browser is sent to the
//! provider, consumed once when it comes back, so that a callback cannot be replayed
//! (on any instance). Only the state's hash is stored; the PKCE verifier is sealed.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::crypto;
use crate::db::DbConnection;
use crate::db::schema::oidc_sign_ins;

/// How long the person has at the identity provider.
pub const LIFETIME: TimeDelta = TimeDelta::minutes(10);

pub fn state_hash(state: &str) -> String {
    crypto::sha256_hex(state.as_bytes())
}

pub fn create(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    state: &str,
    nonce: &str,
    sealed_verifier: &str,
) -> QueryResult<()> {
    // Attempts nobody finished are of no use once expired.
    diesel::delete(oidc_sign_ins::table.filter(oidc_sign_ins::expires_at.lt(now - LIFETIME)))
        .execute(conn)?;
    diesel::insert_into(oidc_sign_ins::table)
        .values((
            oidc_sign_ins::state_hash.eq(state_hash(state)),
            oidc_sign_ins::nonce.eq(nonce),
            oidc_sign_ins::pkce_verifier.eq(sealed_verifier),
            oidc_sign_ins::created_at.eq(now),
            oidc_sign_ins::expires_at.eq(now + LIFETIME),
        ))
        .execute(conn)?;
    Ok(())
}

/// What taking an attempt back found.
pub enum Consumed {
    /// Live and now used: its nonce and sealed PKCE verifier.
    Fresh {
        nonce: String,
        sealed_verifier: String,
    },
    /// Used before: a replayed callback.
    AlreadyUsed,
    Expired,
    Unknown,
}

/// Marks the attempt with `state` used, once: of two callbacks with one state, only the
/// first finds it unused (the conditional update decides, on both engines).
pub fn consume(conn: &mut DbConnection, now: NaiveDateTime, state: &str) -> QueryResult<Consumed> {
    let hash = state_hash(state);
    let row: Option<(String, String, NaiveDateTime, Option<NaiveDateTime>)> = oidc_sign_ins::table
        .find(&hash)
        .select((
            oidc_sign_ins::nonce,
            oidc_sign_ins::pkce_verifier,
            oidc_sign_ins::expires_at,
            oidc_sign_ins::used_at,
        ))
        .first(conn)
        .optional()?;
    let Some((nonce, sealed_verifier, expires_at, used_at)) = row else {
        return Ok(Consumed::Unknown);
    };
    if used_at.is_some() {
        return Ok(Consumed::AlreadyUsed);
    }
    if expires_at <= now {
        return Ok(Consumed::Expired);
    }
    let changed = diesel::update(
        oidc_sign_ins::table
            .find(&hash)
            .filter(oidc_sign_ins::used_at.is_null()),
    )
    .set(oidc_sign_ins::used_at.eq(now))
    .execute(conn)?;
    Ok(if changed == 1 {
        Consumed::Fresh {
            nonce,
            sealed_verifier,
        }
    } else {
        Consumed::AlreadyUsed
    })
}

/// Whether an attempt with `state` was completed already (tells a replay from a forgery).
pub fn was_used(conn: &mut DbConnection, state: &str) -> QueryResult<bool> {
    let used: Option<Option<NaiveDateTime>> = oidc_sign_ins::table
        .find(state_hash(state))
        .select(oidc_sign_ins::used_at)
        .first(conn)
        .optional()?;
    Ok(matches!(used, Some(Some(_))))
}
