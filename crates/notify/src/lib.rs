//! Notification channels for Telltale's alerting: each receiver speaks the receiving
//! service's documented payload and takes Alertmanager's config keys for it, so an
//! `alertmanager.yml` `receivers:` section works unchanged.
//!
//! Input: a [`Message`] (Alertmanager's webhook data model: receiver, status, alerts,
//! group and common labels) and a receiver's config. Output: an HTTP request or a mail,
//! with a timeout and retries with backoff; failures come back as [`Error`].
//!
//! The one design decision to know: the channels are a closed set, so they are an enum
//! ([`Integration`]) matched exhaustively, not trait objects; [`Notifier`] is the one seam
//! (the alerting pipeline calls it; tests use [`Recording`]).
#![warn(missing_docs)]

mod channels;
mod config;
mod email;
mod http;
mod message;
mod webhook;

use std::sync::Arc;

pub use channels::{DiscordConfig, OpsgenieConfig, PagerDutyConfig, Request, SlackConfig, TeamsConfig, TelegramConfig};
pub use config::{GlobalConfig, HttpConfig, ReceiverConfig, Secret, WebhookConfig};
pub use email::{EmailConfig, TlsConfig};
pub use message::{Message, MessageAlert};

/// Telltale's default notification templates (Alertmanager's template names).
pub const DEFAULT_TEMPLATES: &str = include_str!("../templates/default.tmpl");

/// Why a notification was not delivered.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error status; `retry` says whether trying again may help.
    #[error("{integration}: {status}: {body}")]
    Status {
        /// `webhook[0]`, ...
        integration: String,
        /// HTTP status.
        status: u16,
        /// The start of the answer.
        body: String,
        /// 5xx and 429 are retried.
        retry: bool,
    },
    /// The request could not be made (connection refused, timeout, TLS).
    #[error("{integration}: {message}")]
    Transport {
        /// Which integration.
        integration: String,
        /// What happened.
        message: String,
    },
    /// The receiver's config or templates cannot produce a request.
    #[error("{integration}: {message}")]
    Config {
        /// Which integration.
        integration: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// The error's category.
    pub fn kind(&self) -> telltale_model::ErrorKind {
        match self {
            Error::Config { .. } => telltale_model::ErrorKind::InvalidInput,
            _ => telltale_model::ErrorKind::Unavailable,
        }
    }

    /// Whether retrying may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Status { retry, .. } => *retry,
            Error::Transport { .. } => true,
            Error::Config { .. } => false,
        }
    }
}

/// One configured channel of a receiver.
#[derive(Debug, Clone, PartialEq)]
pub enum Integration {
    /// A generic webhook receiving Alertmanager's JSON (version 4).
    Webhook(WebhookConfig),
    /// Slack: incoming webhook or `chat.postMessage`.
    Slack(SlackConfig),
    /// Microsoft Teams incoming webhook (MessageCard).
    Teams(TeamsConfig),
    /// PagerDuty Events API v2.
    PagerDuty(PagerDutyConfig),
    /// Opsgenie Alert API.
    Opsgenie(OpsgenieConfig),
    /// Telegram Bot API.
    Telegram(TelegramConfig),
    /// Discord webhook.
    Discord(DiscordConfig),
    /// Email over SMTP.
    Email(EmailConfig),
}

impl Integration {
    /// `webhook`, `slack`, ... (Alertmanager's integration names, used in metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Integration::Webhook(_) => "webhook",
            Integration::Slack(_) => "slack",
            Integration::Teams(_) => "msteams",
            Integration::PagerDuty(_) => "pagerduty",
            Integration::Opsgenie(_) => "opsgenie",
            Integration::Telegram(_) => "telegram",
            Integration::Discord(_) => "discord",
            Integration::Email(_) => "email",
        }
    }

    /// Whether resolved notifications are sent.
    pub fn send_resolved(&self) -> bool {
        match self {
            Integration::Webhook(c) => c.send_resolved,
            Integration::Slack(c) => c.send_resolved,
            Integration::Teams(c) => c.send_resolved,
            Integration::PagerDuty(c) => c.send_resolved,
            Integration::Opsgenie(c) => c.send_resolved,
            Integration::Telegram(c) => c.send_resolved,
            Integration::Discord(c) => c.send_resolved,
            Integration::Email(c) => c.send_resolved,
        }
    }

    /// The HTTP request this integration sends for `msg` (every channel but email).
    pub fn request(&self, msg: &Message, templates: &telltale_template::Templates) -> Result<Option<Request>, Error> {
        let r = channels::Render { templates, data: msg.template_data(), integration: self.kind() };
        Ok(Some(match self {
            Integration::Webhook(_) | Integration::Email(_) => return Ok(None),
            Integration::Slack(c) => c.request(&r)?,
            Integration::Teams(c) => c.request(&r, msg)?,
            Integration::PagerDuty(c) => c.request(&r, msg)?,
            Integration::Opsgenie(c) => c.request(&r, msg)?,
            Integration::Telegram(c) => c.request(&r)?,
            Integration::Discord(c) => c.request(&r, msg)?,
        }))
    }

    /// The mail this integration sends for `msg` (email only), rendered as it will go out.
    pub fn mail(&self, msg: &Message, templates: &telltale_template::Templates) -> Result<Option<Vec<u8>>, Error> {
        let Integration::Email(c) = self else { return Ok(None) };
        let r = channels::Render { templates, data: msg.template_data(), integration: "email" };
        Ok(Some(email::build(c, &r)?.formatted()))
    }

    fn timeout(&self) -> std::time::Duration {
        match self {
            Integration::Webhook(c) => c.timeout,
            Integration::Slack(c) => c.timeout,
            Integration::Teams(c) => c.timeout,
            Integration::PagerDuty(c) => c.timeout,
            Integration::Opsgenie(c) => c.timeout,
            Integration::Telegram(c) => c.timeout,
            Integration::Discord(c) => c.timeout,
            Integration::Email(c) => c.timeout,
        }
    }

    fn http_config(&self) -> HttpConfig {
        match self {
            Integration::Webhook(c) => c.http_config.clone(),
            Integration::Slack(c) => c.http_config.clone(),
            Integration::Teams(c) => c.http_config.clone(),
            Integration::PagerDuty(c) => c.http_config.clone(),
            Integration::Opsgenie(c) => c.http_config.clone(),
            Integration::Telegram(c) => c.http_config.clone(),
            Integration::Discord(c) => c.http_config.clone(),
            Integration::Email(_) => HttpConfig::default(),
        }
    }
}

/// The integrations of a receiver, in Alertmanager's order, named `kind[i]`, with the
/// `global:` defaults applied.
pub fn integrations(r: &ReceiverConfig, g: &GlobalConfig) -> Vec<(String, Integration)> {
    let mut out = Vec::new();
    let mut add = |kind: &str, i: usize, x: Integration| out.push((format!("{kind}[{i}]"), x));
    for (i, c) in r.email_configs.iter().enumerate() {
        let mut c = c.clone();
        c.apply_globals(g);
        add("email", i, Integration::Email(c));
    }
    for (i, c) in r.pagerduty_configs.iter().enumerate() {
        add("pagerduty", i, Integration::PagerDuty(c.clone()));
    }
    for (i, c) in r.slack_configs.iter().enumerate() {
        let mut c = c.clone();
        if c.api_url.is_empty() && c.api_url_file.is_empty() {
            c.api_url = g.slack_api_url.clone();
            c.api_url_file = g.slack_api_url_file.clone();
        }
        add("slack", i, Integration::Slack(c));
    }
    for (i, c) in r.opsgenie_configs.iter().enumerate() {
        let mut c = c.clone();
        if c.api_key.is_empty() && c.api_key_file.is_empty() {
            c.api_key = g.opsgenie_api_key.clone();
            c.api_key_file = g.opsgenie_api_key_file.clone();
        }
        add("opsgenie", i, Integration::Opsgenie(c));
    }
    for (i, c) in r.webhook_configs.iter().enumerate() {
        add("webhook", i, Integration::Webhook(c.clone()));
    }
    for (i, c) in r.msteams_configs.iter().enumerate() {
        add("msteams", i, Integration::Teams(c.clone()));
    }
    for (i, c) in r.telegram_configs.iter().enumerate() {
        add("telegram", i, Integration::Telegram(c.clone()));
    }
    for (i, c) in r.discord_configs.iter().enumerate() {
        add("discord", i, Integration::Discord(c.clone()));
    }
    out
}

/// The seam between the alerting pipeline and delivery: send one notification.
pub trait Notifier: Send + Sync {
    /// Delivers `msg` through `integration` (retrying inside as configured).
    fn send<'a>(&'a self, integration: &'a Integration, msg: &'a Message) -> BoxFuture<'a, Result<(), Error>>;
}

/// The future a [`Notifier`] returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Delivers over the network, with per-integration timeout and retries with backoff.
#[derive(Debug, Clone)]
pub struct Sender {
    templates: Arc<std::sync::RwLock<Arc<telltale_template::Templates>>>,
}

impl Default for Sender {
    fn default() -> Self {
        Self { templates: Arc::new(std::sync::RwLock::new(Arc::new(default_templates()))) }
    }
}

/// Telltale's default templates, parsed.
pub fn default_templates() -> telltale_template::Templates {
    let mut t = telltale_template::Templates::new();
    t.add("default.tmpl", DEFAULT_TEMPLATES).unwrap_or_else(|e| panic!("the built-in templates do not parse: {e}"));
    t
}

/// The default templates plus the user's template files (later definitions win).
pub fn load_templates(files: &[std::path::PathBuf]) -> Result<telltale_template::Templates, String> {
    let mut t = default_templates();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read template file {}: {e}", f.display()))?;
        t.add(&f.display().to_string(), &text).map_err(|e| e.to_string())?;
    }
    Ok(t)
}

impl Sender {
    /// Replaces the templates (on reload).
    pub fn set_templates(&self, t: telltale_template::Templates) {
        *self.templates.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(t);
    }

    fn templates(&self) -> Arc<telltale_template::Templates> {
        self.templates.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Notifier for Sender {
    fn send<'a>(&'a self, integration: &'a Integration, msg: &'a Message) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let templates = self.templates();
            match integration {
                Integration::Webhook(c) => webhook::send(c, msg).await,
                Integration::Email(c) => {
                    let r = channels::Render { templates: &templates, data: msg.template_data(), integration: "email" };
                    let mail = email::build(c, &r)?;
                    let c = c.clone();
                    http::retry("email", move || email::send(&c, &mail)).await
                }
                other => {
                    let Some(req) = other.request(msg, &templates)? else { return Ok(()) };
                    let body = serde_json::to_vec(&req.body)
                        .map_err(|e| Error::Config { integration: other.kind().into(), message: e.to_string() })?;
                    let answer = http::post_json(
                        other.kind(),
                        &req.url,
                        &other.http_config(),
                        other.timeout(),
                        body,
                        &req.headers,
                    )
                    .await?;
                    // chat.postMessage answers 200 with {"ok": false, "error": ...} on failure.
                    if let Integration::Slack(_) = other {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&answer) {
                            if v["ok"] == false {
                                return Err(Error::Status {
                                    integration: "slack".into(),
                                    status: 200,
                                    body: v["error"].to_string(),
                                    retry: false,
                                });
                            }
                        }
                    }
                    Ok(())
                }
            }
        })
    }
}

/// A fake for pipeline tests: records every notification instead of sending it.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    sent: Arc<std::sync::Mutex<Vec<(String, Message)>>>,
}

impl Recording {
    /// Everything sent so far: (integration kind, message).
    pub fn sent(&self) -> Vec<(String, Message)> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Notifier for Recording {
    fn send<'a>(&'a self, integration: &'a Integration, msg: &'a Message) -> BoxFuture<'a, Result<(), Error>> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).push((integration.kind().to_string(), msg.clone()));
        Box::pin(async { Ok(()) })
    }
}
