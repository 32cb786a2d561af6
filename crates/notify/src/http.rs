//! HTTP delivery shared by the webhook-style channels: a POST with a timeout, retried with
//! exponential backoff on 429, 5xx and transport errors (as Alertmanager's notifiers).

use std::sync::Arc;
use std::time::Duration;

use crate::config::{HttpConfig, RETRIES};
use crate::Error;

/// The timeout of one attempt when the config gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause between attempts; doubled each time.
const BACKOFF: Duration = Duration::from_millis(500);

/// POSTs `body` as JSON to `url` with `headers`; returns the answer's body. Retried.
pub(crate) async fn post_json(
    integration: &str,
    url: &str,
    http: &HttpConfig,
    timeout: Duration,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<String, Error> {
    let auth = http.auth_header().map_err(|message| Error::Config { integration: integration.into(), message })?;
    let timeout = if timeout.is_zero() { DEFAULT_TIMEOUT } else { timeout };
    let mut headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    if let Some(a) = auth {
        headers.push(("authorization".into(), a));
    }
    let (u, name) = (url.to_string(), integration.to_string());
    retry(integration, move || post_once(&name, &u, &headers, &body, timeout)).await
}

/// Runs the blocking `attempt` on the blocking pool up to [`RETRIES`] times, pausing with
/// exponential backoff between retryable failures.
pub(crate) async fn retry<T: Send + 'static>(
    integration: &str,
    attempt: impl Fn() -> Result<T, Error> + Send + Sync + 'static,
) -> Result<T, Error> {
    let attempt = Arc::new(attempt);
    let mut pause = BACKOFF;
    let mut n = 0;
    loop {
        n += 1;
        let a = attempt.clone();
        let result = tokio::task::spawn_blocking(move || a())
            .await
            .unwrap_or_else(|e| Err(Error::Transport { integration: integration.into(), message: e.to_string() }));
        match result {
            Ok(v) => return Ok(v),
            Err(e) if e.retryable() && n < RETRIES => {
                tracing::debug!(integration, attempt = n, error = %e, "notification failed; retrying");
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
    body: &[u8],
    timeout: Duration,
) -> Result<String, Error> {
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
        .send(body)
        .map_err(|e| Error::Transport { integration: integration.into(), message: redact(&e.to_string(), url) })?;
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(text);
    }
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
