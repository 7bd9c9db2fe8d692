//! The website mock: robots.txt variants, conditional GET, the sitemap.

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use unattended_core::Clock;
use unattended_testkit::fault::{Fault, RetryAfter, Route, Trigger};
use unattended_testkit::website::{Robots, Web, Website};

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

async fn send<S>(
    svc: &S,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(StatusCode, http::HeaderMap, bytes::Bytes), unattended_core::BoxError>
where
    S: tower::Service<
            Request<http_body_util::Empty<bytes::Bytes>>,
            Response = http::Response<unattended_testkit::body::MockBody>,
            Error = unattended_core::BoxError,
        > + Clone,
{
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = svc.clone().oneshot(req.body(http_body_util::Empty::new()).unwrap()).await?;
    let (parts, body) = res.into_parts();
    Ok((parts.status, parts.headers, body.collect().await.unwrap().to_bytes()))
}

#[tokio::test(start_paused = true)]
async fn a_web_routes_by_origin_and_refuses_unknown_hosts() {
    let a = Website::at("https://a.example", clock(), Robots::Missing, 1);
    let b = Website::at(
        "https://b.example:8443",
        clock(),
        Robots::Text("User-agent: *\nDisallow: /\n".into()),
        2,
    );
    a.page("/x", "on a");
    b.page("/x", "on b");
    let web = Web::new([a.clone(), b.clone()]);
    assert_eq!(send(&web, "https://a.example/x", &[]).await.unwrap().2, "on a");
    assert_eq!(send(&web, "https://B.example:8443/x", &[]).await.unwrap().2, "on b");
    assert_eq!(
        send(&web, "https://b.example:8443/robots.txt", &[]).await.unwrap().2,
        "User-agent: *\nDisallow: /\n"
    );
    let err = send(&web, "https://c.example/x", &[]).await.unwrap_err();
    let io = err.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!((a.log().all().len(), b.log().all().len()), (1, 2), "each site logs its own");
    let (_, _, xml) = send(&web, "https://b.example:8443/sitemap.xml", &[]).await.unwrap();
    assert!(String::from_utf8_lossy(&xml).contains("<loc>https://b.example:8443/x</loc>"));
}

#[tokio::test(start_paused = true)]
async fn robots_can_come_back_and_pages_can_go() {
    let site = Website::new(clock(), Robots::Unreachable, 1);
    site.page("/p", "here");
    assert_eq!(get(&site, "/robots.txt", &[]).await.0, StatusCode::SERVICE_UNAVAILABLE);
    site.set_robots(Robots::Text("User-agent: *\nAllow: /\n".into()));
    assert_eq!(get(&site, "/robots.txt", &[]).await.0, StatusCode::OK);
    site.remove("/p");
    assert_eq!(get(&site, "/p", &[]).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn big_pages_come_in_pieces_and_count_what_was_taken() {
    let site = Website::new(clock(), Robots::Missing, 1);
    site.big_page("/big", 5 << 20);
    let res = site
        .clone()
        .oneshot(
            Request::get("https://site.example/big")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), 64 * 1024);
    drop(body);
    assert_eq!(site.bytes_sent("/big"), 64 * 1024, "only what the reader took");
    let (_, _, all) = get(&site, "/big", &[]).await;
    assert_eq!(all.len(), 5 << 20);
    assert_eq!(site.bytes_sent("/big"), (5 << 20) + 64 * 1024);
}

#[tokio::test(start_paused = true)]
async fn a_gzip_bomb_is_small_on_the_wire_and_only_for_who_accepts_gzip() {
    let site = Website::new(clock(), Robots::Missing, 1);
    site.gzip_bomb("/bomb", 10 << 20);
    let (status, headers, packed) =
        send(&site, "https://site.example/bomb", &[("accept-encoding", "gzip")]).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(packed.len() < 64 * 1024, "{} bytes on the wire", packed.len());
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut unpacked)
        .unwrap();
    assert_eq!(unpacked.len(), 10 << 20);
    let refused = [("accept-encoding", "gzip;q=0, identity")];
    let (_, headers, plain) = send(&site, "https://site.example/bomb", &refused).await.unwrap();
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(plain.len(), 10 << 20);
}

#[tokio::test(start_paused = true)]
async fn a_503_can_say_when_to_come_back() {
    let site = Website::new(clock(), Robots::Missing, 1);
    site.page("/p", "here");
    site.fault(
        Route::any("/p"),
        Trigger::Nth(1, 1),
        Fault::UnavailableFor(RetryAfter::Seconds(30)),
    );
    let (status, headers, _) = get(&site, "/p", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(get(&site, "/p", &[]).await.0, StatusCode::OK);
    assert_eq!(site.log().faulted()[0].fault, Some("unavailable_for"));
}
