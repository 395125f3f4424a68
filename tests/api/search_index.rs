//! The Users page's searches come from each instance's search index: they must show
//! exactly what the database's own queries show (every page, every order, every
//! filter, the counts), and keep up with changes made anywhere.

use std::collections::HashMap;

use chrono::TimeDelta;
use diesel::prelude::*;
use enroll::audit::Actor;
use enroll::db::schema::{invitations, outbound_emails, users};
use enroll::db::write_transaction;
use enroll::mail::MailKey;
use enroll::settings::InvitationSettings;
use enroll::users::invitations::{self as ops, Change};
use enroll::users::list::{self, Direction, ListQuery, PageFrom, SortKey};
use enroll::users::{EmailAddress, EnrollmentStatus, NewInvitee, PersonName};
use scraper::Selector;

use crate::support::*;

const FIRST: [&str; 6] = ["Ann", "Bob", "Cyd", "Dee", "Eve", "Fay"];
const LAST: [&str; 5] = ["Anderson", "Benson", "Carlson", "Dawson", "Ellison"];

/// `count` users invited straight in the database (as another instance would; the app
/// sends no mail), every email already sent, then a mix of statuses: enrolled, expired,
/// refused, still sending, expiring soon, pending. "son" matches all of them. Some
/// addresses have capitals, and some names capitals beyond ASCII.
fn seed(app: &TestApp, count: usize) {
    let now = app.clock.now();
    let mut conn = app.conn();
    let settings = InvitationSettings::load(&mut conn)
        .unwrap()
        .expect("invitations are set up");
    let actor = Actor::default();
    let mail_key = MailKey::ephemeral();
    let people: Vec<NewInvitee> = (0..count)
        .map(|n| {
            let (first, last) = (FIRST[n % 6], LAST[(n / 6) % 5]);
            let first = if n % 11 == 0 { "ÉLODIE Ann" } else { first };
            let domain = if n % 5 == 0 {
                "Example.COM"
            } else {
                "example.com"
            };
            NewInvitee {
                first_name: PersonName::parse(first, "first name").unwrap(),
                last_name: PersonName::parse(last, "last name").unwrap(),
                email: EmailAddress::parse(&format!(
                    "{}.{}.{n}@{domain}",
                    FIRST[n % 6].to_lowercase(),
                    last.to_lowercase()
                ))
                .unwrap(),
            }
        })
        .collect();
    for batch in people.chunks(500) {
        let change = Change { now, actor: &actor };
        ops::invite(&mut conn, &change, &settings, &mail_key, batch, None).unwrap();
    }
    write_transaction(&mut conn, |conn| {
        diesel::update(outbound_emails::table)
            .set((
                outbound_emails::status.eq("sent"),
                outbound_emails::sent_at.eq(now),
            ))
            .execute(conn)?;
        diesel::update(invitations::table)
            .set(invitations::sent_at.eq(now))
            .execute(conn)?;
        let ids: Vec<String> = users::table.order(users::id).select(users::id).load(conn)?;
        for (n, id) in ids.iter().enumerate() {
            let invitation = invitations::table.filter(invitations::user_id.eq(id));
            match n % 10 {
                0 | 1 => {
                    diesel::update(users::table.find(id))
                        .set(users::enrolled_at.eq(now))
                        .execute(conn)?;
                }
                2 => {
                    diesel::update(invitation)
                        .set(invitations::expires_at.eq(now - TimeDelta::days(1)))
                        .execute(conn)?;
                }
                3 => {
                    diesel::update(invitation)
                        .set((
                            invitations::sent_at.eq(None::<chrono::NaiveDateTime>),
                            invitations::delivery_failed_at.eq(now),
                        ))
                        .execute(conn)?;
                }
                4 => {
                    diesel::update(invitation)
                        .set(invitations::sent_at.eq(None::<chrono::NaiveDateTime>))
                        .execute(conn)?;
                }
                5 => {
                    diesel::update(invitation)
                        .set(invitations::expires_at.eq(now + TimeDelta::days(1)))
                        .execute(conn)?;
                }
                _ => {}
            }
        }
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
}

fn emails(page: &Page) -> Vec<String> {
    let selector = Selector::parse("tbody td.email").unwrap();
    page.html()
        .select(&selector)
        .map(|td| td.text().collect::<String>().trim().to_owned())
        .collect()
}

/// Each row's first name, last name, address and status, as shown.
fn rows(page: &Page) -> Vec<[String; 4]> {
    let row = Selector::parse("tbody tr").unwrap();
    let cell = Selector::parse("td").unwrap();
    let status = Selector::parse("td span").unwrap();
    page.html()
        .select(&row)
        .map(|tr| {
            let cells: Vec<String> = tr
                .select(&cell)
                .map(|td| td.text().collect::<String>().trim().to_owned())
                .collect();
            let status = tr
                .select(&status)
                .next()
                .map(|s| s.text().collect::<String>());
            [
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
                status.unwrap_or_default(),
            ]
        })
        .collect()
}

fn next_link(page: &Page) -> Option<String> {
    let selector = Selector::parse("a[rel=next]").unwrap();
    page.html()
        .select(&selector)
        .next()
        .and_then(|a| a.value().attr("href").map(str::to_owned))
}

/// The status chips' counts, by label.
fn chip_counts(page: &Page) -> HashMap<String, i64> {
    let chip = Selector::parse("a.chip").unwrap();
    let count = Selector::parse(".chip-count").unwrap();
    page.html()
        .select(&chip)
        .filter_map(|a| {
            let n: i64 = a
                .select(&count)
                .next()?
                .text()
                .collect::<String>()
                .trim()
                .parse()
                .ok()?;
            let label = a.text().collect::<String>();
            let label = label
                .trim()
                .trim_end_matches(&n.to_string())
                .trim()
                .to_owned();
            Some((label, n))
        })
        .collect()
}

/// Grace Hopper renamed "Amazing Grace" straight in the database, as another instance or
/// the command line would.
fn rename_grace_in_the_database(app: &TestApp) {
    let grace = app.user_id("grace@example.com");
    diesel::update(users::table.find(&grace))
        .set((
            users::first_name.eq("Amazing Grace"),
            users::name_key.eq(enroll::users::name_key("Amazing Grace", "Hopper")),
            users::search_key.eq(enroll::users::search_key(
                "Amazing Grace",
                "Hopper",
                "grace@example.com",
            )),
        ))
        .execute(&mut app.conn())
        .unwrap();
}

/// The database's own answer: the rows of up to `pages` pages of a view.
fn database_pages(app: &TestApp, query: &ListQuery, pages: usize) -> Vec<Vec<[String; 4]>> {
    let now = app.clock.now();
    let mut conn = app.conn();
    let mut query = query.clone();
    let mut seen = Vec::new();
    for _ in 0..pages {
        let page = list::page(&mut conn, &query, now).unwrap();
        seen.push(
            page.rows
                .iter()
                .map(|row| {
                    [
                        row.first_name.clone(),
                        row.last_name.clone(),
                        row.email.clone(),
                        row.status(now).label().to_owned(),
                    ]
                })
                .collect(),
        );
        let Some(next) = page.next else { break };
        query.from = PageFrom::After(next);
    }
    seen
}

/// The index's answer, through the page: the rows of up to `pages` pages.
async fn shown_pages(app: &TestApp, start: &str, pages: usize) -> Vec<Vec<[String; 4]>> {
    let mut seen = Vec::new();
    let mut url = Some(start.to_owned());
    while let Some(at) = url.take() {
        let page = app.get(&at).await;
        assert_eq!(page.status, 200, "{at}");
        seen.push(rows(&page));
        if seen.len() < pages {
            url = next_link(&page);
        }
    }
    seen
}

on_both_engines! {
    async fn searches_show_what_the_database_shows_in_every_order_filter_and_page() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        seed(&app, 1_200);
        app.forget_cached_views();
        let statuses: [(Option<EnrollmentStatus>, bool, &str); 5] = [
            (None, false, ""),
            (Some(EnrollmentStatus::Pending), false, "pending"),
            (Some(EnrollmentStatus::Expired), false, "expired"),
            (Some(EnrollmentStatus::DeliveryFailed), false, "delivery_failed"),
            (None, true, "expiring_soon"),
        ];
        // "son": every user (over the count cap); "ann": a first name; "dawson.1": some
        // addresses; "ee e": across first and last name; "élodie": capitals beyond ASCII
        // (the index finds them, the database shows them); nothing at all; no search
        // (everyone: the index lists them in name order, the database the rest).
        for term in ["son", "ann", "dawson.1", "ee e", "élodie", "zzz", ""] {
            for (status, expiring_soon, status_slug) in statuses {
                for sort in SortKey::ALL {
                    for direction in [Direction::Ascending, Direction::Descending] {
                        let query = ListQuery {
                            search: term.to_owned(),
                            status,
                            expiring_soon,
                            sort,
                            direction,
                            from: PageFrom::Start,
                            per_page: 25,
                        };
                        let url = format!(
                            "/users?q={}&status={status_slug}&sort={}&dir={}&per_page=25",
                            term.replace(' ', "+"),
                            sort.slug(),
                            direction.slug()
                        );
                        let expected = database_pages(&app, &query, 3);
                        assert_eq!(shown_pages(&app, &url, 3).await, expected, "{url}");
                    }
                }
            }
        }

        // Counts within a search: by status while 1,000 or fewer match, else not at all.
        let now = app.clock.now();
        for term in ["ann", "dawson.1", "ee e"] {
            let (by_status, _) = list::status_counts(&mut app.conn(), term, now).unwrap();
            let shown = chip_counts(&app.get(&format!("/users?q={}", term.replace(' ', "+"))).await);
            for (status, n) in by_status {
                if n > 0 {
                    assert_eq!(shown.get(status.label()), Some(&n), "{term}: {}", status.label());
                }
            }
        }
        // Every one of them came from the index, none from the database.
        let metrics = app.get("/metrics").await.body;
        assert!(metrics.contains("enroll_users_searches_total{by=\"index\"}"), "{metrics}");
        assert!(!metrics.contains("by=\"database\""), "{metrics}");

        let broad = app.get("/users?q=son").await;
        assert!(
            broad.body.contains("users match this search, so they are not counted by status"),
            "{}",
            broad.body
        );
    }
}

on_both_engines! {
    async fn a_search_keeps_up_with_changes_made_anywhere() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[
            ("Grace", "Hopper", "grace@example.com"),
            ("Ada", "Lovelace", "ada@example.com"),
        ])
        .await
        .assert_redirect_to("/users");
        assert_eq!(emails(&app.get("/users?q=grace").await), ["grace@example.com"]);

        // Changed straight in the database, as another instance or the command line
        // would: renamed, removed.
        rename_grace_in_the_database(&app);
        let mut conn = app.conn();
        let ada = app.user_id("ada@example.com");
        diesel::delete(invitations::table.filter(invitations::user_id.eq(&ada)))
            .execute(&mut conn)
            .unwrap();
        diesel::delete(users::table.find(&ada)).execute(&mut conn).unwrap();

        // Within the freshness window (a second by default), with nothing changed
        // through this instance.
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert_eq!(emails(&app.get("/users?q=amazing").await), ["grace@example.com"]);
        assert!(emails(&app.get("/users?q=lovelace").await).is_empty());

        // A change made through this instance shows at once.
        app.invite(&[("Ada", "Byron", "byron@example.com")])
            .await
            .assert_redirect_to("/users");
        assert_eq!(emails(&app.get("/users?q=byron").await), ["byron@example.com"]);
    }
}

/// On PostgreSQL the log's trigger notifies every instance: a change made elsewhere shows
/// on the next search even when the freshness window is a minute, and while nothing
/// changes a search asks the database nothing (the window no longer decides).
#[tokio::test]
#[cfg_attr(
    not(enroll_test_postgres),
    ignore = "needs PostgreSQL: set ENROLL_TEST_POSTGRES_URL"
)]
async fn on_postgresql_a_change_made_elsewhere_shows_at_once_whatever_the_window() {
    require_postgres();
    run_on(Engine::Postgres, async {
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| config.users_page_cache_ms = 60_000),
            ..AppOptions::default()
        })
        .await;
        app.set_up_invitations().await;
        app.invite(&[("Grace", "Hopper", "grace@example.com")])
            .await
            .assert_redirect_to("/users");
        assert_eq!(
            emails(&app.get("/users?q=grace").await),
            ["grace@example.com"]
        );

        // Renamed straight in the database, as another instance or the command line would.
        rename_grace_in_the_database(&app);

        // A new view each time (no rendered page is shared) while the notification
        // travels to the instance's listening connection: a few tries, seconds at
        // most, where the window alone would take a minute.
        let mut shown = Vec::new();
        for term in [
            "amazing", "amazin", "mazing", "amazi", "azing", "mazin", "zing", "amaz",
        ] {
            shown = emails(&app.get(&format!("/users?q={term}")).await);
            if !shown.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert_eq!(shown, ["grace@example.com"]);
        let metrics = app.get("/metrics").await.body;
        assert!(
            metrics.contains(r#"enroll_users_searches_total{by="index"}"#)
                && !metrics.contains(r#"enroll_users_searches_total{by="database"}"#),
            "{metrics}"
        );
    })
    .await;
}
