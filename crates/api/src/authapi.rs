//! `/api/v1/auth/...`: log in and out, who am I, and (admin) users, service accounts and tokens.
//! Shapes are documented in docs/security.md. Every change goes through the auth store on the
//! blocking pool (it writes and fsyncs a file); password checks run on the password thread.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use telltale_auth::{AuthStore, Login, Owner, Principal, Role, Scopes, Tenants, Who};

use crate::authn::{cookie, Auth, CSRF_COOKIE, SESSION_COOKIE};
use crate::error::ApiError;
use crate::json;
use crate::state::AppState;

impl From<telltale_auth::Error> for ApiError {
    fn from(e: telltale_auth::Error) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

fn auth(app: &AppState) -> Result<Arc<Auth>, ApiError> {
    app.auth().ok_or_else(|| ApiError::new(telltale_model::ErrorKind::NotFound, "authentication is not configured"))
}

/// Runs `f` on the auth store on the blocking pool.
async fn with_store<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&AuthStore) -> telltale_auth::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = auth(app)?.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(Into::into)
}

/// Removes what `name` names with `remove`, records `action` with `{key: name}`, answers 204.
async fn remove_named<T: Send + 'static>(
    app: &AppState,
    p: &Principal,
    name: String,
    (action, key): (&'static str, &str),
    remove: fn(&AuthStore, &str) -> telltale_auth::Result<T>,
) -> Result<StatusCode, ApiError> {
    let n = name.clone();
    with_store(app, move |s| remove(s, &n)).await?;
    app.audit(action, &p.describe(), json!({ key: name }));
    Ok(StatusCode::NO_CONTENT)
}

/// A JSON or form body.
fn body<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: serde_json::Map<String, Value> =
            form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect();
        serde_json::from_value(Value::Object(pairs)).map_err(|e| ApiError::bad_input(format!("bad form: {e}")))
    } else {
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_input(format!("bad JSON body: {e}")))
    }
}

fn set_cookie(res: &mut Response, name: &str, value: &str, http_only: bool, max_age: Option<i64>, secure: bool) {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Cookies get `Secure` under TLS, and behind a proxy that says it terminated TLS.
fn secure(auth: &Auth, headers: &HeaderMap) -> bool {
    auth.tls || headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    user: String,
    password: String,
}

/// `POST /api/v1/auth/login` `{"user", "password"}` (JSON or form): starts a session.
pub(crate) async fn login(State(app): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Result<Response, ApiError> {
    let a = auth(&app)?;
    let f: LoginForm = body(&headers, &bytes)?;
    let started = std::time::Instant::now();
    let (store, user, now) = (a.store.clone(), f.user.clone(), app.now_ms());
    let (outcome, typical) =
        a.check_password(move || (store.check_password(&user, &f.password, now), store.typical_check())).await?;
    if outcome == Login::Denied {
        // An unknown user's refusal takes as long as a wrong password's (no user enumeration),
        // waiting instead of hashing.
        tokio::time::sleep(typical.saturating_sub(started.elapsed())).await;
    }
    match outcome {
        Login::Ok(_) => {
            let user = f.user.clone();
            let (id, csrf) = with_store(&app, move |s| s.new_session(&user, now)).await?;
            app.audit("login", &format!("user:{}", f.user), json!({"outcome": "ok"}));
            let mut res = json(json!({"user": f.user, "csrf": csrf}));
            let secure = secure(&a, &headers);
            set_cookie(&mut res, SESSION_COOKIE, &id, true, None, secure);
            set_cookie(&mut res, CSRF_COOKIE, &csrf, false, None, secure);
            Ok(res)
        }
        Login::Denied => {
            app.audit("login_failed", &format!("user:{}", f.user), json!({"outcome": "wrong user name or password"}));
            Err(ApiError::new(telltale_model::ErrorKind::Unauthenticated, "wrong user name or password"))
        }
        Login::LockedOut { until, now_locked } => {
            let action = if now_locked { "lockout" } else { "login_refused_locked_out" };
            app.audit(action, &format!("user:{}", f.user), json!({"until_ms": until}));
            let secs = ((until - now) / 1000).max(1);
            let mut res = ApiError::rate_limited(format!(
                "too many failed logins for {:?}; try again in {} minutes",
                f.user,
                (secs + 59) / 60
            ))
            .into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            Ok(res)
        }
    }
}

/// `POST /api/v1/auth/logout`: ends the session and clears its cookies.
pub(crate) async fn logout(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = auth(&app)?;
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        with_store(&app, move |s| s.end_session(&id)).await?;
    }
    app.audit("logout", &p.describe(), json!({}));
    let mut res = StatusCode::NO_CONTENT.into_response();
    let secure = secure(&a, &headers);
    set_cookie(&mut res, SESSION_COOKIE, "", true, Some(0), secure);
    set_cookie(&mut res, CSRF_COOKIE, "", false, Some(0), secure);
    Ok(res)
}

fn principal_json(p: &Principal) -> Value {
    let (kind, name) = match &p.who {
        Who::Anonymous => ("anonymous", String::new()),
        Who::User(n) => ("user", n.clone()),
        Who::WebConfigUser(n) => ("web_config_user", n.clone()),
        Who::Token { id, owner } => ("token", format!("{id} ({owner})")),
    };
    json!({"kind": kind, "name": name, "scopes": p.scopes, "tenants": p.tenants})
}

/// `GET /api/v1/auth/whoami`.
pub(crate) async fn whoami(State(app): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    let mut v = principal_json(&p);
    v["auth_required"] = json!(app.auth().is_some_and(|a| a.required));
    json(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordForm {
    old_password: String,
    new_password: String,
}

/// `PUT /api/v1/auth/password` `{"old_password", "new_password"}`: a user changes their own.
pub(crate) async fn change_password(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let Who::User(name) = p.who else {
        return Err(ApiError::bad_input("only a logged-in user has a password to change"));
    };
    let f: PasswordForm = body(&headers, &bytes)?;
    let a = auth(&app)?;
    let (store, n, now) = (a.store.clone(), name.clone(), app.now_ms());
    match a.check_password(move || store.check_password(&n, &f.old_password, now)).await? {
        Login::Ok(_) => {}
        _ => return Err(ApiError::new(telltale_model::ErrorKind::Forbidden, "the old password is wrong")),
    }
    let n = name.clone();
    with_store(&app, move |s| s.update_user(&n, None, Some(&f.new_password))).await?;
    app.audit("password_changed", &format!("user:{name}"), json!({}));
    Ok(StatusCode::NO_CONTENT)
}

fn user_json(u: &telltale_auth::User) -> Value {
    json!({"name": u.name, "role": u.role, "tenants": u.tenants, "origin": u.origin, "created_at": u.created_at})
}

/// `GET /api/v1/auth/users`.
pub(crate) async fn users(State(app): State<AppState>) -> Result<Response, ApiError> {
    let users = with_store(&app, |s| Ok(s.users())).await?;
    Ok(json(json!({"users": users.iter().map(user_json).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    role: Role,
}

/// `POST /api/v1/auth/users` `{"name", "password", "role"}`.
pub(crate) async fn add_user(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let f: NewUser = body(&headers, &bytes)?;
    let now = app.now_ms();
    let u = with_store(&app, move |s| s.add_user(&f.name, Some(&f.password), f.role, "local", now)).await?;
    app.audit("user_added", &p.describe(), json!({"user": u.name, "role": u.role}));
    Ok((StatusCode::CREATED, json(user_json(&u))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    password: Option<String>,
}

/// `PUT /api/v1/auth/users/{name}` `{"role"?, "password"?}`.
pub(crate) async fn update_user(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let f: UserChange = body(&headers, &bytes)?;
    let n = name.clone();
    let u = with_store(&app, move |s| s.update_user(&n, f.role, f.password.as_deref())).await?;
    app.audit("user_changed", &p.describe(), json!({"user": name, "role": u.role}));
    Ok(json(user_json(&u)))
}

/// `DELETE /api/v1/auth/users/{name}`: with their tokens and sessions.
pub(crate) async fn delete_user(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_named(&app, &p, name, ("user_deleted", "user"), AuthStore::delete_user).await
}

fn service_account_json(s: &telltale_auth::ServiceAccount) -> Value {
    json!({"name": s.name, "scopes": s.scopes, "tenants": s.tenants, "created_at": s.created_at})
}

/// `GET /api/v1/auth/service_accounts`.
pub(crate) async fn service_accounts(State(app): State<AppState>) -> Result<Response, ApiError> {
    let list = with_store(&app, |s| Ok(s.service_accounts())).await?;
    Ok(json(json!({"service_accounts": list.iter().map(service_account_json).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewServiceAccount {
    name: String,
    #[serde(default)]
    scopes: Option<Scopes>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    tenants: Option<Vec<String>>,
}

/// `POST /api/v1/auth/service_accounts` `{"name", "scopes": [...] | "role", "tenants"?}`.
pub(crate) async fn add_service_account(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let f: NewServiceAccount = body(&headers, &bytes)?;
    let scopes = match (f.scopes, f.role) {
        (Some(s), None) => s,
        (None, Some(r)) => r.scopes(),
        _ => return Err(ApiError::bad_input("give either scopes (a list of ingest, read, edit, admin) or a role")),
    };
    let tenants = f.tenants.map_or(Tenants::Any, Tenants::Only);
    let now = app.now_ms();
    let sa = with_store(&app, move |s| s.add_service_account(&f.name, scopes, tenants, now)).await?;
    app.audit("service_account_added", &p.describe(), json!({"service_account": sa.name, "scopes": sa.scopes}));
    Ok((StatusCode::CREATED, json(service_account_json(&sa))).into_response())
}

/// `DELETE /api/v1/auth/service_accounts/{name}`: with its tokens.
pub(crate) async fn delete_service_account(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_named(&app, &p, name, ("service_account_deleted", "service_account"), AuthStore::delete_service_account)
        .await
}

fn token_json(t: &telltale_auth::Token) -> Value {
    json!({
        "id": t.id, "name": t.name, "owner": t.owner, "scopes": t.scopes, "tenants": t.tenants,
        "created_at": t.created_at, "expires_at": t.expires_at, "last_used_at": t.last_used_at,
    })
}

/// `GET /api/v1/auth/tokens`: every token's record (never the token).
pub(crate) async fn tokens(State(app): State<AppState>) -> Result<Response, ApiError> {
    let list = with_store(&app, |s| Ok(s.tokens())).await?;
    Ok(json(json!({"tokens": list.iter().map(token_json).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    owner: Owner,
    #[serde(default)]
    scopes: Option<Scopes>,
    #[serde(default)]
    tenants: Option<Vec<String>>,
    /// A duration (`"90d"`); none: the token does not expire.
    #[serde(default)]
    expires_in: Option<String>,
}

/// `POST /api/v1/auth/tokens` `{"name", "owner": {"user": n} | {"service_account": n},
/// "scopes"?, "tenants"?, "expires_in"?}`: answers the token, once.
pub(crate) async fn create_token(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let f: NewToken = body(&headers, &bytes)?;
    let now = app.now_ms();
    let expires_at = f
        .expires_in
        .as_deref()
        .map(|d| telltale_model::units::parse_duration(d).map(|d| now + d.as_millis() as i64))
        .transpose()
        .map_err(|e| ApiError::bad_input(format!("expires_in: {e}")))?;
    let tenants = f.tenants.map_or(Tenants::Any, Tenants::Only);
    let (token, rec) =
        with_store(&app, move |s| s.create_token(f.owner, &f.name, f.scopes, tenants, expires_at, now)).await?;
    app.audit(
        "token_created",
        &p.describe(),
        json!({"token": rec.id, "owner": rec.owner.describe(), "scopes": rec.scopes}),
    );
    let mut v = token_json(&rec);
    v["token"] = json!(token);
    Ok((StatusCode::CREATED, json(v)).into_response())
}

/// `DELETE /api/v1/auth/tokens/{id}`.
pub(crate) async fn revoke_token(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_named(&app, &p, id, ("token_revoked", "token"), AuthStore::revoke_token).await
}

/// `GET /api/v1/auth/providers`: how one may log in (for the login page).
pub(crate) async fn providers(State(app): State<AppState>) -> Response {
    let oidc = app.auth().and_then(|a| a.oidc.clone()).map(|o| json!({"label": o.options.label}));
    json(json!({"password": true, "oidc": oidc}))
}

/// The cookie that binds a login at the provider to this browser.
const OIDC_COOKIE: &str = "telltale_oidc";

fn redirect(to: &str) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// A path on this server only (an open redirect otherwise).
fn local_path(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\')).unwrap_or("/").to_string()
}

fn query_param(q: &Option<String>, name: &str) -> Option<String> {
    form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `GET /api/v1/auth/oidc/login?next=/path`: to the provider, with state, nonce and PKCE.
pub(crate) async fn oidc_login(
    State(app): State<AppState>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = auth(&app)?;
    let client = a.oidc_client().await?;
    let now = app.now_ms();
    let redirect_url = match a.oidc.as_ref().and_then(|o| o.redirect_url.clone()) {
        Some(u) => u,
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
            format!("{}://{host}/api/v1/auth/oidc/callback", if secure(&a, &headers) { "https" } else { "http" })
        }
    };
    let (url, pending) = client.start(&local_path(query_param(&q, "next").as_deref()), &redirect_url, now);
    let state = pending.state.clone();
    {
        let mut p = a.oidc_pending.lock();
        p.retain(|_, v| now - v.started < 10 * 60 * 1000);
        p.insert(state.clone(), pending);
    }
    let mut res = redirect(&url);
    set_cookie(&mut res, OIDC_COOKIE, &state, true, Some(600), secure(&a, &headers));
    Ok(res)
}

/// `GET /api/v1/auth/oidc/callback?code=&state=`: the provider's answer; a session, then back
/// to the page the login started from. A failure goes back to the login page, saying why.
pub(crate) async fn oidc_callback(
    State(app): State<AppState>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = auth(&app)?;
    let client = a.oidc_client().await?;
    let fail = |why: String| {
        app.audit("login_failed", "oidc", json!({"reason": why}));
        let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("error", &why).finish();
        redirect(&format!("/login?{q}"))
    };
    if let Some(e) = query_param(&q, "error") {
        return Ok(fail(format!("the provider refused: {e}")));
    }
    let (Some(code), Some(state)) = (query_param(&q, "code"), query_param(&q, "state")) else {
        return Ok(fail("the provider's answer has no code or state".into()));
    };
    // The state must be this browser's (the cookie) and a login this server started.
    if cookie(&headers, OIDC_COOKIE).as_deref() != Some(state.as_str()) {
        return Ok(fail("this login was not started in this browser".into()));
    }
    let Some(pending) = a.oidc_pending.lock().remove(&state) else {
        return Ok(fail("unknown or expired login; start again".into()));
    };
    let now = app.now_ms();
    let (c, p) = (client.clone(), pending.clone());
    let identity = match tokio::task::spawn_blocking(move || c.finish(&p, &code, now)).await {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return Ok(fail(e.to_string())),
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    let (user, role) = (identity.username.clone(), identity.role);
    let session = with_store(&app, move |s| {
        s.upsert_sso_user(&user, role, now)?;
        s.new_session(&user, now)
    })
    .await;
    let (id, csrf) = match session {
        Ok(s) => s,
        Err(e) => return Ok(fail(e.message().to_string())),
    };
    app.audit(
        "login",
        &format!("user:{}", identity.username),
        json!({"via": "oidc", "role": identity.role, "groups": identity.groups}),
    );
    let mut res = redirect(&pending.next);
    let secure = secure(&a, &headers);
    set_cookie(&mut res, SESSION_COOKIE, &id, true, None, secure);
    set_cookie(&mut res, CSRF_COOKIE, &csrf, false, None, secure);
    set_cookie(&mut res, OIDC_COOKIE, "", true, Some(0), secure);
    Ok(res)
}
