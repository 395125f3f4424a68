//! One slow query never takes the console down: a read past its deadline gets a clear
//! page and gives its connection back; expensive reads beyond their slots are refused at
//! once, and sign-in, enrollment and the health checks keep answering meanwhile; an
//! instance with no free connection says it is not ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use enroll::accounts::Role;

use crate::support::*;

const SEED_SQLITE: &str = include_str!("plans/seed_sqlite.sql");
const SEED_POSTGRES: &str = include_str!("plans/seed_postgres.sql");

/// 100,000 users straight into the app's database (then its counts are stale: forgotten).
fn seed_many(app: &TestApp) {
    let mut conn = app.conn();
    let seed = match current_engine() {
        Engine::Sqlite => SEED_SQLITE,
        Engine::Postgres => SEED_POSTGRES,
    };
    conn.batch_execute(seed).unwrap();
    app.forget_cached_views();
}

on_both_engines! {
    async fn a_read_past_its_deadline_gets_a_clear_page_and_frees_its_connection() {
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| {
                config.read_timeout_ms = 1;
                config.users_page_cache_ms = 0;
            }),
            ..AppOptions::default()
        })
        .await;
        app.login_admin().await;
        seed_many(&app);
        // No user is deactivated: each try walks all 100,000 in the database by address,
        // far past a millisecond (searches, and filters in name order, are answered by the
        // search index; other orders are not). More tries than there are connections and
        // slots: each one gave its own back.
        for _ in 0..8 {
            let page = app.get("/users?status=deactivated&sort=email").await;
            assert_eq!(page.status, 503, "{}", page.text());
            let text = page.text();
            assert!(text.contains("This search took too long"), "{text}");
            assert!(text.contains("Narrow it"), "{text}");
        }
        assert!(app.db.metrics().query_limit_trips("read_deadline") >= 8);
        // Cheap pages and the health checks are untouched.
        let first_page = app.get("/users").await;
        assert_eq!(first_page.status, 200, "{}", first_page.text());
        for probe in ["/healthz", "/readyz"] {
            let response = browser().get(app.url(probe)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{probe}");
        }
        let metrics = browser().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains("enroll_query_limit_trips_total{limit=\"read_deadline\"}"),
            "{metrics}"
        );
    }
}

on_both_engines! {
    async fn a_flood_of_expensive_searches_leaves_sign_in_enrollment_and_health_answering() {
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| config.users_page_cache_ms = 0),
            ..AppOptions::default()
        })
        .await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.org")]).await;
        let link = app.delivered_to("ada@example.org", 1).await.enrollment_path();
        seed_many(&app);

        // Eight help-desk people filtering as fast as they can: each filter walks all
        // 100,000 users (none is deactivated), and there are more of them than slots for
        // expensive reads.
        let mut searchers = Vec::new();
        for n in 0..8 {
            let email = format!("desk{n}@example.com");
            app.add_account(&email, HELPDESK_PASSWORD, Role::Helpdesk);
            let client = browser();
            let signed_in = app.login_with(&client, &email, HELPDESK_PASSWORD).await;
            assert_eq!(signed_in.status, 303, "{}", signed_in.text());
            searchers.push(client);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (answered, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut flood = Vec::new();
        for client in searchers {
            let (stop, answered, refused) = (stop.clone(), answered.clone(), refused.clone());
            let url = app.url("/users?status=deactivated&sort=email&per_page=100");
            flood.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let response = client.get(&url).send().await.unwrap();
                    match response.status().as_u16() {
                        200 => answered.fetch_add(1, Ordering::SeqCst),
                        // Refused at once (Retry-After), or cut short at its deadline.
                        503 if response.headers().contains_key("retry-after") => {
                            refused.fetch_add(1, Ordering::SeqCst)
                        }
                        503 => {
                            let text = response.text().await.unwrap();
                            assert!(text.contains("took too long"), "{text}");
                            answered.fetch_add(1, Ordering::SeqCst)
                        }
                        other => panic!("a search answered {other}"),
                    };
                }
            }));
        }
        // Wait until the flood is on: some searches answered, some refused at once.
        while refused.load(Ordering::SeqCst) < 3 || answered.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }

        // Meanwhile: health checks, a sign-in, and an enrollment, all answered.
        for _ in 0..3 {
            for probe in ["/healthz", "/readyz", "/livez"] {
                let response = browser().get(app.url(probe)).send().await.unwrap();
                assert_eq!(response.status(), 200, "{probe} during the flood");
            }
            let someone = browser();
            let signed_in = app.login_with(&someone, ADMIN_EMAIL, ADMIN_PASSWORD).await;
            assert_eq!(signed_in.status, 303, "sign-in during the flood: {}", signed_in.text());
        }
        let invitee = browser();
        let enroll_page = app.get_with(&invitee, &link).await;
        assert_eq!(enroll_page.status, 200, "{}", enroll_page.text());
        let joined = app
            .post_with(&invitee, &link, &fields(&[("csrf_token", &enroll_page.csrf_token())]))
            .await;
        assert!(joined.status == 200 || joined.status == 303, "{}", joined.text());
        let refused_so_far = refused.load(Ordering::SeqCst);

        stop.store(true, Ordering::SeqCst);
        for searcher in flood {
            searcher.await.unwrap();
        }
        assert!(refused_so_far > 0);
        assert!(app.db.metrics().query_limit_trips("admission") > 0);
        // Ada joined: the Users page says so.
        app.assert_status("ada@example.org", "Enrolled").await;
    }
}

on_both_engines! {
    async fn an_instance_with_no_free_connection_is_not_ready() {
        let app = spawn_app().await;
        let ready = browser().get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        // Every pooled connection lent out (the test app's pool holds 4).
        let db = app.db.clone();
        let held = tokio::task::spawn_blocking(move || {
            (0..4).map(|_| db.get().unwrap()).collect::<Vec<_>>()
        })
        .await
        .unwrap();
        let busy = browser().get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(busy.status(), 503);
        assert!(busy.text().await.unwrap().contains("no database connection"));
        // The process itself is alive.
        assert_eq!(browser().get(app.url("/livez")).send().await.unwrap().status(), 200);
        drop(held);
        let again = browser().get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(again.status(), 200);
    }
}

on_both_engines! {
    async fn a_search_too_broad_to_count_says_so_and_a_narrower_one_is_counted() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        for batch in 0..2 {
            let people: Vec<(String, String, String)> = (0..600)
                .map(|n| {
                    let n = batch * 600 + n;
                    ("Broad".to_owned(), format!("Person{n}"), format!("broad.person.{n}@example.com"))
                })
                .collect();
            app.invite(&people).await.assert_redirect_to("/users");
        }
        let broad = app.get("/users?q=broad").await;
        assert_eq!(broad.status, 200);
        let text = broad.text();
        assert!(text.contains("All 1,000+"), "{text}");
        assert!(text.contains("More than 1,000 users match."), "{text}");
        assert!(text.contains("not counted by status"), "{text}");
        // No partial count: only the All chip has a number (a row's "Sending 1 Dec" is
        // a status and a date, not a count).
        let counts: Vec<String> = broad
            .html()
            .select(&scraper::Selector::parse("nav.chips .chip-count").unwrap())
            .map(|count| count.text().collect())
            .collect();
        assert_eq!(counts, ["1,000+"], "no partial count is shown: {text}");
        // The page itself is still the first 50 in name order.
        assert_eq!(broad.html().select(&scraper::Selector::parse("tbody tr").unwrap()).count(), 50);
        // 311 people: Person1, Person10-19, Person100-199 and Person1000-1199.
        let narrow = app.get("/users?q=person1&per_page=100").await.text();
        assert!(narrow.contains("All 311") && narrow.contains("Sending 311"), "{narrow}");
        assert!(narrow.contains("311 users match."), "{narrow}");
        assert!(!narrow.contains("not counted by status"), "{narrow}");
    }
}

on_both_engines! {
    async fn a_write_past_its_deadline_changes_nothing_and_says_so() {
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| config.write_timeout_ms = 500),
            ..AppOptions::default()
        })
        .await;
        app.set_up_invitations().await;
        let form = app.get("/users/invite").await;
        assert_eq!(form.status, 200);
        let token = form.csrf_token();
        let invite = fields(&[
            ("csrf_token", &token),
            ("first_name", "Grace"),
            ("last_name", "Hopper"),
            ("email", "grace@example.org"),
            ("action", "send"),
        ]);
        // Another writer holds the invitations table: the invite waits for it, past the
        // write deadline.
        let mut blocker = app.conn();
        let lock = match current_engine() {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN; LOCK TABLE invitations IN EXCLUSIVE MODE",
        };
        blocker.batch_execute(lock).unwrap();
        let refused = app.post_with(&app.client, "/users/invite", &invite).await;
        blocker.batch_execute("ROLLBACK").unwrap();
        drop(blocker);
        assert_eq!(refused.status, 503, "{}", refused.text());
        assert!(refused.text().contains("nothing was changed"), "{}", refused.text());
        assert!(app.db.metrics().query_limit_trips("write_deadline") >= 1);
        let users = app.get("/users?q=grace").await;
        assert!(users.text().contains("No users match"), "nothing was saved: {}", users.text());
        assert_eq!(app.count("outbound_emails"), 0);
        // With the lock gone, the same invite goes through.
        app.invite(&[("Grace", "Hopper", "grace@example.org")])
            .await
            .assert_redirect_to("/users");
        assert!(app.get("/users?q=grace").await.text().contains("grace@example.org"));
    }
}

on_both_engines! {
    async fn a_filtered_api_search_is_an_expensive_read_too() {
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| {
                config.read_timeout_ms = 1;
                config.users_page_cache_ms = 0;
            }),
            ..AppOptions::default()
        })
        .await;
        let api = crate::a4b::A4b::admin(&app).await;
        seed_many(&app);
        // Stopped at the read deadline like the Users page's search: a 503 the SDK's
        // retry handler tries again, never a 500. No user is deactivated, so the database
        // walks all of them by address (most are pending: with PENDING, a warm cache
        // sometimes found the page's 50 within the millisecond).
        let answer = api
            .call(
                "SearchUsers",
                serde_json::json!({
                    "MaxResults": 50,
                    "Filters": [{ "Key": "EnrollmentStatus", "Values": ["DEREGISTERING"] }],
                    "SortCriteria": [{ "Key": "Email", "Value": "DESC" }],
                }),
            )
            .await;
        answer.refused(503, "ServiceUnavailableException");
        assert!(app.db.metrics().query_limit_trips("read_deadline") >= 1);
        // Without a filter it is a keyset page, answered as before.
        let page = api.call("SearchUsers", serde_json::json!({ "MaxResults": 5 })).await.ok();
        assert_eq!(page["Users"].as_array().map(Vec::len), Some(5));
    }
}
