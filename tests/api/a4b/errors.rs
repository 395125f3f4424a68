//! Refusals: signatures, keys, dates, the model's constraints. Each in the SDK's error
//! shape, with nothing written and never a 5xx.

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::A4b;
use crate::support::*;

on_both_engines! {
    async fn bad_signatures_unknown_keys_and_stale_dates_are_refused() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        let create = json!({ "UserId": "eve", "FirstName": "Eve", "LastName": "Doe", "Email": "eve@example.com" });

        // No signature at all.
        let body = serde_json::to_vec(&create).unwrap();
        let unsigned = vec![
            ("content-type".to_owned(), "application/x-amz-json-1.1".to_owned()),
            ("x-amz-target".to_owned(), "AlexaForBusiness.CreateUser".to_owned()),
        ];
        api.send(&unsigned, body.clone()).await.refused(403, "MissingAuthenticationTokenException");
        // The wrong secret, an unknown key.
        api.with_secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
            .call("CreateUser", create.clone())
            .await
            .refused(403, "InvalidSignatureException");
        api.with_key_id("AKIAIOSFODNN7EXAMPLE")
            .call("CreateUser", create.clone())
            .await
            .refused(403, "UnrecognizedClientException");
        // Signed, then changed: another body, another operation.
        let mut headers = api.signed("CreateUser", &body, SystemTime::now());
        api.send(&headers, br#"{"UserId":"mallory","Email":"m@example.com","FirstName":"M","LastName":"M"}"#.to_vec())
            .await
            .refused(403, "InvalidSignatureException");
        for (name, value) in &mut headers {
            if name == "x-amz-target" {
                *value = "AlexaForBusiness.DeleteUser".to_owned();
            }
        }
        api.send(&headers, body.clone()).await.refused(403, "InvalidSignatureException");
        // Sixteen minutes off, either way; fourteen is fine.
        for skew in [-16i64, 16] {
            let at = if skew < 0 {
                SystemTime::now() - Duration::from_secs(16 * 60)
            } else {
                SystemTime::now() + Duration::from_secs(16 * 60)
            };
            let answer = api.call_at("SearchUsers", json!({}), at).await;
            answer.refused(403, "InvalidSignatureException");
            assert!(answer.body["message"].as_str().unwrap().contains("Signature expired"));
        }
        api.call_at("SearchUsers", json!({}), SystemTime::now() - Duration::from_secs(14 * 60))
            .await
            .ok();
        // A malformed Authorization header.
        let mut malformed = api.signed("SearchUsers", b"{}", SystemTime::now());
        for (name, value) in &mut malformed {
            if name == "authorization" {
                *value = value.replace("/a4b/", "/s3/");
            }
        }
        api.send(&malformed, b"{}".to_vec()).await.refused(400, "IncompleteSignatureException");
        assert_eq!(app.count("users"), 0);
    }
}

on_both_engines! {
    async fn a_revoked_key_stops_at_once_and_refusals_are_throttled() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        api.call("SearchUsers", json!({})).await.ok();
        // Revoked on the API access page: the next request is refused.
        let page = app.get("/settings/api").await;
        let html = page.html();
        let form = scraper::Selector::parse("form[action$='/revoke']").unwrap();
        let action = html
            .select(&form)
            .next()
            .and_then(|f| f.value().attr("action"))
            .expect("a revoke button")
            .to_owned();
        let done = app.submit("/settings/api", &action, &fields(&[("confirm", "yes")])).await;
        assert!(done.status < 400, "{}", done.text());
        api.call("SearchUsers", json!({})).await.refused(403, "UnrecognizedClientException");

        // Refused signatures from one address are throttled, like failed sign-ins.
        let wrong = api.with_secret("not the secret at all");
        let mut throttled = false;
        for _ in 0..30 {
            let answer = wrong.call("SearchUsers", json!({})).await;
            if answer.status == 429 {
                answer.refused(429, "ThrottlingException");
                throttled = true;
                break;
            }
            answer.refused(403, "UnrecognizedClientException");
        }
        assert!(throttled, "30 bad signatures in a row were never throttled");
        // Even a good key from that address waits its turn now, before any lookup.
        let other = A4b::key(&app, "second script", "administrator").await;
        other.call("SearchUsers", json!({})).await.refused(429, "ThrottlingException");
    }
}

on_both_engines! {
    async fn what_the_model_constrains_is_a_400_with_nothing_written() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        let good = json!({ "UserId": "ok", "FirstName": "Ok", "LastName": "Person", "Email": "ok@example.com" });
        let with = |field: &str, value: serde_json::Value| {
            let mut request = good.clone();
            request[field] = value;
            request
        };
        for (request, kind) in [
            (with("UserId", json!("has space")), "ValidationException"),
            (with("UserId", json!("x".repeat(129))), "ValidationException"),
            (with("UserId", json!(null)), "ValidationException"),
            (with("FirstName", json!("F".repeat(31))), "ValidationException"),
            (with("FirstName", json!("<script>")), "ValidationException"),
            (with("FirstName", json!("")), "ValidationException"),
            (with("Email", json!("not-an-address")), "ValidationException"),
            (with("Email", json!(null)), "ValidationException"),
            (with("ClientRequestToken", json!("short")), "ValidationException"),
            (with("ClientRequestToken", json!("-starts-with-dash")), "ValidationException"),
            (with("Tags", json!([{ "Key": "", "Value": "v" }])), "ValidationException"),
            (with("Tags", json!([{ "Key": "k<", "Value": "v" }])), "ValidationException"),
            (with("Tags", json!([{ "Key": "k" }])), "ValidationException"),
            (with("UserId", json!(42)), "SerializationException"),
        ] {
            api.call("CreateUser", request).await.refused(400, kind);
        }
        let too_many: Vec<_> = (0..51).map(|n| json!({ "Key": format!("k{n}"), "Value": "v" })).collect();
        api.call("CreateUser", with("Tags", json!(too_many)))
            .await
            .refused(400, "LimitExceededException");
        for request in [
            json!({ "MaxResults": 0 }),
            json!({ "MaxResults": 51 }),
            json!({ "MaxResults": "ten" }),
            json!({ "Filters": [{ "Key": "Shoe", "Values": ["x"] }] }),
            json!({ "Filters": [{ "Key": "EnrollmentStatus", "Values": ["ENROLLED"] }] }),
            json!({ "Filters": [{ "Key": "Email", "Values": [""] }] }),
            json!({ "Filters": [{ "Key": "Email" }] }),
            json!({ "SortCriteria": [{ "Key": "Email", "Value": "UP" }] }),
            json!({ "SortCriteria": [{ "Key": "Email", "Value": "ASC" }, { "Key": "Email", "Value": "DESC" }] }),
            json!({ "Filters": (0..26).map(|_| json!({ "Key": "Email", "Values": ["a@b.cd"] })).collect::<Vec<_>>() }),
        ] {
            let answer = api.call("SearchUsers", request.clone()).await;
            assert_eq!(answer.status, 400, "{request}: {:?}", answer.body);
        }
        for (operation, request) in [
            ("SendInvitation", json!({ "UserArn": "not an arn" })),
            ("SendInvitation", json!({})),
            ("DeleteUser", json!({ "UserArn": "arn:aws:a4b:::user/x" })),
            ("TagResource", json!({ "Arn": "arn:aws:a4b:::user/x" })),
            ("UntagResource", json!({ "Arn": "arn:aws:a4b:::user/x", "TagKeys": [""] })),
            ("ListTags", json!({ "Arn": "arn:aws:a4b:::user/x", "MaxResults": 0 })),
            ("PutInvitationConfiguration", json!({ "OrganizationName": "" })),
            ("PutInvitationConfiguration", json!({ "OrganizationName": "X", "ContactEmail": "nope" })),
        ] {
            api.call(operation, request).await.refused(400, "ValidationException");
        }
        // Names that pass the model but not the console's rules, a body that is not JSON,
        // an operation that is not served: still 400s.
        api.call("SendInvitation", json!({ "UserArn": "arn:aws:a4b:::user/00000000-0000-0000-0000-000000000000" }))
            .await
            .refused(400, "NotFoundException");
        let headers = api.signed("CreateUser", b"{not json", SystemTime::now());
        api.send(&headers, b"{not json".to_vec()).await.refused(400, "SerializationException");
        api.call("CreateRoom", json!({})).await.refused(400, "UnknownOperationException");
        assert_eq!(app.count("users"), 0);
        assert_eq!(app.count("user_tags"), 0);
    }
}
