//! Who may do what: the scopes every route needs (`ingest`, `read`, `edit`, `admin`) and the
//! roles that grant them, API tokens and service accounts, local users with Argon2id passwords
//! and their sessions, and Prometheus's web config file (TLS for the listener, bcrypt Basic
//! users, response headers).
//!
//! Inputs: credentials as the HTTP layer found them (a bearer token, a Basic pair, a session
//! cookie). Outputs: a [`Principal`] (who, which scopes, which tenants) or nothing. No HTTP
//! here: the api crate maps routes to scopes (its one route table) and answers 401/403.
//!
//! The one design decision to know: nothing secret is stored in the clear. Tokens and session
//! ids are random and kept as SHA-256 digests; passwords as Argon2id; web-config users as the
//! bcrypt hashes the file holds. Credentials Telltale must send on (a receiver's webhook URL,
//! an SMTP password) are sealed with AES-256-GCM under a key file ([`SealedStore`]). Checking a password is slow on purpose, so callers run
//! [`AuthStore::check_password`] and [`WebConfigFile::verify_basic`] off the async runtime and
//! both remember nothing but the outcome.
#![warn(missing_docs)]

mod error;
mod jsonfile;
pub mod oidc;
mod options;
pub mod password;
pub mod san;
mod scope;
pub mod sealed;
pub mod secret;
mod store;
pub mod tls;
pub mod webconfig;

pub use error::{Error, Result};
pub use options::{AdminOptions, LockoutOptions, Options, SessionOptions};
pub use scope::{Principal, Role, Scope, Scopes, Tenants, Who};
pub use sealed::{Rotation, SealedStore};
pub use store::{check_name, AuthStore, Login, Owner, Policy, ServiceAccount, SessionInfo, Token, User};
pub use telltale_model::base64;
pub use webconfig::{WebConfig, WebConfigFile};
