//! SCIM 2.0 at /scim/v2: discovery, tokens, and users created, deactivated,
//! reactivated and removed through the same operations as the console.

use serde_json::{Value, json};

use crate::credentials::scim_token;
use crate::support::*;

/// An app with invitations set up, an administrator signed in, and a SCIM token "Okta".
pub async fn provisioned_app() -> (TestApp, String) {
    let app = spawn_app().await;
    app.set_up_invitations().await;
    let token = scim_token(&app, "Okta").await;
    (app, token)
}

on_both_engines! {
    async fn discovery_documents_describe_what_is_offered() {
        let (app, token) = provisioned_app().await;
        let scim = Scim::new(&app, &token);
        let config = scim.get("/ServiceProviderConfig").await;
        assert_eq!(config.status, 200);
        assert_eq!(config.header("content-type").as_deref(), Some("application/scim+json"));
        assert_eq!(config.body["patch"]["supported"], json!(true));
        assert_eq!(config.body["bulk"]["supported"], json!(false));
        assert_eq!(config.body["etag"]["supported"], json!(true));
        let types = scim.get("/ResourceTypes").await;
        assert_eq!(types.body["totalResults"], json!(1));
        assert_eq!(types.body["Resources"][0]["endpoint"], json!("/Users"));
        assert_eq!(scim.get("/ResourceTypes/User").await.status, 200);
        let schemas = scim.get("/Schemas").await;
        assert_eq!(schemas.body["totalResults"], json!(2));
        let user = scim.get(&format!("/Schemas/{CORE_USER}")).await;
        assert_eq!(user.body["attributes"][0]["name"], json!("userName"));
        assert!(user.body["meta"]["location"].as_str().unwrap().starts_with("https://enroll.example.com/scim/v2/"));

        scim.get("/ResourceTypes/Group").await.assert_error(404, None);
        scim.get("/Schemas/urn:nope").await.assert_error(404, None);
        scim.get("/Groups").await.assert_error(404, None);
        scim.get("/no-such-thing").await.assert_error(404, None);
        scim.post("/ServiceProviderConfig", &json!({})).await.assert_error(405, None);
        scim.delete("/Schemas").await.assert_error(405, None);
        scim.put("/Users", &json!({})).await.assert_error(405, None);
        scim.post("/.search", &json!({})).await.assert_error(501, None);
    }
}

on_both_engines! {
    async fn missing_wrong_and_revoked_tokens_get_401_and_are_throttled() {
        let (app, token) = provisioned_app().await;
        let body = okta_user("ada@example.com", "Ada", "Lovelace");
        for bad in ["", "not-the-token", &format!("{token}x"), &"x".repeat(5000)] {
            let scim = Scim::new(&app, bad);
            let answer = scim.post("/Users", &body).await;
            answer.assert_error(401, None);
            assert!(answer.header("www-authenticate").unwrap().starts_with("Bearer"));
        }
        let anonymous = reqwest::Client::new()
            .get(app.url("/scim/v2/Users"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
        assert_eq!(app.count("users"), 0);

        // Revoked on the page: the very next request is refused.
        let scim = Scim::new(&app, &token);
        assert_eq!(scim.get("/Users").await.status, 200);
        let id: String = {
            use diesel::prelude::*;
            enroll::db::schema::credentials::table
                .select(enroll::db::schema::credentials::id)
                .first(&mut *app.conn())
                .unwrap()
        };
        let path = format!("/settings/api/{id}/revoke");
        app.submit("/settings/api", &path, &fields(&[("confirm", "yes")])).await;
        scim.post("/Users", &body).await.assert_error(401, None);
        assert_eq!(app.count("users"), 0);

        // Guessing from one address is slowed down, as signing in is.
        let mut throttled = None;
        for _ in 0..30 {
            let answer = Scim::new(&app, "guess").get("/Users").await;
            if answer.status == 429 {
                throttled = Some(answer);
                break;
            }
            answer.assert_error(401, None);
        }
        let throttled = throttled.expect("refused with 429 after a few bad tokens");
        throttled.assert_error(429, None);
        assert!(throttled.header("retry-after").is_some());
    }
}

on_both_engines! {
    async fn okta_looks_up_then_creates_and_the_invitation_goes_out() {
        let (app, token) = provisioned_app().await;
        let scim = Scim::new(&app, &token);
        let lookup = scim.get("/Users?filter=userName%20eq%20%22ada%40example.com%22&startIndex=1&count=100").await;
        assert_eq!(lookup.status, 200);
        assert_eq!(lookup.body["totalResults"], json!(0));
        assert_eq!(lookup.body["startIndex"], json!(1));
        assert_eq!(lookup.body["itemsPerPage"], json!(0));
        assert_eq!(lookup.body["Resources"], json!([]));

        let created = scim.post("/Users", &okta_user("Ada@Example.com", "Ada", "Lovelace")).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let location = format!("https://enroll.example.com/scim/v2/Users/{id}");
        assert_eq!(created.header("location").as_deref(), Some(location.as_str()));
        assert_eq!(created.body["meta"]["location"], json!(location));
        assert_eq!(created.body["meta"]["resourceType"], json!("User"));
        assert_eq!(created.header("etag").as_ref(), created.body["meta"]["version"].as_str().map(str::to_owned).as_ref());
        assert_eq!(created.body["userName"], json!("Ada@Example.com"));
        assert_eq!(created.body["active"], json!(true));
        assert_eq!(created.body["externalId"], json!("00u-Ada@Example.com"));
        assert_eq!(created.body["emails"][0]["value"], json!("Ada@Example.com"));
        // The enrollment state is read on request, from the extension.
        assert!(created.body.get(ENROLLMENT).is_none());
        let state = scim.get(&format!("/Users/{id}?attributes={}", urlencode(ENROLLMENT))).await;
        let extension = &state.body[ENROLLMENT];
        assert_eq!(extension["enrollmentStatus"], json!("Sending"), "{}", state.body);
        assert!(extension["invitationExpires"].is_string());
        assert_eq!(extension["provisionedBy"], json!("Okta"));
        assert!(state.body["schemas"].as_array().unwrap().contains(&json!(ENROLLMENT)));

        // Found case-insensitively, by address or externalId.
        for filter in [
            "userName eq \"ADA@example.com\"",
            "externalId eq \"00u-Ada@Example.com\"",
            "emails[type eq \"work\"].value eq \"ada@example.com\"",
            "emails.value eq \"ada@example.com\" and externalId eq \"00u-Ada@Example.com\"",
        ] {
            let found = scim.get(&format!("/Users?filter={}", urlencode(filter))).await;
            assert_eq!(found.body["totalResults"], json!(1), "{filter}");
            assert_eq!(found.body["Resources"][0]["id"], json!(id), "{filter}");
        }
        let none = scim.get(&format!("/Users?filter={}", urlencode("externalId eq \"00U-ADA@EXAMPLE.COM\""))).await;
        assert_eq!(none.body["totalResults"], json!(0), "externalId is case-exact");

        // The invitation went through the outbox, as "Send invite" sends it.
        let email = app.delivered_to("Ada@Example.com", 1).await;
        let invitee = browser();
        let page = app.get_with(&invitee, &email.enrollment_path()).await;
        assert_eq!(page.status, 200);
        assert!(!email.text().contains("SCIM"), "the email names no machine");

        // Audited under the credential; the Users page and history say who provisioned.
        let audit = app.get("/audit").await.text();
        assert!(audit.contains("SCIM: Okta"), "{audit}");
        let users = app.get("/users").await.text();
        assert!(users.contains("provisioned by Okta"), "{users}");
        let history = app.get(&format!("/users/{id}")).await.text();
        assert!(history.contains("Provisioned by Okta"), "{history}");

        let got = scim.get(&format!("/Users/{id}")).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body["id"], json!(id));
        let etag = got.header("etag").unwrap();
        let unchanged = scim.send(reqwest::Method::GET, &format!("/Users/{id}"), None, &[("If-None-Match", &etag)]).await;
        assert_eq!(unchanged.status, 304);
        scim.get("/Users/not-a-uuid").await.assert_error(404, None);
        scim.get("/Users/00000000-0000-0000-0000-000000000000").await.assert_error(404, None);

        // The same address again: 409, nothing more sent.
        scim.post("/Users", &okta_user("ada@EXAMPLE.com", "Ada", "L")).await.assert_error(409, Some("uniqueness"));
        assert_eq!(app.count("users"), 1);
        assert_eq!(app.deliver_due_emails().await, 0);
    }
}

on_both_engines! {
    async fn deactivation_kills_links_cancels_mail_and_keeps_the_user() {
        let (app, token) = provisioned_app().await;
        let scim = Scim::new(&app, &token);
        let ada = scim.create("ada@example.com", "Ada", "Lovelace").await;
        let email = app.delivered_to("ada@example.com", 1).await;
        let alan = scim.create("alan@example.com", "Alan", "Turing").await;

        // Okta: PATCH without a path. Alan's email is still queued.
        let off = scim.patch(&format!("/Users/{ada}"), json!([{"op": "replace", "value": {"active": false}}])).await;
        assert_eq!(off.status, 200, "{}", off.body);
        assert_eq!(off.body["active"], json!(false));
        // Entra: capitalised op, a string boolean.
        let off = scim.patch(&format!("/Users/{alan}"), json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
        assert_eq!(off.body["active"], json!(false));
        assert_eq!(app.deliver_due_emails().await, 0, "Alan's queued invitation is not sent");
        assert!(app.smtp.to("alan@example.com").is_empty());

        // Ada's link is dead at once.
        let invitee = browser();
        let page = app.get_with(&invitee, &email.enrollment_path()).await;
        assert_eq!(page.status, 410, "{}", page.text());
        assert!(!page.text().contains("Join organization"), "{}", page.text());
        assert_eq!(scim.get(&format!("/Users/{ada}")).await.body["active"], json!(false));

        // Kept, listed and filterable as Deactivated; GET says active: false.
        app.assert_status("ada@example.com", "Deactivated").await;
        let filtered = app.get("/users?status=deactivated").await.text();
        assert!(filtered.contains("ada@example.com") && filtered.contains("alan@example.com"), "{filtered}");
        assert!(filtered.contains("Deactivated 2"), "{filtered}");
        assert_eq!(app.count("users"), 2);
        let got = scim.get(&format!("/Users/{ada}?attributes=active,{ENROLLMENT}:enrollmentStatus")).await;
        assert_eq!(got.body["active"], json!(false));
        assert_eq!(got.body[ENROLLMENT]["enrollmentStatus"], json!("Deactivated"), "{}", got.body);

        // Resend refuses, saying who manages them.
        let page = app.act_on_users("/users/resend", std::slice::from_ref(&ada), &[]).await;
        let text = app.follow(page).await.text();
        assert!(text.contains("deactivated by the identity provider"), "{text}");
        assert_eq!(app.deliver_due_emails().await, 0);

        // active: true sends a fresh invitation, whose link works.
        let on = scim.patch(&format!("/Users/{ada}"), json!([{"op": "replace", "path": "active", "value": true}])).await;
        assert_eq!(on.body["active"], json!(true));
        let fresh = app.delivered_to("ada@example.com", 2).await;
        assert_ne!(fresh.enrollment_path(), email.enrollment_path());
        let page = app.get_with(&invitee, &fresh.enrollment_path()).await;
        assert_eq!(page.status, 200);
        app.assert_status("ada@example.com", "Pending").await;
        let history = app.get(&format!("/users/{ada}")).await.text();
        assert!(history.contains("Deactivated by SCIM: Okta") && history.contains("Reactivated by SCIM: Okta"), "{history}");
    }
}

on_both_engines! {
    async fn put_changes_names_and_etags_guard_changes() {
        let (app, token) = provisioned_app().await;
        let scim = Scim::new(&app, &token);
        let id = scim.create("ada@example.com", "Ada", "Lovelace").await;
        let before = scim.get(&format!("/Users/{id}")).await;
        let etag = before.header("etag").unwrap();
        let mut body = okta_user("ada@example.com", "Augusta", "King");
        body["externalId"] = json!("new-id");
        let put = scim.put(&format!("/Users/{id}"), &body).await;
        assert_eq!(put.status, 200, "{}", put.body);
        assert_eq!(put.body["name"], json!({"givenName": "Augusta", "familyName": "King"}));
        assert_eq!(put.body["externalId"], json!("new-id"));
        assert_ne!(put.header("etag").unwrap(), etag);
        assert!(app.get("/users").await.text().contains("Augusta"));

        // A stale If-Match is refused, and nothing changes.
        let stale = scim.send(reqwest::Method::PUT, &format!("/Users/{id}"), Some(okta_user("ada@example.com", "X", "Y").to_string()), &[("If-Match", &etag)]).await;
        stale.assert_error(412, None);
        assert_eq!(scim.get(&format!("/Users/{id}")).await.body["name"]["givenName"], json!("Augusta"));

        // The address is the identity: changing it is refused.
        scim.put(&format!("/Users/{id}"), &okta_user("other@example.com", "A", "B")).await.assert_error(400, Some("mutability"));
        scim.put("/Users/00000000-0000-0000-0000-000000000000", &body).await.assert_error(404, None);

        // DELETE is "Remove user".
        assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 204);
        scim.get(&format!("/Users/{id}")).await.assert_error(404, None);
        scim.delete(&format!("/Users/{id}")).await.assert_error(404, None);
        assert_eq!(app.count("users"), 0);
        assert!(app.get("/audit").await.text().contains("Removed"));
    }
}

on_both_engines! {
    async fn paging_is_stable_with_integer_counts() {
        let (app, token) = provisioned_app().await;
        let scim = Scim::new(&app, &token);
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(scim.create(&format!("u{n}@example.com"), "U", &format!("N{n}")).await);
        }
        let mut seen = Vec::new();
        for start in [1, 3, 5] {
            let page = scim.get(&format!("/Users?startIndex={start}&count=2")).await;
            assert_eq!(page.body["totalResults"], json!(5));
            assert_eq!(page.body["startIndex"], json!(start));
            assert!(page.body["itemsPerPage"].is_i64());
            for user in page.body["Resources"].as_array().unwrap() {
                seen.push(user["id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(seen, ids, "every user once, in creation order");
        let past = scim.get("/Users?startIndex=50").await;
        assert_eq!(past.body["Resources"], json!([]));
        assert_eq!(past.body["totalResults"], json!(5));
        let limited = scim.get("/Users?count=100000").await;
        assert_eq!(limited.body["itemsPerPage"], json!(5));

        let only = scim.get("/Users?attributes=userName").await;
        let first = &only.body["Resources"][0];
        assert!(first["userName"].is_string() && first["id"].is_string());
        assert!(first.get("name").is_none() && first.get("active").is_none());
        let without = scim.get(&format!("/Users/{}?excludedAttributes=externalId,name.familyName", ids[0])).await;
        assert!(without.body.get("externalId").is_none());
        assert_eq!(without.body["name"], json!({"givenName": "U"}));
    }
}

/// Sends a raw body to POST /Users.
async fn post_raw(scim: &Scim<'_>, body: &str) -> ScimAnswer {
    scim.send(reqwest::Method::POST, "/Users", Some(body.to_owned()), &[])
        .await
}

fn user_with(changes: Value) -> String {
    let mut user = okta_user("ok@example.com", "Ok", "User");
    if let (Value::Object(user), Value::Object(changes)) = (&mut user, changes) {
        user.extend(changes);
    }
    user.to_string()
}

on_both_engines! {
    async fn bad_input_is_a_4xx_with_a_scim_error_and_writes_nothing() {
        let (app, token) = provisioned_app().await;
        let scim = Scim::new(&app, &token);
        let long = "x".repeat(5000);
        let cases: Vec<(String, u16, &str)> = vec![
            ("{not json".to_owned(), 400, "invalidSyntax"),
            ("[]".to_owned(), 400, "invalidSyntax"),
            ("".to_owned(), 400, "invalidSyntax"),
            (user_with(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]})), 400, "invalidSyntax"),
            (user_with(json!({"favouriteColour": "blue"})), 400, "invalidSyntax"),
            (user_with(json!({"userName": "not-an-address"})), 400, "invalidValue"),
            (user_with(json!({"userName": "ada@example", "emails": []})), 400, "invalidValue"),
            (user_with(json!({"userName": "a b@example.com", "emails": []})), 400, "invalidValue"),
            (user_with(json!({"userName": null})), 400, "invalidValue"),
            (user_with(json!({"name": {"givenName": long, "familyName": "x"}})), 400, "invalidValue"),
            (user_with(json!({"name": {"givenName": "Ada\r\nBcc: x@evil.com", "familyName": "x"}})), 400, "invalidValue"),
            (user_with(json!({"name": {"givenName": "A\u{0}da", "familyName": "x"}})), 400, "invalidValue"),
            (user_with(json!({"name": {"givenName": "", "familyName": "x"}})), 400, "invalidValue"),
            (user_with(json!({"active": "sometimes"})), 400, "invalidValue"),
            (user_with(json!({"externalId": "a\u{0}b"})), 400, "invalidValue"),
            (user_with(json!({"emails": [{"value": "someone-else@example.com"}]})), 400, "invalidValue"),
        ];
        for (body, status, scim_type) in &cases {
            post_raw(&scim, body).await.assert_error(*status, Some(scim_type));
        }
        let huge = user_with(json!({"title": "x".repeat(100_000)}));
        post_raw(&scim, &huge).await.assert_error(413, None);
        for query in ["startIndex=0", "startIndex=-1", "startIndex=one", "count=0", "count=-1", "count=ten"] {
            scim.get(&format!("/Users?{query}")).await.assert_error(400, Some("invalidValue"));
        }
        for filter in ["externalId eq \"a\\u0000b\"", "userName sw \"a\"", "name.givenName eq \"Ada\"", "userName eq \"a\" or userName eq \"b\"", "userName eq", "((", "meta.created gt \"2020\""] {
            scim.get(&format!("/Users?filter={}", urlencode(filter))).await.assert_error(400, Some("invalidFilter"));
        }
        assert_eq!(app.count("users"), 0);
        assert_eq!(app.count("outbound_emails"), 0);

        let id = scim.create("ada@example.com", "Ada", "Lovelace").await;
        let path = format!("/Users/{id}");
        for (operations, scim_type) in [
            (json!([{"op": "replace", "path": "name.givenName", "value": long}]), "invalidValue"),
            (json!([{"op": "replace", "path": "name.givenName", "value": "A\r\nB"}]), "invalidValue"),
            (json!([{"op": "replace", "path": "userName", "value": "b@example.com"}]), "mutability"),
            (json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@example.com"}]), "invalidValue"),
            (json!([{"op": "replace", "path": "nonsense", "value": 1}]), "invalidPath"),
            (json!([{"op": "remove"}]), "noTarget"),
            (json!([{"op": "jump", "path": "active", "value": true}]), "invalidSyntax"),
            (json!([{"op": "replace", "path": "id", "value": "x"}]), "mutability"),
        ] {
            scim.patch(&path, operations.clone()).await.assert_error(400, Some(scim_type));
        }
        let before = scim.get(&path).await.body;
        assert_eq!(before["name"]["givenName"], json!("Ada"));
        assert_eq!(app.count("users"), 1);
    }
}
