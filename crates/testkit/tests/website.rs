//! The website mock: robots.txt variants, conditional GET, the sitemap.

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use unattended_core::Clock;
use unattended_testkit::website::{Robots, Website};

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

async fn get(
    site: &Website,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::get(format!("https://site.example{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = site
        .clone()
        .oneshot(req.body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned();
    (parts.status, parts.headers, body)
}

#[tokio::test(start_paused = true)]
async fn robots_txt_present_missing_or_unreachable() {
    let rules = "User-agent: *\nDisallow: /private\nCrawl-delay: 2\nSitemap: https://site.example/sitemap.xml\n";
    let site = Website::new(clock(), Robots::Text(rules.into()), 1);
    assert_eq!(get(&site, "/robots.txt", &[]).await.2, rules);
    let missing = Website::new(clock(), Robots::Missing, 1);
    assert_eq!(get(&missing, "/robots.txt", &[]).await.0, StatusCode::NOT_FOUND);
    let down = Website::new(clock(), Robots::Unreachable, 1);
    assert_eq!(get(&down, "/robots.txt", &[]).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn conditional_requests_get_304_until_the_page_changes() {
    let site = Website::new(clock(), Robots::Missing, 1);
    site.page("/news", "<h1>one</h1>");
    let (status, headers, body) = get(&site, "/news", &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>one</h1>"));
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let modified = headers["last-modified"].to_str().unwrap().to_owned();
    assert_eq!(modified, "Sat, 28 Nov 2026 10:00:00 GMT");

    let (status, headers, body) = get(&site, "/news", &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""));
    assert_eq!(headers["etag"].to_str().unwrap(), etag, "a 304 keeps its validators");
    let weak = format!("W/{etag}");
    assert_eq!(get(&site, "/news", &[("if-none-match", &weak)]).await.0, StatusCode::NOT_MODIFIED);
    assert_eq!(
        get(&site, "/news", &[("if-modified-since", &modified)]).await.0,
        StatusCode::NOT_MODIFIED
    );
    // If-None-Match wins over If-Modified-Since.
    let both = [("if-none-match", "\"other\""), ("if-modified-since", modified.as_str())];
    assert_eq!(get(&site, "/news", &both).await.0, StatusCode::OK);

    clock().sleep(Duration::from_secs(60)).await;
    site.page("/news", "<h1>two</h1>");
    let (status, headers, body) = get(&site, "/news", &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>two</h1>"));
    assert_ne!(headers["etag"].to_str().unwrap(), etag);
    assert_eq!(get(&site, "/news", &[("if-modified-since", &modified)]).await.0, StatusCode::OK);
    assert_eq!(get(&site, "/missing", &[]).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn the_sitemap_lists_the_pages() {
    let site = Website::new(clock(), Robots::Missing, 1);
    site.page("/a", "a");
    site.page("/b", "b");
    let (status, _, xml) = get(&site, "/sitemap.xml", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        xml.contains("<loc>https://site.example/a</loc>")
            && xml.contains("<loc>https://site.example/b</loc>"),
        "{xml}"
    );
}
