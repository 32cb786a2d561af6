//! The config file's `auth:` section.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Policy;

/// `auth:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Require a credential (token, session, web config user) on every route but the public
    /// ones. Off by default: the server then listens on loopback only.
    pub enabled: bool,
    /// A first admin user, created at start when no user of that name exists (so a password
    /// changed later in the UI is not reset at the next start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminOptions>,
    /// Login sessions.
    pub sessions: SessionOptions,
    /// Locking a user out after failed logins.
    pub lockout: LockoutOptions,
    /// The tenant of requests without `X-Scope-OrgID`.
    pub default_tenant: String,
    /// Single sign-on through an OpenID Connect provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<crate::oidc::OidcOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            enabled: false,
            admin: None,
            sessions: SessionOptions::default(),
            lockout: LockoutOptions::default(),
            default_tenant: "default".into(),
            oidc: None,
        }
    }
}

/// `auth.admin`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminOptions {
    /// The user name.
    pub user: String,
    /// The password, or `${ENV_VAR}` naming the environment variable holding it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A file holding the password (its first line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl Default for AdminOptions {
    fn default() -> Self {
        AdminOptions { user: "admin".into(), password: None, password_file: None }
    }
}

impl AdminOptions {
    /// The password, from the file or the environment map; an error names the key.
    pub fn resolve_password(&self, env: &BTreeMap<String, String>) -> Result<String> {
        match (&self.password, &self.password_file) {
            (Some(_), Some(_)) | (None, None) => {
                Err(Error::config("auth.admin", "exactly one of password and password_file"))
            }
            (Some(p), None) => match p.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                Some(var) => env
                    .get(var)
                    .cloned()
                    .ok_or_else(|| Error::config("auth.admin.password", format!("the environment has no {var}"))),
                None => Ok(p.clone()),
            },
            (None, Some(f)) => std::fs::read_to_string(f)
                .map(|s| s.lines().next().unwrap_or("").to_string())
                .map_err(|e| Error::config("auth.admin.password_file", format!("cannot read {}: {e}", f.display()))),
        }
    }
}

/// `auth.sessions`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionOptions {
    /// A session unused this long ends (`"24h"`).
    #[serde(with = "telltale_model::units::duration")]
    pub idle_timeout: Duration,
    /// A session ends this long after login, used or not (`"30d"`).
    #[serde(with = "telltale_model::units::duration")]
    pub max_age: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        let p = Policy::default();
        SessionOptions { idle_timeout: p.session_idle, max_age: p.session_max_age }
    }
}

/// `auth.lockout`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutOptions {
    /// Failed logins within `window` that lock a user out (0: never).
    pub attempts: u32,
    /// The window failures are counted in (`"15m"`).
    #[serde(with = "telltale_model::units::duration")]
    pub window: Duration,
    /// How long the lockout lasts (`"15m"`).
    #[serde(with = "telltale_model::units::duration")]
    pub duration: Duration,
}

impl Default for LockoutOptions {
    fn default() -> Self {
        let p = Policy::default();
        LockoutOptions { attempts: p.lockout_attempts, window: p.lockout_window, duration: p.lockout_duration }
    }
}

impl Options {
    /// The store's policy from these settings.
    pub fn policy(&self) -> Policy {
        Policy {
            session_idle: self.sessions.idle_timeout,
            session_max_age: self.sessions.max_age,
            lockout_attempts: self.lockout.attempts,
            lockout_window: self.lockout.window,
            lockout_duration: self.lockout.duration,
        }
    }

    /// Checks what serde cannot; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.default_tenant.is_empty() {
            return Err(Error::config("auth.default_tenant", "must not be empty"));
        }
        if let Some(a) = &self.admin {
            crate::store::check_name("auth.admin.user", &a.user)?;
            if a.password.is_some() == a.password_file.is_some() {
                return Err(Error::config("auth.admin", "exactly one of password and password_file"));
            }
        }
        if let Some(o) = &self.oidc {
            if o.issuer_url.is_empty() || o.client_id.is_empty() {
                return Err(Error::config("auth.oidc", "issuer_url and client_id are required"));
            }
            if o.client_secret.is_some() && o.client_secret_file.is_some() {
                return Err(Error::config("auth.oidc", "at most one of client_secret and client_secret_file"));
            }
        }
        if self.sessions.idle_timeout.is_zero() || self.sessions.max_age.is_zero() {
            return Err(Error::config("auth.sessions", "idle_timeout and max_age must be positive"));
        }
        Ok(())
    }
}
