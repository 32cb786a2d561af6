//! The notification data model: Alertmanager's webhook payload (version 4), also the data
//! every channel's templates see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use telltale_template::Value;

/// One notification for one group of alerts (Alertmanager's `template.Data` plus the
/// webhook envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Always `"4"`.
    pub version: String,
    /// The group's key (route and group labels).
    pub group_key: String,
    /// Alerts left out by `max_alerts`.
    pub truncated_alerts: usize,
    /// `firing` if any alert fires, else `resolved`.
    pub status: String,
    /// The receiver's name.
    pub receiver: String,
    /// The labels the group is grouped by.
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert has.
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert has.
    pub common_annotations: BTreeMap<String, String>,
    /// Telltale's external URL.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<MessageAlert>,
}

/// One alert in a [`Message`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; Go's zero time while firing without an end.
    pub ends_at: String,
    /// Link to the source.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// The label set's fingerprint (16 hex digits).
    pub fingerprint: String,
    /// The value when a Telltale rule sent it (not part of Alertmanager's payload).
    #[serde(skip)]
    pub value: Option<f64>,
}

impl Message {
    /// Whether any alert fires.
    pub fn firing(&self) -> bool {
        self.status == "firing"
    }

    /// The message as template data (`.Status`, `.Alerts.Firing`, `.CommonLabels`, ...).
    pub fn template_data(&self) -> Value {
        let alerts = self
            .alerts
            .iter()
            .map(|a| {
                let mut m = vec![
                    ("Status", Value::str(a.status.clone())),
                    ("Labels", Value::string_map(a.labels.clone())),
                    ("Annotations", Value::string_map(a.annotations.clone())),
                    ("StartsAt", Value::Time(parse_ms(&a.starts_at))),
                    ("EndsAt", Value::Time(parse_ms(&a.ends_at))),
                    ("GeneratorURL", Value::str(a.generator_url.clone())),
                    ("Fingerprint", Value::str(a.fingerprint.clone())),
                ];
                m.push(("HasValue", Value::Bool(a.value.is_some())));
                m.push(("Value", Value::Float(a.value.unwrap_or(f64::NAN))));
                Value::map(m)
            })
            .collect();
        Value::map([
            ("Receiver", Value::str(self.receiver.clone())),
            ("Status", Value::str(self.status.clone())),
            ("Alerts", Value::List(alerts)),
            ("GroupLabels", Value::string_map(self.group_labels.clone())),
            ("CommonLabels", Value::string_map(self.common_labels.clone())),
            ("CommonAnnotations", Value::string_map(self.common_annotations.clone())),
            ("ExternalURL", Value::str(self.external_url.clone())),
            ("GroupKey", Value::str(self.group_key.clone())),
        ])
    }
}

/// Milliseconds from an RFC 3339 time (Go's zero time for anything unreadable).
fn parse_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()).unwrap_or(-62_135_596_800_000)
}
