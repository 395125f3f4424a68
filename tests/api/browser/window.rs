//! One browser window, used as a person would: by visible labels and texts; page
//! checks (axe-core, layout) included.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use super::*;

/// One browser window, used as a person would: by visible labels and texts.
pub(super) struct Browser {
    pub(super) client: Client,
    pub(super) scripts: Scripts,
    pub(super) base: String,
    pub(super) shots: PathBuf,
    pub(super) axe_js: String,
    pub(super) _profile: tempfile::TempDir,
}

/// An XPath string literal for any text.
pub(super) fn xpath_literal(text: &str) -> String {
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
pub(super) fn labelled(scope: &str, label: &str) -> String {
    format!(
        "({scope}//*[self::input or self::textarea or self::select]\
         [@id = {scope}//label[normalize-space() = {}]/@for])[1]",
        xpath_literal(label)
    )
}

/// The invite form's row `n` ("Person n").
pub(super) fn row(n: usize) -> String {
    format!("//fieldset[legend[normalize-space() = 'Person {n}']]")
}

impl Browser {
    pub(super) async fn goto(&self, path: &str) {
        self.goto_url(&format!("{}{path}", self.base)).await;
    }

    pub(super) async fn goto_url(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    pub(super) async fn refresh(&self) {
        self.client.refresh().await.expect("the page reloads");
    }

    /// Sizes the window so that the page gets `width` x `height` CSS pixels (the window's
    /// own frame, even headless, takes some of the window size).
    pub(super) async fn resize(&self, (width, height): (u32, u32)) {
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

    pub(super) async fn inner_size(&self) -> (u32, u32) {
        let inner = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        let size = |n: usize| u32::try_from(inner[n].as_u64().unwrap_or_default()).unwrap_or(0);
        (size(0), size(1))
    }

    pub(super) async fn close(self) {
        let _ = self.client.close().await;
    }

    pub(super) async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The visible text of the page, whitespace folded.
    pub(super) async fn text(&self) -> String {
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub(super) async fn heading(&self) -> String {
        match self.client.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default().trim().to_owned(),
            Err(_) => String::new(),
        }
    }

    pub(super) async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    pub(super) async fn wait_for_heading(&self, expected: &str) {
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

    pub(super) async fn wait_for_text(&self, expected: &str) {
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

    pub(super) async fn see(&self, expected: &str) {
        let text = self.text().await;
        assert!(
            text.contains(expected),
            "expected to see {expected:?} at {}: {text}",
            self.url().await
        );
    }

    pub(super) async fn dont_see(&self, unexpected: &str) {
        let text = self.text().await;
        assert!(
            !text.contains(unexpected),
            "did not expect to see {unexpected:?} at {}: {text}",
            self.url().await
        );
    }

    pub(super) async fn find(&self, xpath: &str, what: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::XPath(xpath)).await {
            Ok(element) => element,
            Err(e) => panic!(
                "no {what} at {} ({e}): {}",
                self.url().await,
                self.text().await
            ),
        }
    }

    pub(super) async fn field(&self, label: &str) -> fantoccini::elements::Element {
        self.find(&labelled("", label), &format!("field labelled {label:?}"))
            .await
    }

    pub(super) async fn row_field(&self, n: usize, label: &str) -> fantoccini::elements::Element {
        self.find(
            &labelled(&row(n), label),
            &format!("field labelled {label:?} in row {n}"),
        )
        .await
    }

    pub(super) async fn fill(&self, label: &str, value: &str) {
        let field = self.field(label).await;
        field.clear().await.expect("the field can be cleared");
        field
            .send_keys(value)
            .await
            .expect("the field takes typing");
    }

    pub(super) async fn value_of(&self, label: &str) -> String {
        let field = self.field(label).await;
        field.prop("value").await.unwrap().unwrap_or_default()
    }

    pub(super) async fn fill_row(&self, n: usize, (first, last, email): (&str, &str, &str)) {
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

    pub(super) async fn row_value(&self, n: usize, label: &str) -> String {
        let field = self.row_field(n, label).await;
        field.prop("value").await.unwrap().unwrap_or_default()
    }

    pub(super) async fn row_field_id(&self, n: usize, label: &str) -> String {
        let field = self.row_field(n, label).await;
        field.attr("id").await.unwrap().unwrap_or_default()
    }

    pub(super) async fn count_rows(&self) -> usize {
        self.client
            .find_all(Locator::XPath(
                "//fieldset[legend[starts-with(normalize-space(), 'Person ')]]",
            ))
            .await
            .map(|rows| rows.len())
            .unwrap_or(0)
    }

    pub(super) async fn wait_for_rows(&self, expected: usize) {
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

    pub(super) async fn button(&self, text: &str) -> fantoccini::elements::Element {
        self.find(
            &format!("//button[normalize-space() = {}]", xpath_literal(text)),
            &format!("button {text:?}"),
        )
        .await
    }

    pub(super) async fn press(&self, text: &str) {
        self.button(text)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot press {text:?}: {e}"));
    }

    pub(super) async fn follow_link(&self, text: &str) {
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
    pub(super) async fn select(&self, label: &str) {
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

    pub(super) async fn select_all_is_displayed(&self) -> bool {
        self.field("Select all users on this page")
            .await
            .is_displayed()
            .await
            .unwrap()
    }

    /// The status badge in the row of the user with this address, reloading while the
    /// page lags behind (the mail worker and the page's short cache).
    pub(super) async fn wait_for_status(&self, email: &str, expected: &str) {
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
    pub(super) async fn mark_document(&self) {
        self.script("document.documentElement.dataset.testMark = 'kept'; return null;")
            .await;
    }

    pub(super) async fn document_is_marked(&self) -> bool {
        self.script("return document.documentElement.dataset.testMark === 'kept';")
            .await
            == json!(true)
    }

    pub(super) async fn active_element_id(&self) -> String {
        self.script("return document.activeElement ? document.activeElement.id : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(super) async fn screenshot(&self, name: &str) {
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
    pub(super) async fn check_page(&self, name: &str) {
        self.screenshot(name).await;
        self.check_accessibility(name).await;
    }

    /// Lets the page run scripts, or not (Chrome DevTools Protocol, through chromedriver).
    pub(super) async fn allow_scripts(&self, allowed: bool) {
        self.client
            .issue_cmd(Cdp {
                cmd: "Emulation.setScriptExecutionDisabled",
                params: json!({ "value": !allowed }),
            })
            .await
            .expect("chromedriver passes DevTools commands on");
    }

    pub(super) async fn check_accessibility(&self, name: &str) {
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

    pub(super) async fn run_axe(&self, name: &str) {
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
pub(super) struct Cdp {
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
