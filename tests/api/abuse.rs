//! Clients trying to slow everyone down: a sign-in flood from many addresses, and
//! signed-in users sending work that costs the server more than it costs them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

/// A browser behind the trusted proxy, which says the client is at `address`.
fn browser_at(address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    reqwest::Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

#[derive(Default)]
struct FloodTally {
    attempts: AtomicUsize,
    refused: AtomicUsize,
    refused_without_retry_after: AtomicUsize,
    unexpected: AtomicUsize,
}

/// Fails sign-in as fast as it can from `clients` addresses, each typing a new address
/// every time (so that no per-account limit applies), until `stop`.
async fn flood(address: String, clients: usize, stop: Arc<AtomicBool>, tally: Arc<FloodTally>) {
    let mut tasks = Vec::new();
    for n in 0..clients {
        let (address, stop, tally) = (address.clone(), stop.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let client = browser_at(&format!("10.77.{}.{}", n / 200, n % 200 + 1));
            let login = client.get(format!("{address}/login")).send().await.unwrap();
            let login = Page::read(login).await;
            let token = login.csrf_token();
            let mut attempt = 0;
            while !stop.load(Ordering::Relaxed) {
                attempt += 1;
                let typed = format!("nobody{n}.{attempt}@example.com");
                let answer = client
                    .post(format!("{address}/login"))
                    .header("Origin", &address)
                    .form(&[
                        ("email", typed.as_str()),
                        ("password", "not the password at all"),
                        ("csrf_token", token.as_str()),
                    ])
                    .send()
                    .await;
                let Ok(answer) = answer else { continue };
                tally.attempts.fetch_add(1, Ordering::Relaxed);
                match answer.status().as_u16() {
                    401 => {}
                    429 => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                        if answer.headers().get("retry-after").is_none() {
                            tally
                                .refused_without_retry_after
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        // Waits as told. A client that does not only adds refusals, which
                        // cost no hashing: a plain HTTP flood, for the proxy in front (on
                        // a test machine it would mostly measure the flood's own client).
                        let seconds = answer
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse().ok())
                            .unwrap_or(1u64);
                        tokio::time::sleep(Duration::from_secs(seconds.min(1))).await;
                    }
                    _ => {
                        tally.unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = answer.bytes().await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

fn p95(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 95).div_ceil(100) - 1]
}

on_both_engines! {
    async fn a_sign_in_flood_leaves_every_page_of_a_signed_in_administrator_fast() {
        // Each failing attempt ran Argon2 (19 MiB, tens of milliseconds) on the blocking
        // pool every database call waits for: a few dozen attempts at once pushed every
        // page, health check included, to hundreds of milliseconds.
        // One flood at a time in this process (the SQLite and PostgreSQL runs).
        static FLOODING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _alone = FLOODING.lock().await;
        let app = spawn_app_with(AppOptions {
            tweak: Some(|config| config.trust_proxy = true),
            ..AppOptions::default()
        })
        .await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")]).await;
        let ada = app.user_id("ada@example.com");
        let pages = [
            "/users".to_owned(),
            format!("/users/{ada}"),
            "/healthz".to_owned(),
            "/settings/invitations".to_owned(),
            "/audit".to_owned(),
        ];
        for page in &pages {
            assert_eq!(app.get(page).await.status, 200, "{page}");
        }

        // The flood runs on a thread and runtime of its own, so that its clients do not
        // delay the administrator's requests in this test's runtime.
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(FloodTally::default());
        let flooder = {
            let (address, stop, tally) = (app.address.clone(), stop.clone(), tally.clone());
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(flood(address, 48, stop, tally));
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;

        let mut latencies = Vec::new();
        let mut by_page = std::collections::BTreeMap::new();
        let mut slowest = (Duration::ZERO, String::new());
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            for page in &pages {
                let started = Instant::now();
                let answer = app.get(page).await;
                let took = started.elapsed();
                assert_eq!(answer.status, 200, "{page} during the flood");
                by_page.entry(page.clone()).or_insert_with(Vec::new).push(took);
                if took > slowest.0 {
                    slowest = (took, page.clone());
                }
                latencies.push(took);
            }
        }
        stop.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || flooder.join().unwrap())
            .await
            .unwrap();

        for (page, samples) in by_page {
            println!("{page}: p95 {:?}", p95(samples));
        }
        let p95 = p95(latencies.clone());
        let attempts = tally.attempts.load(Ordering::Relaxed);
        let refused = tally.refused.load(Ordering::Relaxed);
        println!(
            "{} page loads during the flood: p95 {p95:?}, slowest {:?} ({}); \
             {attempts} sign-in attempts, {refused} refused with 429",
            latencies.len(),
            slowest.0,
            slowest.1
        );
        assert!(
            p95 < Duration::from_millis(100),
            "the administrator's pages took {p95:?} (p95) during the flood"
        );
        assert!(attempts > 100, "the flood made only {attempts} attempts");
        assert_eq!(tally.unexpected.load(Ordering::Relaxed), 0);
        assert!(refused > 0, "no sign-in attempt of the flood was refused");
        assert_eq!(tally.refused_without_retry_after.load(Ordering::Relaxed), 0);
    }
}

on_both_engines! {
    async fn a_one_letter_search_is_not_run_and_the_page_says_so() {
        // One- and two-letter terms have no trigram to use an index: each one typed was a
        // scan plus a count on the request thread, and each a cache entry of its own.
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[
            ("Ada", "Lovelace", "ada@example.com"),
            ("Grace", "Hopper", "grace@navy.example"),
        ])
        .await;
        for term in ["a", "ur"] {
            let page = app.get(&format!("/users?q={term}")).await;
            assert_eq!(page.status, 200);
            let text = page.text();
            assert!(
                text.contains("Type at least 3 characters to search"),
                "{term}: {text}"
            );
            // Everyone is listed, as without a search, and the term stays in the box.
            assert!(text.contains("ada@example.com") && text.contains("grace@navy.example"));
            assert_eq!(page.input_value("#q").as_deref(), Some(term));
        }
        let searched = app.get("/users?q=hop").await;
        assert!(!searched.text().contains("Type at least 3 characters"));
        assert!(!searched.text().contains("ada@example.com"));
    }
}

on_both_engines! {
    async fn an_invite_form_of_300_thousand_fields_is_cut_while_it_is_read() {
        // Every submitted field became a row object before the form was cut to 1,000
        // rows: about 300,000 of them from a 2 MB body.
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let token = app.get("/users/invite").await.csrf_token();
        let mut body = format!("csrf_token={}&action=send", urlencode(&token));
        while body.len() + 7 < 2 * 1024 * 1024 {
            body.push_str("&email=");
        }
        let fields = body.matches('&').count();
        assert!(fields > 299_000, "{fields} fields");
        let started = Instant::now();
        let answer = app
            .client
            .post(app.url("/users/invite"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", &app.address)
            .body(body)
            .send()
            .await
            .unwrap();
        let page = Page::read(answer).await;
        let took = started.elapsed();
        println!("a {fields}-field invite form answered in {took:?}");
        assert_eq!(page.status, 422, "{}", page.text());
        assert!(page.text().contains("One submission can invite at most 1000 people"));
        assert_eq!(page.input_values("email").len(), 1000);
        assert_eq!(app.count("users"), 0);
        assert_eq!(app.count("invitations"), 0);
        assert!(took < Duration::from_millis(400), "answered in {took:?}");
    }
}
