//! A real OpenID provider for the single sign-on tests: npm `oidc-provider` (OpenID
//! Certified) run by node with `tests/oidc/provider.mjs`, on a port of its own, with one
//! client whose redirect URI is the app's callback. Installed by `.ci/run` (`npm install
//! --prefix target/oidc-provider oidc-provider@8`); build.rs sets `enroll_test_oidc`
//! when node and the package are there, and the tests are ignored otherwise.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const OIDC_CLIENT_ID: &str = "enroll-test";
pub const OIDC_CLIENT_SECRET: &str = "a client secret of the test provider, long enough";

pub struct TestProvider {
    pub issuer: String,
    child: Child,
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn modules() -> PathBuf {
    let dir = std::env::var_os("ENROLL_TEST_OIDC_PROVIDER")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/oidc-provider/node_modules")
        });
    assert!(
        dir.join("oidc-provider").is_dir(),
        "the OpenID provider for the tests is missing: npm install --prefix target/oidc-provider oidc-provider@8"
    );
    dir
}

impl TestProvider {
    /// Starts a provider whose one client may redirect to `redirect_uri` only.
    pub fn start(redirect_uri: &str) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .env("OIDC_PROVIDER_MODULES", modules())
            .env("OIDC_CLIENT_ID", OIDC_CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", redirect_uri)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts (it is needed by the single sign-on tests)");
        let stdout = child.stdout.take().expect("the provider's output");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("the provider says where it listens");
        // Whatever it prints later is read and dropped: a closed pipe would stop it.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
            .to_owned();
        Self { issuer, child }
    }
}
