//! `GET /metrics`: what it counts after real work, and who may read it.

use chrono::TimeDelta;

use crate::support::*;

const METRICS_TOKEN: &str = "a metrics token of at least thirty-two characters";

/// The value of the series written exactly as `series` (name and labels).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    response.text().await.unwrap()
}

on_both_engines! {
    async fn metrics_count_requests_email_and_refusals() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.smtp.refuse_recipients_containing("nobody");
        app.invite(&[
            ("Ada", "Lovelace", "ada@example.com"),
            ("Alan", "Turing", "alan@example.com"),
            ("No", "Body", "nobody@example.com"),
        ])
        .await;
        // Waiting, before the worker's pass: an email queued a minute and a half ago.
        app.clock.advance(TimeDelta::seconds(90));
        let before = scrape(&app).await;
        assert_eq!(value(&before, "enroll_outbox_emails{state=\"queued\"}"), 3.0);
        let age = value(&before, "enroll_outbox_oldest_waiting_email_age_seconds");
        assert!((90.0..120.0).contains(&age), "{age}");

        app.deliver_due_emails().await;
        // A token that leads nowhere, and a wrong password.
        let token = "dGhpcyB0b2tlbiBsZWFkcyBub3doZXJlIGF0IGFsbCEh";
        app.client
            .get(app.url(&format!("/enroll/{token}")))
            .send()
            .await
            .unwrap();
        // A path that matches no route, with something secret-looking in it.
        app.client
            .get(app.url("/no/such/page-secret-4242"))
            .send()
            .await
            .unwrap();
        let stranger = browser();
        app.login_with(&stranger, ADMIN_EMAIL, "not the password at all")
            .await;

        let text = scrape(&app).await;
        assert_eq!(value(&text, "enroll_emails_sent_total"), 2.0);
        assert_eq!(value(&text, "enroll_emails_failed_total"), 1.0);
        assert_eq!(value(&text, "enroll_emails_deferred_total"), 0.0);
        assert_eq!(value(&text, "enroll_outbox_emails{state=\"sent\"}"), 2.0);
        assert_eq!(value(&text, "enroll_outbox_emails{state=\"failed\"}"), 1.0);
        assert_eq!(value(&text, "enroll_outbox_emails{state=\"queued\"}"), 0.0);
        assert_eq!(value(&text, "enroll_outbox_emails{state=\"sending\"}"), 0.0);
        assert_eq!(value(&text, "enroll_outbox_emails{state=\"cancelled\"}"), 0.0);
        assert_eq!(value(&text, "enroll_outbox_oldest_waiting_email_age_seconds"), 0.0);
        assert_eq!(value(&text, "enroll_sign_in_failures_total"), 1.0);
        // Reported; not asserted at 0: a lock met at start-up now and then is real.
        assert!(value(&text, "enroll_sqlite_busy_total") >= 0.0);
        assert_eq!(value(&text, "enroll_mail_outcome_record_failures_total"), 0.0);
        assert_eq!(
            value(
                &text,
                "enroll_http_requests_total{method=\"POST\",route=\"/users/invite\",status=\"303\"}"
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                "enroll_http_requests_total{method=\"GET\",route=\"/enroll/{token}\",status=\"404\"}"
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                "enroll_http_requests_total{method=\"POST\",route=\"/login\",status=\"401\"}"
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                "enroll_http_request_duration_seconds_count{method=\"POST\",route=\"/users/invite\"}"
            ),
            1.0
        );
        // Both sign-ins (the administrator's and the stranger's) took under 10 s.
        assert_eq!(
            value(
                &text,
                "enroll_http_request_duration_seconds_bucket{le=\"10.0\",method=\"POST\",route=\"/login\"}"
            ),
            2.0
        );
        assert!(!text.contains(token), "a token reached the metrics");
        assert!(!text.contains("secret-4242"), "a raw path reached the metrics");
        assert_eq!(
            value(&text, "enroll_db_pool_connections{pool=\"requests\",state=\"max\"}"),
            4.0
        );
        assert!(value(&text, "enroll_db_pool_connections{pool=\"requests\",state=\"idle\"}") >= 1.0);
        assert!(text.contains("enroll_db_pool_connections{pool=\"mail\",state=\"in_use\"}"));
        assert!(text.trim_end().ends_with("# EOF"));

        // The sign-in limit per account: five tries, then 429, counted by limit.
        for _ in 0..6 {
            app.login_with(&stranger, HELPDESK_EMAIL, "not the password at all")
                .await;
        }
        let text = scrape(&app).await;
        assert_eq!(
            value(&text, "enroll_rate_limit_refusals_total{limit=\"sign_in_per_account\"}"),
            1.0
        );
    }
}

/// A request that a proxy on this machine forwards from elsewhere: the connection is
/// loopback, the client is not.
async fn from_outside(app: &TestApp, authorization: Option<&str>) -> u16 {
    let mut request = app
        .client
        .get(app.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9");
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn metrics_are_hidden_from_clients_elsewhere_without_the_token() {
    let app = spawn_app_with(AppOptions {
        tweak: Some(|config| config.trust_proxy = true),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(from_outside(&app, None).await, 404);
    assert_eq!(
        from_outside(&app, Some(&format!("Bearer {METRICS_TOKEN}"))).await,
        404
    );
    // The same request from this machine, through no proxy.
    let local = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(local.status(), 200);
}

#[tokio::test]
async fn metrics_answer_clients_elsewhere_with_the_token() {
    let app = spawn_app_with(AppOptions {
        tweak: Some(|config| {
            config.trust_proxy = true;
            config.metrics_token = Some(METRICS_TOKEN.to_owned().into());
        }),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(from_outside(&app, None).await, 403);
    assert_eq!(from_outside(&app, Some("Bearer wrong")).await, 403);
    assert_eq!(from_outside(&app, Some(METRICS_TOKEN)).await, 403);
    assert_eq!(
        from_outside(&app, Some(&format!("Bearer {METRICS_TOKEN}"))).await,
        200
    );
}
