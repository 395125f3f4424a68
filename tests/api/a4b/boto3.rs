//! The real client: the AWS SDK for Python's Alexa for Business client (boto3 1.34.100)
//! runs `tests/a4b_client.py`, a customer's script, against the app. `.ci/run` makes
//! the virtual environment; without it the test is ignored, saying so (build.rs).

use std::process::Command;

use super::A4b;
use crate::support::*;

on_both_engines! {
    #[needs(enroll_test_boto3, "needs boto3 1.34.100: run .ci/run, or set ENROLL_TEST_A4B_PYTHON")]
    async fn a_boto3_script_written_for_the_source_console_works_unchanged() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        let Some(python) = option_env!("ENROLL_TEST_A4B_PYTHON_RESOLVED") else {
            panic!("needs a Python with boto3 1.34.100: run .ci/run, or set ENROLL_TEST_A4B_PYTHON");
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/a4b_client.py");
        let (url, key_id, secret) = (api.url.clone(), api.key_id.clone(), api.secret.clone());
        let output = tokio::task::spawn_blocking(move || {
            Command::new(python)
                .arg(script)
                .env_clear()
                .env("A4B_ENDPOINT", url)
                .env("AWS_ACCESS_KEY_ID", key_id)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
                .output()
                .expect("Python runs")
        })
        .await
        .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{said}");
        assert!(said.contains("boto3 script: OK"), "{said}");
        // What the script did is what the console shows.
        assert_eq!(app.status_of("person0@example.com").await, "Expired");
        assert_eq!(app.status_of("person3@example.com").await, "Not invited");
        assert_eq!(app.count("users"), 12);
        let audit = app.get("/audit").await.text();
        assert!(audit.contains("access key: onboarding script"), "{audit}");
    }
}
