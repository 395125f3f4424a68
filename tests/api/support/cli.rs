//! Running the built `enroll` binary as an operator or a script would.

use std::path::Path;
use std::process::{Command, Output};

/// The binary, with nothing from this environment but a data folder of its own.
pub fn enroll(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_enroll"));
    command
        .env_clear()
        .env("ENROLL_DATA_DIR", data_dir)
        .env("ENROLL_LOG", "warn");
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

/// Everything it printed.
pub fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// It succeeded; what it printed.
pub fn ok(output: Output) -> String {
    assert!(output.status.success(), "{}", said(&output));
    said(&output)
}

/// It failed; what it printed.
pub fn refused(output: Output) -> String {
    assert!(!output.status.success(), "{}", said(&output));
    said(&output)
}
