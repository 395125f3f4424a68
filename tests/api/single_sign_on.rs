//! Single sign-on against a real OpenID provider (npm `oidc-provider`, started per test
//! by support/oidc.rs): the whole redirect dance over HTTP, with the provider's own login
//! and consent forms, and every refusal the issue lists, each audited.

use std::net::TcpListener;

use enroll::config::Config;

use crate::support::*;

pub const IDP_NAME: &str = "Northwind ID";

/// The app with single sign-on through a provider of its own; `tweak` changes the
/// configuration further (group mapping, SSO only...).
pub async fn spawn_with_provider(tweak: fn(&mut Config, &str)) -> (TestApp, TestProvider) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let provider = TestProvider::start(&format!("{address}/login/oidc/callback"));
    let issuer = provider.issuer.clone();
    let app = spawn_app_with(AppOptions {
        listener: Some(listener),
        configure: Some(Box::new(move |config: &mut Config| {
            config.oidc_issuer = Some(issuer.clone());
            config.oidc_client_id = Some(OIDC_CLIENT_ID.to_owned());
            config.oidc_client_secret = Some(OIDC_CLIENT_SECRET.to_owned().into());
            config.oidc_name = IDP_NAME.to_owned();
            tweak(config, &issuer);
        })),
        ..AppOptions::default()
    })
    .await;
    // The callback is <public URL>/login/oidc/callback.
    app.set_up_invitations_with(&[("public_url", &address)])
        .await;
    (app, provider)
}

fn resolve(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

/// The form on a provider page: its action (absolute) and its fields, with `login`
/// filled in on the login form.
fn provider_form(url: &str, page: &Page, login: &str) -> Option<(String, Vec<(String, String)>)> {
    let html = page.html();
    let form_selector = scraper::Selector::parse("form").unwrap();
    let input_selector = scraper::Selector::parse("input[name]").unwrap();
    let form = html.select(&form_selector).next()?;
    let action = resolve(url, form.value().attr("action").unwrap_or(url));
    let fields = form
        .select(&input_selector)
        .map(|input| {
            let name = input.value().attr("name").unwrap_or_default().to_owned();
            let value = match name.as_str() {
                "login" => login.to_owned(),
                "password" => "any password: the development login takes any".to_owned(),
                _ => input.value().attr("value").unwrap_or_default().to_owned(),
            };
            (name, value)
        })
        .collect();
    Some((action, fields))
}

/// Clicks "Sign in with <name>" and goes through the provider as a person would:
/// follows every redirect, fills the development login form with `login`, accepts the
/// consent form. Returns the app's answer to the callback, and the callback URL.
pub async fn through_provider(
    app: &TestApp,
    client: &reqwest::Client,
    login: &str,
) -> (Page, String) {
    let login_page = app.get_with(client, "/login").await;
    assert_eq!(
        login_page.element_text("a[role=button][href='/login/oidc']"),
        Some(format!("Sign in with {IDP_NAME}")),
        "the sign-in page offers single sign-on"
    );
    let (_, callback) = through_provider_without_callback(app, client, login).await;
    assert!(
        callback.starts_with(&app.url("/login/oidc/callback?")),
        "{callback}"
    );
    let page = Page::read(client.get(&callback).send().await.unwrap()).await;
    (page, callback)
}

async fn failures(app: &TestApp) -> String {
    app.get("/audit?action=sign_in_failed").await.text()
}

on_both_engines! {
    #[needs(enroll_test_oidc, "needs node and the npm package oidc-provider: npm install --prefix target/oidc-provider oidc-provider@8")]
    async fn an_enabled_account_signs_in_through_the_provider_once_per_callback() {
        let (app, provider) = spawn_with_provider(|_, _| {}).await;
        let client = browser();
        let (page, callback) = through_provider(&app, &client, HELPDESK_EMAIL).await;
        page.assert_redirect_to("/users");
        assert!(callback.contains("code=") && callback.contains("state="));
        let users = app.get_with(&client, "/users").await;
        assert_eq!(users.status, 200);
        assert!(users.text().contains(HELPDESK_EMAIL));
        let audit = app.get("/audit?action=sign_in").await.text();
        assert!(audit.contains(&format!("single sign-on ({})", provider.issuer)), "{audit}");

        // The same answer again (a replay, with this browser's cookies): refused.
        let replay = Page::read(client.get(&callback).send().await.unwrap()).await;
        assert_eq!(replay.status, 403);
        assert!(replay.text().contains("used already"), "{}", replay.text());
        // ...and from another browser.
        let other = browser();
        let replay = Page::read(other.get(&callback).send().await.unwrap()).await;
        assert_eq!(replay.status, 403);
        assert!(replay.text().contains("used already"));
        assert_eq!(app.get_with(&other, "/users").await.status, 303);
        assert!(failures(&app).await.contains("replayed callback"));
    }
}

on_both_engines! {
    #[needs(enroll_test_oidc, "needs node and the npm package oidc-provider: npm install --prefix target/oidc-provider oidc-provider@8")]
    async fn unknown_unverified_and_disabled_addresses_are_refused() {
        let (app, _provider) = spawn_with_provider(|_, _| {}).await;
        // No console account, and no group mapping to create one.
        let client = browser();
        let (page, _) = through_provider(&app, &client, "stranger@example.com").await;
        assert_eq!(page.status, 403);
        assert!(page.text().contains("There is no console account for stranger@example.com"));
        assert_eq!(app.get_with(&client, "/users").await.status, 303);

        // An account exists, but the provider has not verified the address.
        app.add_account("unverified.kim@example.com", "kim's long password", enroll::accounts::Role::Helpdesk);
        let (page, _) = through_provider(&app, &browser(), "unverified.kim@example.com").await;
        assert_eq!(page.status, 403);
        assert!(page.text().contains("has not verified the address"), "{}", page.text());

        // A disabled account.
        let id = app.account_id(HELPDESK_EMAIL);
        app.submit(&format!("/accounts/{id}"), &format!("/accounts/{id}/disable"), &fields(&[("confirm", "yes")]))
            .await
            .assert_redirect_to(&format!("/accounts/{id}"));
        let client = browser();
        let (page, _) = through_provider(&app, &client, HELPDESK_EMAIL).await;
        assert_eq!(page.status, 403, "{}", page.text());
        assert!(page.text().contains("is disabled"));
        assert_eq!(app.get_with(&client, "/users").await.status, 303);

        let audit = failures(&app).await;
        for reason in ["no console account with this email", "email not verified", "account disabled"] {
            assert!(audit.contains(reason), "{reason}: {audit}");
        }
        assert_eq!(app.count("accounts"), 3);
    }
}

on_both_engines! {
    #[needs(enroll_test_oidc, "needs node and the npm package oidc-provider: npm install --prefix target/oidc-provider oidc-provider@8")]
    async fn an_answer_for_another_browser_or_from_another_issuer_is_refused() {
        let (app, _provider) = spawn_with_provider(|_, _| {}).await;
        // State mismatch: the answer reaches a browser that did not start this sign-in
        // (an attacker's answer planted in a victim's browser: login CSRF).
        let victim = browser();
        let attacker = browser();
        let (_, callback) = through_provider_without_callback(&app, &attacker, HELPDESK_EMAIL).await;
        let page = Page::read(victim.get(&callback).send().await.unwrap()).await;
        assert_eq!(page.status, 403);
        assert!(page.text().contains("did not start in this browser"));
        assert_eq!(app.get_with(&victim, "/users").await.status, 303);

        // A state that was never issued, in a browser that has a sign-in under way.
        let tampered = replace_param(&callback, "state", "forged-state");
        let page = Page::read(attacker.get(&tampered).send().await.unwrap()).await;
        assert_eq!(page.status, 403);
        assert!(page.text().contains("did not start in this browser"));

        // The answer names another issuer (RFC 9207 mix-up defense).
        let (_, callback) = through_provider_without_callback(&app, &attacker, HELPDESK_EMAIL).await;
        let forged = replace_param(&callback, "iss", "https://evil.example.com");
        let page = Page::read(attacker.get(&forged).send().await.unwrap()).await;
        assert_eq!(page.status, 403);
        assert!(page.text().contains("not the one this console trusts"));
        assert_eq!(app.get_with(&attacker, "/users").await.status, 303);

        // Nothing, or rubbish, in the callback: the same clear refusal, never an error.
        for query in ["", "?state=", "?state=%00%0d%0a&code=x&iss=%0d%0aX-Injected:%201"] {
            let page = app.get_with(&attacker, &format!("/login/oidc/callback{query}")).await;
            assert_eq!(page.status, 403, "{query}");
            assert!(page.text().contains("did not start in this browser"), "{query}");
        }

        let audit = failures(&app).await;
        assert!(audit.contains("state mismatch"), "{audit}");
        assert!(audit.contains("wrong issuer"), "{audit}");
    }
}

on_both_engines! {
    #[needs(enroll_test_oidc, "needs node and the npm package oidc-provider: npm install --prefix target/oidc-provider oidc-provider@8")]
    async fn a_provider_whose_issuer_differs_from_the_configured_one_is_refused() {
        // Configured as localhost; the provider says 127.0.0.1: discovery does not match.
        let (app, _provider) = spawn_with_provider(|config, issuer| {
            config.oidc_issuer = Some(issuer.replace("127.0.0.1", "localhost"));
        })
        .await;
        let client = browser();
        let page = app.get_with(&client, "/login/oidc").await;
        assert_eq!(page.status, 403, "{}", page.text());
        assert!(page.text().contains("not the one this console trusts"));
        assert!(failures(&app).await.contains("wrong issuer"));
    }
}

on_both_engines! {
    #[needs(enroll_test_oidc, "needs node and the npm package oidc-provider: npm install --prefix target/oidc-provider oidc-provider@8")]
    async fn group_mapping_creates_accounts_and_single_sign_on_can_be_the_only_way_in() {
        let (app, _provider) = spawn_with_provider(|config, _| {
            config.oidc_scopes = "email profile groups".to_owned();
            config.oidc_admin_groups = vec!["enroll-admins".to_owned()];
            config.oidc_helpdesk_groups = vec!["enroll-helpdesk".to_owned()];
            config.oidc_only = true;
            config.oidc_break_glass = vec![ADMIN_EMAIL.to_owned()];
        })
        .await;
        let client = browser();
        let (page, _) = through_provider(&app, &client, "admin.new@example.com").await;
        page.assert_redirect_to("/users");
        // An administrator: the accounts page opens.
        assert_eq!(app.get_with(&client, "/accounts").await.status, 200);
        let desk = browser();
        through_provider(&app, &desk, "helpdesk.new@example.com").await.0.assert_redirect_to("/users");
        assert_eq!(app.get_with(&desk, "/accounts").await.status, 403);
        // Not in a mapped group: no account.
        let (page, _) = through_provider(&app, &browser(), "someone.else@example.com").await;
        assert_eq!(page.status, 403);
        let audit = app.get("/audit?action=account_add").await.text();
        assert!(audit.contains("Administrator, from single sign-on (groups: enroll-admins)"), "{audit}");
        assert!(audit.contains("Help desk, from single sign-on (groups: enroll-helpdesk)"), "{audit}");

        // Passwords are refused, but for the break-glass administrator.
        let page = app.login_with(&browser(), HELPDESK_EMAIL, HELPDESK_PASSWORD).await;
        assert_eq!(page.status, 401, "{}", page.text());
        assert!(page.text().contains(&format!("use \"Sign in with {IDP_NAME}\"")));
        app.login_with(&browser(), ADMIN_EMAIL, ADMIN_PASSWORD).await.assert_redirect_to("/users");
        assert!(failures(&app).await.contains("single sign-on is the only way in"));
    }
}

/// Goes through the provider but stops at its redirect back: the callback URL.
async fn through_provider_without_callback(
    app: &TestApp,
    client: &reqwest::Client,
    login: &str,
) -> (Page, String) {
    let mut url = app.url("/login/oidc");
    let mut response = Page::read(client.get(&url).send().await.unwrap()).await;
    for _ in 0..20 {
        if let Some(location) = response
            .location
            .clone()
            .filter(|_| response.status / 100 == 3)
        {
            url = resolve(&url, &location);
            if url.starts_with(&app.address) {
                return (response, url);
            }
            response = Page::read(client.get(&url).send().await.unwrap()).await;
            continue;
        }
        let (action, fields) = provider_form(&url, &response, login).expect("a provider form");
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        response = Page::read(
            client
                .post(&action)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        url = action;
    }
    panic!("the provider did not send the browser back");
}

fn replace_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

on_both_engines! {
    async fn without_single_sign_on_configured_there_is_no_button_and_no_way_through() {
        let app = spawn_app().await;
        let page = app.get("/login").await;
        assert!(!page.text().contains("Sign in with"));
        for path in ["/login/oidc", "/login/oidc/callback?state=x&code=y"] {
            let page = app.get(path).await;
            assert_eq!(page.status, 404, "{path}");
        }
        assert_eq!(app.get("/users").await.status, 303);
    }
}
