//! `global:` and `scrape_configs:` in Prometheus's own schema
//! (<https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config>),
//! so a Prometheus config's sections paste in unchanged. Keys Telltale does not implement
//! (service discovery other than static, file and HTTP) are refused by name rather than
//! ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use telltale_model::units;

use super::relabel::RelabelConfig;
use crate::error::{Error, Result};
use crate::tls::TlsConfig;

/// `global:`: defaults for every scrape config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// How often to scrape a target unless its job says otherwise (Prometheus: 1m).
    #[serde(with = "units::duration")]
    pub scrape_interval: Duration,
    /// How long a scrape may take unless its job says otherwise (Prometheus: 10s).
    #[serde(with = "units::duration")]
    pub scrape_timeout: Duration,
    /// How often rule groups are evaluated unless a group says otherwise (Prometheus: 1m).
    /// Accepted here so a pasted Prometheus `global:` loads; rule evaluation reads it.
    #[serde(with = "units::duration")]
    pub evaluation_interval: Duration,
    /// Labels added to every series Telltale scrapes or collects when it ships them
    /// (`telltale agent`); the server ignores them.
    pub external_labels: BTreeMap<String, String>,
    /// The exposition formats to ask targets for, most preferred first, unless a job says
    /// otherwise (Prometheus's names; see [`ScrapeConfig::scrape_protocols`]).
    pub scrape_protocols: Vec<String>,
    /// Default `body_size_limit` of every job (`0`: none).
    #[serde(with = "units::size")]
    pub body_size_limit: u64,
    /// Default `sample_limit` of every job (0: none).
    pub sample_limit: usize,
    /// Default `label_limit` of every job (0: none).
    pub label_limit: usize,
    /// Default `label_name_length_limit` of every job (0: none).
    pub label_name_length_limit: usize,
    /// Default `label_value_length_limit` of every job (0: none).
    pub label_value_length_limit: usize,
    /// Default `target_limit` of every job (0: none).
    pub target_limit: usize,
    /// Default `keep_dropped_targets` of every job (0: keep all).
    pub keep_dropped_targets: usize,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: Duration::from_secs(60),
            external_labels: BTreeMap::new(),
            scrape_protocols: DEFAULT_PROTOCOLS.iter().map(|p| p.to_string()).collect(),
            body_size_limit: 0,
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            target_limit: 0,
            keep_dropped_targets: 0,
        }
    }
}

/// The default `scrape_protocols`: Prometheus 3's without `PrometheusText1.0.0` (the text
/// format with quoted UTF-8 names, which a target then may send; ask for it by listing it).
pub const DEFAULT_PROTOCOLS: [&str; 3] = ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText0.0.4"];

/// Prometheus's scrape protocol names and the media types they ask for; `None`: known but
/// not spoken (Telltale parses the text formats, not protobuf).
fn protocol_media_type(name: &str) -> Result<Option<&'static str>, String> {
    match name {
        "OpenMetricsText1.0.0" => Ok(Some("application/openmetrics-text;version=1.0.0")),
        "OpenMetricsText0.0.1" => Ok(Some("application/openmetrics-text;version=0.0.1")),
        "PrometheusText1.0.0" => Ok(Some("text/plain;version=1.0.0")),
        "PrometheusText0.0.4" => Ok(Some("text/plain;version=0.0.4")),
        "PrometheusProto" => Ok(None),
        other => Err(format!(
            "unknown scrape protocol {other:?}, supported: OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText1.0.0, PrometheusText0.0.4, PrometheusProto"
        )),
    }
}

/// The `Accept` header for `protocols`, weighted as Prometheus does (`q` falling from 0.6 in
/// list order, then `*/*`); protobuf is left out.
pub fn accept_header(protocols: &[String]) -> Result<String, String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut parts = Vec::new();
    let mut weight = 6;
    for p in protocols {
        if !seen.insert(p.as_str()) {
            return Err(format!("duplicated protocol in scrape_protocols, got {protocols:?}"));
        }
        if let Some(mt) = protocol_media_type(p)? {
            parts.push(format!("{mt};q=0.{weight}"));
            weight -= 1;
        }
    }
    if parts.is_empty() {
        return Err("scrape_protocols names no text format (Telltale does not parse PrometheusProto)".into());
    }
    parts.push(format!("*/*;q=0.{weight}"));
    Ok(parts.join(","))
}

/// One `scrape_configs` entry: a job and how to scrape its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label of every target; unique across scrape configs.
    pub job_name: String,
    /// How often to scrape (default: `global.scrape_interval`).
    #[serde(default, with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<Duration>,
    /// How long a scrape may take (default: `global.scrape_timeout`, at most the interval).
    #[serde(default, with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<Duration>,
    /// The path to fetch.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// URL query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the scraped labels when they clash with the target's (`false`: rename them `exported_*`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Keep timestamps the target exposes (`false`: use the scrape time).
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// The `Authorization` header (type and credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// A bearer token (deprecated in Prometheus in favour of `authorization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// A file holding the bearer token, read at every scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings for `https` targets (CA, client certificate, server name, versions).
    #[serde(default, skip_serializing_if = "TlsConfig::is_default")]
    pub tls_config: TlsConfig,
    /// Targets listed in the config.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Targets listed in JSON or YAML files, re-read every `refresh_interval`.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Targets fetched from HTTP endpoints every `refresh_interval`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_sd_configs: Vec<super::http_sd::HttpSdConfig>,
    /// Rewrites of target labels before scraping (and which targets to drop).
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Rewrites of each scraped series (and which to drop) before storing.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// More samples than this (after metric relabeling) fails the scrape (0: no limit).
    #[serde(default)]
    pub sample_limit: usize,
    /// More labels on a series than this fails the scrape (0: no limit).
    #[serde(default)]
    pub label_limit: usize,
    /// A label name longer than this fails the scrape (0: no limit).
    #[serde(default)]
    pub label_name_length_limit: usize,
    /// A label value longer than this fails the scrape (0: no limit).
    #[serde(default)]
    pub label_value_length_limit: usize,
    /// An uncompressed body larger than this fails the scrape (`0`: `global.body_size_limit`).
    #[serde(default, with = "units::size")]
    pub body_size_limit: u64,
    /// More targets than this after relabeling fails every scrape of the job (0:
    /// `global.target_limit`, 0 there too: no limit).
    #[serde(default)]
    pub target_limit: usize,
    /// At most this many dropped targets are kept for `/api/v1/targets` (0:
    /// `global.keep_dropped_targets`, 0 there too: all).
    #[serde(default)]
    pub keep_dropped_targets: usize,
    /// The exposition formats to ask for, most preferred first (default:
    /// `global.scrape_protocols`): `OpenMetricsText1.0.0`, `OpenMetricsText0.0.1`,
    /// `PrometheusText1.0.0`, `PrometheusText0.0.4`; `PrometheusProto` is accepted and left
    /// out of the request (Telltale parses the text formats).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scrape_protocols: Vec<String>,
    /// The format to parse a body in when the target sends no usable Content-Type
    /// (default: PrometheusText0.0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<String>,
    /// Ask for gzip-compressed bodies.
    #[serde(default = "yes")]
    pub enable_compression: bool,
    /// Follow HTTP redirects (at most 10).
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Accepted for Prometheus compatibility; Telltale scrapes over HTTP/1.1 either way.
    #[serde(default = "yes")]
    pub enable_http2: bool,
    /// An HTTP proxy (`http://host:port`, credentials as `http://user:pass@host:port`) that
    /// targets are reached through (CONNECT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Hosts reached directly despite `proxy_url`, comma-separated (`example.com`,
    /// `.example.com` for its subdomains, `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    /// Use the proxy of the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`).
    #[serde(default)]
    pub proxy_from_environment: bool,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_scheme() -> String {
    "http".into()
}
fn yes() -> bool {
    true
}

/// `basic_auth:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password (or `password_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A file holding the password, read at every scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// `authorization:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme (`Bearer` by default).
    #[serde(default = "bearer", rename = "type")]
    pub kind: String,
    /// The credentials (or `credentials_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// A file holding the credentials, read at every scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

fn bearer() -> String {
    "Bearer".into()
}

/// The `Authorization` header of `basic_auth` or `authorization`, reading `*_file`s now (so a
/// rotated secret is used at once, as in Prometheus).
pub fn authorization_header(basic: Option<&BasicAuth>, auth: Option<&Authorization>) -> Result<Option<String>, String> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    if let Some(b) = basic {
        let password = match (&b.password, &b.password_file) {
            (_, Some(f)) => read(f)?,
            (Some(p), None) => p.clone(),
            (None, None) => String::new(),
        };
        let pair = format!("{}:{password}", b.username);
        return Ok(Some(format!("Basic {}", super::scraper::base64(pair.as_bytes()))));
    }
    if let Some(a) = auth {
        let cred = match (&a.credentials, &a.credentials_file) {
            (_, Some(f)) => read(f)?,
            (Some(c), None) => c.clone(),
            (None, None) => String::new(),
        };
        return Ok(Some(format!("{} {cred}", a.kind)));
    }
    Ok(None)
}

/// `static_configs:` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each target.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels given to every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs:` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Files holding target groups (`*.json`, `*.yml`, `*.yaml`); the last path component may be a `*` pattern.
    pub files: Vec<String>,
    /// How often to re-read them (Prometheus: 5m).
    #[serde(default = "five_minutes", with = "units::duration")]
    pub refresh_interval: Duration,
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&telltale_model::units::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        telltale_model::units::parse_duration(&s).map(Some).map_err(serde::de::Error::custom)
    }
}

impl ScrapeConfig {
    /// The interval in force.
    pub fn interval(&self, g: &GlobalConfig) -> Duration {
        self.scrape_interval.unwrap_or(g.scrape_interval)
    }

    /// The timeout in force: the configured one, or the global one capped by the interval.
    pub fn timeout(&self, g: &GlobalConfig) -> Duration {
        self.scrape_timeout.unwrap_or_else(|| g.scrape_timeout.min(self.interval(g)))
    }

    /// The `Accept` header of this job's scrapes.
    pub fn accept(&self, g: &GlobalConfig) -> Result<String, String> {
        accept_header(if self.scrape_protocols.is_empty() { &g.scrape_protocols } else { &self.scrape_protocols })
    }

    /// This job's limits, the global ones where it sets none (0), as Prometheus does.
    pub fn with_global_limits(&self, g: &GlobalConfig) -> ScrapeConfig {
        let or = |mine: usize, global: usize| if mine == 0 { global } else { mine };
        let mut c = self.clone();
        c.sample_limit = or(c.sample_limit, g.sample_limit);
        c.label_limit = or(c.label_limit, g.label_limit);
        c.label_name_length_limit = or(c.label_name_length_limit, g.label_name_length_limit);
        c.label_value_length_limit = or(c.label_value_length_limit, g.label_value_length_limit);
        c.target_limit = or(c.target_limit, g.target_limit);
        c.keep_dropped_targets = or(c.keep_dropped_targets, g.keep_dropped_targets);
        if c.body_size_limit == 0 {
            c.body_size_limit = g.body_size_limit;
        }
        c
    }

    /// The proxy to reach targets through, if any.
    pub fn proxy(&self) -> Result<Option<ureq::Proxy>, String> {
        if self.proxy_from_environment {
            return Ok(ureq::Proxy::try_from_env());
        }
        let Some(url) = &self.proxy_url else { return Ok(None) };
        let scheme = url.split_once("://").map_or("http", |(s, _)| s);
        if scheme != "http" && scheme != "https" {
            return Err(format!("proxy_url {url:?}: only http:// and https:// proxies are supported"));
        }
        let parsed = ureq::Proxy::new(url).map_err(|e| format!("proxy_url {url:?}: {e}"))?;
        let Some(no_proxy) = &self.no_proxy else { return Ok(Some(parsed)) };
        let mut b = ureq::Proxy::builder(parsed.protocol()).host(parsed.host()).port(parsed.port());
        if let Some(u) = parsed.username() {
            b = b.username(u);
        }
        if let Some(p) = parsed.password() {
            b = b.password(p);
        }
        for host in no_proxy.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            b = b.no_proxy(host);
        }
        b.build().map(Some).map_err(|e| format!("proxy_url {url:?}: {e}"))
    }
}

/// One file named by `scrape_config_files`: only a `scrape_configs:` list, as in Prometheus.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrapeConfigFile {
    #[serde(default)]
    scrape_configs: Vec<ScrapeConfig>,
}

/// Reads the scrape configs of Prometheus's `scrape_config_files`: each entry a file or a
/// pattern (`*`/`?` in its last component), relative to `base` (the main config file's
/// directory). Files are read in name order; a pattern that matches nothing adds nothing. A
/// file that cannot be read or parsed, or that repeats a job name of `existing` or of an
/// earlier file, is an error naming it.
pub fn read_scrape_config_files(
    patterns: &[String],
    base: &std::path::Path,
    existing: &[ScrapeConfig],
) -> Result<Vec<ScrapeConfig>> {
    let mut out: Vec<ScrapeConfig> = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let key = format!("scrape_config_files[{i}]");
        let path = base.join(pattern);
        if path.parent().is_some_and(|p| p.to_string_lossy().contains(['*', '?'])) {
            return Err(Error::config(key, format!("{pattern:?}: only the last path component may be a pattern")));
        }
        let pattern_given = path.file_name().is_some_and(|n| n.to_string_lossy().contains(['*', '?']));
        for file in super::target::glob(&path) {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if pattern_given && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::config(key, format!("cannot read {}: {e}", file.display()))),
            };
            if text.trim().is_empty() {
                continue;
            }
            let f: ScrapeConfigFile = serde_yaml_ng::from_str(&text)
                .map_err(|e| Error::config(key.clone(), format!("{}: {e}", file.display())))?;
            for c in f.scrape_configs {
                if existing.iter().chain(&out).any(|e| e.job_name == c.job_name) {
                    return Err(Error::config(
                        key,
                        format!("{}: found multiple scrape configs with job name {:?}", file.display(), c.job_name),
                    ));
                }
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// Checks every scrape config as Prometheus does; errors name the key
/// (`scrape_configs[1].scrape_timeout`).
pub fn validate(global: &GlobalConfig, configs: &[ScrapeConfig]) -> Result<()> {
    accept_header(&global.scrape_protocols).map_err(|m| Error::config("global.scrape_protocols", m))?;
    if global.scrape_interval.is_zero() {
        return Err(Error::config("global.scrape_interval", "must be greater than zero"));
    }
    if global.scrape_timeout > global.scrape_interval {
        return Err(Error::config("global.scrape_timeout", "must not be greater than global.scrape_interval"));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, c) in configs.iter().enumerate() {
        let key = |k: &str| format!("scrape_configs[{i}].{k}");
        if c.job_name.is_empty() {
            return Err(Error::config(key("job_name"), "must not be empty"));
        }
        if !names.insert(c.job_name.as_str()) {
            return Err(Error::config(
                key("job_name"),
                format!("found multiple scrape configs with job name {:?}", c.job_name),
            ));
        }
        if c.interval(global).is_zero() {
            return Err(Error::config(key("scrape_interval"), "must be greater than zero"));
        }
        if c.timeout(global) > c.interval(global) {
            return Err(Error::config(
                key("scrape_timeout"),
                format!("scrape timeout greater than scrape interval for scrape config with job name {:?}", c.job_name),
            ));
        }
        if c.scheme != "http" && c.scheme != "https" {
            return Err(Error::config(key("scheme"), format!("{:?} is not http or https", c.scheme)));
        }
        c.tls_config.validate().map_err(|m| Error::config(key("tls_config"), m))?;
        c.accept(global).map_err(|m| Error::config(key("scrape_protocols"), m))?;
        if let Some(f) = &c.fallback_scrape_protocol {
            match protocol_media_type(f) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(Error::config(
                        key("fallback_scrape_protocol"),
                        "PrometheusProto is not parsed by Telltale",
                    ))
                }
                Err(m) => return Err(Error::config(key("fallback_scrape_protocol"), m)),
            }
        }
        if c.proxy_url.is_some() && c.proxy_from_environment {
            return Err(Error::config(
                key("proxy_from_environment"),
                "if proxy_from_environment is configured, proxy_url must not be configured",
            ));
        }
        if c.no_proxy.is_some() && c.proxy_url.is_none() {
            return Err(Error::config(key("no_proxy"), "if no_proxy is configured, proxy_url must also be configured"));
        }
        c.proxy().map_err(|m| Error::config(key("proxy_url"), m))?;
        if !c.metrics_path.starts_with('/') {
            return Err(Error::config(key("metrics_path"), "must start with /"));
        }
        let auths = usize::from(c.basic_auth.is_some())
            + usize::from(c.authorization.is_some())
            + usize::from(c.bearer_token.is_some() || c.bearer_token_file.is_some());
        if auths > 1 {
            return Err(Error::config(
                key("authorization"),
                "at most one of basic_auth, authorization and bearer_token(_file) may be set",
            ));
        }
        if c.bearer_token.is_some() && c.bearer_token_file.is_some() {
            return Err(Error::config(
                key("bearer_token"),
                "at most one of bearer_token and bearer_token_file may be set",
            ));
        }
        if let Some(b) = &c.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                return Err(Error::config(key("basic_auth"), "at most one of password and password_file may be set"));
            }
        }
        if let Some(a) = &c.authorization {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(Error::config(
                    key("authorization"),
                    "at most one of credentials and credentials_file may be set",
                ));
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(Error::config(
                    key("authorization.type"),
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
        }
        for (j, s) in c.static_configs.iter().enumerate() {
            for (k, t) in s.targets.iter().enumerate() {
                if t.is_empty() || t.contains('/') {
                    return Err(Error::config(
                        key(&format!("static_configs[{j}].targets[{k}]")),
                        format!("{t:?} is not a valid host:port"),
                    ));
                }
            }
        }
        for (j, f) in c.file_sd_configs.iter().enumerate() {
            for (k, file) in f.files.iter().enumerate() {
                let ok = [".json", ".yml", ".yaml"].iter().any(|e| file.ends_with(e));
                let dir_glob = std::path::Path::new(file).parent().is_some_and(|p| p.to_string_lossy().contains('*'));
                if !ok || dir_glob {
                    return Err(Error::config(
                        key(&format!("file_sd_configs[{j}].files[{k}]")),
                        format!("{file:?}: path must end in .json, .yml or .yaml, and only its last component may be a pattern"),
                    ));
                }
            }
        }
        for (j, h) in c.http_sd_configs.iter().enumerate() {
            h.validate().map_err(|m| Error::config(key(&format!("http_sd_configs[{j}]")), m))?;
        }
        for (j, r) in c.relabel_configs.iter().enumerate() {
            r.compile().map_err(|m| Error::config(key(&format!("relabel_configs[{j}]")), m))?;
        }
        for (j, r) in c.metric_relabel_configs.iter().enumerate() {
            r.compile().map_err(|m| Error::config(key(&format!("metric_relabel_configs[{j}]")), m))?;
        }
    }
    Ok(())
}
