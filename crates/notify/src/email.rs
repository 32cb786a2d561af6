//! Email over SMTP (lettre): STARTTLS (required by default, as Alertmanager's
//! `require_tls`), implicit TLS on port 465, AUTH PLAIN/LOGIN, a text and an HTML part.

use std::collections::BTreeMap;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

use crate::channels::Render;
use crate::config::{read_secret_file, Secret};
use crate::Error;

/// `tls_config:` as Alertmanager reads it (the parts SMTP uses).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA to trust (besides the Mozilla roots).
    pub ca_file: String,
    /// Name to check the certificate against (default: the smarthost's host).
    pub server_name: String,
    /// Accept any certificate (tests only).
    pub insecure_skip_verify: bool,
    /// Client certificate; accepted for compatibility, not used.
    pub cert_file: String,
    /// Client key; accepted for compatibility, not used.
    pub key_file: String,
    /// Lowest TLS version; accepted for compatibility.
    pub min_version: String,
}

/// `email_configs:` entry (<https://prometheus.io/docs/alerting/latest/configuration/#email_config>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Notify about resolved alerts (default false, as Alertmanager).
    #[serde(default)]
    pub send_resolved: bool,
    /// Recipients, comma-separated.
    pub to: String,
    /// Sender (default `global.smtp_from`).
    #[serde(default)]
    pub from: String,
    /// `host:port` of the SMTP server (default `global.smtp_smarthost`).
    #[serde(default)]
    pub smarthost: String,
    /// Name sent in EHLO (default `localhost`).
    #[serde(default)]
    pub hello: String,
    /// AUTH user.
    #[serde(default)]
    pub auth_username: String,
    /// AUTH password.
    #[serde(default)]
    pub auth_password: Secret,
    /// AUTH password from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_password_file: String,
    /// Accepted for compatibility (CRAM-MD5 secret); not used.
    #[serde(default)]
    pub auth_secret: Secret,
    /// Accepted for compatibility (PLAIN identity); not used.
    #[serde(default)]
    pub auth_identity: String,
    /// Insist on STARTTLS (default `global.smtp_require_tls`, true).
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// TLS settings.
    #[serde(default)]
    pub tls_config: TlsConfig,
    /// How long the SMTP conversation may take ("0s": 10s).
    #[serde(default, with = "telltale_model::units::duration")]
    pub timeout: std::time::Duration,
    /// Extra headers; `Subject`, `To`, `From` override the defaults (templated).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTML body.
    #[serde(default = "EmailConfig::d_html")]
    pub html: String,
    /// Text body.
    #[serde(default = "EmailConfig::d_text")]
    pub text: String,
}

impl EmailConfig {
    fn d_html() -> String {
        r#"{{ template "email.default.html" . }}"#.into()
    }
    fn d_text() -> String {
        r#"{{ template "email.default.text" . }}"#.into()
    }

    /// Fills unset fields from `global:`.
    pub fn apply_globals(&mut self, g: &crate::GlobalConfig) {
        if self.from.is_empty() {
            self.from = g.smtp_from.clone();
        }
        if self.smarthost.is_empty() {
            self.smarthost = g.smtp_smarthost.clone();
        }
        if self.hello.is_empty() {
            self.hello = g.smtp_hello.clone();
        }
        if self.auth_username.is_empty() {
            self.auth_username = g.smtp_auth_username.clone();
        }
        if self.auth_password.is_empty() && self.auth_password_file.is_empty() {
            self.auth_password = g.smtp_auth_password.clone();
            self.auth_password_file = g.smtp_auth_password_file.clone();
        }
        if self.require_tls.is_none() {
            self.require_tls = Some(g.smtp_require_tls);
        }
    }
}

fn err(message: impl Into<String>) -> Error {
    Error::Config { integration: "email".into(), message: message.into() }
}

/// Builds the mail: `Subject`/`From`/`To` from headers (templated), multipart text + HTML.
pub(crate) fn build(c: &EmailConfig, r: &Render<'_>) -> Result<lettre::Message, Error> {
    let mut headers = c.headers.clone();
    headers.entry("Subject".into()).or_insert_with(|| r#"{{ template "email.default.subject" . }}"#.into());
    headers.entry("To".into()).or_insert_with(|| c.to.clone());
    headers.entry("From".into()).or_insert_with(|| c.from.clone());
    let get =
        |k: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone()).unwrap_or_default();
    let from: Mailbox = r.text(&get("From"))?.parse().map_err(|e| err(format!("bad from address: {e}")))?;
    let mut b = lettre::Message::builder().from(from).subject(r.text(&get("Subject"))?.replace(['\r', '\n'], " "));
    for to in r.text(&get("To"))?.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        b = b.to(to.parse().map_err(|e| err(format!("bad to address {to:?}: {e}")))?);
    }
    let text = r.text(&c.text)?;
    let html = r.html(&c.html)?;
    let body = match (text.is_empty(), html.is_empty()) {
        (false, false) => MultiPart::alternative()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
        (true, false) => MultiPart::mixed().singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
        _ => MultiPart::mixed().singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text)),
    };
    b.multipart(body).map_err(|e| err(e.to_string()))
}

/// Sends `mail` through the configured smarthost (blocking; call on the blocking pool).
pub(crate) fn send(c: &EmailConfig, mail: &lettre::Message) -> Result<(), Error> {
    let (host, port) = c.smarthost.rsplit_once(':').ok_or_else(|| err("smarthost must be host:port"))?;
    let port: u16 = port.parse().map_err(|_| err("smarthost port is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = if c.tls_config.server_name.is_empty() { host.to_string() } else { c.tls_config.server_name.clone() };
    let mut tls = TlsParameters::builder(name);
    if !c.tls_config.ca_file.is_empty() {
        let pem = std::fs::read(&c.tls_config.ca_file)
            .map_err(|e| err(format!("cannot read {}: {e}", c.tls_config.ca_file)))?;
        tls = tls.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| err(e.to_string()))?);
    }
    if c.tls_config.insecure_skip_verify {
        tls = tls.dangerous_accept_invalid_certs(true).dangerous_accept_invalid_hostnames(true);
    }
    let tls = tls.build_rustls().map_err(|e| err(e.to_string()))?;
    let mode = if port == 465 {
        Tls::Wrapper(tls)
    } else if c.require_tls.unwrap_or(true) {
        Tls::Required(tls)
    } else {
        Tls::Opportunistic(tls)
    };
    let hello = if c.hello.is_empty() { "localhost".to_string() } else { c.hello.clone() };
    let mut t = SmtpTransport::builder_dangerous(host)
        .port(port)
        .tls(mode)
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(hello))
        .timeout(Some(if c.timeout.is_zero() { crate::channels::TIMEOUT } else { c.timeout }));
    if !c.auth_username.is_empty() {
        let pw = if c.auth_password_file.is_empty() {
            c.auth_password.expose().to_string()
        } else {
            read_secret_file(&c.auth_password_file).map_err(err)?
        };
        // One mechanism, as Alertmanager picks one from those the server offers: PLAIN
        // (over TLS), which every server with AUTH supports.
        t = t.credentials(Credentials::new(c.auth_username.clone(), pw)).authentication(vec![Mechanism::Plain]);
    }
    t.build().send(mail).map(|_| ()).map_err(|e| {
        let message = e.to_string();
        match e.status() {
            // 5xx answers (bad credentials, refused recipient) will not change on a retry.
            Some(code) if e.is_permanent() => {
                Error::Status { integration: "email".into(), status: u16::from(code), body: message, retry: false }
            }
            _ => Error::Transport { integration: "email".into(), message },
        }
    })
}
