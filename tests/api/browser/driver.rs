//! Chromium and chromedriver, started for one test and stopped with it.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::ClientBuilder;
use fantoccini::wd::Capabilities;
use serde_json::{Value, json};

use super::*;

/// What the browser tests need from outside Cargo.
pub(super) struct Tools {
    pub(super) chromedriver: PathBuf,
    pub(super) chromium: PathBuf,
    pub(super) axe_js: String,
}

impl Tools {
    /// The tools; fails the test, saying which is missing, without them (then it was
    /// forced to run: it is ignored where build.rs did not find them).
    pub(super) fn find() -> Self {
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
    pub(super) fn screenshot_dir(&self, name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/screenshots")
            .join(name)
    }
}

/// `preferred` if it exists, else `name` found on PATH.
pub(super) fn executable(preferred: &str, name: &str) -> Option<PathBuf> {
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
pub(super) struct ChromeDriver {
    pub(super) child: Child,
    pub(super) url: String,
}

impl ChromeDriver {
    pub(super) async fn start(path: &Path) -> Self {
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

    pub(super) async fn wait_until_ready(&mut self, port: u16) -> Result<(), String> {
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
    pub(super) async fn session(
        &self,
        tools: &Tools,
        scripts: Scripts,
        shots: &Path,
        base: &str,
    ) -> Browser {
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
