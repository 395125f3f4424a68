//! The file transport keeps one file per email.

use crate::helpers::*;

fn message(subject: &str) -> lettre::Message {
    lettre::Message::builder()
        .from("Example Corp <no-reply@example.com>".parse().unwrap())
        .to("ada@example.com".parse().unwrap())
        .subject(subject)
        .body("Welcome".to_owned())
        .unwrap()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_file_transport_writes_one_file_per_email_and_a_repeat_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = enroll::mail::Mailer::files(dir.path()).unwrap();
    let first = uuid::Uuid::now_v7().to_string();
    let second = uuid::Uuid::now_v7().to_string();

    mailer.send(message("First try"), &first).unwrap();
    mailer.send(message("Second try"), &first).unwrap();
    assert_eq!(files_in(dir.path()), [format!("{first}.eml")]);
    let email = ReceivedEmail::from_file(&dir.path().join(format!("{first}.eml")));
    assert_eq!(
        email.subject(),
        "Second try",
        "the repeat replaced the file"
    );

    mailer.send(message("Another email"), &second).unwrap();
    let mut expected = [format!("{first}.eml"), format!("{second}.eml")];
    expected.sort();
    assert_eq!(files_in(dir.path()), expected, "no temporary file is left");
}
