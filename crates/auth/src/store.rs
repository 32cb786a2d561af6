//! Users, service accounts, API tokens and sessions, kept in one JSON file under the data
//! directory (`auth/store.json`, mode 0600), which the server and the CLI (`telltale user add`,
//! `telltale token create`) both change.
//!
//! Every change takes an exclusive lock on `auth/store.lock`, reads the file, applies itself,
//! and replaces the file atomically (write, fsync, rename, fsync the directory); readers see the
//! file as of their last look, and the server looks again at most once a second when the file
//! changed. Secrets are stored only as hashes: SHA-256 for tokens and session ids (random, so a
//! fast hash suffices), Argon2id for passwords. What changes on every request (a token's
//! `last_used_at`, a session's last activity) is kept in memory and written by
//! [`AuthStore::flush_usage`], which the server calls every minute.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scope::{Principal, Role, Scopes, Tenants, Who};
use crate::{jsonfile, password, secret};

/// Sessions and lockout: the `auth.sessions` and `auth.lockout` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after login, used or not.
    pub session_max_age: Duration,
    /// Failed logins within `lockout_window` that lock the user out.
    pub lockout_attempts: u32,
    /// The window failed logins are counted in.
    pub lockout_window: Duration,
    /// How long a locked-out user stays locked out.
    pub lockout_duration: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            session_idle: Duration::from_secs(24 * 3600),
            session_max_age: Duration::from_secs(30 * 24 * 3600),
            lockout_attempts: 5,
            lockout_window: Duration::from_secs(15 * 60),
            lockout_duration: Duration::from_secs(15 * 60),
        }
    }
}

/// A person who logs in (locally or by single sign-on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Argon2id PHC string; none for users who sign in only through single sign-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// What the user may do.
    pub role: Role,
    /// Where (tenants).
    #[serde(default)]
    pub tenants: Tenants,
    /// `local`, `config` (the bootstrap admin) or `oidc`.
    pub origin: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A non-human owner of tokens (a Grafana data source, a log shipper, a CI job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    /// Its name.
    pub name: String,
    /// The most its tokens may do.
    pub scopes: Scopes,
    /// Where.
    #[serde(default)]
    pub tenants: Tenants,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// Who a token belongs to; its scopes never exceed the owner's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// A user.
    User(String),
    /// A service account.
    ServiceAccount(String),
}

impl Owner {
    /// `user:alice` or `service_account:grafana`.
    pub fn describe(&self) -> String {
        match self {
            Owner::User(n) => format!("user:{n}"),
            Owner::ServiceAccount(n) => format!("service_account:{n}"),
        }
    }
}

/// An API token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// A short public id (shown in lists and the audit log).
    pub id: String,
    /// What the token is for.
    pub name: String,
    /// Its owner.
    pub owner: Owner,
    /// SHA-256 of the token, hex.
    pub digest: String,
    /// What it may do (at most what its owner may).
    pub scopes: Scopes,
    /// Where; intersected with the owner's.
    #[serde(default)]
    pub tenants: Tenants,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// When it stops working, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Its last use, to within a minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
}

/// A login session as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Session {
    digest: String,
    user: String,
    created_at: i64,
    last_seen: i64,
    csrf: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
    version: u32,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    service_accounts: Vec<ServiceAccount>,
    #[serde(default)]
    tokens: Vec<Token>,
    #[serde(default)]
    sessions: Vec<Session>,
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The password is right.
    Ok(Principal),
    /// Unknown user or wrong password (the two are not told apart).
    Denied,
    /// Too many failures: refused without checking, until the given time (ms).
    LockedOut {
        /// When the lockout ends.
        until: i64,
        /// Whether this very attempt caused it.
        now_locked: bool,
    },
}

/// A session found by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The user, as a principal.
    pub principal: Principal,
    /// The token state-changing requests of this session must carry (`X-CSRF-Token`).
    pub csrf: String,
}

/// The store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AuthStore {
    dir: PathBuf,
    policy: Policy,
    data: RwLock<Data>,
    /// The file's (mtime ns, size) when last read, and when it was last looked at.
    seen: Mutex<(i128, u64)>,
    last_look: AtomicI64,
    /// Token id → last use, session digest → last activity, not yet written.
    usage: Mutex<(HashMap<String, i64>, HashMap<String, i64>)>,
    /// User name → times of recent failed logins, and the end of a lockout.
    failures: Mutex<HashMap<String, (Vec<i64>, i64)>>,
    /// How long a password check takes, in ns (see [`AuthStore::typical_check`]).
    typical_ns: std::sync::atomic::AtomicU64,
}

const FILE: &str = "store.json";
const LOCK: &str = "store.lock";
const VERSION: u32 = 1;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Names of users and service accounts: what fits in a URL, a log line and a label value.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::config(kind, format!("{name:?} is not a valid name (1-64 of A-Z a-z 0-9 . _ @ -)")))
    }
}

impl AuthStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, policy: Policy) -> Result<AuthStore> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let s = AuthStore {
            dir: dir.to_path_buf(),
            policy,
            data: RwLock::new(Data::default()),
            seen: Mutex::new((-1, 0)),
            last_look: AtomicI64::new(i64::MIN),
            usage: Mutex::default(),
            failures: Mutex::default(),
            typical_ns: Default::default(),
        };
        s.refresh()?;
        Ok(s)
    }

    fn file(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn stamp(&self) -> Option<(i128, u64)> {
        jsonfile::stamp(&self.file())
    }

    fn read(&self) -> Result<Data> {
        Ok(jsonfile::read(&self.file())?.unwrap_or(Data { version: VERSION, ..Data::default() }))
    }

    /// Reads the file again if it changed since it was last read.
    fn refresh(&self) -> Result<()> {
        let stamp = self.stamp().unwrap_or((-1, 0));
        let mut seen = self.seen.lock();
        if *seen != stamp {
            *self.data.write() = self.read()?;
            *seen = stamp;
        }
        Ok(())
    }

    /// Looks at the file at most once a second (another process may have changed it).
    fn maybe_refresh(&self, now: i64) {
        let last = self.last_look.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self.last_look.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            if let Err(e) = self.refresh() {
                tracing::error!(error = %e, "cannot re-read the auth store; the last version read stays in force");
            }
        }
    }

    /// Applies `change` to the file under the lock, and returns what it returned.
    fn modify<T>(&self, change: impl FnOnce(&mut Data) -> Result<T>) -> Result<T> {
        let _lock = jsonfile::lock(&self.dir, LOCK)?;
        let mut data = self.read()?;
        let out = change(&mut data)?;
        data.version = VERSION;
        let path = self.file();
        let bytes = serde_json::to_vec_pretty(&data)
            .map_err(|e| Error::Corrupt { path: path.clone(), message: e.to_string() })?;
        jsonfile::replace(&path, &bytes)?;
        *self.data.write() = data;
        *self.seen.lock() = self.stamp().unwrap_or((-1, 0));
        Ok(out)
    }

    /// Whether any user or service account exists.
    pub fn is_empty(&self) -> bool {
        let d = self.data.read();
        d.users.is_empty() && d.service_accounts.is_empty()
    }

    /// Adds a user. `password` is required for local users (`origin` `local` or `config`).
    pub fn add_user(&self, name: &str, password: Option<&str>, role: Role, origin: &str, now: i64) -> Result<User> {
        check_name("name", name)?;
        let password_hash = password.map(password::hash).transpose()?;
        self.modify(|d| {
            if d.users.iter().any(|u| u.name == name) {
                return Err(Error::Conflict(format!("user {name:?}")));
            }
            let u = User {
                name: name.into(),
                password_hash,
                role,
                tenants: Tenants::Any,
                origin: origin.into(),
                created_at: now,
            };
            d.users.push(u.clone());
            Ok(u)
        })
    }

    /// Adds the user if there is none of that name (the config's bootstrap admin: used once,
    /// so a password changed later in the UI is not reset at every start). True if added.
    pub fn ensure_user(&self, name: &str, password: &str, role: Role, now: i64) -> Result<bool> {
        if self.data.read().users.iter().any(|u| u.name == name) {
            return Ok(false);
        }
        match self.add_user(name, Some(password), role, "config", now) {
            Ok(_) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A user signed in through single sign-on: added on first login, their role set from the
    /// provider's groups at every login (the provider is the source of truth). A local user of
    /// the same name is not taken over.
    pub fn upsert_sso_user(&self, name: &str, role: Role, now: i64) -> Result<()> {
        check_name("name", name)?;
        self.modify(|d| match d.users.iter_mut().find(|u| u.name == name) {
            Some(u) if u.origin == "oidc" => {
                u.role = role;
                Ok(())
            }
            Some(_) => {
                Err(Error::Conflict(format!("a local user named {name:?}; single sign-on may not take it over")))
            }
            None => {
                d.users.push(User {
                    name: name.into(),
                    password_hash: None,
                    role,
                    tenants: Tenants::Any,
                    origin: "oidc".into(),
                    created_at: now,
                });
                Ok(())
            }
        })
    }

    /// Changes a user's role and/or password.
    pub fn update_user(&self, name: &str, role: Option<Role>, password: Option<&str>) -> Result<User> {
        let hash = password.map(password::hash).transpose()?;
        self.modify(|d| {
            let u =
                d.users.iter_mut().find(|u| u.name == name).ok_or_else(|| Error::NotFound(format!("user {name:?}")))?;
            if let Some(r) = role {
                u.role = r;
            }
            if let Some(h) = hash {
                u.password_hash = Some(h);
            }
            let u = u.clone();
            if password.is_some() {
                // A new password ends the user's other sessions.
                d.sessions.retain(|s| s.user != name);
            }
            Ok(u)
        })
    }

    /// Deletes a user with their tokens and sessions.
    pub fn delete_user(&self, name: &str) -> Result<()> {
        self.modify(|d| {
            let before = d.users.len();
            d.users.retain(|u| u.name != name);
            if d.users.len() == before {
                return Err(Error::NotFound(format!("user {name:?}")));
            }
            d.tokens.retain(|t| t.owner != Owner::User(name.into()));
            d.sessions.retain(|s| s.user != name);
            Ok(())
        })
    }

    /// Every user (password hashes included: callers show only what they should).
    pub fn users(&self) -> Vec<User> {
        self.data.read().users.clone()
    }

    /// Adds a service account.
    pub fn add_service_account(
        &self,
        name: &str,
        scopes: Scopes,
        tenants: Tenants,
        now: i64,
    ) -> Result<ServiceAccount> {
        check_name("name", name)?;
        if scopes.is_empty() {
            return Err(Error::config("scopes", "at least one of ingest, read, edit, admin"));
        }
        self.modify(|d| {
            if d.service_accounts.iter().any(|s| s.name == name) {
                return Err(Error::Conflict(format!("service account {name:?}")));
            }
            let s = ServiceAccount { name: name.into(), scopes, tenants, created_at: now };
            d.service_accounts.push(s.clone());
            Ok(s)
        })
    }

    /// Deletes a service account and its tokens.
    pub fn delete_service_account(&self, name: &str) -> Result<()> {
        self.modify(|d| {
            let before = d.service_accounts.len();
            d.service_accounts.retain(|s| s.name != name);
            if d.service_accounts.len() == before {
                return Err(Error::NotFound(format!("service account {name:?}")));
            }
            d.tokens.retain(|t| t.owner != Owner::ServiceAccount(name.into()));
            Ok(())
        })
    }

    /// Every service account.
    pub fn service_accounts(&self) -> Vec<ServiceAccount> {
        self.data.read().service_accounts.clone()
    }

    /// Creates a token for `owner` and returns it with its record; the token itself is shown
    /// this once and never again. `scopes` defaults to the owner's and may not exceed them;
    /// `tenants` binds it (within the owner's tenants, checked at each use).
    pub fn create_token(
        &self,
        owner: Owner,
        name: &str,
        scopes: Option<Scopes>,
        tenants: Tenants,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<(String, Token)> {
        if name.is_empty() || name.len() > 128 {
            return Err(Error::config("name", "1-128 characters"));
        }
        let token = secret::new_token();
        let digest = secret::digest(&token);
        let rec = self.modify(|d| {
            let (owner_scopes, _) = owner_rights(d, &owner)?;
            let scopes = scopes.unwrap_or(owner_scopes);
            if scopes.is_empty() || !owner_scopes.covers(scopes) {
                return Err(Error::config(
                    "scopes",
                    format!("must be some of what {} may do: {owner_scopes:?}", owner.describe()),
                ));
            }
            let t = Token {
                id: secret::new_id(),
                name: name.into(),
                owner: owner.clone(),
                digest,
                scopes,
                tenants,
                created_at: now,
                expires_at,
                last_used_at: None,
            };
            d.tokens.push(t.clone());
            Ok(t)
        })?;
        Ok((token, rec))
    }

    /// Revokes a token by its id.
    pub fn revoke_token(&self, id: &str) -> Result<Token> {
        self.modify(|d| {
            let i = d.tokens.iter().position(|t| t.id == id).ok_or_else(|| Error::NotFound(format!("token {id:?}")))?;
            Ok(d.tokens.remove(i))
        })
    }

    /// Every token (with `last_used_at` as of the last flush, or newer).
    pub fn tokens(&self) -> Vec<Token> {
        let usage = self.usage.lock();
        let mut v = self.data.read().tokens.clone();
        for t in &mut v {
            if let Some(u) = usage.0.get(&t.id) {
                t.last_used_at = Some(*u);
            }
        }
        v
    }

    /// The principal of an API token, if it is valid, unexpired and its owner still exists.
    pub fn check_token(&self, token: &str, now: i64) -> Option<Principal> {
        if !secret::is_token(token) {
            return None;
        }
        self.maybe_refresh(now);
        let digest = secret::digest(token);
        let d = self.data.read();
        let t = d.tokens.iter().find(|t| secret::constant_time_eq(t.digest.as_bytes(), digest.as_bytes()))?;
        if t.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        let (owner_scopes, owner_tenants) = owner_rights(&d, &t.owner).ok()?;
        let tenants = intersect(&owner_tenants, &t.tenants);
        let p = Principal {
            who: Who::Token { id: t.id.clone(), owner: t.owner.describe() },
            scopes: t.scopes.iter().filter(|s| owner_scopes.contains(*s)).collect(),
            tenants,
        };
        drop(d);
        if let Who::Token { id, .. } = &p.who {
            self.usage.lock().0.insert(id.clone(), now);
        }
        Some(p)
    }

    /// Checks a local user's password, with lockout. Runs Argon2 (tens of ms): call it off the
    /// async runtime.
    pub fn check_password(&self, name: &str, password: &str, now: i64) -> Login {
        self.maybe_refresh(now);
        if let Some(until) = self.locked_until(name, now) {
            return Login::LockedOut { until, now_locked: false };
        }
        let user = self.data.read().users.iter().find(|u| u.name == name).cloned();
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        // No password to check (an unknown user, or one who signs in only by SSO): no Argon2
        // either. The caller waits out `typical_check()` instead, so the answer takes as long
        // as a real check without spending the CPU a burst of them would.
        let ok = hash.as_deref().is_some_and(|h| {
            let t0 = std::time::Instant::now();
            let ok = password::verify(password, h);
            let took = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let old = self.typical_ns.load(Ordering::Relaxed);
            self.typical_ns.store(if old == 0 { took } else { old - old / 8 + took / 8 }, Ordering::Relaxed);
            ok
        });
        match (ok, user) {
            (true, Some(u)) => {
                self.failures.lock().remove(name);
                Login::Ok(Principal { who: Who::User(u.name), scopes: u.role.scopes(), tenants: u.tenants })
            }
            _ => self.failed(name, now),
        }
    }

    /// How long a password check takes here (a moving average of real ones; at first, one check
    /// of a random password's hash, measured once).
    pub fn typical_check(&self) -> Duration {
        let mut ns = self.typical_ns.load(Ordering::Relaxed);
        if ns == 0 {
            let t0 = std::time::Instant::now();
            let _ = password::verify("x", password::decoy());
            ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let _ = self.typical_ns.compare_exchange(0, ns, Ordering::Relaxed, Ordering::Relaxed);
        }
        Duration::from_nanos(ns)
    }

    fn locked_until(&self, name: &str, now: i64) -> Option<i64> {
        self.failures.lock().get(name).map(|(_, until)| *until).filter(|u| *u > now)
    }

    fn failed(&self, name: &str, now: i64) -> Login {
        let p = &self.policy;
        let mut f = self.failures.lock();
        let (times, until) = f.entry(name.to_string()).or_default();
        times.retain(|t| now - *t < ms(p.lockout_window));
        times.push(now);
        if p.lockout_attempts > 0 && times.len() >= p.lockout_attempts as usize {
            times.clear();
            *until = now + ms(p.lockout_duration);
            return Login::LockedOut { until: *until, now_locked: true };
        }
        Login::Denied
    }

    /// Starts a session for `user`; returns (session id for the cookie, CSRF token).
    pub fn new_session(&self, user: &str, now: i64) -> Result<(String, String)> {
        let id = secret::new_session_secret();
        let csrf = secret::new_session_secret();
        let (idle, max_age) = (ms(self.policy.session_idle), ms(self.policy.session_max_age));
        let s = Session {
            digest: secret::digest(&id),
            user: user.into(),
            created_at: now,
            last_seen: now,
            csrf: csrf.clone(),
        };
        self.modify(|d| {
            d.sessions.retain(|s| now - s.last_seen < idle && now - s.created_at < max_age);
            d.sessions.push(s);
            Ok(())
        })?;
        Ok((id, csrf))
    }

    /// The session of a cookie's id, if it has not expired and its user still exists.
    pub fn session(&self, id: &str, now: i64) -> Option<SessionInfo> {
        self.maybe_refresh(now);
        let digest = secret::digest(id);
        let d = self.data.read();
        let s = d.sessions.iter().find(|s| secret::constant_time_eq(s.digest.as_bytes(), digest.as_bytes()))?;
        let mut usage = self.usage.lock();
        let last_seen = usage.1.get(&s.digest).copied().unwrap_or(s.last_seen).max(s.last_seen);
        if now - last_seen >= ms(self.policy.session_idle) || now - s.created_at >= ms(self.policy.session_max_age) {
            return None;
        }
        let u = d.users.iter().find(|u| u.name == s.user)?;
        usage.1.insert(s.digest.clone(), now);
        Some(SessionInfo {
            principal: Principal {
                who: Who::User(u.name.clone()),
                scopes: u.role.scopes(),
                tenants: u.tenants.clone(),
            },
            csrf: s.csrf.clone(),
        })
    }

    /// Ends a session (logout).
    pub fn end_session(&self, id: &str) -> Result<()> {
        let digest = secret::digest(id);
        self.modify(|d| {
            d.sessions.retain(|s| s.digest != digest);
            Ok(())
        })
    }

    /// Writes tokens' last use and sessions' last activity, and drops expired sessions.
    pub fn flush_usage(&self, now: i64) -> Result<()> {
        let (tokens, sessions) = std::mem::take(&mut *self.usage.lock());
        let (idle, max_age) = (ms(self.policy.session_idle), ms(self.policy.session_max_age));
        let expired = self.data.read().sessions.iter().any(|s| now - s.created_at >= max_age);
        if tokens.is_empty() && sessions.is_empty() && !expired {
            return Ok(());
        }
        self.modify(|d| {
            for t in &mut d.tokens {
                if let Some(u) = tokens.get(&t.id) {
                    t.last_used_at = Some(t.last_used_at.map_or(*u, |old| old.max(*u)));
                }
            }
            for s in &mut d.sessions {
                if let Some(u) = sessions.get(&s.digest) {
                    s.last_seen = s.last_seen.max(*u);
                }
            }
            d.sessions.retain(|s| now - s.last_seen < idle && now - s.created_at < max_age);
            Ok(())
        })
    }
}

/// What an owner may do and where.
fn owner_rights(d: &Data, owner: &Owner) -> Result<(Scopes, Tenants)> {
    match owner {
        Owner::User(n) => d
            .users
            .iter()
            .find(|u| &u.name == n)
            .map(|u| (u.role.scopes(), u.tenants.clone()))
            .ok_or_else(|| Error::NotFound(format!("user {n:?}"))),
        Owner::ServiceAccount(n) => d
            .service_accounts
            .iter()
            .find(|s| &s.name == n)
            .map(|s| (s.scopes, s.tenants.clone()))
            .ok_or_else(|| Error::NotFound(format!("service account {n:?}"))),
    }
}

/// The tenants both bindings allow.
fn intersect(a: &Tenants, b: &Tenants) -> Tenants {
    match (a, b) {
        (Tenants::Any, x) | (x, Tenants::Any) => x.clone(),
        (Tenants::Only(x), Tenants::Only(y)) => Tenants::Only(x.iter().filter(|t| y.contains(t)).cloned().collect()),
    }
}
