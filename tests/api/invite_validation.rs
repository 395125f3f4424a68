//! Strict validation of the invite form: messages beside the fields, everything typed
//! kept, nothing saved.

use crate::support::*;

/// Invites one row and expects it refused with `message` beside `field` of row 1.
async fn assert_refused(app: &TestApp, row: (&str, &str, &str), field: &str, message: &str) {
    let page = app.invite(&[row]).await;
    assert_eq!(page.status, 422, "{row:?} was accepted");
    let error = page
        .field_error(&format!("{field}-1"))
        .unwrap_or_else(|| panic!("no message beside {field} for {row:?}: {}", page.text()));
    assert!(error.contains(message), "{row:?}: {error}");
    // HTML parsing turns NUL into U+FFFD and CRLF into LF, in browsers as here.
    let shown = |typed: &str| typed.replace('\0', "\u{FFFD}").replace("\r\n", "\n");
    assert_eq!(page.input_values("first_name"), vec![shown(row.0)]);
    assert_eq!(page.input_values("last_name"), vec![shown(row.1)]);
    assert_eq!(page.input_values("email"), vec![shown(row.2)]);
    assert!(page.text().contains("Nothing was sent"), "{}", page.text());
}

/// A row the invite form refuses: what was typed, and the message beside which field.
struct Refused {
    row: (&'static str, &'static str, &'static str),
    field: &'static str,
    message: &'static str,
}

const fn refused(
    row: (&'static str, &'static str, &'static str),
    field: &'static str,
    message: &'static str,
) -> Refused {
    Refused {
        row,
        field,
        message,
    }
}

const REFUSED_ROWS: &[Refused] = &[
    refused(
        ("", "Lovelace", "ada@example.com"),
        "first_name",
        "Enter a first name",
    ),
    refused(
        ("Ada", "   ", "ada@example.com"),
        "last_name",
        "Enter a last name",
    ),
    refused(("Ada", "Lovelace", ""), "email", "Enter an email address"),
    refused(
        ("Ada\u{0}", "Lovelace", "ada@example.com"),
        "first_name",
        "control character",
    ),
    refused(
        ("Ada", "Love\r\nlace", "ada@example.com"),
        "last_name",
        "control character",
    ),
    refused(("Ada", "Lovelace", "ada.example.com"), "email", "with an @"),
    refused(
        ("Ada", "Lovelace", "ada@example"),
        "email",
        "internet domain",
    ),
    refused(
        ("Ada", "Lovelace", "ada@@example.com"),
        "email",
        "more than one @",
    ),
    refused(
        ("Ada", "Lovelace", "ada@exampl\u{0435}.com"),
        "email",
        "U+0435",
    ),
    refused(
        (
            "Ada",
            "Lovelace",
            "ada@example.com\r\nBcc: eve@evil.example",
        ),
        "email",
        "spaces or control",
    ),
    refused(
        ("Ada", "Lovelace", "ada lovelace@example.com"),
        "email",
        "spaces",
    ),
];

on_both_engines! {
    async fn each_wrong_field_is_named_and_nothing_is_saved() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        for Refused { row, field, message } in REFUSED_ROWS {
            assert_refused(&app, *row, field, message).await;
        }
        let long = "x".repeat(101);
        assert_refused(&app, (&long, "Lovelace", "ada@example.com"), "first_name", "at most 100 characters").await;
        assert_eq!(app.count("users"), 0);
        assert_eq!(app.count("invitations"), 0);
        assert_eq!(app.count("outbound_emails"), 0);
    }
}

on_both_engines! {
    async fn one_bad_row_stops_the_whole_submission() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let page = app
            .invite(&[
                ("Ada", "Lovelace", "ada@example.com"),
                ("Alan", "Turing", "alan@example"),
                ("Grace", "Hopper", "grace@example.com"),
                ("Ada", "Again", "ADA@example.com"),
            ])
            .await;
        assert_eq!(page.status, 422);
        assert!(page.field_error("email-1").is_none());
        assert!(
            page.field_error("email-2")
                .unwrap()
                .contains("internet domain")
        );
        assert!(
            page.field_error("email-4")
                .unwrap()
                .contains("already in row 1")
        );
        assert!(
            page.text().contains("2 rows need attention"),
            "{}",
            page.text()
        );
        assert_eq!(
            page.input_values("email"),
            vec![
                "ada@example.com",
                "alan@example",
                "grace@example.com",
                "ADA@example.com"
            ]
        );
        assert_eq!(app.count("users"), 0);
        assert_eq!(app.count("outbound_emails"), 0);
    }
}

on_both_engines! {
    async fn an_address_that_already_belongs_to_a_user_suggests_resend() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[("Ada", "Lovelace", "ada@example.com")])
            .await
            .assert_redirect_to("/users");
        let page = app
            .invite(&[
                ("Alan", "Turing", "alan@example.com"),
                ("Ada", "Lovelace", "Ada@Example.com"),
            ])
            .await;
        assert_eq!(page.status, 422);
        let error = page.field_error("email-2").unwrap();
        assert!(error.contains("already belongs to a user"), "{error}");
        assert!(error.contains("Resend invitation"), "{error}");
        assert!(page.field_error("email-1").is_none());
        assert_eq!(app.count("users"), 1, "Alan was not saved either");
    }
}

on_both_engines! {
    async fn blank_extra_rows_are_ignored_but_an_empty_form_is_refused() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let page = app.invite(&[("", "", "")]).await;
        assert_eq!(page.status, 422);
        assert!(
            page.text().contains("Fill in at least one person"),
            "{}",
            page.text()
        );

        let page = app
            .invite(&[("Ada", "Lovelace", "ada@example.com"), ("", "", "  ")])
            .await;
        page.assert_redirect_to("/users");
        assert_eq!(app.count("users"), 1);
    }
}

on_both_engines! {
    async fn markup_in_names_is_stored_as_typed_and_shown_escaped() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let page = app
            .invite(&[(
                "<script>alert(1)</script>",
                "O'Brien \"Bob\"",
                "bob@example.com",
            )])
            .await;
        page.assert_redirect_to("/users");
        let users = app.get("/users").await;
        assert!(!users.body.contains("<script>alert(1)</script>"));
        assert!(
            users
                .body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        );
        assert!(
            users.text().contains("<script>alert(1)</script>"),
            "shown as text"
        );
        let email = app.delivered_to("bob@example.com", 1).await;
        assert!(!email.html().contains("<script>"));
        assert!(email.text().contains("Hello <script>alert(1)</script>,"));
    }
}

on_both_engines! {
    async fn inviting_before_set_up_leads_to_the_settings_with_an_explanation() {
        let app = spawn_app().await;
        app.login_admin().await;
        let page = app.get("/users/invite").await;
        page.assert_redirect_to("/settings/invitations");
        let settings = app.follow(page).await;
        assert!(settings.text().contains("Set up user invitations first"), "{}", settings.text());
        assert!(settings.input_value("input[name=organization_name]").is_some());
        // A form kept open from before (another tab) is sent to the settings too.
        let form = fields(&[("first_name", "Ada"), ("last_name", "Lovelace"), ("email", "ada@example.com"), ("action", "send")]);
        let refused = app.submit("/users", "/users/invite", &form).await;
        refused.assert_redirect_to("/settings/invitations");
        assert_eq!(app.count("users"), 0);
    }
}
