//! End to end in headless Chromium, driven through WebDriver (chromedriver + fantoccini):
//! an administrator signs in, sets up invitations, invites three people with "Add another
//! user", one invitee joins from the emailed link in a browser of their own, and the
//! administrator resends and removes from the Users page. Everything is found the way a
//! person finds it, by its visible label. The flow runs once with JavaScript and once
//! without (DevTools' script switch, which axe-core's check can lift for a moment while
//! the page's own script stays unrun); every main page is checked with axe-core and
//! photographed at 1280x900 under `target/screenshots/{with-js,without-js}/`, the Users
//! page also at phone width.
//!
//! Needs chromedriver and Chromium (Debian: `chromium chromium-driver`) and axe-core
//! (`npm install --prefix target/axe-core axe-core@4`, or `ENROLL_TEST_AXE_JS` naming
//! `axe.min.js`); without them (as build.rs found when the tests were built) both tests
//! are ignored, saying so. `.ci/run` installs them.

use std::time::{Duration, Instant};

use crate::support::*;

mod driver;
mod sso;
mod window;

use driver::{ChromeDriver, Tools};
use window::Browser;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const AXE_VARIABLE: &str = "ENROLL_TEST_AXE_JS";
const AXE_DEFAULT: &str = "target/axe-core/node_modules/axe-core/axe.min.js";

/// How long any one thing may take to show up in the browser.
const WAIT: Duration = Duration::from_secs(20);
/// The whole flow, browser start to finish; a hung browser fails the test instead of
/// hanging the suite.
const WHOLE_FLOW: Duration = Duration::from_secs(300);

const WIDE: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

const ORGANIZATION: &str = "Northwind Traders";
const CONTACT: &str = "it-help@northwind.example";

#[tokio::test]
#[cfg_attr(
    not(enroll_test_browser),
    ignore = "needs Chromium, chromedriver and axe-core: see README, Test it"
)]
async fn invite_join_resend_and_remove_in_a_browser_with_javascript() {
    let tools = Tools::find();
    tokio::time::timeout(WHOLE_FLOW, full_flow(tools, Scripts::On))
        .await
        .expect("the browser flow with JavaScript finishes within its time limit");
}

#[tokio::test]
#[cfg_attr(
    not(enroll_test_browser),
    ignore = "needs Chromium, chromedriver and axe-core: see README, Test it"
)]
async fn invite_join_resend_and_remove_in_a_browser_without_javascript() {
    let tools = Tools::find();
    tokio::time::timeout(WHOLE_FLOW, full_flow(tools, Scripts::Off))
        .await
        .expect("the browser flow without JavaScript finishes within its time limit");
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scripts {
    On,
    Off,
}

/// Invited in the flow; Grace joins, Ada and Alan get their invitation again, Alan is
/// removed.
const PEOPLE: [(&str, &str, &str); 3] = [
    ("Ada", "Lovelace", "ada.lovelace@example.com"),
    ("Alan", "Turing", "alan.turing@example.com"),
    ("Grace", "Hopper", "grace.hopper@example.com"),
];

/// The whole flow as a sequence of named steps, each a person's task.
async fn full_flow(tools: Tools, scripts: Scripts) {
    let started = Instant::now();
    let js = scripts == Scripts::On;
    let app = spawn_app_with(AppOptions::default()).await;
    let driver = ChromeDriver::start(&tools.chromedriver).await;
    let shots = tools.screenshot_dir(if js { "with-js" } else { "without-js" });
    let admin = driver.session(&tools, scripts, &shots, &app.address).await;

    sign_in(&admin, js).await;
    set_up_invitations(&admin, &app).await;
    invite_three_people(&admin, js).await;
    let first_links = each_person_gets_their_own_link(&app, &admin).await;
    let invitee = driver.session(&tools, scripts, &shots, &app.address).await;
    grace_joins(&invitee, &first_links[2]).await;
    grace_shows_as_enrolled(&admin).await;
    let alan_again = resend_to_ada_and_alan(&admin, &app, js, &first_links).await;
    users_page_fits_a_phone(&admin).await;
    adas_first_link_is_superseded(&invitee, &first_links[0]).await;
    remove_alan(&admin, &invitee, &alan_again).await;
    sign_out(&admin).await;

    invitee.close().await;
    admin.close().await;
    drop(driver);
    eprintln!(
        "browser flow ({}) passed in {:.1?}; screenshots in {}",
        if js {
            "with JavaScript"
        } else {
            "without JavaScript"
        },
        started.elapsed(),
        shots.display()
    );
}

/// Signs in as the administrator and lands on the empty Users page.
async fn sign_in(admin: &Browser, js: bool) {
    // Sign in.
    admin.goto("/login").await;
    admin.wait_for_heading("Sign in").await;
    admin.check_page("01-login").await;
    admin.fill("Email", ADMIN_EMAIL).await;
    admin.fill("Password", ADMIN_PASSWORD).await;
    admin.press("Sign in").await;
    admin.wait_for_heading("Users").await;
    admin.wait_for_text("No users yet").await;
    admin.see(ADMIN_EMAIL).await;
    // The enhancement script runs only with JavaScript: it turns the UTC times local.
    if js {
        admin.see("Times are in your time zone.").await;
    } else {
        admin.see("Times are in UTC.").await;
    }
    admin.check_page("02-users-empty").await;
}

/// "Invite user" leads to the settings first; previews the email, then saves them.
async fn set_up_invitations(admin: &Browser, app: &TestApp) {
    // "Invite user" before the set-up leads to the settings, saying why.
    admin.follow_link("Invite user").await;
    admin.wait_for_heading("Set up user invitations").await;
    admin.see("Set up user invitations first").await;

    // Set up user invitations, preview the email, save.
    admin.check_page("03-settings").await;
    admin.fill("Organization name", ORGANIZATION).await;
    admin.fill("Contact email address", CONTACT).await;
    admin.fill("Sender name", "Northwind IT").await;
    admin
        .fill("Sender address", "no-reply@northwind.example")
        .await;
    admin.fill("Public URL", &app.address).await;
    admin.fill("Days an invitation stays valid", "10").await;
    admin
        .fill(
            "Custom message",
            "Welcome aboard! Your desk phone is ready.",
        )
        .await;
    admin.press("Preview email").await;
    admin.wait_for_text("Email preview").await;
    admin.see("Nothing has been saved or sent yet.").await;
    admin
        .see("From Northwind IT at Northwind Traders <no-reply@northwind.example>")
        .await;
    admin
        .see(&format!("You're invited to join {ORGANIZATION}"))
        .await;
    assert_eq!(admin.value_of("Organization name").await, ORGANIZATION);
    admin.check_page("04-settings-preview").await;
    admin.press("Save").await;
    admin.wait_for_heading("Invite user").await;
    admin
        .wait_for_text("Invitations are set up. You can now invite users.")
        .await;
    admin.see("exactly").await;
    admin.check_page("05-invite").await;
}

/// Fills one row, adds two more with "Add another user" (in place with JavaScript, by
/// a round trip without), and sends the three invitations.
async fn invite_three_people(admin: &Browser, js: bool) {
    // One row; "Add another user" twice; fill every row; "Send invite".
    assert_eq!(admin.count_rows().await, 1, "the form starts with one row");
    admin.fill_row(1, PEOPLE[0]).await;
    for rows in 2..=3 {
        admin.mark_document().await;
        admin.press("Add another user").await;
        admin.wait_for_rows(rows).await;
        if js {
            assert!(
                admin.document_is_marked().await,
                "with JavaScript, \"Add another user\" adds the row in place"
            );
            assert_eq!(
                admin.active_element_id().await,
                format!("first_name-{rows}"),
                "the new row's first field has the focus"
            );
        } else {
            assert!(
                !admin.document_is_marked().await,
                "without JavaScript, \"Add another user\" submits the form"
            );
        }
        // Every row keeps what was typed; the new one is empty and labelled.
        assert_eq!(admin.row_value(1, "First name").await, "Ada");
        assert_eq!(admin.row_value(1, "Email address").await, PEOPLE[0].2);
        if rows == 3 {
            assert_eq!(admin.row_value(2, "Last name").await, "Turing");
        }
        for label in ["First name", "Last name", "Email address"] {
            assert_eq!(
                admin.row_value(rows, label).await,
                "",
                "{label} of the new row"
            );
        }
        assert_eq!(
            admin.row_field_id(rows, "First name").await,
            format!("first_name-{rows}")
        );
        assert_eq!(
            admin.row_field_id(rows, "Email address").await,
            format!("email-{rows}")
        );
        if rows == 2 {
            admin.fill_row(2, PEOPLE[1]).await;
        }
    }
    admin.fill_row(3, PEOPLE[2]).await;
    admin.check_page("06-invite-three-rows").await;
    admin.press("Send invite").await;
    admin.wait_for_heading("Users").await;
    admin
        .wait_for_text("Invitations on their way to 3 users.")
        .await;
    for (first, last, email) in PEOPLE {
        admin.see(first).await;
        admin.see(last).await;
        admin.see(email).await;
    }
}

/// Delivers the invitations; each person's email carries their own link. Returns the
/// links, in the order of `PEOPLE`.
async fn each_person_gets_their_own_link(app: &TestApp, admin: &Browser) -> Vec<String> {
    // Each person gets an email with their own link, built from the public URL.
    let mut first_links = Vec::new();
    app.deliver_due_emails().await;
    for (first, _, email) in PEOPLE {
        let message = app.smtp.nth_to(email, 1);
        assert_eq!(
            message.subject(),
            format!("You're invited to join {ORGANIZATION}")
        );
        assert!(message.text().contains(&format!("Hello {first},")));
        let link = message.enrollment_link();
        assert!(
            link.starts_with(&format!("{}/enroll/", app.address)),
            "{link}"
        );
        assert!(link.ends_with(&message.enrollment_path()), "{link}");
        first_links.push(link);
    }
    for (_, _, email) in PEOPLE {
        admin.wait_for_status(email, "Pending").await;
    }
    admin.check_page("07-users-invited").await;
    first_links
}

/// Grace opens her link in a browser of her own and joins.
async fn grace_joins(invitee: &Browser, link: &str) {
    // Grace opens her link in a browser of her own and joins.
    invitee.goto_url(link).await;
    invitee
        .wait_for_heading(&format!("Join {ORGANIZATION}"))
        .await;
    invitee
        .see(&format!(
            "You have been invited to join {ORGANIZATION} as grace.hopper@example.com."
        ))
        .await;
    invitee
        .see(&format!("Questions? Write to {CONTACT}."))
        .await;
    invitee.check_page("08-enroll").await;
    invitee.press("Join organization").await;
    invitee
        .wait_for_heading(&format!("You have joined {ORGANIZATION}"))
        .await;
    invitee
        .see(&format!(
            "Welcome! grace.hopper@example.com is now a member of {ORGANIZATION}."
        ))
        .await;
    invitee.check_page("09-enrolled").await;
}

/// The administrator sees Grace enrolled on the Users page.
async fn grace_shows_as_enrolled(admin: &Browser) {
    // Back on Users: Grace has enrolled.
    admin.follow_link("Users").await;
    admin.wait_for_heading("Users").await;
    admin
        .wait_for_status("grace.hopper@example.com", "Enrolled")
        .await;
}

/// Selects Ada and Alan and resends; returns Alan's new email.
async fn resend_to_ada_and_alan(
    admin: &Browser,
    app: &TestApp,
    js: bool,
    first_links: &[String],
) -> ReceivedEmail {
    // Select Ada and Alan by their checkboxes and resend.
    let resend = admin.button("Resend invitation").await;
    let remove = admin.button("Remove user").await;
    if js {
        assert!(
            !resend.is_enabled().await.unwrap() && !remove.is_enabled().await.unwrap(),
            "with JavaScript, the actions wait for a selection"
        );
        assert!(
            admin.select_all_is_displayed().await,
            "with JavaScript, \"Select all\" is offered"
        );
    } else {
        assert!(
            resend.is_enabled().await.unwrap() && remove.is_enabled().await.unwrap(),
            "without JavaScript, no button is ever disabled"
        );
        assert!(
            !admin.select_all_is_displayed().await,
            "without JavaScript, \"Select all\" stays hidden"
        );
    }
    admin.select("Select Ada Lovelace").await;
    admin.select("Select Alan Turing").await;
    if js {
        admin.wait_for_text("2 selected").await;
        assert!(resend.is_enabled().await.unwrap());
    }
    admin.check_page("10-users-two-selected").await;
    admin.press("Resend invitation").await;
    admin
        .wait_for_text(
            "Invitation resent to 2 users: Ada Lovelace, Alan Turing. \
             Their earlier links no longer work.",
        )
        .await;
    admin.wait_for_heading("Users").await;
    app.deliver_due_emails().await;
    let ada_again = app.smtp.nth_to(PEOPLE[0].2, 2);
    let alan_again = app.smtp.nth_to(PEOPLE[1].2, 2);
    assert_ne!(ada_again.enrollment_link(), first_links[0]);
    assert_ne!(alan_again.enrollment_link(), first_links[1]);
    assert_eq!(
        app.smtp.to(PEOPLE[2].2).len(),
        1,
        "Grace was not selected and gets nothing more"
    );
    admin.check_page("11-users-resent").await;
    alan_again
}

/// The Users page at phone width: still usable, nothing wider than the screen.
async fn users_page_fits_a_phone(admin: &Browser) {
    // The same page at phone width: still usable, nothing wider than the screen.
    admin.resize(PHONE).await;
    admin.refresh().await;
    admin.wait_for_heading("Users").await;
    admin.see("Ada").await;
    let overflow = admin
        .script("return document.documentElement.scrollWidth - window.innerWidth;")
        .await;
    admin.screenshot("12-users-phone").await;
    assert!(
        overflow.as_i64().unwrap_or(i64::MAX) <= 0,
        "the Users page scrolls sideways at phone width by {overflow}px"
    );
    admin.resize(WIDE).await;
}

/// Ada's first link says a newer invitation was sent.
async fn adas_first_link_is_superseded(invitee: &Browser, first_link: &str) {
    // Ada's first link stopped working when her invitation was resent.
    invitee.goto_url(first_link).await;
    invitee
        .wait_for_heading("A newer invitation was sent")
        .await;
    invitee.see("ada.lovelace@example.com").await;
}

/// Removes Alan after the confirmation; his newest link then leads nowhere.
async fn remove_alan(admin: &Browser, invitee: &Browser, alan_again: &ReceivedEmail) {
    // Remove Alan: a confirmation lists him; "Remove" removes him.
    admin.refresh().await;
    admin.wait_for_heading("Users").await;
    admin.select("Select Alan Turing").await;
    admin.press("Remove user").await;
    admin.wait_for_heading("Remove this user?").await;
    admin.see("Alan Turing <alan.turing@example.com>").await;
    admin.dont_see("Ada Lovelace").await;
    admin.check_page("13-remove-confirmation").await;
    admin.press("Remove").await;
    admin.wait_for_heading("Users").await;
    admin
        .wait_for_text("Removed 1 user: Alan Turing. Their invitation links no longer work.")
        .await;
    admin.dont_see("alan.turing@example.com").await;
    admin.see("ada.lovelace@example.com").await;
    admin.check_page("14-users-removed").await;

    // Alan's newest link no longer works either.
    invitee.goto_url(&alan_again.enrollment_link()).await;
    invitee
        .wait_for_heading("This invitation link is not valid")
        .await;
    invitee.check_page("15-enroll-link-not-valid").await;
}

/// Signs out.
async fn sign_out(admin: &Browser) {
    // Sign out.
    admin.press("Sign out").await;
    admin.wait_for_heading("Sign in").await;
}
