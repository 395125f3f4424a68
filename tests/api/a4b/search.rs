//! SearchUsers: filters, sort keys, NextToken paging, TotalCount.

use serde_json::{Value, json};

use super::A4b;
use crate::support::*;

/// Every page of a search, following NextToken; the emails in order, and each TotalCount.
async fn all_pages(api: &A4b, mut input: Value) -> (Vec<String>, Vec<i64>) {
    let (mut emails, mut totals) = (Vec::new(), Vec::new());
    loop {
        let page = api.call("SearchUsers", input.clone()).await.ok();
        for user in page["Users"].as_array().unwrap() {
            emails.push(user["Email"].as_str().unwrap().to_owned());
        }
        totals.push(page["TotalCount"].as_i64().unwrap());
        match page["NextToken"].as_str() {
            Some(token) => input["NextToken"] = json!(token),
            None => return (emails, totals),
        }
    }
}

on_both_engines! {
    async fn search_users_filters_sorts_and_pages() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        let people = [
            ("u1", "Ada", "Lovelace"),
            ("u2", "Grace", "Hopper"),
            ("u3", "Alan", "Turing"),
            ("u4", "Ada", "Byron"),
            ("u5", "Edsger", "Dijkstra"),
            ("u6", "Barbara", "Liskov"),
            ("u7", "Donald", "Knuth"),
        ];
        for (id, first, last) in people {
            let email = format!("{}@example.com", last.to_lowercase());
            api.create_user(id, first, last, &email).await;
        }
        // One invited through the console (PENDING), one who will stay INITIALIZED.
        app.invite(&[("Frances", "Allen", "allen@example.com")]).await;
        let turing = api.user("turing@example.com").await;
        api.call("SendInvitation", json!({ "UserArn": turing["UserArn"] })).await.ok();

        // By email, 3 a page: every user once, in order, the total on every page.
        let (emails, totals) = all_pages(
            &api,
            json!({ "MaxResults": 3, "SortCriteria": [{ "Key": "Email", "Value": "ASC" }] }),
        )
        .await;
        let mut sorted = emails.clone();
        sorted.sort();
        assert_eq!(emails, sorted);
        assert_eq!(emails.len(), 8);
        assert_eq!(totals, vec![8, 8, 8]);
        let (descending, _) = all_pages(
            &api,
            json!({ "MaxResults": 2, "SortCriteria": [{ "Key": "Email", "Value": "DESC" }] }),
        )
        .await;
        assert_eq!(descending, sorted.iter().rev().cloned().collect::<Vec<_>>());

        // Two keys: first name ascending, then last name descending.
        let (by_name, _) = all_pages(
            &api,
            json!({ "MaxResults": 1, "SortCriteria": [
                { "Key": "FirstName", "Value": "ASC" }, { "Key": "LastName", "Value": "DESC" }] }),
        )
        .await;
        assert_eq!(&by_name[..3], ["lovelace@example.com", "byron@example.com", "turing@example.com"]);

        // Status: INITIALIZED < PENDING < REGISTERED, and as a filter.
        let (by_status, _) = all_pages(
            &api,
            json!({ "MaxResults": 4, "SortCriteria": [{ "Key": "EnrollmentStatus", "Value": "DESC" }] }),
        )
        .await;
        assert_eq!(by_status.len(), 8);
        assert!(by_status[..2].contains(&"turing@example.com".to_owned()), "{by_status:?}");
        let (pending, totals) = all_pages(
            &api,
            json!({ "Filters": [{ "Key": "EnrollmentStatus", "Values": ["PENDING"] }] }),
        )
        .await;
        assert_eq!(pending.len(), 2, "{pending:?}");
        assert_eq!(totals, vec![2]);

        // Filters: values of one key are alternatives, keys all apply.
        let (found, _) = all_pages(
            &api,
            json!({ "Filters": [
                { "Key": "FirstName", "Values": ["ada", "Grace"] },
                { "Key": "EnrollmentStatus", "Values": ["INITIALIZED"] }] }),
        )
        .await;
        let mut found = found;
        found.sort();
        assert_eq!(found, ["byron@example.com", "hopper@example.com", "lovelace@example.com"]);
        let (by_id, _) = all_pages(&api, json!({ "Filters": [{ "Key": "UserId", "Values": ["u7"] }] })).await;
        assert_eq!(by_id, ["knuth@example.com"]);
        let (none, totals) = all_pages(&api, json!({ "Filters": [{ "Key": "LastName", "Values": ["Nobody"] }] })).await;
        assert!(none.is_empty());
        assert_eq!(totals, vec![0]);
    }
}

on_both_engines! {
    async fn a_next_token_is_opaque_and_bound_to_its_search() {
        let app = spawn_app().await;
        let api = A4b::admin(&app).await;
        for n in 0..3 {
            api.create_user(&format!("p{n}"), "Pat", &format!("Person{n}"), &format!("p{n}@example.com")).await;
        }
        let page = api.call("SearchUsers", json!({ "MaxResults": 1 })).await.ok();
        let token = page["NextToken"].as_str().unwrap().to_owned();
        // Another search with this token, or a token edited by hand: a 400, not a page.
        api.call(
            "SearchUsers",
            json!({ "MaxResults": 1, "NextToken": token, "SortCriteria": [{ "Key": "Email", "Value": "ASC" }] }),
        )
        .await
        .refused(400, "ValidationException");
        for bad in ["x", "%%%", "eyJmIjoiIiwidiI6W10sInQiOjB9", &"A".repeat(1100)] {
            api.call("SearchUsers", json!({ "MaxResults": 1, "NextToken": bad }))
                .await
                .refused(400, "ValidationException");
        }
        api.call("SearchUsers", json!({ "NextToken": "A".repeat(1101) }))
            .await
            .refused(400, "ValidationException");
    }
}
