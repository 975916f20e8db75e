//! The web app, a static export (Next.js's `out/`), served at `/` behind every API route,
//! by a process with the `api` role, so the app and the API share one origin. The export
//! is `NATTER_WEB_DIR` (default `web/out`); missing, it is a warning and no app.
//!
//! The export is read whole at start and served from memory: the Content-Security-Policy
//! of each page names the hashes of that page's inline scripts, and those must match the
//! bytes served, so a rebuilt export is taken up by a restart, never half-way.
//!
//! - `/` is `index.html`; `/x/y` is the file `x/y`, else `x/y.html`, else
//!   `x/y/index.html`.
//! - A path of a client-side route (`/chats/…`, `/join/…`, `/settings`, `/search`,
//!   `/new`) with no file is `index.html`, so a reload there works.
//! - Any other path is `404.html` with status 404 (or the API's problem, without one);
//!   paths under `/v1` always get the API's problem.
//! - Hashed assets (`/_next/static/…`) are cached for a year; everything else is
//!   revalidated (`no-cache`) against its `ETag`.
//! - Request paths are matched against the files read at start, never joined to a
//!   directory, and a `.` or `..` segment (percent-encoded or not) is refused with 400.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use natter_commands::tokens::hex;
use sha2::{Digest, Sha256};

use crate::{ApiError, ApiState};

/// First segments of the app's client-side routes: a path under one of them with no
/// file of its own is the app's shell, `index.html`.
const CLIENT_ROUTES: &[&str] = &["chats", "join", "settings", "search", "new"];

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The policy of every file served; an HTML page adds its inline scripts' hashes to
/// `script-src`. `connect-src 'self'` covers the WebSocket on the same host.
fn content_security_policy(script_hashes: &[String]) -> String {
    let scripts: String = script_hashes
        .iter()
        .map(|hash| format!(" 'sha256-{hash}'"))
        .collect();
    format!(
        "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'"
    )
}

/// The static export, in memory.
#[derive(Debug)]
pub struct WebApp {
    /// By path relative to the export's directory, `/`-separated.
    files: HashMap<String, WebFile>,
}

#[derive(Debug)]
struct WebFile {
    body: Bytes,
    content_type: &'static str,
    cache_control: &'static str,
    etag: HeaderValue,
    policy: HeaderValue,
}

/// The export could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WebAppError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a UTF-8 path")]
    NotUtf8(PathBuf),
}

impl WebApp {
    /// Reads the export in `dir`. A missing directory is no app: one warning, and the
    /// API alone is served.
    pub async fn open(dir: &Path) -> Result<Option<Self>, WebAppError> {
        let owned = dir.to_owned();
        tokio::task::spawn_blocking(move || Self::read(&owned))
            .await
            .map_err(|error| WebAppError::Read {
                path: dir.to_owned(),
                source: std::io::Error::other(error),
            })?
    }

    fn read(dir: &Path) -> Result<Option<Self>, WebAppError> {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                tracing::warn!(dir = %dir.display(), "the web app directory is not a directory; serving no web app");
                return Ok(None);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "no web app at this directory; serving no web app");
                return Ok(None);
            }
            Err(source) => {
                return Err(WebAppError::Read {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
        let mut files = HashMap::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(folder) = pending.pop() {
            let read = |source| WebAppError::Read {
                path: folder.clone(),
                source,
            };
            for entry in std::fs::read_dir(&folder).map_err(read)? {
                let entry = entry.map_err(read)?;
                let path = entry.path();
                // Dot files (editor and VCS leftovers) and symbolic links (which could
                // point anywhere) are not part of an export.
                if entry.file_name().as_encoded_bytes().starts_with(b".") {
                    continue;
                }
                let kind = entry.file_type().map_err(read)?;
                if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() {
                    let key = relative_key(dir, &path)?;
                    let body = std::fs::read(&path).map_err(|source| WebAppError::Read {
                        path: path.clone(),
                        source,
                    })?;
                    files.insert(key.clone(), WebFile::new(&key, body));
                }
            }
        }
        let bytes: usize = files.values().map(|file| file.body.len()).sum();
        if !files.contains_key("index.html") {
            tracing::warn!(dir = %dir.display(), "the web app has no index.html");
        }
        tracing::info!(dir = %dir.display(), files = files.len(), bytes, "serving the web app");
        Ok(Some(Self { files }))
    }

    /// The answer to a GET or HEAD of `path` (as sent, percent-encoded), outside `/v1`.
    fn answer(&self, path: &str, headers: &HeaderMap) -> Response {
        let Some(key) = clean_path(path) else {
            return ApiError::bad_request("invalid_path", "not a plain path").into_response();
        };
        let candidates = if key.is_empty() {
            vec!["index.html".to_owned()]
        } else {
            vec![
                key.clone(),
                format!("{key}.html"),
                format!("{key}/index.html"),
            ]
        };
        if let Some(file) = candidates.iter().find_map(|key| self.files.get(key)) {
            return file.respond(StatusCode::OK, headers);
        }
        let first = key.split('/').next().unwrap_or_default();
        if CLIENT_ROUTES.contains(&first)
            && let Some(shell) = self.files.get("index.html")
        {
            return shell.respond(StatusCode::OK, headers);
        }
        match self.files.get("404.html") {
            Some(page) => page.respond(StatusCode::NOT_FOUND, headers),
            None => ApiError::not_found().into_response(),
        }
    }
}

impl WebFile {
    fn new(key: &str, body: Vec<u8>) -> Self {
        let extension = key.rsplit_once('.').map_or("", |(_, extension)| extension);
        let content_type = content_type(extension);
        let html = extension == "html";
        let hashes = if html {
            inline_scripts(&String::from_utf8_lossy(&body))
                .iter()
                .map(|script| STANDARD.encode(Sha256::digest(script.as_bytes())))
                .collect()
        } else {
            Vec::new()
        };
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex(&digest[..16]));
        let cache_control = if key.starts_with("_next/static/") && !html {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        Self {
            body: Bytes::from(body),
            content_type,
            cache_control,
            // Both are made of hex, base64 and fixed ASCII: always valid header values.
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
            policy: HeaderValue::from_str(&content_security_policy(&hashes))
                .unwrap_or(HeaderValue::from_static("default-src 'none'")),
        }
    }

    fn respond(&self, status: StatusCode, request: &HeaderMap) -> Response {
        let fresh = status == StatusCode::OK
            && request
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .map(|tag| tag.trim().trim_start_matches("W/"))
                .any(|tag| tag == "*" || self.etag == tag);
        let (status, body) = if fresh {
            (StatusCode::NOT_MODIFIED, Body::empty())
        } else {
            (status, Body::from(self.body.clone()))
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(self.cache_control),
        );
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CONTENT_SECURITY_POLICY, self.policy.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }
}

/// Every request no route took: the web app's for GET and HEAD outside `/v1`, else the
/// API's 404 problem.
pub(crate) async fn fallback(State(state): State<ApiState>, request: Request) -> Response {
    let path = request.uri().path();
    let api = path == "/v1" || path.starts_with("/v1/");
    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    match &state.web {
        Some(web) if readable && !api => web.answer(path, request.headers()),
        _ => ApiError::not_found().into_response(),
    }
}

/// The request path as a key of the export: percent-decoded, with its empty segments
/// dropped. `None` for a path that is not plain: a `.` or `..` segment, a backslash or
/// a NUL, or not UTF-8.
fn clean_path(path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let mut segments = Vec::new();
    for segment in decoded.split('/').filter(|segment| !segment.is_empty()) {
        if segment == "." || segment == ".." || segment.contains(['\\', '\0']) {
            return None;
        }
        segments.push(segment);
    }
    Some(segments.join("/"))
}

/// `path`, found under `dir`, as a key: relative, `/`-separated.
fn relative_key(dir: &Path, path: &Path) -> Result<String, WebAppError> {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|component| component.as_os_str().to_str())
        .collect();
    parts
        .map(|parts| parts.join("/"))
        .ok_or_else(|| WebAppError::NotUtf8(path.to_owned()))
}

fn content_type(extension: &str) -> &'static str {
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// The bodies of the page's inline scripts: `<script>` elements without a `src`
/// attribute, their text as it stands between the tags (the bytes a browser hashes).
fn inline_scripts(html: &str) -> Vec<&str> {
    let lower = html.to_ascii_lowercase();
    let mut scripts = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find("<script") {
        let start = at + found + "<script".len();
        // `<scripts>` or `<script-x>` is another element.
        if !lower[start..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/') {
            at = start;
            continue;
        }
        let Some((attributes_end, has_src)) = script_attributes(&lower[start..]) else {
            break;
        };
        let body_start = start + attributes_end;
        let Some(body_len) = lower[body_start..].find("</script") else {
            break;
        };
        if !has_src {
            scripts.push(&html[body_start..body_start + body_len]);
        }
        at = body_start + body_len;
    }
    scripts
}

/// Reads a start tag's attributes up to its `>` (lower-cased input): the offset just
/// past the `>`, and whether one of them is `src`.
fn script_attributes(tag: &str) -> Option<(usize, bool)> {
    let bytes = tag.as_bytes();
    let mut i = 0;
    let mut has_src = false;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if *bytes.get(i)? == b'>' {
            return Some((i + 1, has_src));
        }
        let name_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        if &tag[name_start..i] == "src" {
            has_src = true;
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i)? {
                quote @ (b'"' | b'\'') => {
                    let close = tag[i + 1..].find(char::from(*quote))?;
                    i += close + 2;
                }
                _ => {
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_those_without_a_src() {
        let html = r#"<html><head><script src="/_next/static/a.js" async=""></script>
            <SCRIPT>self.__next_f=self.__next_f||[]</SCRIPT><scripts>not one</scripts>
            <script data-src="x" id='a>b'>self.__next_f.push([1,"<b>"])</script>
            <script type="module" src=/b.js></script><noscript>no</noscript>
            <script
            >last()</script></head></html>"#;
        assert_eq!(
            inline_scripts(html),
            vec![
                "self.__next_f=self.__next_f||[]",
                r#"self.__next_f.push([1,"<b>"])"#,
                "last()"
            ]
        );
        assert_eq!(inline_scripts("<script>unterminated"), Vec::<&str>::new());
    }

    #[test]
    fn a_page_names_its_scripts_hashes_in_its_policy() {
        let file = WebFile::new(
            "index.html",
            b"<script>alert(1)</script><script src=/a.js></script>".to_vec(),
        );
        // echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
        let policy = file.policy.to_str().unwrap_or_default();
        assert!(
            policy.contains(
                "script-src 'self' 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=';"
            ),
            "{policy}"
        );
        let asset = WebFile::new("_next/static/chunks/a.js", b"x".to_vec());
        assert!(
            asset
                .policy
                .to_str()
                .unwrap_or_default()
                .contains("script-src 'self';")
        );
        assert_eq!(asset.cache_control, IMMUTABLE);
        assert_eq!(file.cache_control, REVALIDATE);
    }

    #[test]
    fn only_plain_paths_name_files() {
        assert_eq!(clean_path("/"), Some(String::new()));
        assert_eq!(clean_path("/chats//x/"), Some("chats/x".into()));
        assert_eq!(
            clean_path("/_next/static/chunks/app/%5Bid%5D/page.js"),
            Some("_next/static/chunks/app/[id]/page.js".into())
        );
        for bad in [
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/chats/%2E%2E/%2e%2e/etc/passwd",
            "/a/./b",
            "/a%5c..%5cb",
            "/a%00b",
            "/%ff",
        ] {
            assert_eq!(clean_path(bad), None, "{bad}");
        }
    }
}
