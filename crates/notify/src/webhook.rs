//! Generic webhook: POSTs Alertmanager's JSON (version 4) so existing webhook receivers
//! work unchanged (<https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>).

use crate::config::WebhookConfig;
use crate::http::post_json;
use crate::{Error, Message};

pub(crate) async fn send(c: &WebhookConfig, msg: &Message) -> Result<(), Error> {
    let name = "webhook";
    let url = c.endpoint().map_err(|message| Error::Config { integration: name.into(), message })?;
    let mut msg = msg.clone();
    if c.max_alerts > 0 && msg.alerts.len() > c.max_alerts {
        msg.truncated_alerts = msg.alerts.len() - c.max_alerts;
        msg.alerts.truncate(c.max_alerts);
    }
    let body =
        serde_json::to_vec(&msg).map_err(|e| Error::Config { integration: name.into(), message: e.to_string() })?;
    post_json(name, &url, &c.http_config, c.timeout, body, &[]).await.map(|_| ())
}
