//! The HTTP channels: each builds the receiving service's documented request from a
//! [`Message`] and the receiver's Alertmanager-style config.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use telltale_template::{Env, Templates};

use crate::config::{read_secret_file, HttpConfig, Secret};
use crate::{Error, Message};

fn yes() -> bool {
    true
}

fn no() -> bool {
    false
}

/// An HTTP request a channel wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Where to POST.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Json,
}

/// Renders channel texts with the receiver's templates.
pub(crate) struct Render<'a> {
    pub(crate) templates: &'a Templates,
    pub(crate) data: telltale_template::Value,
    pub(crate) integration: &'a str,
}

impl Render<'_> {
    pub(crate) fn text(&self, t: &str) -> Result<String, Error> {
        if !t.contains("{{") {
            return Ok(t.to_string());
        }
        let env = Env::default();
        self.templates
            .render_str("__channel", t, &self.data, &env)
            .map_err(|e| Error::Config { integration: self.integration.into(), message: e.to_string() })
    }

    pub(crate) fn html(&self, t: &str) -> Result<String, Error> {
        let env = Env { html: true, ..Default::default() };
        self.templates
            .render_str("__channel", t, &self.data, &env)
            .map_err(|e| Error::Config { integration: self.integration.into(), message: e.to_string() })
    }
}

fn secret_or_file(integration: &str, s: &Secret, file: &str, what: &str) -> Result<String, Error> {
    if !file.is_empty() {
        return read_secret_file(file).map_err(|message| Error::Config { integration: integration.into(), message });
    }
    if s.is_empty() {
        return Err(Error::Config { integration: integration.into(), message: format!("no {what} configured") });
    }
    Ok(s.expose().to_string())
}

/// `hashKey`: the SHA-256 of the group key in hex, Alertmanager's dedup key/alias.
pub(crate) fn hash_key(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn truncate(s: String, n: usize) -> String {
    if s.chars().count() <= n {
        return s;
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

// ---------------------------------------------------------------- Slack

/// `slack_configs:` entry (<https://prometheus.io/docs/alerting/latest/configuration/#slack_config>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Notify about resolved alerts (default false, as Alertmanager).
    #[serde(default = "no")]
    pub send_resolved: bool,
    /// Incoming-webhook URL, or `https://slack.com/api/chat.postMessage` with a bot token
    /// in `http_config.authorization`.
    #[serde(default)]
    pub api_url: Secret,
    /// The URL read from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_url_file: String,
    /// Channel or user (`#alerts`, `@me`).
    #[serde(default)]
    pub channel: String,
    /// Sender name.
    #[serde(default = "SlackConfig::d_username")]
    pub username: String,
    /// Attachment color.
    #[serde(default = "SlackConfig::d_color")]
    pub color: String,
    /// Title.
    #[serde(default = "SlackConfig::d_title")]
    pub title: String,
    /// Title link.
    #[serde(default = "SlackConfig::d_title_link")]
    pub title_link: String,
    /// Text above the attachment.
    #[serde(default = "SlackConfig::d_pretext")]
    pub pretext: String,
    /// Body.
    #[serde(default = "SlackConfig::d_text")]
    pub text: String,
    /// Plain-text summary.
    #[serde(default = "SlackConfig::d_fallback")]
    pub fallback: String,
    /// Footer.
    #[serde(default = "SlackConfig::d_footer")]
    pub footer: String,
    /// Emoji icon.
    #[serde(default = "SlackConfig::d_icon_emoji")]
    pub icon_emoji: String,
    /// Icon URL.
    #[serde(default = "SlackConfig::d_icon_url")]
    pub icon_url: String,
    /// Callback id.
    #[serde(default = "SlackConfig::d_callback_id")]
    pub callback_id: String,
    /// Turn `@names` into mentions.
    #[serde(default)]
    pub link_names: bool,
    /// Fields with `mrkdwn` formatting.
    #[serde(default = "SlackConfig::d_mrkdwn")]
    pub mrkdwn_in: Vec<String>,
    /// Short fields of the attachment.
    #[serde(default)]
    pub fields: Vec<SlackField>,
    /// How long one attempt may take ("0s": 10s).
    #[serde(default, with = "telltale_model::units::duration")]
    pub timeout: Duration,
    /// Authentication (a bot token for chat.postMessage) and TLS.
    #[serde(default)]
    pub http_config: HttpConfig,
}

/// A Slack attachment field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    /// Title.
    pub title: String,
    /// Value.
    pub value: String,
    /// Side by side.
    #[serde(default)]
    pub short: Option<bool>,
}

impl SlackConfig {
    fn d_username() -> String {
        r#"{{ template "slack.default.username" . }}"#.into()
    }
    fn d_color() -> String {
        r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#.into()
    }
    fn d_title() -> String {
        r#"{{ template "slack.default.title" . }}"#.into()
    }
    fn d_title_link() -> String {
        r#"{{ template "slack.default.titlelink" . }}"#.into()
    }
    fn d_pretext() -> String {
        r#"{{ template "slack.default.pretext" . }}"#.into()
    }
    fn d_text() -> String {
        r#"{{ template "slack.default.text" . }}"#.into()
    }
    fn d_fallback() -> String {
        r#"{{ template "slack.default.fallback" . }}"#.into()
    }
    fn d_footer() -> String {
        r#"{{ template "slack.default.footer" . }}"#.into()
    }
    fn d_icon_emoji() -> String {
        r#"{{ template "slack.default.iconemoji" . }}"#.into()
    }
    fn d_icon_url() -> String {
        r#"{{ template "slack.default.iconurl" . }}"#.into()
    }
    fn d_callback_id() -> String {
        r#"{{ template "slack.default.callbackid" . }}"#.into()
    }
    fn d_mrkdwn() -> Vec<String> {
        vec!["fallback".into(), "pretext".into(), "text".into()]
    }

    pub(crate) fn request(&self, r: &Render<'_>) -> Result<Request, Error> {
        let url = secret_or_file("slack", &self.api_url, &self.api_url_file, "api_url")?;
        let mut att = json!({
            "title": r.text(&self.title)?,
            "title_link": r.text(&self.title_link)?,
            "pretext": r.text(&self.pretext)?,
            "text": r.text(&self.text)?,
            "fallback": r.text(&self.fallback)?,
            "callback_id": r.text(&self.callback_id)?,
            "footer": r.text(&self.footer)?,
            "color": r.text(&self.color)?,
            "mrkdwn_in": self.mrkdwn_in,
        });
        if !self.fields.is_empty() {
            let f: Result<Vec<Json>, Error> = self
                .fields
                .iter()
                .map(|f| Ok(json!({ "title": r.text(&f.title)?, "value": r.text(&f.value)?, "short": f.short.unwrap_or(false) })))
                .collect();
            att["fields"] = Json::Array(f?);
        }
        let mut body = json!({
            "channel": r.text(&self.channel)?,
            "username": r.text(&self.username)?,
            "attachments": [att],
        });
        let (emoji, icon) = (r.text(&self.icon_emoji)?, r.text(&self.icon_url)?);
        if !emoji.is_empty() {
            body["icon_emoji"] = json!(emoji);
        }
        if !icon.is_empty() {
            body["icon_url"] = json!(icon);
        }
        if self.link_names {
            body["link_names"] = json!(true);
        }
        Ok(Request { url, headers: Vec::new(), body })
    }
}

// ---------------------------------------------------------------- Microsoft Teams

/// `msteams_configs:` entry: an Office 365 connector card (MessageCard), as Alertmanager sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// Notify about resolved alerts (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// The incoming webhook URL.
    #[serde(default)]
    pub webhook_url: Secret,
    /// The URL read from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webhook_url_file: String,
    /// Card title.
    #[serde(default = "TeamsConfig::d_title")]
    pub title: String,
    /// Card summary (notification preview).
    #[serde(default = "TeamsConfig::d_summary")]
    pub summary: String,
    /// Card text (markdown).
    #[serde(default = "TeamsConfig::d_text")]
    pub text: String,
    /// How long one attempt may take ("0s": 10s).
    #[serde(default, with = "telltale_model::units::duration")]
    pub timeout: Duration,
    /// Authentication and TLS.
    #[serde(default)]
    pub http_config: HttpConfig,
}

impl TeamsConfig {
    fn d_title() -> String {
        r#"{{ template "msteams.default.title" . }}"#.into()
    }
    fn d_summary() -> String {
        r#"{{ template "msteams.default.summary" . }}"#.into()
    }
    fn d_text() -> String {
        r#"{{ template "msteams.default.text" . }}"#.into()
    }

    pub(crate) fn request(&self, r: &Render<'_>, msg: &Message) -> Result<Request, Error> {
        let url = secret_or_file("msteams", &self.webhook_url, &self.webhook_url_file, "webhook_url")?;
        // Alertmanager's colors: red while firing, green when resolved.
        let color = if msg.firing() { "8C1A1A" } else { "2DC72D" };
        let body = json!({
            "@context": "http://schema.org/extensions",
            "@type": "MessageCard",
            "title": r.text(&self.title)?,
            "summary": r.text(&self.summary)?,
            "text": r.text(&self.text)?,
            "themeColor": color,
        });
        Ok(Request { url, headers: Vec::new(), body })
    }
}

// ---------------------------------------------------------------- PagerDuty

/// `pagerduty_configs:` entry, Events API v2
/// (<https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// Notify about resolved alerts (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// The integration key of an Events API v2 integration.
    #[serde(default)]
    pub routing_key: Secret,
    /// The key read from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub routing_key_file: String,
    /// The integration key of an Events API v1 ("Prometheus") integration; sends v1 events.
    #[serde(default)]
    pub service_key: Secret,
    /// The v1 key read from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_key_file: String,
    /// The Events API URL (v2 `.../v2/enqueue`, or v1 `.../generic/2010-04-15/create_event.json`
    /// with `service_key`).
    #[serde(default = "PagerDutyConfig::d_url")]
    pub url: String,
    /// Name of the monitoring client.
    #[serde(default = "PagerDutyConfig::d_client")]
    pub client: String,
    /// Link to the monitoring client.
    #[serde(default = "PagerDutyConfig::d_client_url")]
    pub client_url: String,
    /// The incident summary.
    #[serde(default = "PagerDutyConfig::d_description")]
    pub description: String,
    /// `critical`, `error`, `warning` or `info`.
    #[serde(default = "PagerDutyConfig::d_severity")]
    pub severity: String,
    /// Where the problem is (default: the client).
    #[serde(default)]
    pub source: String,
    /// Event class.
    #[serde(default)]
    pub class: String,
    /// Component.
    #[serde(default)]
    pub component: String,
    /// Logical group.
    #[serde(default)]
    pub group: String,
    /// Custom details (templated values).
    #[serde(default = "PagerDutyConfig::d_details")]
    pub details: BTreeMap<String, String>,
    /// Links.
    #[serde(default)]
    pub links: Vec<PagerDutyLink>,
    /// How long one attempt may take ("0s": 10s).
    #[serde(default, with = "telltale_model::units::duration")]
    pub timeout: Duration,
    /// Authentication and TLS.
    #[serde(default)]
    pub http_config: HttpConfig,
}

/// A PagerDuty link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyLink {
    /// URL.
    pub href: String,
    /// Text.
    #[serde(default)]
    pub text: String,
}

impl PagerDutyConfig {
    fn d_url() -> String {
        String::new()
    }
    fn d_client() -> String {
        r#"{{ template "pagerduty.default.client" . }}"#.into()
    }
    fn d_client_url() -> String {
        r#"{{ template "pagerduty.default.clientURL" . }}"#.into()
    }
    fn d_description() -> String {
        r#"{{ template "pagerduty.default.description" .}}"#.into()
    }
    fn d_severity() -> String {
        "error".into()
    }
    fn d_details() -> BTreeMap<String, String> {
        [
            ("firing", r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#),
            ("resolved", r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#),
            ("num_firing", "{{ .Alerts.Firing | len }}"),
            ("num_resolved", "{{ .Alerts.Resolved | len }}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub(crate) fn request(&self, r: &Render<'_>, msg: &Message) -> Result<Request, Error> {
        if !self.service_key.is_empty() || !self.service_key_file.is_empty() {
            return self.request_v1(r, msg);
        }
        let key = secret_or_file("pagerduty", &self.routing_key, &self.routing_key_file, "routing_key")?;
        let action = if msg.firing() { "trigger" } else { "resolve" };
        let mut body = json!({
            "routing_key": key,
            "event_action": action,
            "dedup_key": hash_key(&msg.group_key),
        });
        if msg.firing() {
            let client = r.text(&self.client)?;
            let source = if self.source.is_empty() { client.clone() } else { r.text(&self.source)? };
            let details: Result<BTreeMap<String, String>, Error> =
                self.details.iter().map(|(k, v)| Ok((k.clone(), r.text(v)?))).collect();
            let mut payload = json!({
                // PagerDuty truncates at 1024 characters; so does Alertmanager.
                "summary": truncate(r.text(&self.description)?, 1024),
                "source": source,
                "severity": r.text(&self.severity)?,
                "custom_details": details?,
            });
            for (k, v) in [("class", &self.class), ("component", &self.component), ("group", &self.group)] {
                if !v.is_empty() {
                    payload[k] = json!(r.text(v)?);
                }
            }
            body["payload"] = payload;
            body["client"] = json!(client);
            body["client_url"] = json!(r.text(&self.client_url)?);
            if !self.links.is_empty() {
                let links: Result<Vec<Json>, Error> = self
                    .links
                    .iter()
                    .map(|l| Ok(json!({ "href": r.text(&l.href)?, "text": r.text(&l.text)? })))
                    .collect();
                body["links"] = Json::Array(links?);
            }
        }
        let url =
            if self.url.is_empty() { "https://events.pagerduty.com/v2/enqueue".to_string() } else { self.url.clone() };
        Ok(Request { url, headers: Vec::new(), body })
    }

    /// Events API v1 (<https://developer.pagerduty.com/docs/events-api-v1/overview/>), as
    /// Alertmanager sends with `service_key`.
    fn request_v1(&self, r: &Render<'_>, msg: &Message) -> Result<Request, Error> {
        let key = secret_or_file("pagerduty", &self.service_key, &self.service_key_file, "service_key")?;
        let details: Result<BTreeMap<String, String>, Error> =
            self.details.iter().map(|(k, v)| Ok((k.clone(), r.text(v)?))).collect();
        let mut body = json!({
            "service_key": key,
            "event_type": if msg.firing() { "trigger" } else { "resolve" },
            "incident_key": hash_key(&msg.group_key),
            "description": truncate(r.text(&self.description)?, 1024),
            "details": details?,
        });
        if msg.firing() {
            body["client"] = json!(r.text(&self.client)?);
            body["client_url"] = json!(r.text(&self.client_url)?);
        }
        let url = if self.url.is_empty() {
            "https://events.pagerduty.com/generic/2010-04-15/create_event.json".to_string()
        } else {
            self.url.clone()
        };
        Ok(Request { url, headers: Vec::new(), body })
    }
}

// ---------------------------------------------------------------- Opsgenie

/// `opsgenie_configs:` entry (<https://docs.opsgenie.com/docs/alert-api>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieConfig {
    /// Notify about resolved alerts (closes the Opsgenie alert; default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// The API key of an API integration.
    #[serde(default)]
    pub api_key: Secret,
    /// The key read from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_key_file: String,
    /// The API's base URL.
    #[serde(default = "OpsgenieConfig::d_url")]
    pub api_url: String,
    /// Alert text (130 characters at most).
    #[serde(default = "OpsgenieConfig::d_message")]
    pub message: String,
    /// Description.
    #[serde(default = "OpsgenieConfig::d_description")]
    pub description: String,
    /// Source.
    #[serde(default = "OpsgenieConfig::d_source")]
    pub source: String,
    /// Extra properties.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    /// Entity.
    #[serde(default)]
    pub entity: String,
    /// Comma-separated tags.
    #[serde(default)]
    pub tags: String,
    /// Note.
    #[serde(default)]
    pub note: String,
    /// P1 to P5.
    #[serde(default)]
    pub priority: String,
    /// Who is notified.
    #[serde(default)]
    pub responders: Vec<OpsgenieResponder>,
    /// How long one attempt may take ("0s": 10s).
    #[serde(default, with = "telltale_model::units::duration")]
    pub timeout: Duration,
    /// Authentication and TLS.
    #[serde(default)]
    pub http_config: HttpConfig,
}

/// An Opsgenie responder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieResponder {
    /// `team`, `user`, `escalation`, `schedule`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// User name.
    #[serde(default)]
    pub username: String,
}

impl OpsgenieConfig {
    fn d_url() -> String {
        "https://api.opsgenie.com/".into()
    }
    fn d_message() -> String {
        r#"{{ template "opsgenie.default.message" . }}"#.into()
    }
    fn d_description() -> String {
        r#"{{ template "opsgenie.default.description" . }}"#.into()
    }
    fn d_source() -> String {
        r#"{{ template "opsgenie.default.source" . }}"#.into()
    }

    pub(crate) fn request(&self, r: &Render<'_>, msg: &Message) -> Result<Request, Error> {
        let key = secret_or_file("opsgenie", &self.api_key, &self.api_key_file, "api_key")?;
        let base = if self.api_url.ends_with('/') { self.api_url.clone() } else { format!("{}/", self.api_url) };
        let alias = hash_key(&msg.group_key);
        let headers = vec![("authorization", format!("GenieKey {key}"))];
        if !msg.firing() {
            return Ok(Request {
                url: format!("{base}v2/alerts/{alias}/close?identifierType=alias"),
                headers,
                body: json!({ "source": r.text(&self.source)? }),
            });
        }
        let mut details: BTreeMap<String, String> = msg.common_labels.clone();
        for (k, v) in &self.details {
            details.insert(k.clone(), r.text(v)?);
        }
        let mut body = json!({
            "alias": alias,
            "message": truncate(r.text(&self.message)?, 130),
            "description": truncate(r.text(&self.description)?, 15000),
            "details": details,
            "source": r.text(&self.source)?,
        });
        let tags: Vec<String> =
            r.text(&self.tags)?.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
        if !tags.is_empty() {
            body["tags"] = json!(tags);
        }
        for (k, v) in [("entity", &self.entity), ("note", &self.note), ("priority", &self.priority)] {
            if !v.is_empty() {
                body[k] = json!(r.text(v)?);
            }
        }
        if !self.responders.is_empty() {
            let rs: Vec<Json> = self
                .responders
                .iter()
                .map(|x| {
                    let mut o = json!({ "type": x.kind });
                    for (k, v) in [("id", &x.id), ("name", &x.name), ("username", &x.username)] {
                        if !v.is_empty() {
                            o[k] = json!(v);
                        }
                    }
                    o
                })
                .collect();
            body["responders"] = Json::Array(rs);
        }
        Ok(Request { url: format!("{base}v2/alerts"), headers, body })
    }
}

// ---------------------------------------------------------------- Telegram

/// `telegram_configs:` entry (<https://core.telegram.org/bots/api#sendmessage>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Notify about resolved alerts (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// The Bot API's base URL.
    #[serde(default = "TelegramConfig::d_url")]
    pub api_url: String,
    /// The bot's token.
    #[serde(default)]
    pub bot_token: Secret,
    /// The token read from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bot_token_file: String,
    /// The chat to post to.
    pub chat_id: i64,
    /// A forum topic.
    #[serde(default)]
    pub message_thread_id: Option<i64>,
    /// The text.
    #[serde(default = "TelegramConfig::d_message")]
    pub message: String,
    /// Silent notification.
    #[serde(default)]
    pub disable_notifications: bool,
    /// `HTML` (default), `MarkdownV2`, `Markdown`, or empty.
    #[serde(default = "TelegramConfig::d_parse_mode")]
    pub parse_mode: String,
    /// How long one attempt may take ("0s": 10s).
    #[serde(default, with = "telltale_model::units::duration")]
    pub timeout: Duration,
    /// Authentication and TLS.
    #[serde(default)]
    pub http_config: HttpConfig,
}

impl TelegramConfig {
    fn d_url() -> String {
        "https://api.telegram.org".into()
    }
    fn d_message() -> String {
        r#"{{ template "telegram.default.message" . }}"#.into()
    }
    fn d_parse_mode() -> String {
        "HTML".into()
    }

    pub(crate) fn request(&self, r: &Render<'_>) -> Result<Request, Error> {
        let token = secret_or_file("telegram", &self.bot_token, &self.bot_token_file, "bot_token")?;
        let mut body = json!({
            "chat_id": self.chat_id,
            // Telegram's limit is 4096 characters.
            "text": truncate(r.text(&self.message)?, 4096),
            "disable_notification": self.disable_notifications,
        });
        if !self.parse_mode.is_empty() {
            body["parse_mode"] = json!(self.parse_mode);
        }
        if let Some(t) = self.message_thread_id {
            body["message_thread_id"] = json!(t);
        }
        Ok(Request {
            url: format!("{}/bot{token}/sendMessage", self.api_url.trim_end_matches('/')),
            headers: Vec::new(),
            body,
        })
    }
}

// ---------------------------------------------------------------- Discord

/// `discord_configs:` entry (<https://discord.com/developers/docs/resources/webhook#execute-webhook>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// Notify about resolved alerts (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// The webhook URL.
    #[serde(default)]
    pub webhook_url: Secret,
    /// The URL read from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webhook_url_file: String,
    /// Embed title.
    #[serde(default = "DiscordConfig::d_title")]
    pub title: String,
    /// Embed description.
    #[serde(default = "DiscordConfig::d_message")]
    pub message: String,
    /// Message content outside the embed (mentions).
    #[serde(default)]
    pub content: String,
    /// How long one attempt may take ("0s": 10s).
    #[serde(default, with = "telltale_model::units::duration")]
    pub timeout: Duration,
    /// Authentication and TLS.
    #[serde(default)]
    pub http_config: HttpConfig,
}

impl DiscordConfig {
    fn d_title() -> String {
        r#"{{ template "discord.default.title" . }}"#.into()
    }
    fn d_message() -> String {
        r#"{{ template "discord.default.message" . }}"#.into()
    }

    pub(crate) fn request(&self, r: &Render<'_>, msg: &Message) -> Result<Request, Error> {
        let url = secret_or_file("discord", &self.webhook_url, &self.webhook_url_file, "webhook_url")?;
        // Alertmanager's colors (Discord's dark red and green).
        let color = if msg.firing() { 0x992D22 } else { 0x2ECC71 };
        let mut body = json!({
            "embeds": [{
                // Discord's limits: title 256, description 4096.
                "title": truncate(r.text(&self.title)?, 256),
                "description": truncate(r.text(&self.message)?, 4096),
                "color": color,
            }],
        });
        if !self.content.is_empty() {
            body["content"] = json!(truncate(r.text(&self.content)?, 2000));
        }
        Ok(Request { url, headers: Vec::new(), body })
    }
}

/// How long one attempt may take for channels without their own timeout.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);
