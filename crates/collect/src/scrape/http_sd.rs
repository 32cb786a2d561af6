//! `http_sd_configs`: Prometheus's HTTP service discovery
//! (<https://prometheus.io/docs/prometheus/latest/http_sd/>): a GET of `url` answers a JSON
//! list of target groups (the file_sd format) with `Content-Type: application/json`, fetched
//! every `refresh_interval`. Each group gets `__meta_url`. A failed fetch keeps the groups of
//! the last good one, as Prometheus does.

use std::io::Read;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use telltale_model::units;

use super::config::{authorization_header, Authorization, BasicAuth};
use super::target::Group;
use crate::tls::TlsConfig;

/// Largest discovery answer read (Prometheus has none; a runaway endpoint must not exhaust memory).
const MAX_BODY: u64 = 64 << 20;

/// One `http_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    /// The endpoint answering the target groups (`http://` or `https://`).
    pub url: String,
    /// How often to fetch it (Prometheus: 1m).
    #[serde(default = "one_minute", with = "units::duration")]
    pub refresh_interval: Duration,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// The `Authorization` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// TLS settings for an `https` URL.
    #[serde(default, skip_serializing_if = "TlsConfig::is_default")]
    pub tls_config: TlsConfig,
    /// An HTTP proxy to fetch through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Follow HTTP redirects.
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Accepted for Prometheus compatibility (HTTP/1.1 is used).
    #[serde(default = "yes")]
    pub enable_http2: bool,
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}
fn yes() -> bool {
    true
}

impl HttpSdConfig {
    /// Checks the URL and the client settings; the message is one line.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!("URL scheme must be 'http' or 'https': {:?}", self.url));
        }
        if self.refresh_interval.is_zero() {
            return Err("refresh_interval must be greater than zero".into());
        }
        if self.basic_auth.is_some() && self.authorization.is_some() {
            return Err("at most one of basic_auth and authorization may be set".into());
        }
        self.agent().map(|_| ())
    }

    fn agent(&self) -> Result<ureq::Agent, String> {
        let proxy = match &self.proxy_url {
            Some(u) => Some(ureq::Proxy::new(u).map_err(|e| format!("proxy_url {u:?}: {e}"))?),
            None => None,
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(self.refresh_interval.min(Duration::from_secs(30))))
            .max_redirects(if self.follow_redirects { 10 } else { 0 })
            .max_redirects_will_error(false)
            .proxy(proxy)
            .user_agent(concat!("Telltale/", env!("CARGO_PKG_VERSION")))
            .build();
        crate::tls::agent(&self.tls_config, config)
    }

    /// Fetches and parses the groups; the error is what to log.
    pub fn fetch(&self) -> Result<Vec<Group>, String> {
        let agent = self.agent()?;
        let mut req = agent.get(&self.url).header("Accept", "application/json");
        if let Some(auth) = authorization_header(self.basic_auth.as_ref(), self.authorization.as_ref())? {
            req = req.header("Authorization", auth);
        }
        let mut res = req.call().map_err(|e| format!("Get {:?}: {e}", self.url))?;
        let status = res.status();
        if !status.is_success() {
            return Err(format!("server returned HTTP status {status}"));
        }
        let ctype = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if !ctype.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) {
            return Err(format!("unsupported content type {ctype:?}"));
        }
        let mut body = Vec::new();
        res.body_mut()
            .as_reader()
            .take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if body.len() as u64 > MAX_BODY {
            return Err(format!("answer larger than {MAX_BODY} bytes"));
        }
        let mut groups: Vec<Group> =
            serde_json::from_slice(&body).map_err(|e| format!("cannot parse the answer: {e}"))?;
        for g in &mut groups {
            g.url = Some(self.url.clone());
        }
        Ok(groups)
    }
}
