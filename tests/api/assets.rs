//! What every page asks the server for besides itself: the stylesheet, the script, the icon.

use crate::support::*;

on_both_engines! {
    async fn the_icon_is_declared_and_served_so_no_page_logs_an_error() {
        // Browsers ask for /favicon.ico when a page declares no icon; a 404 there is an
        // error in the console of every page (Lighthouse "errors in console").
        let app = spawn_app().await;
        let sign_in = app.get("/login").await;
        app.login_admin().await;
        let users = app.get("/users").await;
        for page in [&sign_in, &users] {
            let html = page.html();
            let icon = scraper::Selector::parse("link[rel=icon]").unwrap();
            let href = html
                .select(&icon)
                .next()
                .and_then(|link| link.value().attr("href"))
                .expect("the page declares an icon")
                .to_owned();
            let answer = app.client.get(app.url(&href)).send().await.unwrap();
            assert_eq!(answer.status(), 200, "{href}");
            assert_eq!(answer.headers()["content-type"], "image/svg+xml", "{href}");
            assert!(answer.text().await.unwrap().contains("<svg"));
        }
        let legacy = app.client.get(app.url("/favicon.ico")).send().await.unwrap();
        let status = legacy.status().as_u16();
        assert!(
            status == 200 || (300..400).contains(&status),
            "/favicon.ico answered {status}"
        );
        if let Some(location) = legacy.headers().get("location") {
            let target = app
                .client
                .get(app.url(location.to_str().unwrap()))
                .send()
                .await
                .unwrap();
            assert_eq!(target.status(), 200);
        }
    }
}
