//! Tells the integration tests what this machine offers them, so that a test that cannot
//! run here is reported as *ignored*, with its reason, in `cargo test`'s closing counts,
//! instead of passing without having run (tests/api/main.rs):
//!
//! - `enroll_test_postgres`: `ENROLL_TEST_POSTGRES_URL` is set (the PostgreSQL half of
//!   the suite, and the scale-out tests);
//! - `enroll_test_browser`: Chromium, chromedriver and axe-core are there (tests/api/browser.rs);
//! - `enroll_test_oidc`: node and the npm package `oidc-provider` are there (the single
//!   sign-on tests run a real OpenID provider: tests/api/support/oidc.rs).
//! - `enroll_test_boto3`: a Python with boto3 1.34.100 is at `ENROLL_TEST_A4B_PYTHON`, or in
//!   the virtual environment `.ci/run` makes (`target/a4b-venv`); its path is passed to
//!   the tests as `ENROLL_TEST_A4B_PYTHON_RESOLVED` (tests/api/a4b/boto3.rs).
//! - `enroll_test_scim_tester`: a Python with scim2-tester is there (`ENROLL_TEST_SCIM_TESTER`,
//!   or target/scim2-tester/bin/python as `.ci/run` installs it; tests/api/scim_conformance.rs).
//!
//! Cargo runs this again when one of those variables changes, or when a watched file or
//! folder does (installing `chromium chromium-driver` changes /usr/bin). The application
//! itself does not look at these settings.

use std::env;
use std::path::{Path, PathBuf};

const POSTGRES_URL: &str = "ENROLL_TEST_POSTGRES_URL";
const AXE_JS: &str = "ENROLL_TEST_AXE_JS";
const OIDC_PROVIDER: &str = "ENROLL_TEST_OIDC_PROVIDER";
/// Where `.ci/run`'s `npm install --prefix target/oidc-provider oidc-provider@8` puts it.
const OIDC_DEFAULT: &str = "target/oidc-provider/node_modules";
/// Where the README's `npm install --prefix target/axe-core axe-core@4` puts it.
const AXE_DEFAULT: &str = "target/axe-core/node_modules/axe-core/axe.min.js";
const A4B_PYTHON: &str = "ENROLL_TEST_A4B_PYTHON";
/// Where `.ci/run` makes the virtual environment with boto3.
const A4B_DEFAULT: &str = "target/a4b-venv/bin/python";
const SCIM_TESTER: &str = "ENROLL_TEST_SCIM_TESTER";
/// The Python of the venv `.ci/run` makes for scim2-tester.
const SCIM_TESTER_DEFAULT: &str = "target/scim2-tester/bin/python";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(enroll_test_postgres)");
    println!("cargo::rustc-check-cfg=cfg(enroll_test_browser)");
    println!("cargo::rustc-check-cfg=cfg(enroll_test_oidc)");
    println!("cargo::rerun-if-env-changed={OIDC_PROVIDER}");
    println!("cargo::rustc-check-cfg=cfg(enroll_test_boto3)");
    println!("cargo::rerun-if-env-changed={A4B_PYTHON}");
    println!("cargo::rustc-check-cfg=cfg(enroll_test_scim_tester)");
    println!("cargo::rerun-if-env-changed={SCIM_TESTER}");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed={POSTGRES_URL}");
    println!("cargo::rerun-if-env-changed={AXE_JS}");

    if env::var_os(POSTGRES_URL).is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=enroll_test_postgres");
    }
    // Evaluated in full (no short circuit), so that each one is watched.
    let tools = [
        executable("/usr/bin/chromedriver", "chromedriver"),
        executable("/usr/bin/chromium", "chromium"),
        axe_core(),
    ];
    if tools.iter().all(|found| *found) {
        println!("cargo::rustc-cfg=enroll_test_browser");
    }
    let oidc = [executable("/usr/bin/node", "node"), oidc_provider()];
    if oidc.iter().all(|found| *found) {
        println!("cargo::rustc-cfg=enroll_test_oidc");
    }
    if let Some(python) = boto3_python() {
        println!("cargo::rustc-cfg=enroll_test_boto3");
        println!(
            "cargo::rustc-env=ENROLL_TEST_A4B_PYTHON_RESOLVED={}",
            python.display()
        );
    }
    if let Some(python) = scim_tester() {
        println!("cargo::rustc-cfg=enroll_test_scim_tester");
        println!(
            "cargo::rustc-env=ENROLL_SCIM_TESTER_PYTHON={}",
            python.display()
        );
    }
}

/// Whether the `oidc-provider` package is in `ENROLL_TEST_OIDC_PROVIDER` (a
/// node_modules folder), or else where `.ci/run` installs it.
fn oidc_provider() -> bool {
    let modules = env::var_os(OIDC_PROVIDER)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join(OIDC_DEFAULT)
        });
    let package = modules.join("oidc-provider/package.json");
    if package.is_file() {
        watch(&package);
        true
    } else {
        false
    }
}

/// The Python to run the boto3 script with: `ENROLL_TEST_A4B_PYTHON`, or the one of the
/// virtual environment `.ci/run` makes. Only the default one is watched (setting the
/// variable runs this again anyway).
fn boto3_python() -> Option<PathBuf> {
    if let Some(path) = env::var_os(A4B_PYTHON).filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path = Path::new(&env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join(A4B_DEFAULT);
    // Not watched when missing (see `watch`): setting the variable after making the
    // environment runs this again, as `.ci/run` does.
    path.is_file().then(|| {
        watch(&path);
        path
    })
}

/// The Python with scim2-tester installed: `ENROLL_TEST_SCIM_TESTER`, or the venv
/// `.ci/run` makes under target/ (watched through the variable, like axe-core).
fn scim_tester() -> Option<PathBuf> {
    let path = env::var_os(SCIM_TESTER)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
                .join(SCIM_TESTER_DEFAULT)
        });
    let installed = path
        .parent()
        .and_then(Path::parent)
        .and_then(|venv| std::fs::read_dir(venv.join("lib")).ok())
        .into_iter()
        .flatten()
        .flatten()
        .any(|python| python.path().join("site-packages/scim2_tester").is_dir());
    (path.is_file() && installed).then_some(path)
}

/// Whether `preferred`, or `name` on PATH, is there (the browser test looks the same
/// way). Watches what it found, or else the folder the Debian package installs into.
/// A missing path is never watched: Cargo would take it as changed on every build.
fn executable(preferred: &str, name: &str) -> bool {
    let on_path = env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    match Some(PathBuf::from(preferred))
        .filter(|path| path.is_file())
        .or(on_path)
    {
        Some(found) => {
            watch(&found);
            true
        }
        None => {
            if let Some(dir) = Path::new(preferred).parent().filter(|dir| dir.is_dir()) {
                watch(dir);
            }
            false
        }
    }
}

/// Whether axe-core is at `ENROLL_TEST_AXE_JS`, or else where the README installs it.
fn axe_core() -> bool {
    let path = env::var_os(AXE_JS)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join(AXE_DEFAULT)
        });
    if path.is_file() {
        watch(&path);
        true
    } else {
        // Not its folder: the default one is under target/, which every build changes.
        // Setting ENROLL_TEST_AXE_JS after installing runs this again.
        false
    }
}

fn watch(path: &Path) {
    println!("cargo::rerun-if-changed={}", path.display());
}
