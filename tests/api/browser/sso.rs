//! Single sign-on once in a real browser: the sign-in page's "Sign in with <name>"
//! button, the OpenID provider's own login and consent pages (npm `oidc-provider`), and
//! back to the console, signed in.

use std::time::Instant;

use super::driver::{ChromeDriver, Tools};
use super::{Scripts, WAIT, WHOLE_FLOW};
use crate::single_sign_on::{IDP_NAME, spawn_with_provider};
use crate::support::*;

#[tokio::test]
#[cfg_attr(
    not(all(enroll_test_browser, enroll_test_oidc)),
    ignore = "needs Chromium, chromedriver, axe-core, node and oidc-provider: see README, Test it"
)]
async fn signs_in_through_the_identity_provider_in_a_browser() {
    let tools = Tools::find();
    tokio::time::timeout(WHOLE_FLOW, async {
        let (app, _provider) = spawn_with_provider(|_, _| {}).await;
        let driver = ChromeDriver::start(&tools.chromedriver).await;
        let shots = tools.screenshot_dir("single-sign-on");
        let person = driver
            .session(&tools, Scripts::On, &shots, &app.address)
            .await;
        person.goto("/login").await;
        person.wait_for_heading("Sign in").await;
        person.check_page("01-login-with-single-sign-on").await;
        person
            .find(
                &format!("//*[@role='button' and normalize-space() = 'Sign in with {IDP_NAME}']"),
                "the single sign-on button",
            )
            .await
            .click()
            .await
            .unwrap();

        // The provider's development login page: any login name, any password.
        let deadline = Instant::now() + WAIT;
        let login = loop {
            if let Ok(field) = person
                .client
                .find(fantoccini::Locator::Css("input[name=login]"))
                .await
            {
                break field;
            }
            assert!(
                Instant::now() < deadline,
                "the provider's login page did not show"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        login.send_keys(HELPDESK_EMAIL).await.unwrap();
        person
            .client
            .find(fantoccini::Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys("any password")
            .await
            .unwrap();
        person.screenshot("02-provider-login").await;
        login.click().await.ok();
        person
            .client
            .find(fantoccini::Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // Consent, then back to the console.
        let deadline = Instant::now() + WAIT;
        loop {
            if person.url().await.starts_with(&app.address) {
                break;
            }
            if let Ok(button) = person
                .client
                .find(fantoccini::Locator::XPath(
                    "//button[normalize-space() = 'Continue']",
                ))
                .await
            {
                button.click().await.ok();
            }
            assert!(
                Instant::now() < deadline,
                "the provider did not send the browser back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        person.wait_for_heading("Users").await;
        person.see(HELPDESK_EMAIL).await;
        person.check_page("03-signed-in-through-the-provider").await;
        person.close().await;
        drop(driver);
    })
    .await
    .expect("the single sign-on browser flow finishes within its time limit");
}
