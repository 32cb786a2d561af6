//! Prometheus's web configuration file (`--web.config.file`), as the exporter-toolkit reads it:
//! TLS for the listener, extra response headers, bcrypt-hashed Basic users, a rate limit.
//! <https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md>
//!
//! The same file loads unchanged in Prometheus and here, and [`validate`] refuses what
//! `promtool check web-config` refuses, with the same wording where it has one. Where rustls (the
//! TLS library here) lacks what Go offers (CBC cipher suites, the P-521 curve, TLS 1.0 and 1.1,
//! HTTP/2), the file is refused with the key's path rather than served with a different meaning.
//!
//! The file is read again when it or a file it names changes ([`WebConfigFile::current`]), so
//! rotated certificates and changed users apply without a restart, as in Prometheus. Unlike
//! Prometheus, which answers 500 while the file is broken, the last good version stays in force
//! and the error is logged.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::tls;

/// The parsed file, relative paths resolved against its directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// TLS for the listener; off when no TLS key is set.
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    /// Response headers and HTTP/2.
    #[serde(default)]
    pub http_server_config: Option<HttpServerConfig>,
    /// User name → bcrypt hash (`$2a$`, `$2b$`, `$2y$`). These users have full access.
    #[serde(default)]
    pub basic_auth_users: Option<BTreeMap<String, String>>,
    /// A token bucket over all requests (newer exporter-toolkit versions).
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

/// `tls_server_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// The certificate, inline PEM.
    #[serde(default)]
    pub cert: Option<String>,
    /// The key, inline PEM.
    #[serde(default)]
    pub key: Option<String>,
    /// The client CA, inline PEM.
    #[serde(default)]
    pub client_ca: Option<String>,
    /// The certificate file (PEM, chain allowed).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The key file (PEM).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// `NoClientCert` (default), `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven`, `RequireAndVerifyClientCert`.
    #[serde(default)]
    pub client_auth_type: Option<String>,
    /// The CA that signs client certificates.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Client certificate SANs allowed (not supported here; refused).
    #[serde(default)]
    pub client_allowed_sans: Option<Vec<String>>,
    /// `TLS10` ... `TLS13`; default `TLS12`.
    #[serde(default)]
    pub min_version: Option<String>,
    /// Default `TLS13`.
    #[serde(default)]
    pub max_version: Option<String>,
    /// TLS 1.2 cipher suites by Go's names; empty: rustls's defaults.
    #[serde(default)]
    pub cipher_suites: Option<Vec<String>>,
    /// Whether the server's order of `cipher_suites` wins (default true).
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
    /// Key exchange groups by Go's names, in order.
    #[serde(default)]
    pub curve_preferences: Option<Vec<String>>,
}

impl TlsServerConfig {
    /// Whether any TLS key is set (the exporter-toolkit's `IsEnabled`).
    pub fn is_enabled(&self) -> bool {
        let path = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| !p.as_os_str().is_empty());
        let text = |t: &Option<String>| t.as_ref().is_some_and(|t| !t.is_empty());
        path(&self.cert_file)
            || path(&self.key_file)
            || path(&self.client_ca_file)
            || text(&self.cert)
            || text(&self.key)
            || text(&self.client_ca)
            || text(&self.client_auth_type)
    }

    /// The files it names, to notice when one changes.
    fn files(&self) -> impl Iterator<Item = &Path> {
        [&self.cert_file, &self.key_file, &self.client_ca_file].into_iter().flatten().map(PathBuf::as_path)
    }
}

/// `http_server_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// HTTP/2 over TLS (default true). Telltale serves HTTP/1.1 only; `true` is accepted and
    /// means nothing, as over plain HTTP in Prometheus.
    #[serde(default)]
    pub http2: Option<bool>,
    /// Headers added to every response; only the five the exporter-toolkit allows.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// `rate_limit`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Time between two requests (Go duration, `0` turns the limit off).
    #[serde(default)]
    pub interval: Option<String>,
    /// Requests allowed at once.
    #[serde(default)]
    pub burst: Option<u32>,
}

/// The exporter-toolkit's `extraHTTPHeaders`: the headers a web config may set, and the values
/// allowed where the set is closed.
const HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Used for a user name the file does not know, so an unknown user costs as much time as a
/// wrong password (the exporter-toolkit's hash of "fakepassword").
const FAKE_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

impl WebConfig {
    /// Parses the file's text; relative paths are taken from `dir` (the file's directory).
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let mut c: WebConfig = match serde_path_to_error::deserialize(de) {
            Ok(c) => c,
            // An empty file is an empty config, as in Go.
            Err(_) if text.trim().is_empty() => WebConfig::default(),
            Err(e) => return Err(Error::config(e.path().to_string(), e.inner().to_string())),
        };
        if let Some(t) = &mut c.tls_server_config {
            for p in [&mut t.cert_file, &mut t.key_file, &mut t.client_ca_file].into_iter().flatten() {
                if !p.as_os_str().is_empty() && p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        Ok(c)
    }

    /// The headers to add to every response.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.http_server_config.iter().flat_map(|h| h.headers.iter().flatten()).map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The Basic users, if any.
    pub fn users(&self) -> Option<&BTreeMap<String, String>> {
        self.basic_auth_users.as_ref().filter(|u| !u.is_empty())
    }

    /// TLS settings when TLS is on.
    pub fn tls(&self) -> Option<&TlsServerConfig> {
        self.tls_server_config.as_ref().filter(|t| t.is_enabled())
    }

    /// The rate limit as (seconds between requests, burst), when on.
    pub fn rate_limit(&self) -> Result<Option<(f64, u32)>> {
        let Some(r) = &self.rate_limit else { return Ok(None) };
        let interval = match r.interval.as_deref() {
            None | Some("0") | Some("") => return Ok(None),
            Some(s) => telltale_model::units::parse_duration(s)
                .map_err(|e| Error::config("rate_limit.interval", e.to_string()))?,
        };
        Ok((!interval.is_zero()).then(|| (interval.as_secs_f64(), r.burst.unwrap_or(0))))
    }
}

/// Checks a web config file as `promtool check web-config` does: the YAML, the headers, every
/// user's bcrypt hash, and (when TLS is on) that the certificate and key load and match and the
/// TLS settings are ones the server can honour. Returns the config on success.
pub fn validate(path: &Path) -> Result<WebConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let c = WebConfig::parse(&text, dir)?;
    check(&c)?;
    Ok(c)
}

fn check(c: &WebConfig) -> Result<()> {
    for (k, v) in c.headers() {
        let Some((_, allowed)) = HEADERS.iter().find(|(name, _)| *name == k) else {
            return Err(Error::config(
                format!("http_server_config.headers.{k}"),
                format!("HTTP header {k:?} can not be configured"),
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&v) {
            return Err(Error::config(
                format!("http_server_config.headers.{k}"),
                format!("invalid value for {k}. Expected one of: {allowed:?}, but got: {v:?}"),
            ));
        }
    }
    for (user, hash) in c.users().into_iter().flatten() {
        hash.parse::<bcrypt::HashParts>().map_err(|e| {
            Error::config(format!("basic_auth_users.{user}"), format!("not a bcrypt hash ($2a$, $2b$, $2y$): {e}"))
        })?;
    }
    c.rate_limit()?;
    if let Some(t) = c.tls() {
        tls::server_config(t)?;
    }
    Ok(())
}

/// A file's identity and version, to notice changes cheaply (one `stat` per file).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<(u64, i64, i64, u64)>>);

impl Stamp {
    fn of<'a>(paths: impl Iterator<Item = &'a Path>) -> Stamp {
        Stamp(
            paths
                .map(|p| {
                    rustix::fs::stat(p).ok().map(|s| (s.st_ino, s.st_mtime, s.st_mtime_nsec as i64, s.st_size as u64))
                })
                .collect(),
        )
    }
}

/// The config in force, with what was built from it.
#[derive(Debug)]
pub struct Loaded {
    /// The file's contents.
    pub config: WebConfig,
    /// The TLS server config, when TLS is on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A web config file and the version of it in force, read again when it or a file it names
/// changes. Cheap to ask on every connection and request.
#[derive(Debug)]
pub struct WebConfigFile {
    path: PathBuf,
    state: Mutex<(Stamp, Arc<Loaded>)>,
    bcrypt: BcryptCache,
}

impl WebConfigFile {
    /// Loads and checks the file; an error here is a startup error.
    pub fn open(path: &Path) -> Result<WebConfigFile> {
        let loaded = load(path)?;
        let stamp = stamp(path, &loaded.config);
        Ok(WebConfigFile {
            path: path.to_path_buf(),
            state: Mutex::new((stamp, Arc::new(loaded))),
            bcrypt: BcryptCache::default(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version in force, re-read first if the file or a certificate changed. A changed
    /// file that fails to load leaves the last good version in force (and is logged once).
    pub fn current(&self) -> Arc<Loaded> {
        let mut st = self.state.lock();
        let now = stamp(&self.path, &st.1.config);
        if now != st.0 {
            match load(&self.path) {
                Ok(l) => {
                    tracing::info!(path = %self.path.display(), "web config reloaded");
                    st.1 = Arc::new(l);
                    st.0 = stamp(&self.path, &st.1.config);
                }
                Err(e) => {
                    tracing::error!(path = %self.path.display(), error = %e, "web config not reloaded; the last good version stays in force");
                    st.0 = now;
                }
            }
        }
        st.1.clone()
    }

    /// Whether `user` with `password` is one of the file's Basic users. Runs bcrypt (tens of
    /// milliseconds) unless the same check succeeded or failed before: call it off the async
    /// runtime when [`WebConfigFile::cached_basic`] has no answer.
    pub fn verify_basic(&self, loaded: &Loaded, user: &str, password: &str) -> bool {
        let users = loaded.config.users();
        let hash = users.and_then(|u| u.get(user));
        self.bcrypt.verify(user, hash.map_or(FAKE_HASH, String::as_str), password) && hash.is_some()
    }

    /// The cached answer of [`WebConfigFile::verify_basic`], if there is one.
    pub fn cached_basic(&self, loaded: &Loaded, user: &str, password: &str) -> Option<bool> {
        let hash = loaded.config.users().and_then(|u| u.get(user));
        self.bcrypt.cached(user, hash.map_or(FAKE_HASH, String::as_str), password).map(|ok| ok && hash.is_some())
    }
}

fn load(path: &Path) -> Result<Loaded> {
    let config = validate(path)?;
    let tls = config.tls().map(tls::server_config).transpose()?;
    Ok(Loaded { config, tls })
}

fn stamp(path: &Path, c: &WebConfig) -> Stamp {
    Stamp::of(std::iter::once(path).chain(c.tls_server_config.iter().flat_map(TlsServerConfig::files)))
}

/// Remembers bcrypt outcomes by a digest of (user, hash, password), as the exporter-toolkit
/// does, so a client sending the same credentials on every request pays bcrypt once. Bounded:
/// emptied when it reaches 10,000 entries.
#[derive(Debug, Default)]
struct BcryptCache(Mutex<HashMap<String, bool>>);

impl BcryptCache {
    fn key(user: &str, hash: &str, password: &str) -> String {
        crate::secret::digest(&format!("{}:{user}\0{hash}\0{password}", user.len()))
    }

    fn cached(&self, user: &str, hash: &str, password: &str) -> Option<bool> {
        self.0.lock().get(&Self::key(user, hash, password)).copied()
    }

    fn verify(&self, user: &str, hash: &str, password: &str) -> bool {
        let key = Self::key(user, hash, password);
        if let Some(ok) = self.0.lock().get(&key) {
            return *ok;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        let mut m = self.0.lock();
        if m.len() >= 10_000 {
            m.clear();
        }
        m.insert(key, ok);
        ok
    }
}
