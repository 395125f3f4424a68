//! What real identity providers send, and SCIM racing itself and the console.

use serde_json::json;

use crate::scim::provisioned_app;
use crate::support::*;

on_both_engines! {
    async fn entra_shapes_are_understood() {
        let (app, token) = provisioned_app().await;
        let scim = Scim::new(&app, &token);
        // Entra's create: enterprise extension, string boolean, attributes not kept.
        let created = scim.post("/Users", &json!({
            "schemas": [CORE_USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": "a1b2c3",
            "userName": "grace@example.com",
            "active": "True",
            "displayName": "Grace Hopper",
            "title": "Rear Admiral",
            "preferredLanguage": "en-US",
            "emails": [{"primary": true, "type": "work", "value": "grace@example.com"}],
            "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Navy"}
        })).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let found = scim.get(&format!("/Users?filter={}", urlencode("externalId eq \"a1b2c3\""))).await;
        assert_eq!(found.body["totalResults"], json!(1));

        // Entra's PATCH: capitalised ops, bracketed email path with the same address,
        // dotted names, attributes Enroll does not keep.
        let patched = scim.patch(&format!("/Users/{id}"), json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "grace@example.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Amazing Grace"},
            {"op": "Add", "path": "title", "value": "Commodore"},
            {"op": "Replace", "path": "displayName", "value": "Amazing Grace Hopper"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Computing"},
            {"op": "Remove", "path": "externalId"}
        ])).await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        assert_eq!(patched.body["name"]["givenName"], json!("Amazing Grace"));
        assert!(patched.body.get("externalId").is_none());
        assert_eq!(patched.body["active"], json!(true));
        let history = app.get(&format!("/users/{id}")).await.text();
        assert!(history.contains("Changed by SCIM: Okta"), "{history}");

        // Okta's PUT carries the whole user, password and all.
        let mut put = okta_user("grace@example.com", "Grace", "Hopper");
        put["password"] = json!("ignored-secret");
        put["id"] = json!(id);
        assert_eq!(scim.put(&format!("/Users/{id}"), &put).await.status, 200);
        // plain application/json is accepted too
        let plain = reqwest::Client::new()
            .get(app.url(&format!("/scim/v2/Users/{id}")))
            .header("Authorization", format!("Bearer {token}"))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 200);
    }
}

on_both_engines! {
    async fn two_posts_of_one_user_at_once_make_one_user_and_one_email() {
        let (app, token) = provisioned_app().await;
        for round in 0..5 {
            let scim = Scim::new(&app, &token);
            let email = format!("twin{round}@example.com");
            let body = okta_user(&email, "Twin", "Sister");
            let (a, b) = tokio::join!(scim.post("/Users", &body), scim.post("/Users", &body));
            let mut statuses = [a.status, b.status];
            statuses.sort();
            assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
            let loser = if a.status == 409 { a } else { b };
            loser.assert_error(409, Some("uniqueness"));
        }
        assert_eq!(app.count("users"), 5);
        assert_eq!(app.count("outbound_emails"), 5);
        assert_eq!(app.deliver_due_emails().await, 5);
        assert_eq!(app.smtp.received().len(), 5);
    }
}

on_both_engines! {
    async fn a_patch_racing_console_resend_and_remove_ends_consistent() {
        let (app, token) = provisioned_app().await;
        let scim = Scim::new(&app, &token);
        for round in 0..3 {
            let email = format!("race{round}@example.com");
            let id = scim.create(&email, "Race", "Condition").await;
            let path = format!("/Users/{id}");
            let deactivate = json!([{"op": "replace", "value": {"active": false}}]);
            let (patched, resent) = tokio::join!(
                scim.patch(&path, deactivate.clone()),
                app.act_on_users("/users/resend", std::slice::from_ref(&id), &[])
            );
            assert_eq!(patched.status, 200, "{}", patched.body);
            assert_eq!(resent.status, 303);
            // Whichever went first, the user ends deactivated with nothing to send
            // and no live link.
            app.assert_status(&email, "Deactivated").await;
            assert_eq!(app.deliver_due_emails().await, 0, "round {round}");

            let (patched, removed) = tokio::join!(
                scim.patch(&path, json!([{"op": "replace", "path": "active", "value": true}])),
                app.act_on_users("/users/remove", std::slice::from_ref(&id), &[("confirm", "yes")])
            );
            assert_eq!(removed.status, 303);
            // Either the PATCH came first (then the user was removed), or it found no user.
            assert!(patched.status == 200 || patched.status == 404, "{}", patched.body);
            scim.get(&path).await.assert_error(404, None);
            app.deliver_due_emails().await;
            use diesel::prelude::*;
            let live: i64 = enroll::db::schema::outbound_emails::table
                .filter(enroll::db::schema::outbound_emails::recipient.eq(&email))
                .filter(enroll::db::schema::outbound_emails::status.eq("queued"))
                .count()
                .get_result(&mut *app.conn())
                .unwrap();
            assert_eq!(live, 0);
        }
    }
}
