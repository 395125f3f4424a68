//! The Users page: paging by cursor both ways, every sort order, search, filters and
//! their counts, page sizes, all kept in the URL.

use scraper::Selector;

use crate::support::*;

/// The email addresses shown, in order.
fn emails(page: &Page) -> Vec<String> {
    let html = page.html();
    let selector = Selector::parse("tbody td.email").unwrap();
    html.select(&selector)
        .map(|td| td.text().collect::<String>().trim().to_owned())
        .collect()
}

fn link(page: &Page, rel: &str) -> Option<String> {
    let html = page.html();
    let selector = Selector::parse(&format!("a[rel={rel}]")).unwrap();
    html.select(&selector)
        .next()
        .and_then(|a| a.value().attr("href").map(str::to_owned))
}

/// Every email of a view, following "Next page" from `start`.
async fn walk(app: &TestApp, start: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut url = Some(start.to_owned());
    while let Some(next) = url {
        let page = app.get(&next).await;
        assert_eq!(page.status, 200, "{next}");
        seen.extend(emails(&page));
        url = link(&page, "next");
        assert!(seen.len() <= 200, "paging does not end");
    }
    seen
}

/// 60 people with names that sort differently from their addresses and invitation order.
async fn sixty_people(app: &TestApp) -> Vec<(String, String, String)> {
    app.set_up_invitations().await;
    let people: Vec<(String, String, String)> = (0..60)
        .map(|n| {
            let last = format!("{}son", ["Zed", "Amy", "Kim", "Bo"][n % 4]);
            (
                format!("First{n:02}"),
                last,
                format!("u{:02}@example.com", 59 - n),
            )
        })
        .collect();
    for chunk in people.chunks(20) {
        app.invite(chunk).await.assert_redirect_to("/users");
    }
    people
}

on_both_engines! {
    async fn cursor_pages_cover_everyone_once_in_order_both_ways() {
        let app = spawn_app().await;
        let people = sixty_people(&app).await;
        let mut by_name: Vec<&(String, String, String)> = people.iter().collect();
        by_name.sort_by_key(|(first, last, _)| (last.to_lowercase(), first.to_lowercase()));
        let expected: Vec<String> = by_name.iter().map(|(_, _, email)| email.clone()).collect();

        let forward = walk(&app, "/users?per_page=25").await;
        assert_eq!(forward, expected, "name order, every user once");

        // From the last page back to the first with "Previous page".
        let mut page = app.get("/users?per_page=25").await;
        let mut pages = vec![emails(&page)];
        while let Some(next) = link(&page, "next") {
            page = app.get(&next).await;
            pages.push(emails(&page));
        }
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![25, 25, 10]);
        for expected_page in pages.iter().rev().skip(1) {
            let previous = link(&page, "prev").expect("a Previous page link");
            assert!(previous.contains("per_page=25"), "the page size is kept: {previous}");
            page = app.get(&previous).await;
            assert_eq!(&emails(&page), expected_page);
        }
        assert!(link(&page, "prev").is_none(), "the first page has no previous page");
    }
}

on_both_engines! {
    async fn every_sort_order_works_both_ways() {
        let app = spawn_app().await;
        let people = sixty_people(&app).await;
        let mut by_email: Vec<String> = people.iter().map(|(_, _, e)| e.clone()).collect();
        by_email.sort();
        assert_eq!(walk(&app, "/users?sort=email").await, by_email);
        let mut reversed = by_email.clone();
        reversed.reverse();
        assert_eq!(walk(&app, "/users?sort=email&dir=desc&per_page=25").await, reversed);

        let invited: Vec<String> = people.iter().map(|(_, _, e)| e.clone()).collect();
        assert_eq!(walk(&app, "/users?sort=invited&per_page=25").await, invited, "invitation order");

        // Sorting by a column's header link again flips the direction.
        let page = app.get("/users?sort=email").await;
        assert!(page.body.contains("aria-sort=\"ascending\""));
        assert!(page.body.contains("href=\"/users?sort=email&#38;dir=desc\""));
    }
}

on_both_engines! {
    async fn sorting_by_status_groups_statuses_then_names() {
        let app = spawn_app().await;
        app.smtp.refuse_recipients_containing("bounce");
        app.set_up_invitations().await;
        app.invite(&[
            ("Ann", "Pending", "ann@example.com"),
            ("Ben", "Joined", "ben@example.com"),
            ("Cat", "Bounced", "bounce@example.com"),
            ("Dan", "Pending", "dan@example.com"),
            ("Eve", "Joined", "eve@example.com"),
        ])
        .await;
        for email in ["ben@example.com", "eve@example.com"] {
            let link = app.delivered_to(email, 1).await.enrollment_path();
            let invitee = browser();
            let token = app.get_with(&invitee, &link).await.csrf_token();
            app.post_with(&invitee, &link, &fields(&[("csrf_token", &token)])).await;
        }
        app.assert_status("bounce@example.com", "Delivery failed").await;
        app.assert_status("dan@example.com", "Pending").await;
        app.assert_status("ann@example.com", "Pending").await;
        let ascending = [
            "ann@example.com",
            "dan@example.com",
            "bounce@example.com",
            "ben@example.com",
            "eve@example.com",
        ];
        assert_eq!(walk(&app, "/users?sort=status&per_page=25").await, ascending);
        let mut descending: Vec<&str> = ascending.to_vec();
        descending.reverse();
        assert_eq!(walk(&app, "/users?sort=status&dir=desc").await, descending);
    }
}

on_both_engines! {
    async fn search_finds_any_part_of_names_and_addresses() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        app.invite(&[
            ("Ada", "Lovelace", "ada.lovelace@example.com"),
            ("Grace", "Hopper", "grace@navy.example"),
            ("Alan", "Turing", "alan@example.com"),
            ("Ann", "O'Neil", "ann_o@example.com"),
            ("Neo", "Anderson", "neo@example.com"),
        ])
        .await;
        let everyone = vec![
            "ada.lovelace@example.com",
            "grace@navy.example",
            "alan@example.com",
            "ann_o@example.com",
            "neo@example.com",
        ];
        for (query, expected) in [
            ("lovelace", vec!["ada.lovelace@example.com"]),
            ("LOVE", vec!["ada.lovelace@example.com"]),
            ("velac", vec!["ada.lovelace@example.com"]),
            ("grace hopper", vec!["grace@navy.example"]),
            ("navy.exa", vec!["grace@navy.example"]),
            ("tur", vec!["alan@example.com"]),
            // Shorter terms are not searched for: everyone is listed (see abuse.rs).
            ("a", everyone),
            // Wildcards and quotes are plain characters, indexed or not.
            ("n_o", vec!["ann_o@example.com"]),
            ("o'n", vec!["ann_o@example.com"]),
            ("_o@", vec!["ann_o@example.com"]),
            ("50%", vec![]),
            ("\"neo\"", vec![]),
            ("neo\" OR \"ada", vec![]),
            ("nobody", vec![]),
        ] {
            let mut found = emails(&app.get(&format!("/users?q={}", urlencode(query))).await);
            let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
            found.sort();
            expected.sort();
            assert_eq!(found, expected, "search {query:?}");
        }
        let none = app.get("/users?q=nobody").await;
        assert!(none.text().contains("No users match"));
        assert!(none.text().contains("0 users match"));
    }
}

on_both_engines! {
    async fn filter_chips_count_what_their_filter_lists() {
        let app = spawn_app().await;
        app.smtp.refuse_recipients_containing("bounce");
        app.set_up_invitations().await;
        app.invite(&[
            ("Ann", "A", "ann@example.com"),
            ("Cat", "C", "bounce@example.com"),
            ("Dan", "D", "dan@example.com"),
        ])
        .await;
        let link = app.delivered_to("dan@example.com", 1).await.enrollment_path();
        let invitee = browser();
        let token = app.get_with(&invitee, &link).await.csrf_token();
        app.post_with(&invitee, &link, &fields(&[("csrf_token", &token)])).await;
        app.assert_status("bounce@example.com", "Delivery failed").await;
        app.assert_status("ann@example.com", "Pending").await;

        let page = app.get("/users").await;
        let text = page.text();
        for chip in ["All 3", "Pending 1", "Sending 0", "Expired 0", "Delivery failed 1", "Enrolled 1", "Expires within 3 days 0"] {
            assert!(text.contains(chip), "no chip {chip:?}: {text}");
        }
        for (status, count) in [("pending", 1), ("delivery_failed", 1), ("enrolled", 1), ("expired", 0)] {
            let filtered = app.get(&format!("/users?status={status}")).await;
            assert_eq!(emails(&filtered).len(), count, "{status}");
        }
        // A search keeps its counts to itself, and the filter keeps the search.
        let searched = app.get("/users?q=example.com&status=pending").await;
        assert!(searched.text().contains("All 3"));
        assert_eq!(emails(&searched), vec!["ann@example.com"]);
        assert!(searched.body.contains("href=\"/users?q=example.com&#38;status=enrolled\""));
        // After eight days the open invitations are expired, and counted so.
        app.clock.advance(chrono::TimeDelta::days(8));
        app.login_admin().await;
        let later = app.get("/users").await.text();
        assert!(later.contains("Expired 1") && later.contains("Pending 0"), "{later}");
    }
}

on_both_engines! {
    async fn page_sizes_are_chosen_in_the_url_and_junk_parameters_are_ignored() {
        let app = spawn_app().await;
        sixty_people(&app).await;
        assert_eq!(emails(&app.get("/users").await).len(), 50, "50 by default");
        assert_eq!(emails(&app.get("/users?per_page=25").await).len(), 25);
        assert_eq!(emails(&app.get("/users?per_page=100").await).len(), 60);
        let page = app.get("/users?per_page=100").await;
        assert_eq!(page.input_value("#per_page option[selected]").as_deref(), Some("100"));
        for junk in [
            "/users?per_page=7",
            "/users?per_page=-1",
            "/users?sort=bogus&dir=sideways",
            "/users?status=nope",
            "/users?after=%%%",
            "/users?before=bm90IGEgY3Vyc29y",
            "/users?q=%00%01",
        ] {
            let page = app.get(junk).await;
            assert_eq!(page.status, 200, "{junk}");
        }
        assert_eq!(emails(&app.get("/users?per_page=7").await).len(), 50);
    }
}

on_both_engines! {
    async fn a_searchs_counts_are_the_same_whether_its_page_holds_every_match_or_not() {
        let app = spawn_app().await;
        app.smtp.refuse_recipients_containing("bounce");
        app.set_up_invitations().await;
        let people: Vec<(String, String, String)> = (0..30)
            .map(|n| {
                let mailbox = if n % 10 == 3 { "bounce" } else { "tally" };
                ("Tally".to_owned(), format!("Person{n:02}"), format!("{mailbox}.{n}@example.com"))
            })
            .collect();
        app.invite(&people).await.assert_redirect_to("/users");
        app.invite(&[("Other", "Someone", "other@example.com")]).await;
        app.delivered(28).await;
        for bounced in ["bounce.3@example.com", "bounce.13@example.com", "bounce.23@example.com"] {
            app.assert_status(bounced, "Delivery failed").await;
        }
        let link = app.delivered_to("tally.0@example.com", 1).await.enrollment_path();
        let invitee = browser();
        let token = app.get_with(&invitee, &link).await.csrf_token();
        app.post_with(&invitee, &link, &fields(&[("csrf_token", &token)])).await;
        // Five days into a week's validity, the open invitations expire within three days.
        app.clock.advance(chrono::TimeDelta::days(5));
        app.login_admin().await;
        let chips = [
            "All 30",
            "Pending 26",
            "Delivery failed 3",
            "Enrolled 1",
            "Expired 0",
            "Expires within 3 days 26",
        ];
        // One page shows all thirty (counted from the page's rows); pages of 25 do not
        // (counted by the database). Both say the same.
        for view in ["/users?q=tally", "/users?q=tally&per_page=25"] {
            let text = app.get(view).await.text();
            for chip in chips {
                assert!(text.contains(chip), "{view}: no chip {chip:?}: {text}");
            }
            assert!(text.contains("30 users match."), "{view}: {text}");
        }
    }
}
