//! Receiver configs with Alertmanager's keys, and [`Secret`]: values that never show in
//! logs or APIs.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret: given inline, as `${ENV_VAR}` (read at load), or through a `*_file` key.
/// It prints and serializes as `<secret>`, as Alertmanager does.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// A secret from its value.
    pub fn new(v: impl Into<String>) -> Self {
        Secret(v.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        expand_env(&s).map(Secret).map_err(serde::de::Error::custom)
    }
}

/// `${NAME}` references replaced by the environment's values; an unset one is an error.
fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| "unterminated ${ in a secret".to_string())?;
        let name = &rest[i + 2..i + end];
        let v = std::env::var(name)
            .map_err(|_| format!("environment variable {name} (referenced by a secret) is not set"))?;
        out.push_str(&v);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a `*_file` secret (trailing newline trimmed), as Alertmanager does at send time.
pub(crate) fn read_secret_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("cannot read {path}: {e}"))
}

/// `http_config:` of a receiver (the parts that apply here).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `Authorization: Basic`.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization: <type> <credentials>`.
    pub authorization: Option<Authorization>,
    /// Follow HTTP redirects (default true).
    pub follow_redirects: Option<bool>,
    /// TLS settings; accepted for compatibility (HTTP channels use the Mozilla roots).
    pub tls_config: Option<crate::TlsConfig>,
    /// A proxy; accepted for compatibility, not used.
    pub proxy_url: Option<String>,
}

/// `basic_auth:`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// Password read from a file.
    pub password_file: String,
}

/// `authorization:`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// The scheme (default `Bearer`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The credentials.
    pub credentials: Secret,
    /// Credentials read from a file.
    pub credentials_file: String,
}

impl HttpConfig {
    /// The `Authorization` header value, if any.
    pub(crate) fn auth_header(&self) -> Result<Option<String>, String> {
        if let Some(b) = &self.basic_auth {
            let pw = if b.password_file.is_empty() {
                b.password.expose().to_string()
            } else {
                read_secret_file(&b.password_file)?
            };
            return Ok(Some(format!("Basic {}", base64(format!("{}:{pw}", b.username).as_bytes()))));
        }
        if let Some(a) = &self.authorization {
            let c = if a.credentials_file.is_empty() {
                a.credentials.expose().to_string()
            } else {
                read_secret_file(&a.credentials_file)?
            };
            let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
            return Ok(Some(format!("{kind} {c}")));
        }
        Ok(None)
    }
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One receiver of the `receivers:` list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// The name routes refer to.
    pub name: String,
    /// Generic webhooks (Alertmanager's JSON, version 4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    /// Email over SMTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<crate::EmailConfig>,
    /// Slack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<crate::SlackConfig>,
    /// Microsoft Teams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msteams_configs: Vec<crate::TeamsConfig>,
    /// PagerDuty Events API v2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<crate::PagerDutyConfig>,
    /// Opsgenie.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opsgenie_configs: Vec<crate::OpsgenieConfig>,
    /// Telegram.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telegram_configs: Vec<crate::TelegramConfig>,
    /// Discord.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discord_configs: Vec<crate::DiscordConfig>,
}

/// `global:` of the Alertmanager config: the pipeline's resolve timeout and the channels'
/// shared defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// An alert posted without `endsAt` resolves after this long unless posted again.
    #[serde(with = "telltale_model::units::duration")]
    pub resolve_timeout: Duration,
    /// Default sender of mail.
    pub smtp_from: String,
    /// Default SMTP server, `host:port`.
    pub smtp_smarthost: String,
    /// Default EHLO name.
    pub smtp_hello: String,
    /// Default SMTP AUTH user.
    pub smtp_auth_username: String,
    /// Default SMTP AUTH password.
    pub smtp_auth_password: Secret,
    /// Default SMTP AUTH password from a file.
    pub smtp_auth_password_file: String,
    /// Accepted for compatibility.
    pub smtp_auth_identity: String,
    /// Accepted for compatibility.
    pub smtp_auth_secret: Secret,
    /// Default for `require_tls`.
    pub smtp_require_tls: bool,
    /// Default Slack URL.
    pub slack_api_url: Secret,
    /// Default Slack URL from a file.
    pub slack_api_url_file: String,
    /// Default Opsgenie key.
    pub opsgenie_api_key: Secret,
    /// Default Opsgenie key from a file.
    pub opsgenie_api_key_file: String,
    /// Accepted for compatibility; set `url` per PagerDuty config.
    pub pagerduty_url: String,
    /// Accepted for compatibility; set `api_url` per Opsgenie config.
    pub opsgenie_api_url: String,
    /// Accepted for compatibility; set `api_url` per Telegram config.
    pub telegram_api_url: String,
    /// Accepted for compatibility.
    pub http_config: Option<HttpConfig>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            resolve_timeout: Duration::from_secs(300),
            smtp_from: String::new(),
            smtp_smarthost: String::new(),
            smtp_hello: "localhost".into(),
            smtp_auth_username: String::new(),
            smtp_auth_password: Secret::default(),
            smtp_auth_password_file: String::new(),
            smtp_auth_identity: String::new(),
            smtp_auth_secret: Secret::default(),
            smtp_require_tls: true,
            slack_api_url: Secret::default(),
            slack_api_url_file: String::new(),
            opsgenie_api_key: Secret::default(),
            opsgenie_api_key_file: String::new(),
            pagerduty_url: String::new(),
            opsgenie_api_url: String::new(),
            telegram_api_url: String::new(),
            http_config: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// Retry policy shared by every channel: attempts within the notification's deadline.
pub(crate) const RETRIES: u32 = 3;

/// `webhook_configs:` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Notify about resolved alerts too (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// The endpoint (a secret: it often carries a token).
    #[serde(default)]
    pub url: Secret,
    /// The endpoint, read from a file at send time.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url_file: String,
    /// At most this many alerts per message (0: all); the rest are counted in `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: usize,
    /// How long one attempt may take ("0s": 10s).
    #[serde(default, with = "telltale_model::units::duration")]
    pub timeout: Duration,
    /// Authentication and TLS.
    #[serde(default)]
    pub http_config: HttpConfig,
}

impl WebhookConfig {
    pub(crate) fn endpoint(&self) -> Result<String, String> {
        if !self.url_file.is_empty() {
            return read_secret_file(&self.url_file);
        }
        Ok(self.url.expose().to_string())
    }
}

impl ReceiverConfig {
    /// Problems with this receiver's settings once `global:` defaults are applied, worded
    /// as Alertmanager's loader words them.
    pub fn validate_with(&self, g: &GlobalConfig) -> Result<(), String> {
        self.validate()?;
        let name = &self.name;
        for (i, e) in self.email_configs.iter().enumerate() {
            let mut e = e.clone();
            e.apply_globals(g);
            if e.to.is_empty() {
                return Err(format!("receiver {name:?}: email_configs[{i}]: missing to address in email config"));
            }
            if e.smarthost.is_empty() {
                return Err(format!("receiver {name:?}: email_configs[{i}]: no global SMTP smarthost set"));
            }
            if e.from.is_empty() {
                return Err(format!("receiver {name:?}: email_configs[{i}]: no global SMTP from set"));
            }
        }
        for (i, c) in self.slack_configs.iter().enumerate() {
            if c.api_url.is_empty()
                && c.api_url_file.is_empty()
                && g.slack_api_url.is_empty()
                && g.slack_api_url_file.is_empty()
            {
                return Err(format!("receiver {name:?}: slack_configs[{i}]: no global Slack API URL set"));
            }
        }
        for (i, c) in self.pagerduty_configs.iter().enumerate() {
            if [
                c.routing_key.is_empty(),
                c.routing_key_file.is_empty(),
                c.service_key.is_empty(),
                c.service_key_file.is_empty(),
            ]
            .iter()
            .all(|x| *x)
            {
                return Err(format!(
                    "receiver {name:?}: pagerduty_configs[{i}]: missing service or routing key in PagerDuty config"
                ));
            }
        }
        for (i, c) in self.opsgenie_configs.iter().enumerate() {
            if c.api_key.is_empty()
                && c.api_key_file.is_empty()
                && g.opsgenie_api_key.is_empty()
                && g.opsgenie_api_key_file.is_empty()
            {
                return Err(format!("receiver {name:?}: opsgenie_configs[{i}]: no global Opsgenie API key set"));
            }
        }
        for (i, c) in self.telegram_configs.iter().enumerate() {
            if c.bot_token.is_empty() && c.bot_token_file.is_empty() {
                return Err(format!("receiver {name:?}: telegram_configs[{i}]: missing bot_token or bot_token_file"));
            }
        }
        for (i, c) in self.discord_configs.iter().enumerate() {
            if c.webhook_url.is_empty() && c.webhook_url_file.is_empty() {
                return Err(format!("receiver {name:?}: discord_configs[{i}]: one of webhook_url or webhook_url_file must be configured"));
            }
        }
        for (i, c) in self.msteams_configs.iter().enumerate() {
            if c.webhook_url.is_empty() && c.webhook_url_file.is_empty() {
                return Err(format!("receiver {name:?}: msteams_configs[{i}]: one of webhook_url or webhook_url_file must be configured"));
            }
        }
        Ok(())
    }

    /// Problems with this receiver's settings.
    pub fn validate(&self) -> Result<(), String> {
        for (i, w) in self.webhook_configs.iter().enumerate() {
            if w.url.is_empty() == w.url_file.is_empty() {
                return Err(format!(
                    "receiver {:?}: webhook_configs[{i}]: one of url or url_file must be set",
                    self.name
                ));
            }
            let u = w.url.expose();
            if !(u.is_empty() || u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "receiver {:?}: webhook_configs[{i}]: url must start with http:// or https://",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        std::env::set_var("TELLTALE_TEST_HOOK_TOKEN", "s3cr3t");
        let w: WebhookConfig = serde_json::from_str(r#"{"url":"http://x/${TELLTALE_TEST_HOOK_TOKEN}"}"#).unwrap();
        assert_eq!(w.url.expose(), "http://x/s3cr3t");
        assert!(!format!("{w:?}").contains("s3cr3t"));
        assert!(!serde_json::to_string(&w).unwrap().contains("s3cr3t"));
        assert!(serde_json::to_string(&w).unwrap().contains("<secret>"));
        let e = serde_json::from_str::<WebhookConfig>(r#"{"url":"${TELLTALE_TEST_UNSET_VAR}"}"#).unwrap_err();
        assert!(e.to_string().contains("TELLTALE_TEST_UNSET_VAR"), "{e}");
    }

    #[test]
    fn basic_auth_header() {
        let h = HttpConfig {
            basic_auth: Some(BasicAuth {
                username: "Aladdin".into(),
                password: Secret::new("open sesame"),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(h.auth_header().unwrap().unwrap(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }
}
