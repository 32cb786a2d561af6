//! The YAML configuration: its sections, defaults, and the one loader used by `serve`,
//! `check config` and reload.
//!
//! Precedence: file < environment (`TELLTALE_*`) < command-line flags. The loader takes the
//! environment as a map so tests control it. Unknown keys are errors naming the key's path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use telltale_model::units;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// The HTTP listener and request limits.
    pub(crate) server: ServerConfig,
    /// Where and how data is kept.
    pub(crate) storage: StorageConfig,
    /// Per-request limits of every write path (labels per series, label lengths, series and
    /// samples per request). Reloadable.
    #[serde(skip_serializing)]
    pub(crate) limits: telltale_ingest::Limits,
    /// How OTLP metrics become Prometheus series (resource attribute promotion, name
    /// translation, delta temporality). Reloadable.
    pub(crate) otlp: telltale_ingest::otlp::OtlpOptions,
    /// PromQL's lookback and limits. Reloadable.
    pub(crate) query: QueryConfig,
    /// Limits of the dashboards API (`/api/v1/dashboards`). Changes need a restart.
    pub(crate) dashboards: telltale_dashboards::Options,
    /// Defaults for scraping (Prometheus's `global:`: scrape_interval, scrape_timeout). Reloadable.
    pub(crate) global: telltale_collect::scrape::GlobalConfig,
    /// Jobs to scrape, in Prometheus's schema. Reloadable.
    pub(crate) scrape_configs: Vec<telltale_collect::scrape::ScrapeConfig>,
    /// Files (or `*` patterns) holding more `scrape_configs`, relative to this file, as
    /// Prometheus's `scrape_config_files`. Re-read on reload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) scrape_config_files: Vec<String>,
    /// The built-in host collectors (node_exporter's metrics). Changes need a restart.
    pub(crate) collectors: telltale_collect::host::Options,
    /// `telltale agent`: where and how it ships (ignored by `telltale serve`).
    pub(crate) agent: telltale_collect::agent::Options,
    /// Prometheus rule files (paths or globs, relative to this file). Reloadable.
    pub(crate) rule_files: Vec<String>,
    /// How rules are evaluated, and the built-in rule pack. Reloadable.
    pub(crate) rules: telltale_alerting::RulesOptions,
    /// The notification pipeline: an Alertmanager configuration (`route`, `receivers`,
    /// `inhibit_rules`, `templates`, `global`), as in `alertmanager.yml`. Reloadable.
    #[serde(skip_serializing)]
    pub(crate) alerting: telltale_alerting::am::config::AlertmanagerConfig,
    /// Log intake and LogQL: limits, rates, query limits (reloadable), syslog listeners and
    /// tailed files (restart).
    pub(crate) logs: crate::logs::LogsConfig,
    /// Trace intake limits, the RED metrics made from spans, the OTLP/gRPC listener.
    pub(crate) traces: crate::traces::TracesConfig,
    /// Authentication: on or off, the bootstrap admin, sessions, lockout, the default tenant.
    /// Changes need a restart (users and tokens change through the API and CLI at any time).
    pub(crate) auth: telltale_auth::Options,
    /// Where the key that seals stored credentials is. Changes need a restart.
    pub(crate) secrets: SecretsConfig,
}

/// `secrets:`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SecretsConfig {
    /// The key file that seals credentials entered through the API or UI (receivers' webhook
    /// URLs, SMTP passwords), relative to this file; made at first start if missing. Default:
    /// `<data_dir>/secrets/key`. Keep it apart from the data directory (and its backups) so a
    /// copy of the data alone does not open them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_file: Option<PathBuf>,
}

impl Config {
    /// The key file in force: `secrets.key_file`, or the default in the data directory.
    pub(crate) fn key_file(&self) -> PathBuf {
        self.secrets.key_file.clone().unwrap_or_else(|| self.storage.data_dir.join("secrets").join("key"))
    }
}

/// `query:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct QueryConfig {
    /// How far back an instant selector looks for a sample (Prometheus's `--query.lookback-delta`).
    #[serde(with = "units::duration")]
    pub(crate) lookback_delta: Duration,
    /// Longest a query may run; a request's `timeout=` can only shorten it ("0s": no limit).
    #[serde(with = "units::duration")]
    pub(crate) timeout: Duration,
    /// Most samples one query may hold in memory (Prometheus's `--query.max-samples`; 0: no limit).
    pub(crate) max_samples: usize,
    /// Most series one query may select from storage (0: no limit).
    pub(crate) max_series: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        let e = telltale_promql::EngineOptions::default();
        Self {
            lookback_delta: e.lookback_delta,
            timeout: e.timeout,
            max_samples: e.max_samples,
            max_series: e.max_series,
        }
    }
}

impl QueryConfig {
    /// The engine options these settings give.
    pub(crate) fn engine_options(&self) -> telltale_promql::EngineOptions {
        telltale_promql::EngineOptions {
            lookback_delta: self.lookback_delta,
            timeout: self.timeout,
            max_samples: self.max_samples,
            max_series: self.max_series,
            ..Default::default()
        }
    }
}

/// `server:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerConfig {
    /// Address to listen on, `host:port` or `:port` (all interfaces). Env `TELLTALE_LISTEN`.
    pub(crate) listen: String,
    /// Largest request body, before and after decompression (`"64MiB"`). Env `TELLTALE_MAX_BODY_SIZE`.
    #[serde(with = "units::size")]
    pub(crate) max_body_size: u64,
    /// How often Telltale writes its own metrics into its store (`"0s"` turns it off).
    #[serde(with = "units::duration")]
    pub(crate) self_scrape_interval: Duration,
    /// The URL people reach Telltale at, for links in alerts and notifications (empty:
    /// `http://` + the listen address).
    pub(crate) external_url: String,
    /// Prometheus's web config file (TLS, Basic users, headers), relative to this file. Flag
    /// `--web.config.file`. Changes to the file apply without a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) web_config_file: Option<PathBuf>,
    /// Listen beyond loopback without any authentication (the network in front is trusted).
    /// Flag `--insecure-no-auth`.
    pub(crate) insecure_no_auth: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7070".into(),
            max_body_size: 64 << 20,
            self_scrape_interval: Duration::from_secs(15),
            external_url: String::new(),
            web_config_file: None,
            insecure_no_auth: false,
        }
    }
}

/// `storage:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageConfig {
    /// The data directory; everything Telltale keeps lives under it. Env `TELLTALE_DATA_DIR`.
    pub(crate) data_dir: PathBuf,
    /// The metrics engine: retention, out-of-order window, block duration, WAL (kept in
    /// `DATA_DIR/metrics`). Changes need a restart.
    pub(crate) tsdb: telltale_tsdb::Options,
    /// How often the engine's upkeep runs (cut blocks, compact, retention, WAL truncation).
    #[serde(with = "units::duration")]
    pub(crate) maintenance_interval: Duration,
    /// The log store: retention (time, size, per stream), head size, blocks, compression,
    /// compaction, WAL (kept in `DATA_DIR/logs`). Changes need a restart.
    pub(crate) logs: telltale_logstore::Options,
    /// The trace store: retention (time, size), head size, blocks, compression, compaction,
    /// WAL (kept in `DATA_DIR/traces`). Changes need a restart.
    pub(crate) traces: telltale_tracestore::Options,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./telltale-data"),
            tsdb: telltale_tsdb::Options::default(),
            maintenance_interval: Duration::from_secs(60),
            logs: telltale_logstore::Options::default(),
            traces: telltale_tracestore::Options::default(),
        }
    }
}

/// Values given on the command line; `None` keeps the file's or the environment's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// `--listen`
    pub(crate) listen: Option<String>,
    /// `--data-dir`
    pub(crate) data_dir: Option<PathBuf>,
    /// `--web.config.file`
    pub(crate) web_config_file: Option<PathBuf>,
    /// `--insecure-no-auth`
    pub(crate) insecure_no_auth: bool,
}

/// Why a configuration was refused, naming the file or variable and the key path.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Bad YAML, an unknown key or a bad value; `key` is the path (`server.listen`).
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// The file name or the environment variable.
        origin: String,
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(origin: &str, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { origin: origin.to_string(), key: key.to_string(), message: message.into() }
}

/// Parses YAML `text` (from `origin`, for messages). An empty document is all defaults.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let blank = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    });
    if blank {
        return Ok(Config::default());
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        // A syntax error has no known key: `server.?` means "somewhere in server".
        let key = key.trim_end_matches(".?").trim_end_matches('?').to_string();
        let key = if key.is_empty() || key == "." { "(top level)".to_string() } else { key };
        invalid(origin, &key, tidy_message(&key, &e.into_inner().to_string()))
    })?;
    validate(&config, origin)?;
    Ok(config)
}

/// The YAML library prefixes its own path (`server: `) and names our Rust types; the key
/// path is already in front, so drop the one and say "a mapping" for the other.
fn tidy_message(key: &str, message: &str) -> String {
    let mut m = message;
    let mut prefix = String::new();
    for part in key.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(part);
        if let Some(rest) = message.strip_prefix(&format!("{prefix}: ")) {
            m = rest;
        }
    }
    let mut out = m.to_string();
    if let Some(i) = out.find("expected struct ") {
        let end = out[i + 16..].find(' ').map_or(out.len(), |j| i + 16 + j);
        out.replace_range(i..end, "expected a mapping");
    }
    out
}

/// Loads the file (if any), then applies `env` and `flags`, then validates.
pub(crate) fn load(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
    flags: &Overrides,
) -> Result<Config, ConfigError> {
    let mut config = match file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            let origin = path.display().to_string();
            let mut c = parse(&text, &origin)?;
            let base = path.parent().unwrap_or(Path::new("."));
            let more = telltale_collect::scrape::config::read_scrape_config_files(
                &c.scrape_config_files,
                base,
                &c.scrape_configs,
            )
            .map_err(|e| match e {
                telltale_collect::Error::Config { key, message } => invalid(&origin, &key, message),
                e => invalid(&origin, "scrape_config_files", e.to_string()),
            })?;
            c.scrape_configs.extend(more);
            // Files the config names are relative to it (as rule_files are).
            let named = [
                c.server.web_config_file.as_mut(),
                c.auth.admin.as_mut().and_then(|a| a.password_file.as_mut()),
                c.secrets.key_file.as_mut(),
            ];
            for w in named.into_iter().flatten().filter(|w| w.is_relative()) {
                *w = base.join(&*w);
            }
            c
        }
        None => Config::default(),
    };
    if let Some(v) = env.get("TELLTALE_LISTEN") {
        config.server.listen = v.clone();
    }
    if let Some(v) = env.get("TELLTALE_DATA_DIR") {
        config.storage.data_dir = PathBuf::from(v);
    }
    if let Some(v) = env.get("TELLTALE_MAX_BODY_SIZE") {
        config.server.max_body_size =
            units::parse_size(v).map_err(|e| invalid("TELLTALE_MAX_BODY_SIZE", "server.max_body_size", e))?;
    }
    if let Some(v) = &flags.listen {
        config.server.listen = v.clone();
    }
    if let Some(v) = &flags.data_dir {
        config.storage.data_dir = v.clone();
    }
    if let Some(v) = &flags.web_config_file {
        config.server.web_config_file = Some(v.clone());
    }
    config.server.insecure_no_auth |= flags.insecure_no_auth;
    config.rules.evaluation_interval = config.global.evaluation_interval;
    validate(&config, "configuration")?;
    // Once the data directory is known: routes may name the receivers stored there.
    let origin = file.map_or_else(|| "configuration".to_string(), |p| p.display().to_string());
    check_alerting(&config).map_err(|e| invalid(&origin, "alerting", e))?;
    Ok(config)
}

/// Checks `alerting:`. Routes may name receivers stored through the API (`/api/v1/receivers`),
/// so the names stored in the data directory count as defined (their contents are checked
/// when they are stored, and again when the server opens them).
fn check_alerting(c: &Config) -> Result<(), String> {
    let mut am = c.alerting.clone();
    let stored =
        telltale_auth::SealedStore::names(&c.storage.data_dir.join("secrets"), telltale_api::receivers::PREFIX);
    for name in stored {
        if !am.receivers.iter().any(|r| r.name == name) {
            am.receivers.push(telltale_notify::ReceiverConfig { name, ..Default::default() });
        }
    }
    telltale_alerting::am::Alertmanager::check(&am)
}

fn validate(c: &Config, origin: &str) -> Result<(), ConfigError> {
    listen_addr(&c.server.listen).map_err(|e| invalid(origin, "server.listen", e))?;
    if c.server.max_body_size == 0 {
        return Err(invalid(origin, "server.max_body_size", "must be greater than zero"));
    }
    c.otlp.validate().map_err(|e| invalid(origin, "otlp", e.to_string()))?;
    if c.query.lookback_delta.is_zero() {
        return Err(invalid(origin, "query.lookback_delta", "must be greater than zero"));
    }
    if c.storage.maintenance_interval.is_zero() {
        return Err(invalid(origin, "storage.maintenance_interval", "must be greater than zero"));
    }
    if c.global.evaluation_interval.is_zero() {
        return Err(invalid(origin, "global.evaluation_interval", "must be greater than zero"));
    }
    telltale_alerting::builtin::validate(&c.rules.builtin).map_err(|e| invalid(origin, "rules.builtin.disabled", e))?;
    telltale_alerting::builtin::validate_traces(&c.rules.traces)
        .map_err(|e| invalid(origin, "rules.traces.disabled", e))?;
    let url = &c.server.external_url;
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(origin, "server.external_url", "must start with http:// or https://"));
    }
    if c.storage.data_dir.as_os_str().is_empty() {
        return Err(invalid(origin, "storage.data_dir", "must not be empty"));
    }
    let collect_err = |e: telltale_collect::Error| match e {
        telltale_collect::Error::Config { key, message } => invalid(origin, &key, message),
        e => invalid(origin, "(top level)", e.to_string()),
    };
    c.collectors.validate().map_err(collect_err)?;
    telltale_collect::scrape::config::validate(&c.global, &c.scrape_configs).map_err(collect_err)?;
    c.agent.validate().map_err(collect_err)?;
    c.storage.logs.validate().map_err(|e| invalid(origin, "storage.logs", e.to_string()))?;
    c.logs.validate().map_err(|(key, e)| invalid(origin, &key, e))?;
    c.storage.traces.validate().map_err(|e| invalid(origin, "storage.traces", e.to_string()))?;
    c.traces.validate().map_err(|(key, e)| invalid(origin, &key, e))?;
    c.auth.validate().map_err(|e| match e {
        telltale_auth::Error::Config { key, message } => invalid(origin, &key, message),
        e => invalid(origin, "auth", e.to_string()),
    })?;
    if let Some(w) = &c.server.web_config_file {
        telltale_auth::webconfig::validate(w).map_err(|e| invalid(origin, "server.web_config_file", e.to_string()))?;
    }
    Ok(())
}

/// `host:port`, or `:port` for every interface, as Prometheus's `--web.listen-address`.
pub(crate) fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') { format!("0.0.0.0{s}") } else { s.to_string() };
    let full = if let Some(rest) = full.strip_prefix("localhost:") { format!("127.0.0.1:{rest}") } else { full };
    full.parse().map_err(|_| format!("{s:?} is not an address like 127.0.0.1:7070 or :7070"))
}

/// Dotted paths of every leaf value that differs between `a` and `b`.
pub(crate) fn changed_keys(a: &Config, b: &Config) -> Vec<String> {
    fn walk(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                let null = serde_json::Value::Null;
                for k in keys {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&path, x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), out);
                }
            }
            _ if a != b => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let (Ok(x), Ok(y)) = (serde_json::to_value(a), serde_json::to_value(b)) {
        walk("", &x, &y, &mut out);
    }
    // Sections from other crates that do not serialize are compared whole.
    if a.limits != b.limits {
        out.push("limits".to_string());
    }
    if a.alerting != b.alerting {
        out.push("alerting".to_string());
    }
    out.sort();
    out
}

/// The configuration as YAML for `/api/v1/status/config`, with every secret replaced by
/// `<secret>` (as Prometheus shows its `Secret` fields).
pub(crate) fn redacted_yaml(c: &Config) -> String {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    redact(&mut v, "");
    serde_yaml_ng::to_string(&v).unwrap_or_default()
}

/// Whether the key at dotted `path` holds a secret. By name, so sections added later
/// (receivers with passwords, tokens, webhook URLs) are covered without listing each field:
/// Alertmanager's secret fields are all named like these.
fn is_secret(path: &str, key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    const NAMES: &[&str] =
        &["password", "secret", "token", "credentials", "api_key", "apikey", "webhook_url", "api_url"];
    NAMES.iter().any(|n| k.contains(n))
        || (k.ends_with("_key") && !k.ends_with("sort_key"))
        || (k == "url" && path.contains("receivers"))
        || k == "authorization"
}

fn redact(v: &mut serde_json::Value, path: &str) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                let secret = is_secret(path, k) && !k.ends_with("_file");
                match child {
                    // A secret's value goes; a section named like one (`authorization:`) keeps
                    // its structure and loses its secret fields.
                    serde_json::Value::String(v) if secret && !v.is_empty() => *v = "<secret>".into(),
                    serde_json::Value::Number(_) if secret => *child = serde_json::Value::String("<secret>".into()),
                    _ => redact(child, &p),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact(x, path)),
        // `https://user:password@host/` keeps the user and hides the password.
        serde_json::Value::String(s) => {
            if let Some((scheme, rest)) = s.split_once("://") {
                if let Some((userinfo, host)) = rest.split_once('@') {
                    if let Some((user, _)) = userinfo.split_once(':') {
                        if !host.contains('@') {
                            *s = format!("{scheme}://{user}:<secret>@{host}");
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Keys a reload applies without a restart.
pub(crate) fn is_live(key: &str) -> bool {
    key == "server.max_body_size"
        || key == "limits"
        || key.starts_with("otlp")
        || key.starts_with("query")
        || key.starts_with("scrape_configs")
        || key.starts_with("scrape_config_files")
        || key.starts_with("global")
        || key.starts_with("rule_files")
        || key == "alerting"
        || (key.starts_with("rules") && key != "rules.resend_delay")
        || key.starts_with("logs.limits")
        || key.starts_with("logs.rates")
        || key.starts_with("logs.query")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn scrape_config_files_add_jobs_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("jobs")).unwrap();
        let main = dir.path().join("telltale.yml");
        std::fs::write(
            &main,
            "scrape_config_files: ['jobs/*.yml', jobs/extra.yaml]\nscrape_configs:\n  - job_name: main\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("jobs/b.yml"), "scrape_configs:\n  - job_name: b\n").unwrap();
        std::fs::write(dir.path().join("jobs/a.yml"), "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n")
            .unwrap();
        std::fs::write(dir.path().join("jobs/extra.yaml"), "scrape_configs:\n  - job_name: extra\n").unwrap();
        let c = load(Some(&main), &env(&[]), &Overrides::default()).unwrap();
        let names: Vec<&str> = c.scrape_configs.iter().map(|s| s.job_name.as_str()).collect();
        assert_eq!(names, ["main", "a", "b", "extra"]);
        // A job name used twice across files is refused as in one file.
        std::fs::write(dir.path().join("jobs/c.yml"), "scrape_configs:\n  - job_name: main\n").unwrap();
        let err = load(Some(&main), &env(&[]), &Overrides::default()).unwrap_err().to_string();
        let c_yml = dir.path().join("jobs/c.yml");
        let want = format!(
            "{}: scrape_config_files[0]: {}: found multiple scrape configs with job name \"main\"",
            main.display(),
            c_yml.display()
        );
        assert_eq!(err, want);
        // A file with other sections is refused, naming it.
        std::fs::write(dir.path().join("jobs/c.yml"), "global:\n  scrape_interval: 1s\n").unwrap();
        let err = load(Some(&main), &env(&[]), &Overrides::default()).unwrap_err().to_string();
        assert!(
            err.contains("scrape_config_files[0]: ") && err.contains("c.yml") && err.contains("unknown field `global`"),
            "{err}"
        );
        // A named file that is missing is an error; a pattern matching nothing is not.
        std::fs::remove_file(dir.path().join("jobs/c.yml")).unwrap();
        std::fs::remove_file(dir.path().join("jobs/extra.yaml")).unwrap();
        let err = load(Some(&main), &env(&[]), &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("scrape_config_files[1]: cannot read "), "{err}");
    }

    #[test]
    fn defaults() {
        let c = parse("# nothing\n", "t.yml").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen, "127.0.0.1:7070");
        assert_eq!(c.storage.data_dir, PathBuf::from("./telltale-data"));
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yml");
        std::fs::write(&path, "server:\n  listen: 127.0.0.1:1\n  max_body_size: 1MiB\nstorage:\n  data_dir: /a\n")
            .unwrap();
        let c = load(Some(&path), &env(&[]), &Overrides::default()).unwrap();
        assert_eq!((c.server.listen.as_str(), c.server.max_body_size), ("127.0.0.1:1", 1 << 20));
        let e =
            env(&[("TELLTALE_LISTEN", "127.0.0.1:2"), ("TELLTALE_DATA_DIR", "/b"), ("TELLTALE_MAX_BODY_SIZE", "2KiB")]);
        let c = load(Some(&path), &e, &Overrides::default()).unwrap();
        assert_eq!((c.server.listen.as_str(), c.storage.data_dir.to_str()), ("127.0.0.1:2", Some("/b")));
        assert_eq!(c.server.max_body_size, 2048);
        let flags =
            Overrides { listen: Some("127.0.0.1:3".into()), data_dir: Some("/c".into()), ..Overrides::default() };
        let c = load(Some(&path), &e, &flags).unwrap();
        assert_eq!((c.server.listen.as_str(), c.storage.data_dir.to_str()), ("127.0.0.1:3", Some("/c")));
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = load(None, &env(&[("TELLTALE_MAX_BODY_SIZE", "lots")]), &Overrides::default()).unwrap_err();
        assert!(e.to_string().starts_with("TELLTALE_MAX_BODY_SIZE: server.max_body_size: "), "{e}");
        let e = load(None, &env(&[("TELLTALE_LISTEN", "nowhere")]), &Overrides::default()).unwrap_err();
        assert!(e.to_string().starts_with("configuration: server.listen: "), "{e}");
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_addr(":7070").unwrap().to_string(), "0.0.0.0:7070");
        assert_eq!(listen_addr("localhost:1").unwrap().to_string(), "127.0.0.1:1");
        assert_eq!(listen_addr("[::1]:1").unwrap().to_string(), "[::1]:1");
        assert!(listen_addr("7070").is_err());
    }

    #[test]
    fn secrets_are_redacted_by_name_and_in_urls() {
        let mut v = serde_json::json!({
            "server": {"listen": "127.0.0.1:7070"},
            "alerting": {"receivers": [{"name": "ops", "slack_configs": [{"api_url": "https://hooks.example/x", "channel": "#ops"}],
                "webhook_configs": [{"url": "https://hook.example/y"}],
                "email_configs": [{"auth_password": "hunter2", "auth_password_file": "/etc/pw", "to": "a@b"}],
                "pagerduty_configs": [{"routing_key": "abc"}]}]},
            "remote": {"endpoint": "https://user:pw@host/path", "bearer_token": "", "headers": {"Authorization": "Bearer x"}}
        });
        redact(&mut v, "");
        let r = &v["alerting"]["receivers"][0];
        assert_eq!(r["name"], "ops");
        assert_eq!(r["slack_configs"][0]["api_url"], "<secret>");
        assert_eq!(r["slack_configs"][0]["channel"], "#ops");
        assert_eq!(r["webhook_configs"][0]["url"], "<secret>");
        assert_eq!(r["email_configs"][0]["auth_password"], "<secret>");
        assert_eq!(r["email_configs"][0]["auth_password_file"], "/etc/pw", "a path is not a secret");
        assert_eq!(r["pagerduty_configs"][0]["routing_key"], "<secret>");
        assert_eq!(v["remote"]["endpoint"], "https://user:<secret>@host/path");
        assert_eq!(v["remote"]["bearer_token"], "", "empty stays empty: nothing is set");
        assert_eq!(v["remote"]["headers"]["Authorization"], "<secret>");
        let mut a = serde_json::json!({"authorization": {"type": "Bearer", "credentials": "t0k"}});
        redact(&mut a, "scrape_configs");
        assert_eq!(a, serde_json::json!({"authorization": {"type": "Bearer", "credentials": "<secret>"}}));
        assert_eq!(v["server"]["listen"], "127.0.0.1:7070");
        let yaml = redacted_yaml(&Config::default());
        assert!(yaml.contains("listen: 127.0.0.1:7070") && yaml.contains("max_size: 1MiB"), "{yaml}");
    }

    #[test]
    fn changed_keys_are_leaf_paths() {
        let a = Config::default();
        let mut b = a.clone();
        b.server.max_body_size = 1;
        b.storage.data_dir = "/x".into();
        assert_eq!(changed_keys(&a, &b), ["server.max_body_size", "storage.data_dir"]);
        assert!(is_live("server.max_body_size") && !is_live("storage.data_dir"));
        let mut c = a.clone();
        c.limits.max_labels_per_series = 1;
        c.otlp.target_info = false;
        assert_eq!(changed_keys(&a, &c), ["limits", "otlp.target_info"]);
        assert!(is_live("limits") && is_live("otlp.target_info"));
    }
}

#[cfg(test)]
mod testdata {
    use super::*;

    /// Every `testdata/config/*.bad.yml` fails with the text of its sibling `.err` file.
    #[test]
    fn bad_configs_fail_with_their_expected_error() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".bad.yml")) else {
                continue;
            };
            let want = std::fs::read_to_string(dir.join(format!("{name}.bad.err"))).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let got = parse(&text, "f.yml")
                .and_then(|c| check_alerting(&c).map_err(|e| invalid("f.yml", "alerting", e)))
                .map(|_| "parsed".to_string())
                .unwrap_or_else(|e| e.to_string());
            assert_eq!(got, format!("f.yml: {}", want.trim_end()), "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 5, "only {seen} bad configs found");
    }

    #[test]
    fn example_config_parses_to_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../telltale.example.yml");
        let c = load(Some(&path), &BTreeMap::new(), &Overrides::default()).unwrap();
        assert_eq!(c, Config::default(), "the example documents the defaults");
    }
}
