//! scim2-tester, a third-party SCIM conformance checker (PyPI), run against the app:
//! discovery, create, read (with attributes), replace, delete and PATCH add, remove
//! and replace on every attribute /Schemas marks writable. Any failed check fails.

use crate::credentials::scim_token;
use crate::support::*;

async fn run_scim2_tester() {
    let app = spawn_app().await;
    // meta.location must lead back to this server, as it would in production.
    app.set_up_invitations_with(&[("public_url", &app.address)])
        .await;
    let token = scim_token(&app, "scim2-tester").await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scim_conformance/check.py"
    );
    // Set by build.rs when it found scim2-tester; forced to run without it, this says so.
    let Some(python) = option_env!("ENROLL_SCIM_TESTER_PYTHON") else {
        panic!("scim2-tester is not installed: run .ci/run (or see build.rs)");
    };
    let base = app.url("/scim/v2");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args([script, &base, &token])
            .output()
    })
    .await
    .unwrap()
    .expect("the checker runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{said}");
    assert!(
        output.status.success(),
        "scim2-tester found failures:\n{said}"
    );
    assert!(said.contains("SUCCESS"), "{said}");
}

#[tokio::test]
#[cfg_attr(
    not(enroll_test_scim_tester),
    ignore = "needs scim2-tester: python3 -m venv target/scim2-tester && target/scim2-tester/bin/pip install 'scim2-tester[httpx2]==0.5.2' (.ci/run does)"
)]
async fn scim2_tester_passes_on_sqlite() {
    run_on(Engine::Sqlite, run_scim2_tester()).await;
}

#[tokio::test]
#[cfg_attr(
    not(all(enroll_test_scim_tester, enroll_test_postgres)),
    ignore = "needs scim2-tester (.ci/run installs it) and PostgreSQL (ENROLL_TEST_POSTGRES_URL)"
)]
async fn scim2_tester_passes_on_postgres() {
    run_on(Engine::Postgres, run_scim2_tester()).await;
}
