//! Telltale's web UI: the HTML shell, the stylesheet and the ES modules under `assets/`, and
//! the axum [`Router`] that serves them (`/` and the page routes, `/ui/...` for the files).
//!
//! Inputs: HTTP GETs from a browser. Outputs: files. The pages talk to Telltale only through
//! its public HTTP APIs (the Prometheus query API, the dashboards API, Alertmanager's and
//! Loki's), exactly as any other client would; nothing here reads a store.
//!
//! The one design decision to know: there is no JavaScript build step. The files in `assets/`
//! are what the browser runs; they are embedded into the binary with `include_bytes!`, and a
//! debug build reads them from disk first so an edit shows on reload without recompiling.
//! Only files named in [`ASSETS`] are served, so the disk read cannot leave `assets/`.
#![warn(missing_docs)]

use std::borrow::Cow;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One file the UI ships.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Path under `assets/` (and under `/ui/` in URLs).
    pub path: &'static str,
    /// The embedded bytes (what a release build serves).
    pub embedded: &'static [u8],
}

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(Asset { path: $path, embedded: include_bytes!(concat!("../assets/", $path)) }),*]
    };
}

/// Every file the UI serves. Adding a file means adding it here.
pub const ASSETS: &[Asset] = assets![
    "index.html",
    "app.css",
    "app.js",
    "favicon.svg",
    "lib/api.js",
    "lib/chart.js",
    "lib/dom.js",
    "lib/format.js",
    "lib/panel.js",
    "lib/promql.js",
    "lib/time.js",
    "lib/dashboard.js",
    "pages/overview.js",
    "pages/explore.js",
    "pages/dashboards.js",
    "pages/logs.js",
    "pages/alerts.js",
    "pages/status.js",
    "pages/login.js",
    "pages/admin.js",
    "pages/audit.js",
    "pages/traces.js",
    "pages/services.js",
    "dashboards/overview.json",
];

/// Dashboards shipped with the binary, as `(uid, JSON)`: read-only, listed beside the saved
/// ones, and copyable. The Overview page is the first.
pub const BUILTIN_DASHBOARDS: &[(&str, &str)] = &[("overview", "dashboards/overview.json")];

/// Page routes: each answers the HTML shell; the shell's router picks the page from the URL.
/// Every route this router serves, all public (files and pages hold no data; the APIs they
/// call need a credential): the icon, the assets, then the pages. The API crate's route table
/// takes them from here.
pub const PATHS: &[&str] = &[
    "/favicon.ico",
    "/ui/{*path}",
    "/explore",
    "/dashboards",
    "/dashboards/{*rest}",
    "/logs",
    "/traces",
    "/traces/{id}",
    "/services",
    "/alerts",
    "/status",
    "/login",
    "/admin",
    "/audit",
];
const PAGES: &[&str] = PATHS.split_at(2).1;

/// The bytes of `asset`: from disk in a debug build when the source tree is there, else embedded.
pub fn read(asset: &Asset) -> Cow<'static, [u8]> {
    if cfg!(debug_assertions) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join(asset.path);
        if let Ok(bytes) = std::fs::read(path) {
            return Cow::Owned(bytes);
        }
    }
    Cow::Borrowed(asset.embedded)
}

/// The asset at `path` (relative to `assets/`), if the UI ships one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The built-in dashboards as parsed JSON, `(uid, document)`.
pub fn builtin_dashboards() -> Vec<(String, serde_json::Value)> {
    BUILTIN_DASHBOARDS
        .iter()
        .filter_map(|(uid, path)| {
            let bytes = read(find(path)?);
            let doc = serde_json::from_slice(&bytes).ok()?;
            Some((uid.to_string(), doc))
        })
        .collect()
}

/// Whether a request for `/` comes from a browser (which sends `Accept: text/html` when it
/// navigates). `/` is shared with the Elasticsearch version handshake, which log shippers
/// call without asking for HTML; that handler should use this to tell the two apart.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// The UI's routes, for any router state (they need none).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new().route("/favicon.ico", get(|h: HeaderMap| async move { serve("favicon.svg", &h) })).route(
        "/ui/{*path}",
        get(|axum::extract::Path(p): axum::extract::Path<String>, h: HeaderMap| async move { serve(&p, &h) }),
    );
    for page in PAGES {
        r = r.route(page, get(|h: HeaderMap| async move { serve("index.html", &h) }));
    }
    r
}

/// The UI's start page. `/` itself is routed by the API crate, which shares it with the
/// Elasticsearch handshake: a browser (asking for `text/html`) gets this page, a log shipper
/// the cluster info.
pub fn index_page(headers: &HeaderMap) -> Response {
    serve("index.html", headers)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// FNV-1a of the bytes: a cheap validator so a reload revalidates with a 304.
fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// Content security policy: scripts only from here, connections only to here (the UI talks
/// to the public APIs of the server that served it, websockets included for live tail).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'";

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = find(path) else {
        return (StatusCode::NOT_FOUND, format!("no UI file {path}\n")).into_response();
    };
    let body = read(asset);
    let tag = etag(&body);
    // Modules import each other by plain path (no hashed names without a build step), so the
    // browser revalidates every file; a match costs a 304 and no body.
    let mut res = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == tag.as_bytes()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type(path))], body.into_owned()).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = router::<()>().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    #[tokio::test]
    async fn pages_answer_the_shell_and_files_their_type() {
        for page in ["/explore", "/dashboards", "/dashboards/overview", "/logs", "/alerts", "/status"] {
            let (s, h, body) = get(page, &[("accept", "text/html")]).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert!(String::from_utf8_lossy(&body).contains("<script type=\"module\" src=\"/ui/app.js\">"), "{page}");
        }
        let (s, h, _) = get("/ui/lib/chart.js", &[]).await;
        assert_eq!(
            (s, &h[header::CONTENT_TYPE]),
            (StatusCode::OK, &HeaderValue::from_static("text/javascript; charset=utf-8"))
        );
        assert!(h[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
        let (s, _, _) = get("/ui/../Cargo.toml", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get("/ui/nope.js", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn etags_give_304() {
        let (_, h, _) = get("/ui/app.css", &[]).await;
        let tag = h[header::ETAG].to_str().unwrap().to_string();
        let (s, _, body) = get("/ui/app.css", &[("if-none-match", &tag)]).await;
        assert_eq!((s, body.len()), (StatusCode::NOT_MODIFIED, 0));
    }

    #[tokio::test]
    async fn index_page_is_the_shell() {
        let res = index_page(&HeaderMap::new());
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("/ui/app.js"));
    }

    #[test]
    fn every_asset_is_embedded_and_the_builtins_parse() {
        for a in ASSETS {
            assert!(!a.embedded.is_empty(), "{}", a.path);
        }
        let b = builtin_dashboards();
        assert_eq!(b.len(), BUILTIN_DASHBOARDS.len());
        assert_eq!(b[0].1["title"], "Host overview");
    }
}
