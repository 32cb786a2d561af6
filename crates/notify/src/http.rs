//! HTTP delivery shared by the webhook-style channels: a POST with a timeout, retried with
//! exponential backoff on 429, 5xx and transport errors (as Alertmanager's notifiers).

use std::time::Duration;

use crate::config::{HttpConfig, RETRIES};
use crate::Error;

/// The timeout of one attempt when the config gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause between attempts; doubled each time.
const BACKOFF: Duration = Duration::from_millis(500);

/// POSTs `body` as JSON to `url`; `headers` are added. Retries up to [`RETRIES`] times.
pub(crate) async fn post_json(
    integration: &str,
    url: &str,
    http: &HttpConfig,
    timeout: Duration,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(), Error> {
    let auth = http.auth_header().map_err(|message| Error::Config { integration: integration.into(), message })?;
    let timeout = if timeout.is_zero() { DEFAULT_TIMEOUT } else { timeout };
    let mut headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    if let Some(a) = auth {
        headers.push(("authorization".into(), a));
    }
    let mut pause = BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (u, b, h, name) = (url.to_string(), body.clone(), headers.clone(), integration.to_string());
        let result = tokio::task::spawn_blocking(move || post_once(&name, &u, &h, b, timeout))
            .await
            .unwrap_or_else(|e| Err(Error::Transport { integration: integration.into(), message: e.to_string() }));
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.retryable() && attempt < RETRIES => {
                tracing::debug!(integration, attempt, error = %e, "notification failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

fn post_once(
    integration: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(), Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent("Telltale")
        .build()
        .into();
    let mut req = agent.post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    // The URL may carry a token: errors name the integration, never the URL.
    let mut res = req
        .send(&body[..])
        .map_err(|e| Error::Transport { integration: integration.into(), message: redact(&e.to_string(), url) })?;
    let status = res.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = res.body_mut().read_to_string().unwrap_or_default();
    let body: String = text.chars().take(200).collect();
    Err(Error::Status { integration: integration.into(), status, body, retry: status == 429 || status >= 500 })
}

fn redact(msg: &str, url: &str) -> String {
    if url.is_empty() {
        msg.to_string()
    } else {
        msg.replace(url, "<secret>")
    }
}
