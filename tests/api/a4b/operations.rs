//! Each operation through a signed request, and what the console shows afterwards.

use serde_json::json;

use super::A4b;
use crate::support::*;

on_both_engines! {
    async fn a_user_created_through_the_api_is_not_invited_until_sent_an_invitation() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        let answer = api
            .call(
                "CreateUser",
                serde_json::json!({
                    "UserId": "ada.lovelace",
                    "FirstName": "Ada",
                    "LastName": "Lovelace",
                    "Email": "ada@example.com",
                    "Tags": [{ "Key": "team", "Value": "north 2" }],
                }),
            )
            .await
            .ok();
        let arn = answer["UserArn"].as_str().unwrap().to_owned();
        assert!(arn.starts_with("arn:aws:a4b:"), "{arn}");
        assert_eq!(app.count("outbound_emails"), 0, "no email for a user made without one");
        assert_eq!(app.status_of("ada@example.com").await, "Not invited");
        let user = api.user("ada@example.com").await;
        assert_eq!(user["EnrollmentStatus"], "INITIALIZED");
        assert_eq!(user["UserArn"], arn.as_str());
        assert_eq!(user["FirstName"], "Ada");

        // Tags: on the user's page, and a filter of the Users page.
        let id = app.user_id("ada@example.com");
        let history = app.get(&format!("/users/{id}")).await.text();
        assert!(history.contains("team") && history.contains("north 2"), "{history}");
        assert!(history.contains("Send invitation"), "{history}");
        let tagged = app.get(&format!("/users?q={}", urlencode("tag:team=north 2"))).await;
        assert!(tagged.text().contains("ada@example.com"), "{}", tagged.text());
        let other = app.get(&format!("/users?q={}", urlencode("tag:team=south"))).await;
        assert!(!other.text().contains("ada@example.com"));

        // The first invitation, as "Resend invitation" sends it.
        api.call("SendInvitation", json!({ "UserArn": arn })).await.ok();
        assert_eq!(app.deliver_due_emails().await, 1);
        let email = app.delivered_to("ada@example.com", 1).await;
        assert!(email.enrollment_path().starts_with("/enroll/"));
        assert_eq!(api.user("ada@example.com").await["EnrollmentStatus"], "PENDING");
        assert_eq!(app.status_of("ada@example.com").await, "Pending");

        // Done as the key, in the audit log.
        let audit = app.get("/audit").await.text();
        assert!(audit.contains("access key: onboarding script"), "{audit}");
    }
}

on_both_engines! {
    async fn create_user_is_idempotent_with_a_client_request_token() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        let request = json!({
            "UserId": "grace", "FirstName": "Grace", "LastName": "Hopper",
            "Email": "grace@example.com", "ClientRequestToken": "token-0123456789",
        });
        let first = api.call("CreateUser", request.clone()).await.ok();
        let again = api.call("CreateUser", request.clone()).await.ok();
        assert_eq!(first["UserArn"], again["UserArn"]);
        assert_eq!(app.count("users"), 1);

        let mut other = request.clone();
        other["UserId"] = json!("someone-else");
        other["Email"] = json!("else@example.com");
        api.call("CreateUser", other).await.refused(400, "ResourceInUseException");
        let mut taken = request.clone();
        taken["ClientRequestToken"] = json!("token-abcdefghij");
        taken["UserId"] = json!("grace2");
        api.call("CreateUser", taken).await.refused(400, "ResourceInUseException");
        let mut same_id = request;
        same_id["ClientRequestToken"] = json!("token-zzzzzzzzzz");
        same_id["Email"] = json!("grace2@example.com");
        api.call("CreateUser", same_id).await.refused(400, "ResourceInUseException");
        assert_eq!(app.count("users"), 1);
    }
}

on_both_engines! {
    async fn revoke_delete_and_tags_act_on_the_user() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        let arn = api.create_user("alan", "Alan", "Turing", "alan@example.com").await;
        api.call("SendInvitation", json!({ "UserArn": arn })).await.ok();
        app.deliver_due_emails().await;
        let email = app.delivered_to("alan@example.com", 1).await;
        let path = email.enrollment_path();

        // RevokeInvitation: the link stops working, the user stays.
        let enrollment = api.user("alan@example.com").await["EnrollmentId"].clone();
        api.call("RevokeInvitation", json!({ "UserArn": arn, "EnrollmentId": enrollment }))
            .await
            .ok();
        let page = app.get(&path).await;
        assert!(!page.text().contains("Join organization"), "{}", page.text());
        assert_eq!(app.status_of("alan@example.com").await, "Expired");
        assert_eq!(api.user("alan@example.com").await["EnrollmentStatus"], "PENDING");

        // Tags.
        api.call(
            "TagResource",
            json!({ "Arn": arn, "Tags": [{ "Key": "b", "Value": "2" }, { "Key": "a", "Value": "1" }, { "Key": "c", "Value": "" }] }),
        )
        .await
        .ok();
        let first = api.call("ListTags", json!({ "Arn": arn, "MaxResults": 2 })).await.ok();
        assert_eq!(first["Tags"], json!([{ "Key": "a", "Value": "1" }, { "Key": "b", "Value": "2" }]));
        let token = first["NextToken"].as_str().unwrap();
        let rest = api
            .call("ListTags", json!({ "Arn": arn, "MaxResults": 2, "NextToken": token }))
            .await
            .ok();
        assert_eq!(rest["Tags"], json!([{ "Key": "c", "Value": "" }]));
        assert!(rest.get("NextToken").is_none());
        api.call("UntagResource", json!({ "Arn": arn, "TagKeys": ["a", "c"] })).await.ok();
        let left = api.call("ListTags", json!({ "Arn": arn })).await.ok();
        assert_eq!(left["Tags"], json!([{ "Key": "b", "Value": "2" }]));

        // DeleteUser, as "Remove user".
        api.call("DeleteUser", json!({ "UserArn": arn, "EnrollmentId": enrollment }))
            .await
            .ok();
        assert_eq!(app.count("users"), 0);
        assert_eq!(app.count("user_tags"), 0);
        api.call("DeleteUser", json!({ "UserArn": arn, "EnrollmentId": enrollment }))
            .await
            .refused(400, "NotFoundException");
        api.call("SendInvitation", json!({ "UserArn": arn }))
            .await
            .refused(400, "NotFoundException");
        api.call("ListTags", json!({ "Arn": arn })).await.refused(400, "NotFoundException");
    }
}

on_both_engines! {
    async fn the_invitation_configuration_is_the_console_set_up() {
        let app = spawn_app().await;
        app.login_admin().await;
        let api = A4b::key(&app, "settings script", "administrator").await;
        api.call("GetInvitationConfiguration", json!({}))
            .await
            .refused(400, "NotFoundException");
        let saved = app
            .submit("/settings/invitations", "/settings/invitations", &TestApp::settings_fields())
            .await;
        assert_eq!(saved.status, 303, "{}", saved.text());
        let before = api.call("GetInvitationConfiguration", json!({})).await.ok();
        assert_eq!(before["PrivateSkillIds"], json!([]));
        api.call(
            "PutInvitationConfiguration",
            json!({ "OrganizationName": "Example Corp", "ContactEmail": "it@example.com" }),
        )
        .await
        .ok();
        let after = api.call("GetInvitationConfiguration", json!({})).await.ok();
        assert_eq!(after["OrganizationName"], "Example Corp");
        assert_eq!(after["ContactEmail"], "it@example.com");
        let page = app.get("/settings/invitations").await;
        assert_eq!(
            page.input_value("#organization_name").as_deref(),
            Some("Example Corp")
        );
        // The console's own rules apply, and nothing is saved when they refuse.
        api.call(
            "PutInvitationConfiguration",
            json!({ "OrganizationName": "Line\u{85}break" }),
        )
        .await
        .refused(400, "ValidationException");
        let unchanged = api.call("GetInvitationConfiguration", json!({})).await.ok();
        assert_eq!(unchanged["OrganizationName"], "Example Corp");
    }
}

on_both_engines! {
    async fn a_help_desk_key_may_search_and_send_invitations_only() {
        let app = spawn_app().await;
        let admin = A4b::admin(&app).await;
        let arn = admin.create_user("kat", "Katherine", "Johnson", "kat@example.com").await;
        let help = A4b::key(&app, "help desk script", "helpdesk").await;
        assert_eq!(help.user("kat@example.com").await["EnrollmentStatus"], "INITIALIZED");
        help.call("SendInvitation", json!({ "UserArn": arn })).await.ok();
        for (operation, input) in [
            ("CreateUser", json!({ "UserId": "x", "FirstName": "X", "LastName": "Y", "Email": "x@example.com" })),
            ("DeleteUser", json!({ "UserArn": arn, "EnrollmentId": "" })),
            ("RevokeInvitation", json!({ "UserArn": arn })),
            ("TagResource", json!({ "Arn": arn, "Tags": [{ "Key": "k", "Value": "v" }] })),
            ("UntagResource", json!({ "Arn": arn, "TagKeys": ["k"] })),
            ("ListTags", json!({ "Arn": arn })),
            ("GetInvitationConfiguration", json!({})),
            ("PutInvitationConfiguration", json!({ "OrganizationName": "Evil" })),
        ] {
            help.call(operation, input).await.refused(403, "AccessDeniedException");
        }
        assert_eq!(app.count("users"), 1);
        assert_eq!(app.count("user_tags"), 0);
    }
}

on_both_engines! {
    async fn the_console_sends_the_first_invitation_to_a_user_not_invited() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        api.create_user("ida", "Ida", "Rhodes", "ida@example.com").await;
        let page = app.get("/users?status=not_invited").await;
        assert!(page.text().contains("Send invitation"), "{}", page.text());
        assert!(page.text().contains("ida@example.com"));
        let id = app.user_id("ida@example.com");
        let done = app.act_on_users("/users/resend", &[id], &[]).await;
        let page = app.follow(done).await;
        assert!(page.text().contains("Invitation sent to"), "{}", page.text());
        assert_eq!(app.deliver_due_emails().await, 1);
        assert_eq!(app.status_of("ida@example.com").await, "Pending");
        let history = app.get(&format!("/users/{}", app.user_id("ida@example.com"))).await;
        assert!(history.text().contains("not invited yet"), "{}", history.text());
    }
}
