//! Scopes, roles and the principal a request acts as.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a route needs. Every route of the server takes exactly one, from the api crate's
/// route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Write data: metrics, logs, alerts sent by a Prometheus.
    Ingest,
    /// Query data and read configuration, rules, alerts, dashboards.
    Read,
    /// Change what users share: dashboards, silences.
    Edit,
    /// Everything else: users, tokens, reload, deleting data, the audit log.
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 4] = [Scope::Ingest, Scope::Read, Scope::Edit, Scope::Admin];

    /// The scope's name in config, API and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Edit => "edit",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes. Serialized as a list of names.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// No scope at all.
    pub const NONE: Scopes = Scopes(0);
    /// Every scope.
    pub const ALL: Scopes = Scopes(0b1111);

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in the set.
    pub fn covers(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The scopes in order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Scope>::deserialize(d)?.into_iter().collect())
    }
}

/// What a user may do, as Grafana names it: viewer = read, editor = read + edit, admin = all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything the tenant holds.
    Viewer,
    /// Reads, and edits dashboards and silences.
    Editor,
    /// Everything.
    Admin,
}

impl Role {
    /// The scopes the role grants.
    pub fn scopes(self) -> Scopes {
        match self {
            Role::Viewer => [Scope::Read].into_iter().collect(),
            Role::Editor => [Scope::Read, Scope::Edit].into_iter().collect(),
            Role::Admin => Scopes::ALL,
        }
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Parses `viewer`, `editor` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Which tenants a credential may act in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Tenants {
    /// Any tenant the request names (`X-Scope-OrgID`), the default tenant when it names none.
    #[default]
    Any,
    /// Only these; a request naming none acts in the first.
    Only(Vec<String>),
}

/// Who a request acts as, once its credential was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What kind of credential, and its name (for the audit log).
    pub who: Who,
    /// What it may do.
    pub scopes: Scopes,
    /// Where it may do it.
    pub tenants: Tenants,
}

/// The credential behind a [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Nobody: authentication is off, every request may do everything.
    Anonymous,
    /// A local or single-sign-on user, by a session or by Basic with their password.
    User(String),
    /// A user of the web config file's `basic_auth_users` (full access, as in Prometheus).
    WebConfigUser(String),
    /// An API token, by its id and its owner's name.
    Token {
        /// The token's id (not the secret).
        id: String,
        /// The user or service account it belongs to.
        owner: String,
    },
}

impl Principal {
    /// The principal of every request while authentication is off.
    pub fn anonymous() -> Principal {
        Principal { who: Who::Anonymous, scopes: Scopes::ALL, tenants: Tenants::Any }
    }

    /// A one-word description for logs and audit events: `user:alice`, `token:abc123 (grafana)`.
    pub fn describe(&self) -> String {
        match &self.who {
            Who::Anonymous => "anonymous".into(),
            Who::User(n) => format!("user:{n}"),
            Who::WebConfigUser(n) => format!("web-config-user:{n}"),
            Who::Token { id, owner } => format!("token:{id} ({owner})"),
        }
    }

    /// The tenant a request naming `asked` (its `X-Scope-OrgID`, if any) acts in, or `None`
    /// when the credential is not bound to that tenant.
    pub fn tenant<'a>(&'a self, asked: Option<&'a str>, default: &'a str) -> Option<&'a str> {
        match (&self.tenants, asked) {
            (Tenants::Any, a) => Some(a.unwrap_or(default)),
            (Tenants::Only(list), None) => list.first().map(String::as_str),
            (Tenants::Only(list), Some(a)) => list.iter().any(|t| t == a).then_some(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_their_names_say() {
        assert!(Role::Viewer.scopes().contains(Scope::Read));
        assert!(!Role::Viewer.scopes().contains(Scope::Edit));
        assert!(Role::Editor.scopes().covers([Scope::Read, Scope::Edit].into_iter().collect()));
        assert!(!Role::Editor.scopes().contains(Scope::Admin));
        assert!(!Role::Editor.scopes().contains(Scope::Ingest));
        assert_eq!(Role::Admin.scopes(), Scopes::ALL);
        let s: Scopes = serde_json::from_str(r#"["read","ingest"]"#).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["ingest","read"]"#);
    }

    #[test]
    fn tenant_bindings() {
        let mut p = Principal::anonymous();
        assert_eq!(p.tenant(None, "default"), Some("default"));
        assert_eq!(p.tenant(Some("acme"), "default"), Some("acme"));
        p.tenants = Tenants::Only(vec!["acme".into(), "beta".into()]);
        assert_eq!(p.tenant(None, "default"), Some("acme"));
        assert_eq!(p.tenant(Some("beta"), "default"), Some("beta"));
        assert_eq!(p.tenant(Some("gamma"), "default"), None);
    }
}
