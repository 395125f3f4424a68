//! Enroll as separate processes sharing one PostgreSQL database, for the scale-out tests
//! (one of them is killed with SIGKILL).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::support::TEST_SESSION_KEY;

pub struct Instance {
    child: Child,
    pub address: String,
    /// Everything the instance logged so far.
    log: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
}

impl Instance {
    /// Starts `enroll serve` on a free port and waits until it is ready.
    pub async fn start(database_url: &str, smtp_url: &str) -> Self {
        let instance = Self::spawn(database_url, smtp_url);
        instance.wait_until_ready().await;
        instance
    }

    /// Starts `enroll serve` and returns once it listens (it may still be migrating).
    pub fn spawn(database_url: &str, smtp_url: &str) -> Self {
        Self::spawn_with(Some(database_url), smtp_url, "info")
    }

    /// `database_url: None` runs on SQLite in the instance's own data folder.
    pub fn spawn_with(database_url: Option<&str>, smtp_url: &str, log_level: &str) -> Self {
        Self::spawn_with_env(database_url, smtp_url, log_level, &[])
    }

    /// Starts with `settings` over the test defaults (`ENROLL_*` variables), and waits
    /// until it is ready.
    pub async fn start_with_env(
        database_url: &str,
        smtp_url: &str,
        settings: &[(&str, &str)],
    ) -> Self {
        let instance = Self::spawn_with_env(Some(database_url), smtp_url, "info", settings);
        instance.wait_until_ready().await;
        instance
    }

    pub fn spawn_with_env(
        database_url: Option<&str>,
        smtp_url: &str,
        log_level: &str,
        settings: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_enroll"));
        command.env_clear();
        if let Some(url) = database_url {
            command.env("ENROLL_DATABASE_URL", url);
        }
        let mut child = command
            .env("ENROLL_SESSION_KEY", TEST_SESSION_KEY)
            .env("ENROLL_LISTEN", "127.0.0.1:0")
            .env("ENROLL_SMTP_URL", smtp_url)
            .env("ENROLL_DATA_DIR", dir.path())
            .env("ENROLL_LOG_FORMAT", "json")
            .env("ENROLL_LOG", log_level)
            .env("ENROLL_HTTP_WORKERS", "2")
            .env("ENROLL_DB_POOL_SIZE", "6")
            .env("ENROLL_MAIL_WORKERS", "2")
            .env("ENROLL_MAIL_POLL_MS", "100")
            .env("ENROLL_MAIL_LEASE_SECONDS", "3")
            .env("ENROLL_SMTP_TIMEOUT_SECONDS", "2")
            .env("ENROLL_MAIL_RETRY_BASE_SECONDS", "1")
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the enroll binary starts");
        let stdout = child.stdout.take().unwrap();
        let (address_tx, address_rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let log_writer = log.clone();
        // Keeps reading, so that a full pipe never blocks the instance.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                {
                    let mut log = log_writer.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if entry["fields"]["message"] == "starting Enroll"
                    && let Some(address) = entry["fields"]["address"].as_str()
                {
                    let _ = address_tx.send(address.to_owned());
                }
            }
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the instance logs its address");
        Self {
            child,
            address: format!("http://{address}"),
            log,
            dir,
        }
    }

    pub async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client.get(format!("{}/readyz", self.address)).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                self.address
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The id this instance marks its claims on email with (it logs it at start).
    pub fn instance_id(&self) -> String {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find_map(|entry| entry["fields"]["instance"].as_str().map(str::to_owned))
            .expect("the instance logs its id")
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// SIGKILL: no chance to finish or release anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}
