//! The one route table: what every route of the server needs, by method.
//!
//! [`crate::router`] registers each path through [`at`], which refuses (in debug builds and
//! tests) a path this table does not list; the authorization middleware looks every request up
//! here by its matched path and method, and answers 405 for a method the table lacks, so a route
//! added without a scope fails closed. `route_walk` in this crate's tests checks that the routed
//! methods and the table's rows are the same set, and sends every route a request without a
//! credential and with a token of each scope: it fails if any answers a credential without the
//! route's scope.
//!
//! The scopes: `ingest` writes data (and a Prometheus's alerts), `read` queries and reads
//! configuration, `edit` changes what users share (dashboards, silences), `admin` does the rest.
//! Public: the web UI's files and pages (they hold no data; the APIs they call need a scope),
//! `/-/healthy`, the login endpoint, `/ping` (Influx clients' health probe) and `/` (the UI's start
//! page, and the Elasticsearch version handshake log shippers send before authenticating).

use axum::http::Method;
use telltale_auth::Scope;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Any valid credential (who am I, log out, change my password).
    Authenticated,
    /// A credential holding this scope.
    Needs(Scope),
}

use Access::{Authenticated, Needs, Public};
const INGEST: Access = Needs(Scope::Ingest);
const READ: Access = Needs(Scope::Read);
const EDIT: Access = Needs(Scope::Edit);
const ADMIN: Access = Needs(Scope::Admin);

/// `(method, path as registered, access)`; `HEAD` takes `GET`'s row unless it has its own.
pub const ROUTES: &[(&str, &str, Access)] = &[
    // Prometheus write paths, Influx, OTLP
    ("POST", "/api/v1/write", INGEST),
    ("POST", "/api/v1/import/prometheus", INGEST),
    ("POST", "/write", INGEST),
    ("POST", "/api/v2/write", INGEST),
    ("POST", "/v1/metrics", INGEST),
    ("POST", "/v1/logs", INGEST),
    // Traces: OTLP/HTTP, Zipkin; Tempo's, Jaeger's and Zipkin's read APIs
    ("POST", "/v1/traces", INGEST),
    ("POST", "/otlp/v1/traces", INGEST),
    ("POST", "/api/v2/spans", INGEST),
    ("GET", "/api/echo", Public),
    ("GET", "/api/status/buildinfo", READ),
    ("GET", "/api/traces/{id}", READ),
    ("GET", "/api/v2/traces/{id}", READ),
    ("GET", "/api/search", READ),
    ("GET", "/api/search/tags", READ),
    ("GET", "/api/v2/search/tags", READ),
    ("GET", "/api/search/tag/{tag}/values", READ),
    ("GET", "/api/v2/search/tag/{tag}/values", READ),
    ("GET", "/api/traces", READ),
    ("GET", "/api/services", READ),
    ("GET", "/api/services/{service}/operations", READ),
    ("GET", "/api/operations", READ),
    ("GET", "/api/dependencies", READ),
    ("GET", "/api/metrics/latencies", READ),
    ("GET", "/api/metrics/calls", READ),
    ("GET", "/api/metrics/errors", READ),
    ("GET", "/api/metrics/minstep", READ),
    ("GET", "/api/metrics/query_range", READ),
    ("GET", "/api/metrics/query", READ),
    ("GET", "/api/v3/services", READ),
    ("GET", "/api/v3/operations", READ),
    ("GET", "/api/v3/traces", READ),
    ("GET", "/api/v3/traces/{id}", READ),
    ("GET", "/api/v2/services", READ),
    ("GET", "/api/v2/spans", READ),
    ("GET", "/api/v2/remoteServices", READ),
    ("GET", "/api/v2/traces", READ),
    ("GET", "/api/v2/trace/{id}", READ),
    ("GET", "/api/v2/dependencies", READ),
    ("GET", "/api/v1/services/latency", READ),
    // Prometheus read API
    ("GET", "/api/v1/series", READ),
    ("POST", "/api/v1/series", READ),
    ("GET", "/api/v1/labels", READ),
    ("POST", "/api/v1/labels", READ),
    ("GET", "/api/v1/label/{name}/values", READ),
    ("POST", "/api/v1/label/{name}/values", READ),
    ("GET", "/api/v1/export", READ),
    ("POST", "/api/v1/export", READ),
    ("GET", "/api/v1/query", READ),
    ("POST", "/api/v1/query", READ),
    ("GET", "/api/v1/query_range", READ),
    ("POST", "/api/v1/query_range", READ),
    ("GET", "/api/v1/format_query", READ),
    ("POST", "/api/v1/format_query", READ),
    ("GET", "/api/v1/query_exemplars", READ),
    ("POST", "/api/v1/query_exemplars", READ),
    ("GET", "/api/v1/metadata", READ),
    ("GET", "/api/v1/status/buildinfo", READ),
    ("GET", "/api/v1/status/runtimeinfo", READ),
    ("GET", "/api/v1/status/config", READ),
    ("GET", "/api/v1/status/tsdb", READ),
    ("GET", "/api/v1/targets", READ),
    ("GET", "/api/v1/rules", READ),
    ("POST", "/api/v1/rules", READ),
    ("GET", "/api/v1/alerts", READ),
    ("POST", "/api/v1/alerts", READ),
    ("GET", "/api/v1/notifications", READ),
    ("GET", "/api/v1/sql", READ),
    ("POST", "/api/v1/sql", READ),
    ("GET", "/federate", READ),
    // Dashboards
    ("GET", "/api/v1/dashboards", READ),
    ("POST", "/api/v1/dashboards", EDIT),
    ("GET", "/api/v1/dashboards/{uid}", READ),
    ("PUT", "/api/v1/dashboards/{uid}", EDIT),
    ("DELETE", "/api/v1/dashboards/{uid}", EDIT),
    // Receivers entered through the API hold credentials: changing them is an admin's job
    ("GET", "/api/v1/receivers", READ),
    ("PUT", "/api/v1/receivers/{name}", ADMIN),
    ("DELETE", "/api/v1/receivers/{name}", ADMIN),
    // Alertmanager API: a Prometheus posting alerts ingests; silences are edits
    ("GET", "/api/v2/alerts", READ),
    ("POST", "/api/v2/alerts", INGEST),
    ("GET", "/api/v2/alerts/groups", READ),
    ("GET", "/api/v2/silences", READ),
    ("POST", "/api/v2/silences", EDIT),
    ("GET", "/api/v2/silence/{id}", READ),
    ("DELETE", "/api/v2/silence/{id}", EDIT),
    ("GET", "/api/v2/status", READ),
    ("GET", "/api/v2/receivers", READ),
    // Loki
    ("POST", "/loki/api/v1/push", INGEST),
    ("GET", "/loki/api/v1/query", READ),
    ("POST", "/loki/api/v1/query", READ),
    ("GET", "/loki/api/v1/query_range", READ),
    ("POST", "/loki/api/v1/query_range", READ),
    ("GET", "/loki/api/v1/labels", READ),
    ("POST", "/loki/api/v1/labels", READ),
    ("GET", "/loki/api/v1/label/{name}/values", READ),
    ("POST", "/loki/api/v1/label/{name}/values", READ),
    ("GET", "/loki/api/v1/series", READ),
    ("POST", "/loki/api/v1/series", READ),
    ("GET", "/loki/api/v1/index/stats", READ),
    ("POST", "/loki/api/v1/index/stats", READ),
    ("GET", "/loki/api/v1/status/buildinfo", READ),
    ("GET", "/loki/api/v1/tail", READ),
    // Elasticsearch
    ("GET", "/", Public),
    ("POST", "/_bulk", INGEST),
    ("PUT", "/_bulk", INGEST),
    ("POST", "/{index}/_bulk", INGEST),
    ("PUT", "/{index}/_bulk", INGEST),
    // The server itself
    ("GET", "/-/healthy", Public),
    ("GET", "/-/ready", READ),
    ("POST", "/-/reload", ADMIN),
    ("PUT", "/-/reload", ADMIN),
    ("GET", "/metrics", READ),
    ("GET", "/internal/force_flush", ADMIN),
    ("POST", "/internal/force_flush", ADMIN),
    ("GET", "/ping", Public),
    // Authentication and its administration
    ("POST", "/api/v1/auth/login", Public),
    ("GET", "/api/v1/auth/providers", Public),
    ("GET", "/api/v1/auth/oidc/login", Public),
    ("GET", "/api/v1/auth/oidc/callback", Public),
    ("POST", "/api/v1/auth/logout", Authenticated),
    ("GET", "/api/v1/auth/whoami", Authenticated),
    ("PUT", "/api/v1/auth/password", Authenticated),
    ("GET", "/api/v1/auth/users", ADMIN),
    ("POST", "/api/v1/auth/users", ADMIN),
    ("PUT", "/api/v1/auth/users/{name}", ADMIN),
    ("DELETE", "/api/v1/auth/users/{name}", ADMIN),
    ("GET", "/api/v1/auth/service_accounts", ADMIN),
    ("POST", "/api/v1/auth/service_accounts", ADMIN),
    ("DELETE", "/api/v1/auth/service_accounts/{name}", ADMIN),
    ("GET", "/api/v1/auth/tokens", ADMIN),
    ("POST", "/api/v1/auth/tokens", ADMIN),
    ("DELETE", "/api/v1/auth/tokens/{id}", ADMIN),
];

/// What `method` on the route registered as `path` needs; `None` if the table lacks it.
pub fn lookup(method: &Method, path: &str) -> Option<Access> {
    if telltale_ui::PATHS.contains(&path) && (method == Method::GET || method == Method::HEAD) {
        return Some(Public);
    }
    let find = |m: &str| ROUTES.iter().find(|(rm, rp, _)| *rm == m && *rp == path).map(|r| r.2);
    find(method.as_str()).or_else(|| if method == Method::HEAD { find("GET") } else { None })
}

/// `path`, checked against the table: every path the router registers goes through here.
pub(crate) fn at(path: &'static str) -> &'static str {
    debug_assert!(
        ROUTES.iter().any(|r| r.1 == path),
        "route {path} is not in the access table (crates/api/src/access.rs)"
    );
    path
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use telltale_auth::{AuthStore, Owner, Policy, Scope, Scopes, Tenants};
    use telltale_storage::MemStore;
    use tower::ServiceExt;

    use super::*;
    use crate::{router, AppState, Auth, Limits};

    /// A concrete request path for a route pattern.
    fn fill(path: &str) -> String {
        path.replace("{name}", "x")
            .replace("{uid}", "x")
            .replace("{id}", "x")
            .replace("{index}", "idx")
            .replace("{*path}", "app.js")
            .replace("{*rest}", "x")
    }

    async fn status(app: &axum::Router, method: &str, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(fill(path));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let code = res.status();
        let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    /// Every method on every route: without a credential, and with a token of each scope. A
    /// route answers only a credential holding its scope, and every route that answers a method
    /// has that method in the table.
    #[tokio::test(flavor = "multi_thread")]
    async fn route_walk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(AuthStore::open(dir.path(), Policy::default()).unwrap());
        let mut tokens = Vec::new();
        for scope in Scope::ALL {
            let name = format!("only-{scope}");
            store.add_service_account(&name, [scope].into_iter().collect(), Tenants::Any, 0).unwrap();
            let (t, _) = store.create_token(Owner::ServiceAccount(name), "walk", None, Tenants::Any, None, 0).unwrap();
            tokens.push((scope, t));
        }
        store.add_service_account("all", Scopes::ALL, Tenants::Any, 0).unwrap();
        let (all, _) =
            store.create_token(Owner::ServiceAccount("all".into()), "walk", None, Tenants::Any, None, 0).unwrap();
        let state = AppState::with_store(Arc::new(MemStore::new()), Limits::default());
        state.set_auth(Arc::new(Auth::new(store, None, true, "default".into(), false)));
        let app = router(state);

        let bare = crate::routes().with_state(AppState::with_store(Arc::new(MemStore::new()), Limits::default()));
        let paths: std::collections::BTreeSet<&str> =
            ROUTES.iter().map(|r| r.1).chain(telltale_ui::PATHS.iter().copied()).collect();
        let mut checked = 0;
        for path in &paths {
            for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] {
                let m = Method::from_bytes(method.as_bytes()).unwrap();
                // The routed methods (without authorization in front) are exactly the table's.
                let (routed, _) = status(&bare, method, path, None).await;
                let access = lookup(&m, path);
                // (axum answers HEAD with the GET handler, which may refuse it: a websocket.)
                if method != "HEAD" {
                    assert_eq!(
                        routed != StatusCode::METHOD_NOT_ALLOWED,
                        access.is_some(),
                        "{method} {path}: routed or in the table, not both"
                    );
                }
                let Some(access) = access else { continue };
                checked += 1;
                let (code, body) = status(&app, method, path, Some(&all)).await;
                assert!(
                    code != StatusCode::UNAUTHORIZED && code != StatusCode::FORBIDDEN,
                    "{method} {path} with every scope: {code} {body}"
                );
                let (anon, body) = status(&app, method, path, None).await;
                match access {
                    Access::Public => assert!(
                        anon != StatusCode::UNAUTHORIZED && anon != StatusCode::FORBIDDEN,
                        "{method} {path}: {anon}"
                    ),
                    _ => assert_eq!(anon, StatusCode::UNAUTHORIZED, "{method} {path} without a credential: {body}"),
                }
                for (scope, token) in &tokens {
                    let (code, body) = status(&app, method, path, Some(token)).await;
                    let denied = code == StatusCode::FORBIDDEN;
                    match access {
                        Access::Needs(s) if s != *scope => {
                            assert!(denied, "{method} {path} answered {code} to a {scope} token: {body}")
                        }
                        _ => assert!(
                            !denied && code != StatusCode::UNAUTHORIZED,
                            "{method} {path} refused a {scope} token: {code} {body}"
                        ),
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} routes walked");
        // Reading never needs a scope that changes things.
        for (m, p, a) in ROUTES {
            assert!(*m != "GET" || !matches!(a, Needs(Scope::Ingest | Scope::Edit)), "GET {p} needs {a:?}");
        }
    }
}
