//! Authentication and authorization of every request: credentials in, a [`Principal`] (or 401 /
//! 403) out, by the scope the route table ([`crate::access`]) gives the route.
//!
//! Credentials, in order: `Authorization: Bearer <token>`; `Authorization: Basic` with an API
//! token as the password (the user name is ignored: what Promtail, Grafana data sources and most
//! shippers can send) or a user of the web config file (bcrypt); the `telltale_session` cookie of
//! a login. Local users' passwords are accepted only by the login endpoint, which starts a
//! session, so the lockout cannot be tripped or bypassed through the data APIs.
//!
//! Failures are 401 (no or a bad credential; `WWW-Authenticate` says which kinds) or 403 (the
//! credential lacks the route's scope or the request's tenant), never 5xx: Prometheus's remote
//! write retries 5xx forever but drops a batch on 4xx, and a wrong credential is a configuration
//! error that retrying cannot fix (the sender logs the 401; see docs/security.md).
//!
//! Password checks (bcrypt, Argon2) take tens of milliseconds of CPU each, so they run on one
//! thread of their own at the lowest CPU priority (nice 19): a burst of wrong passwords queues
//! there instead of taking cores from ingest and queries. Successful and failed bcrypt checks are
//! remembered (by a digest of user, hash and password), as Prometheus does.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use telltale_auth::{AuthStore, Principal, Scope, WebConfigFile, Who};
use telltale_model::ErrorKind;

use crate::access::{self, Access};
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::{check_tenant, AUDIT_TENANT};

/// The session cookie (HttpOnly) and the CSRF cookie the UI reads and echoes in `X-CSRF-Token`.
pub(crate) const SESSION_COOKIE: &str = "telltale_session";
/// See [`SESSION_COOKIE`].
pub(crate) const CSRF_COOKIE: &str = "telltale_csrf";
/// The header a session's state-changing requests carry.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// Loki's, Mimir's and Tempo's tenant header.
pub(crate) const TENANT_HEADER: &str = "x-scope-orgid";

/// How the server authenticates: set once at startup by the binary.
pub struct Auth {
    /// Users, service accounts, tokens, sessions.
    pub store: Arc<AuthStore>,
    /// The web config file, if one was given.
    pub web: Option<Arc<WebConfigFile>>,
    /// Whether every non-public route needs a credential (`auth.enabled`, or Basic users in the
    /// web config). When false, every request acts as an anonymous admin.
    pub required: bool,
    /// The tenant of requests that name none.
    pub default_tenant: String,
    /// Whether the listener speaks TLS (cookies get `Secure`).
    pub tls: bool,
    /// Single sign-on, when configured: the settings, and the client once the provider's
    /// discovery document was read (at the first login, so a provider that is down at start
    /// does not stop the server).
    pub oidc: Option<OidcSetup>,
    oidc_client: tokio::sync::OnceCell<Arc<telltale_auth::oidc::Client>>,
    /// Logins in progress at the provider, by `state`.
    pub(crate) oidc_pending: Mutex<std::collections::HashMap<String, telltale_auth::oidc::Pending>>,
    passwords: PasswordWorker,
    bucket: Mutex<(f64, Instant)>,
}

impl Auth {
    /// Authentication with these parts; starts the password-checking thread.
    pub fn new(
        store: Arc<AuthStore>,
        web: Option<Arc<WebConfigFile>>,
        required: bool,
        default_tenant: String,
        tls: bool,
    ) -> Auth {
        Auth {
            store,
            web,
            required,
            default_tenant,
            tls,
            oidc: None,
            oidc_client: tokio::sync::OnceCell::new(),
            oidc_pending: Mutex::default(),
            passwords: PasswordWorker::start(),
            bucket: Mutex::new((f64::MAX, Instant::now())),
        }
    }

    /// The single sign-on client, reading the provider's discovery document the first time.
    pub(crate) async fn oidc_client(&self) -> Result<Arc<telltale_auth::oidc::Client>, ApiError> {
        let setup =
            self.oidc.clone().ok_or_else(|| ApiError::new(ErrorKind::NotFound, "single sign-on is not configured"))?;
        self.oidc_client
            .get_or_try_init(|| async move {
                let c = tokio::task::spawn_blocking(move || {
                    telltale_auth::oidc::Client::discover(setup.options, setup.secret)
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("single sign-on: {e}")))?;
                Ok(Arc::new(c))
            })
            .await
            .cloned()
    }

    /// Runs `check` (a password hash comparison) on the low-priority password thread.
    pub(crate) async fn check_password<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        self.passwords.run(check).await
    }

    /// The web config's token bucket: whether one more request may pass now.
    fn admit(&self, limit: Option<(f64, u32)>) -> bool {
        let Some((interval, burst)) = limit else { return true };
        let mut b = self.bucket.lock();
        let now = Instant::now();
        let cap = f64::from(burst.max(1));
        let tokens = (b.0.min(cap) + now.duration_since(b.1).as_secs_f64() / interval).min(cap);
        *b = if tokens >= 1.0 { (tokens - 1.0, now) } else { (tokens, now) };
        tokens >= 1.0
    }
}

/// What single sign-on needs: the `auth.oidc` settings, the client secret, the callback URL.
#[derive(Debug, Clone)]
pub struct OidcSetup {
    /// `auth.oidc`.
    pub options: telltale_auth::oidc::OidcOptions,
    /// The client secret, resolved.
    pub secret: Option<String>,
    /// This server's callback URL; `None`: the address the browser used, plus the callback's path.
    pub redirect_url: Option<String>,
}

/// One thread at nice 19 that runs password checks in turn.
struct PasswordWorker {
    tx: mpsc::SyncSender<Box<dyn FnOnce() + Send>>,
}

impl PasswordWorker {
    fn start() -> PasswordWorker {
        let (tx, rx) = mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(256);
        std::thread::Builder::new()
            .name("telltale-passwords".into())
            .spawn(move || {
                if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
                    tracing::warn!(error = %e, "cannot lower the password thread's priority");
                }
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .expect("spawn the password thread");
        PasswordWorker { tx }
    }

    async fn run<T: Send + 'static>(&self, check: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .try_send(Box::new(move || {
                let _ = tx.send(check());
            }))
            .map_err(|_| ApiError::rate_limited("too many password checks are waiting; retry in a moment"))?;
        rx.await.map_err(|_| ApiError::internal("the password thread stopped"))
    }
}

/// The tenant a request acts in, for the handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

/// What the request carried.
enum Credential {
    Bearer(String),
    Basic(String, String),
    Session(String),
    None,
}

fn credential(headers: &HeaderMap) -> Credential {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Credential::Bearer(rest.trim().to_string());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded =
                telltale_auth::base64::decode(rest.trim()).and_then(|b| String::from_utf8(b).ok()).unwrap_or_default();
            let (u, p) = decoded.split_once(':').unwrap_or((&decoded, ""));
            return Credential::Basic(u.to_string(), p.to_string());
        }
    }
    match cookie(headers, SESSION_COOKIE) {
        Some(id) => Credential::Session(id),
        None => Credential::None,
    }
}

/// A cookie's value.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A principal, and the CSRF token its session requires (sessions only).
struct Found {
    principal: Principal,
    csrf: Option<String>,
}

/// Checks the credential; `Err` is a 401 with its reason.
async fn authenticate(
    auth: &Auth,
    loaded: Option<&Arc<telltale_auth::webconfig::Loaded>>,
    cred: Credential,
    now: i64,
) -> Result<Option<Found>, &'static str> {
    let found = |principal| Some(Found { principal, csrf: None });
    match cred {
        Credential::None => Ok(None),
        Credential::Bearer(t) => auth.store.check_token(&t, now).map(found).ok_or("invalid or expired token"),
        Credential::Basic(user, pass) => {
            if telltale_auth::secret::is_token(&pass) {
                return auth.store.check_token(&pass, now).map(found).ok_or("invalid or expired token");
            }
            let (Some(web), Some(loaded)) = (&auth.web, loaded) else {
                return Err("Basic credentials must carry an API token as the password");
            };
            if loaded.config.users().is_none() {
                return Err("Basic credentials must carry an API token as the password");
            }
            let ok = match web.cached_basic(loaded, &user, &pass) {
                Some(ok) => ok,
                None => {
                    let (web, loaded, u) = (web.clone(), loaded.clone(), user.clone());
                    auth.check_password(move || web.verify_basic(&loaded, &u, &pass))
                        .await
                        .map_err(|_| "too many password checks are waiting")?
                }
            };
            if ok {
                Ok(found(Principal { who: Who::WebConfigUser(user), ..Principal::anonymous() }))
            } else {
                Err("wrong user name or password")
            }
        }
        Credential::Session(id) => match auth.store.session(&id, now) {
            Some(s) => Ok(Some(Found { principal: s.principal, csrf: Some(s.csrf) })),
            None => Err("the session has ended; log in again"),
        },
    }
}

/// The tenant the request names (`X-Scope-OrgID`), checked; `None` when it names none.
fn asked_tenant(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(TENANT_HEADER) else { return Ok(None) };
    let t = v.to_str().map_err(|_| ApiError::bad_input("X-Scope-OrgID is not text"))?.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.starts_with('_') && t != AUDIT_TENANT {
        return Err(ApiError::bad_input(format!("tenant {t:?}: names starting with _ are reserved")));
    }
    check_tenant(t)?;
    Ok(Some(t.to_string()))
}

fn refuse(kind: ErrorKind, message: impl Into<String>, basic: bool) -> Response {
    let mut res = ApiError::new(kind, message).into_response();
    if kind == ErrorKind::Unauthenticated {
        let challenge = if basic { r#"Basic realm="telltale""# } else { r#"Bearer realm="telltale""# };
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    res
}

/// The middleware: every request passes here after routing.
pub(crate) async fn authorize(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(auth) = app.auth() else {
        let tenant = match asked_tenant(req.headers()) {
            Ok(t) => t.unwrap_or_else(|| app.default_tenant()),
            Err(e) => return e.into_response(),
        };
        req.extensions_mut().insert(Principal::anonymous());
        req.extensions_mut().insert(Tenant(tenant));
        return next.run(req).await;
    };
    let loaded = auth.web.as_ref().map(|w| w.current());
    let mut res = decide(&app, &auth, loaded.as_ref(), req, next).await;
    for (k, v) in loaded.iter().flat_map(|l| l.config.headers()) {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            res.headers_mut().insert(k, v);
        }
    }
    res
}

async fn decide(
    app: &AppState,
    auth: &Auth,
    loaded: Option<&Arc<telltale_auth::webconfig::Loaded>>,
    mut req: Request,
    next: Next,
) -> Response {
    let basic = loaded.is_some_and(|l| l.config.users().is_some());
    if !auth.admit(loaded.and_then(|l| l.config.rate_limit().ok().flatten())) {
        return ApiError::rate_limited("rate limit of the web config reached").into_response();
    }
    let method = req.method().clone();
    let access = match req.extensions().get::<MatchedPath>() {
        Some(p) => match access::lookup(&method, p.as_str()) {
            Some(a) => a,
            // Not routed (or routed without a table row, which `route_walk` catches): refused.
            None => {
                let mut res =
                    ApiError::new(ErrorKind::InvalidInput, format!("{method} is not allowed on {}", p.as_str()))
                        .into_response();
                *res.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
                return res;
            }
        },
        // Nothing matched: the 404 fallback.
        None => Access::Public,
    };
    let asked_tenant = match asked_tenant(req.headers()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let found = if auth.required {
        match authenticate(auth, loaded, credential(req.headers()), app.now_ms()).await {
            Ok(f) => f,
            Err(why) if access == Access::Public => {
                tracing::debug!(reason = why, "credential ignored on a public route");
                None
            }
            Err(why) => return refuse(ErrorKind::Unauthenticated, why, basic),
        }
    } else {
        Some(Found { principal: Principal::anonymous(), csrf: None })
    };
    let needed = match access {
        Access::Public => None,
        Access::Authenticated => Some(None),
        Access::Needs(s) => Some(Some(s)),
    };
    if let Some(scope) = needed {
        let Some(f) = &found else {
            return refuse(ErrorKind::Unauthenticated, "credentials required", basic);
        };
        if let Some(s) = scope {
            if !f.principal.scopes.contains(s) {
                let path = req.uri().path().to_string();
                app.audit(
                    "forbidden",
                    &f.principal.describe(),
                    serde_json::json!({"method": method.as_str(), "path": path, "needs": s}),
                );
                return refuse(
                    ErrorKind::Forbidden,
                    format!("{} lacks the {s} scope this needs", f.principal.describe()),
                    basic,
                );
            }
        }
        if let Some(csrf) = &f.csrf {
            let safe = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
            let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !safe && !telltale_auth::secret::constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
                return refuse(ErrorKind::Forbidden, "missing or wrong X-CSRF-Token for this session", basic);
            }
        }
    }
    if let Some(f) = found {
        // The audit log: admins read it; only the server writes it.
        if asked_tenant.as_deref() == Some(AUDIT_TENANT) && needed.is_some() {
            let reads = matches!(access, Access::Needs(Scope::Read) | Access::Authenticated);
            if !reads || !f.principal.scopes.contains(Scope::Admin) {
                let path = req.uri().path().to_string();
                app.audit(
                    "forbidden",
                    &f.principal.describe(),
                    serde_json::json!({"method": method.as_str(), "path": path, "tenant": AUDIT_TENANT}),
                );
                return refuse(
                    ErrorKind::Forbidden,
                    "the audit log's tenant is read by admins only, and written by the server",
                    basic,
                );
            }
        }
        let tenant = f.principal.tenant(asked_tenant.as_deref(), &auth.default_tenant).map(str::to_string);
        match tenant {
            Some(t) => {
                req.extensions_mut().insert(Tenant(t));
            }
            None if needed.is_some() => {
                let path = req.uri().path().to_string();
                app.audit(
                    "forbidden",
                    &f.principal.describe(),
                    serde_json::json!({"method": method.as_str(), "path": path, "tenant": asked_tenant}),
                );
                return refuse(
                    ErrorKind::Forbidden,
                    format!("{} may not act in tenant {:?}", f.principal.describe(), asked_tenant.unwrap_or_default()),
                    basic,
                );
            }
            None => {}
        }
        req.extensions_mut().insert(f.principal);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_by_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; telltale_session=abc; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
