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

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::*;

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

/// What the browser tests need from outside Cargo.
struct Tools {
    chromedriver: PathBuf,
    chromium: PathBuf,
    axe_js: String,
}

impl Tools {
    /// The tools; fails the test, saying which is missing, without them (then it was
    /// forced to run: it is ignored where build.rs did not find them).
    fn find() -> Self {
        fn missing(reason: String) -> ! {
            panic!("{reason}; .ci/run installs it")
        }
        let Some(chromedriver) = executable(CHROMEDRIVER, "chromedriver") else {
            missing(format!(
                "chromedriver is not installed ({CHROMEDRIVER}, or chromedriver on PATH; \
                 Debian package chromium-driver)"
            ));
        };
        let Some(chromium) = executable(CHROMIUM, "chromium") else {
            missing(format!(
                "Chromium is not installed ({CHROMIUM}, or chromium on PATH; Debian package chromium)"
            ));
        };
        let axe_path = std::env::var_os(AXE_VARIABLE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(AXE_DEFAULT));
        let Ok(axe_js) = std::fs::read_to_string(&axe_path) else {
            missing(format!(
                "axe-core is missing at {} (set {AXE_VARIABLE}, or run \
                 `npm install --prefix target/axe-core axe-core@4`)",
                axe_path.display()
            ));
        };
        Self {
            chromedriver,
            chromium,
            axe_js,
        }
    }

    /// `target/screenshots/<name>/`. Not emptied: another `cargo test` may be writing
    /// there at the same time; each run overwrites the files by name.
    fn screenshot_dir(&self, name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/screenshots")
            .join(name)
    }
}

/// `preferred` if it exists, else `name` found on PATH.
fn executable(preferred: &str, name: &str) -> Option<PathBuf> {
    let preferred = Path::new(preferred);
    if preferred.is_file() {
        return Some(preferred.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A chromedriver of this test's own, on a free port; stopped (with the browsers it
/// started) when dropped, also when the test fails.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    async fn start(path: &Path) -> Self {
        let mut last_problem = String::new();
        // A free port can be taken by someone else before chromedriver binds it: retry.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let child = Command::new(path)
                .arg(format!("--port={port}"))
                .arg("--log-level=WARNING")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that dropping it also ends the browsers.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
            let mut driver = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            match driver.wait_until_ready(port).await {
                Ok(()) => return driver,
                Err(problem) => last_problem = problem,
            }
        }
        panic!("chromedriver did not start: {last_problem}");
    }

    async fn wait_until_ready(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        let status = format!("{}/status", self.url);
        let http = reqwest::Client::new();
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Err(format!("it exited with {exit}"));
            }
            if let Ok(response) = http
                .get(&status)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && let Ok(body) = response.text().await
                && let Ok(body) = serde_json::from_str::<Value>(&body)
                && body["value"]["ready"] == json!(true)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not ready on port {port} after {WAIT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new browser (its own profile, cookies and window), JavaScript on or off.
    async fn session(&self, tools: &Tools, scripts: Scripts, shots: &Path, base: &str) -> Browser {
        let profile = tempfile::tempdir().expect("a temporary profile folder");
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--window-size={},{}", WIDE.0, WIDE.1),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities: Capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "script": 30_000, "pageLoad": 30_000, "implicit": 0 },
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": args,
            },
        })
        .as_object()
        .cloned()
        .unwrap();
        let client = ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver cannot start Chromium: {e}"));
        let browser = Browser {
            client,
            scripts,
            base: base.to_owned(),
            shots: shots.to_owned(),
            axe_js: tools.axe_js.clone(),
            _profile: profile,
        };
        browser.resize(WIDE).await;
        if scripts == Scripts::Off {
            // As with DevTools' "Disable JavaScript": from the next page on, no script of
            // the page runs. (Not Chrome's content setting, which would also stop axe-core's
            // timers; this one can be lifted while axe-core checks a page.)
            browser.allow_scripts(false).await;
        }
        browser
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: signals only the process group this test started.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        // SAFETY: as above; whatever is left of the group.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// One browser window, used as a person would: by visible labels and texts.
struct Browser {
    client: Client,
    scripts: Scripts,
    base: String,
    shots: PathBuf,
    axe_js: String,
    _profile: tempfile::TempDir,
}

/// An XPath string literal for any text.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// The form control labelled `label` (by `<label for>`), within `scope` (an XPath).
fn labelled(scope: &str, label: &str) -> String {
    format!(
        "({scope}//*[self::input or self::textarea or self::select]\
         [@id = {scope}//label[normalize-space() = {}]/@for])[1]",
        xpath_literal(label)
    )
}

/// The invite form's row `n` ("Person n").
fn row(n: usize) -> String {
    format!("//fieldset[legend[normalize-space() = 'Person {n}']]")
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.goto_url(&format!("{}{path}", self.base)).await;
    }

    async fn goto_url(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    async fn refresh(&self) {
        self.client.refresh().await.expect("the page reloads");
    }

    /// Sizes the window so that the page gets `width` x `height` CSS pixels (the window's
    /// own frame, even headless, takes some of the window size).
    async fn resize(&self, (width, height): (u32, u32)) {
        let (mut outer_width, mut outer_height) = (width, height);
        for _ in 0..6 {
            self.client
                .set_window_size(outer_width, outer_height)
                .await
                .expect("the window can be resized");
            // A busy machine applies the new size a little later: wait until two
            // readings agree before correcting for the frame.
            let mut inner = self.inner_size().await;
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let again = self.inner_size().await;
                if again == inner {
                    break;
                }
                inner = again;
            }
            let (inner_width, inner_height) = inner;
            if (inner_width, inner_height) == (width, height) {
                return;
            }
            outer_width = (outer_width + width).saturating_sub(inner_width);
            outer_height = (outer_height + height).saturating_sub(inner_height);
        }
        panic!("cannot give the page {width}x{height} pixels");
    }

    async fn inner_size(&self) -> (u32, u32) {
        let inner = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        let size = |n: usize| u32::try_from(inner[n].as_u64().unwrap_or_default()).unwrap_or(0);
        (size(0), size(1))
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }

    async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The visible text of the page, whitespace folded.
    async fn text(&self) -> String {
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    async fn heading(&self) -> String {
        match self.client.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default().trim().to_owned(),
            Err(_) => String::new(),
        }
    }

    async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    async fn wait_for_heading(&self, expected: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let heading = self.heading().await;
            if heading == expected {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected the heading {expected:?}, the page at {} says {heading:?}: {}",
                    self.url().await,
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_text(&self, expected: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text().await;
            if text.contains(expected) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected to see {expected:?} at {}: {text}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn see(&self, expected: &str) {
        let text = self.text().await;
        assert!(
            text.contains(expected),
            "expected to see {expected:?} at {}: {text}",
            self.url().await
        );
    }

    async fn dont_see(&self, unexpected: &str) {
        let text = self.text().await;
        assert!(
            !text.contains(unexpected),
            "did not expect to see {unexpected:?} at {}: {text}",
            self.url().await
        );
    }

    async fn find(&self, xpath: &str, what: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::XPath(xpath)).await {
            Ok(element) => element,
            Err(e) => panic!(
                "no {what} at {} ({e}): {}",
                self.url().await,
                self.text().await
            ),
        }
    }

    async fn field(&self, label: &str) -> fantoccini::elements::Element {
        self.find(&labelled("", label), &format!("field labelled {label:?}"))
            .await
    }

    async fn row_field(&self, n: usize, label: &str) -> fantoccini::elements::Element {
        self.find(
            &labelled(&row(n), label),
            &format!("field labelled {label:?} in row {n}"),
        )
        .await
    }

    async fn fill(&self, label: &str, value: &str) {
        let field = self.field(label).await;
        field.clear().await.expect("the field can be cleared");
        field
            .send_keys(value)
            .await
            .expect("the field takes typing");
    }

    async fn value_of(&self, label: &str) -> String {
        let field = self.field(label).await;
        field.prop("value").await.unwrap().unwrap_or_default()
    }

    async fn fill_row(&self, n: usize, (first, last, email): (&str, &str, &str)) {
        for (label, value) in [
            ("First name", first),
            ("Last name", last),
            ("Email address", email),
        ] {
            let field = self.row_field(n, label).await;
            field.clear().await.expect("the field can be cleared");
            field
                .send_keys(value)
                .await
                .expect("the field takes typing");
        }
    }

    async fn row_value(&self, n: usize, label: &str) -> String {
        let field = self.row_field(n, label).await;
        field.prop("value").await.unwrap().unwrap_or_default()
    }

    async fn row_field_id(&self, n: usize, label: &str) -> String {
        let field = self.row_field(n, label).await;
        field.attr("id").await.unwrap().unwrap_or_default()
    }

    async fn count_rows(&self) -> usize {
        self.client
            .find_all(Locator::XPath(
                "//fieldset[legend[starts-with(normalize-space(), 'Person ')]]",
            ))
            .await
            .map(|rows| rows.len())
            .unwrap_or(0)
    }

    async fn wait_for_rows(&self, expected: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let rows = self.count_rows().await;
            if rows == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected {expected} rows on the invite form, it has {rows}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn button(&self, text: &str) -> fantoccini::elements::Element {
        self.find(
            &format!("//button[normalize-space() = {}]", xpath_literal(text)),
            &format!("button {text:?}"),
        )
        .await
    }

    async fn press(&self, text: &str) {
        self.button(text)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot press {text:?}: {e}"));
    }

    async fn follow_link(&self, text: &str) {
        self.find(
            &format!("(//a[normalize-space() = {}])[1]", xpath_literal(text)),
            &format!("link {text:?}"),
        )
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot follow {text:?}: {e}"));
    }

    /// Ticks the checkbox labelled `label` (the Users page labels each row's box
    /// "Select <first> <last>", visible to screen readers only).
    async fn select(&self, label: &str) {
        let checkbox = self
            .find(
                &format!(
                    "//input[@type = 'checkbox'][@id = //label[normalize-space() = {}]/@for]",
                    xpath_literal(label)
                ),
                &format!("checkbox labelled {label:?}"),
            )
            .await;
        if !checkbox.is_selected().await.unwrap() {
            checkbox.click().await.expect("the checkbox can be ticked");
        }
        assert!(checkbox.is_selected().await.unwrap(), "{label} is ticked");
    }

    async fn select_all_is_displayed(&self) -> bool {
        self.field("Select all users on this page")
            .await
            .is_displayed()
            .await
            .unwrap()
    }

    /// The status badge in the row of the user with this address, reloading while the
    /// page lags behind (the mail worker and the page's short cache).
    async fn wait_for_status(&self, email: &str, expected: &str) {
        let xpath = format!(
            "//tr[td[normalize-space() = {}]]//*[contains(concat(' ', @class, ' '), ' badge ')]",
            xpath_literal(email)
        );
        let deadline = Instant::now() + WAIT;
        loop {
            let status = match self.client.find(Locator::XPath(&xpath)).await {
                Ok(badge) => badge.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if status.trim() == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{email} shows {status:?}, expected {expected:?}: {}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            self.refresh().await;
        }
    }

    /// Leaves a mark on the current document, to tell a reload from an in-place change.
    async fn mark_document(&self) {
        self.script("document.documentElement.dataset.testMark = 'kept'; return null;")
            .await;
    }

    async fn document_is_marked(&self) -> bool {
        self.script("return document.documentElement.dataset.testMark === 'kept';")
            .await
            == json!(true)
    }

    async fn active_element_id(&self) -> String {
        self.script("return document.activeElement ? document.activeElement.id : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let png = self
            .client
            .screenshot()
            .await
            .expect("a screenshot of the page");
        std::fs::create_dir_all(&self.shots)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", self.shots.display()));
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Photographs the page and checks it with axe-core: no serious or critical
    /// violation; lesser ones are listed.
    async fn check_page(&self, name: &str) {
        self.screenshot(name).await;
        self.check_accessibility(name).await;
    }

    /// Lets the page run scripts, or not (Chrome DevTools Protocol, through chromedriver).
    async fn allow_scripts(&self, allowed: bool) {
        self.client
            .issue_cmd(Cdp {
                cmd: "Emulation.setScriptExecutionDisabled",
                params: json!({ "value": !allowed }),
            })
            .await
            .expect("chromedriver passes DevTools commands on");
    }

    async fn check_accessibility(&self, name: &str) {
        let text_before = self.text().await;
        if self.scripts == Scripts::Off {
            // axe-core needs timers. The page's own script stays unrun: it was skipped
            // while the page loaded.
            self.allow_scripts(true).await;
        }
        self.run_axe(name).await;
        if self.scripts == Scripts::Off {
            self.allow_scripts(false).await;
        }
        assert_eq!(
            self.text().await,
            text_before,
            "checking {name} with axe-core changed what the page shows"
        );
    }

    async fn run_axe(&self, name: &str) {
        // WebDriver scripts run outside the page's Content-Security-Policy (and whether the
        // page itself may run scripts): check that axe really is there before trusting it.
        let injected = self
            .client
            .execute(
                &format!("{}\n;return typeof window.axe;", self.axe_js),
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot inject axe-core into {name}: {e}"));
        assert_eq!(
            injected,
            json!("object"),
            "axe-core did not load into {name}"
        );
        let outcome = self
            .client
            .execute_async(
                r#"
                const done = arguments[arguments.length - 1];
                axe.run(document, { resultTypes: ["violations"] })
                  .then((results) => done({
                    url: results.url,
                    passes: results.passes.length,
                    incomplete: results.incomplete.map((r) => r.id),
                    violations: results.violations.map((v) => ({
                      id: v.id,
                      impact: v.impact,
                      help: v.help,
                      nodes: v.nodes.map((n) => ({ target: n.target, html: n.html, summary: n.failureSummary })),
                    })),
                  }))
                  .catch((error) => done({ error: String(error) }));
                "#,
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("axe-core did not finish on {name}: {e}"));
        if let Some(error) = outcome.get("error") {
            panic!("axe-core failed on {name}: {error}");
        }
        let violations = outcome["violations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let describe = |v: &Value| {
            let nodes: Vec<String> = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    format!(
                        "      {} {}\n        {}",
                        n["target"],
                        n["html"],
                        n["summary"]
                            .as_str()
                            .unwrap_or_default()
                            .replace('\n', "\n        ")
                    )
                })
                .collect();
            format!(
                "  {} ({}): {}\n{}",
                v["id"].as_str().unwrap_or_default(),
                v["impact"].as_str().unwrap_or("unknown"),
                v["help"].as_str().unwrap_or_default(),
                nodes.join("\n")
            )
        };
        let (blocking, lesser): (Vec<&Value>, Vec<&Value>) = violations
            .iter()
            .partition(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")));
        eprintln!(
            "axe-core on {name}: {} rules passed, {} violation(s), needs review: {}",
            outcome["passes"],
            violations.len(),
            outcome["incomplete"]
        );
        if !lesser.is_empty() {
            eprintln!(
                "axe-core on {name}: {} minor or moderate finding(s):\n{}",
                lesser.len(),
                lesser
                    .iter()
                    .map(|v| describe(v))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        assert!(
            blocking.is_empty(),
            "axe-core found serious or critical violations on {name} ({}):\n{}",
            outcome["url"],
            blocking
                .iter()
                .map(|v| describe(v))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// A Chrome DevTools Protocol command, through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (reqwest::Method::POST, Some(body.to_string()))
    }
}
