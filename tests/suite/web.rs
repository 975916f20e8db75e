//! The web app's static export, served by `natter serve` at `/` behind the API, through
//! real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;

use common::{TempDir, TestApp, TestEnv};
use natter::settings::{Role, ServeArgs};
use reqwest::{StatusCode, header};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The inline script of the fake `index.html`, and its hash, computed apart with
/// `printf '%s' "$SCRIPT" | openssl dgst -sha256 -binary | base64`.
const INDEX_SCRIPT: &str = "self.__next_f=self.__next_f||[];self.__next_f.push([0])";
const INDEX_HASH: &str = "71sYpXtVZQ5HkyHms8EvHfnrDNmLYWsVQjdaeCV0i2U=";
const NOT_FOUND_SCRIPT: &str = r#"self.__next_f.push([1,"404"])"#;
const NOT_FOUND_HASH: &str = "0LqHyz489PFmkUqwGkeeix3QpII96RGV2pZ29KwYSk4=";
const CHUNK: &str = "console.log('chunk a')";

fn policy(hashes: &[&str]) -> String {
    let scripts: String = hashes.iter().map(|h| format!(" 'sha256-{h}'")).collect();
    format!(
        "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'"
    )
}

fn index_html() -> String {
    format!(
        "<!DOCTYPE html><html><head><script src=\"/_next/static/chunks/a.js\" async=\"\"></script>\
         </head><body><div id=\"app\"></div><script>{INDEX_SCRIPT}</script></body></html>"
    )
}

/// A static export as Next.js writes one, in miniature. There is no `chats/x.html`: the
/// chat pages are client-side routes.
fn fake_export(name: &str) -> TempDir {
    let dir = TempDir(std::env::temp_dir().join(format!("natter-web-{name}")));
    let index = index_html();
    let not_found =
        format!("<html><body>Not here<script>{NOT_FOUND_SCRIPT}</script></body></html>");
    let files: &[(&str, &[u8])] = &[
        ("index.html", index.as_bytes()),
        ("404.html", not_found.as_bytes()),
        ("about.html", b"<html><body>About</body></html>"),
        ("help/index.html", b"<html><body>Help</body></html>"),
        ("index.txt", b"0:[\"$\",\"div\"]"),
        ("_next/static/chunks/a.js", CHUNK.as_bytes()),
        ("_next/static/chunks/app/[id]/page.js", b"page()"),
        ("_next/static/css/app.css", b"body{margin:0}"),
        ("_next/static/media/font.woff2", b"wOF2"),
        ("manifest.webmanifest", b"{\"name\":\"Natter\"}"),
        ("favicon.ico", b"\0\0\x01\0"),
        ("icon.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
        ("logo.png", b"\x89PNG\r\n\x1a\n"),
        ("data.json", b"{}"),
        (".env", b"SECRET=1"),
    ];
    for (path, body) in files {
        let path = dir.0.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

async fn serve(env: &TestEnv, web_dir: std::path::PathBuf) -> TestApp {
    env.spawn_app_serving(ServeArgs {
        push: Default::default(),
        auto_rebuild: true,
        web_dir: Some(web_dir),
        media: Default::default(),
        listen: "127.0.0.1:0".parse().unwrap(),
        roles: vec![Role::Api],
        auth: Default::default(),
        gateway: Default::default(),
    })
    .await
}

/// A GET of `path` exactly as written: no client in between to normalise `..` away.
async fn raw_get(address: SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn header_of(response: &reqwest::Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn pages_and_assets_are_served_with_their_policy_and_caching() {
    let env = TestEnv::new().await;
    let dir = fake_export(&env.prefix);
    let app = serve(&env, dir.0.clone()).await;
    let http = reqwest::Client::new();

    let page = http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        header_of(&page, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_of(&page, header::CACHE_CONTROL), "no-cache");
    assert_eq!(
        header_of(&page, header::CONTENT_SECURITY_POLICY),
        policy(&[INDEX_HASH])
    );
    assert_eq!(header_of(&page, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header_of(&page, header::REFERRER_POLICY), "no-referrer");
    let etag = header_of(&page, header::ETAG).to_owned();
    assert_eq!(page.text().await.unwrap(), index_html());
    let again = http
        .get(app.url("/"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&again, header::ETAG), etag);

    let chunk = http
        .get(app.url("/_next/static/chunks/a.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(chunk.status(), StatusCode::OK);
    assert_eq!(
        header_of(&chunk, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        header_of(&chunk, header::CONTENT_SECURITY_POLICY),
        policy(&[])
    );
    assert_eq!(header_of(&chunk, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(chunk.text().await.unwrap(), CHUNK);
    let head = http
        .head(app.url("/_next/static/chunks/a.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        header_of(&head, header::CONTENT_LENGTH),
        CHUNK.len().to_string()
    );
    assert_eq!(
        header_of(&head, header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert!(head.bytes().await.unwrap().is_empty());

    for (path, content_type, body) in [
        ("/about", "text/html; charset=utf-8", "About"),
        ("/help", "text/html; charset=utf-8", "Help"),
        ("/help/", "text/html; charset=utf-8", "Help"),
        ("/index.txt", "text/plain; charset=utf-8", "0:"),
        (
            "/_next/static/chunks/app/%5Bid%5D/page.js",
            "text/javascript; charset=utf-8",
            "page()",
        ),
        (
            "/_next/static/css/app.css",
            "text/css; charset=utf-8",
            "body",
        ),
        ("/_next/static/media/font.woff2", "font/woff2", "wOF2"),
        (
            "/manifest.webmanifest",
            "application/manifest+json",
            "Natter",
        ),
        ("/favicon.ico", "image/x-icon", ""),
        ("/icon.svg", "image/svg+xml", "<svg"),
        ("/logo.png", "image/png", ""),
        ("/data.json", "application/json", "{}"),
    ] {
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&response, header::CONTENT_TYPE), content_type);
        assert!(
            response
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY),
            "{path}"
        );
        let text = response.text().await.unwrap();
        assert!(text.contains(body), "{path}: {text}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn client_routes_get_the_app_and_other_paths_the_not_found_page() {
    let env = TestEnv::new().await;
    let dir = fake_export(&env.prefix);
    let app = serve(&env, dir.0.clone()).await;
    let http = reqwest::Client::new();

    // A full reload inside the app: its shell, whose scripts route on the client.
    let chat = uuid::Uuid::now_v7();
    for path in [
        format!("/chats/{chat}"),
        "/join/Ab3dE6gH".into(),
        "/settings".into(),
        "/settings/privacy".into(),
        "/search".into(),
        "/new".into(),
    ] {
        let response = http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        assert_eq!(
            header_of(&response, header::CONTENT_SECURITY_POLICY),
            policy(&[INDEX_HASH])
        );
        assert_eq!(response.text().await.unwrap(), index_html(), "{path}");
    }

    for path in [
        "/nothing-here",
        "/chatsx",
        "/.env",
        "/_next/static/chunks/b.js",
    ] {
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header_of(&response, header::CONTENT_SECURITY_POLICY),
            policy(&[NOT_FOUND_HASH])
        );
        assert!(response.text().await.unwrap().contains("Not here"));
    }

    // The API keeps its own answers, routes and problems.
    let missing = http.get(app.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header_of(&missing, header::CONTENT_TYPE),
        "application/problem+json"
    );
    let problem: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(problem["code"], "not_found");
    let posted = http
        .post(app.url(&format!("/chats/{chat}")))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header_of(&posted, header::CONTENT_TYPE),
        "application/problem+json"
    );
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let chats = http.get(app.url("/v1/chats")).send().await.unwrap();
    assert_eq!(chats.status(), StatusCode::UNAUTHORIZED);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn paths_out_of_the_export_are_refused() {
    let env = TestEnv::new().await;
    let dir = fake_export(&env.prefix);
    // A file beside the export that a way out of it would reach.
    std::fs::write(dir.0.join("../natter-web-secret.txt"), "[workspace]").unwrap();
    let app = serve(&env, dir.0.clone()).await;
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/natter-web-secret.txt",
        "/chats/../../Cargo.toml",
        "/chats/%2e%2e/%2e%2e/natter-web-secret.txt",
        "/_next/..%2f..%2fnatter-web-secret.txt",
        "/..%5c..%5cCargo.toml",
    ] {
        let answer = raw_get(app.address, path).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{path}: {}",
            answer.lines().next().unwrap_or_default()
        );
        assert!(answer.contains("invalid_path"), "{path}: {answer}");
        assert!(!answer.contains("[workspace]"), "{path}: {answer}");
    }
    let _ = std::fs::remove_file(dir.0.join("../natter-web-secret.txt"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_an_export_the_api_is_served_alone() {
    let env = TestEnv::new().await;
    let app = serve(
        &env,
        std::env::temp_dir().join(format!("natter-web-none-{}", env.prefix)),
    )
    .await;
    let http = reqwest::Client::new();
    for path in ["/", "/chats/x", "/v1/nothing"] {
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "application/problem+json"
        );
    }
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    app.stop().await.unwrap();
}
