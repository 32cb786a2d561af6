//! OTLP/HTTP logs (`POST /v1/logs`) into a [`LogBatch`], mapped the way Loki 3 maps them
//! (<https://grafana.com/docs/loki/latest/send-data/otel/>):
//!
//! - stream labels: the resource attributes Loki promotes by default (`service.name`,
//!   `service.namespace`, `service.instance.id`, `deployment.environment`, the `k8s.*` names,
//!   `cloud.region`, ...), with dots as `_`; `service_name="unknown_service"` when there is no
//!   `service.name`;
//! - the line: the body (a string as is; other values as JSON);
//! - structured metadata: the other resource attributes, the scope's name, version and
//!   attributes (`scope_name`, ...), the record's attributes, `severity_text`,
//!   `severity_number`, `trace_id` and `span_id` (hex), `flags`; names sanitized to label names;
//! - the time: `time_unix_nano`, else `observed_time_unix_nano`, else the server's clock.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use prost::Message;
use telltale_model::{LogBatch, Nanos};

use super::error::{Error, Result};
use crate::loglimits::{sanitize_label_name, LogBuilder, LogLimits};

/// Resource attributes that become stream labels (Loki's `default_resource_attributes_as_index_labels`).
const INDEX_LABELS: &[&str] = &[
    "cloud.availability_zone",
    "cloud.region",
    "container.name",
    "deployment.environment",
    "deployment.environment.name",
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.cronjob.name",
    "k8s.daemonset.name",
    "k8s.deployment.name",
    "k8s.job.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.replicaset.name",
    "k8s.statefulset.name",
    "service.instance.id",
    "service.name",
    "service.namespace",
];

/// Decodes a protobuf `ExportLogsServiceRequest`.
pub fn decode_logs_proto(body: &[u8], now: Nanos, limits: &LogLimits) -> Result<LogBatch> {
    let req = ExportLogsServiceRequest::decode(body).map_err(Error::Protobuf)?;
    convert(req, now, limits)
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`.
pub fn decode_logs_json(body: &[u8], now: Nanos, limits: &LogLimits) -> Result<LogBatch> {
    let req = super::json::parse_logs(body).map_err(Error::Json)?;
    convert(req, now, limits)
}

/// An attribute value as text: strings as they are, the rest as JSON.
fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => format!("{d}"),
        Some(_) => json(v).to_string(),
        None => String::new(),
    }
}

fn json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.value {
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(json).collect()),
        Some(Value::KvlistValue(kv)) => {
            J::Object(kv.values.iter().map(|x| (x.key.clone(), x.value.as_ref().map_or(J::Null, json))).collect())
        }
        Some(Value::BytesValue(b)) => J::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        // A reference into a profile's string table: meaningless outside profiles.
        Some(_) | None => J::Null,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attrs(kvs: &[KeyValue], prefix: &str, out: &mut Vec<(String, String)>) {
    for kv in kvs {
        let v = kv.value.as_ref().map(text).unwrap_or_default();
        if !v.is_empty() {
            out.push((format!("{prefix}{}", sanitize_label_name(&kv.key)), v));
        }
    }
}

fn convert(req: ExportLogsServiceRequest, now: Nanos, limits: &LogLimits) -> Result<LogBatch> {
    let mut b = LogBuilder::new(limits);
    let bad = |e: crate::Error| Error::Json(serde::de::Error::custom(e.to_string()));
    for rl in &req.resource_logs {
        let resource = rl.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let mut label_pairs: Vec<(String, String)> = Vec::new();
        let mut resource_meta: Vec<(String, String)> = Vec::new();
        for kv in resource {
            let v = kv.value.as_ref().map(text).unwrap_or_default();
            if v.is_empty() {
                continue;
            }
            if INDEX_LABELS.contains(&kv.key.as_str()) {
                label_pairs.push((sanitize_label_name(&kv.key), v));
            } else {
                resource_meta.push((sanitize_label_name(&kv.key), v));
            }
        }
        if !label_pairs.iter().any(|(k, _)| k == "service_name") {
            label_pairs.push(("service_name".into(), "unknown_service".into()));
        }
        let stream = b.stream(label_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(bad)?;
        for sl in &rl.scope_logs {
            let mut scope_meta = Vec::new();
            if let Some(s) = &sl.scope {
                if !s.name.is_empty() {
                    scope_meta.push(("scope_name".to_string(), s.name.clone()));
                }
                if !s.version.is_empty() {
                    scope_meta.push(("scope_version".to_string(), s.version.clone()));
                }
                attrs(&s.attributes, "", &mut scope_meta);
            }
            for r in &sl.log_records {
                let ts = [r.time_unix_nano, r.observed_time_unix_nano]
                    .into_iter()
                    .find(|t| *t != 0)
                    .map_or(now, |t| t as i64);
                let line = r.body.as_ref().map(text).unwrap_or_default();
                let mut meta: Vec<(String, String)> = resource_meta.clone();
                meta.extend(scope_meta.iter().cloned());
                attrs(&r.attributes, "", &mut meta);
                if !r.severity_text.is_empty() {
                    meta.push(("severity_text".into(), r.severity_text.clone()));
                }
                if r.severity_number != 0 {
                    meta.push(("severity_number".into(), r.severity_number.to_string()));
                }
                if !r.trace_id.is_empty() {
                    meta.push(("trace_id".into(), hex(&r.trace_id)));
                }
                if !r.span_id.is_empty() {
                    meta.push(("span_id".into(), hex(&r.span_id)));
                }
                if r.flags != 0 {
                    meta.push(("flags".into(), r.flags.to_string()));
                }
                // Later pairs (record attributes) win over earlier ones (resource) on a clash.
                let mut dedup: Vec<(&str, &str)> = Vec::new();
                for (k, v) in meta.iter().rev() {
                    if !dedup.iter().any(|(dk, _)| dk == k) {
                        dedup.push((k.as_str(), v.as_str()));
                    }
                }
                let m = b.metadata(dedup).map_err(bad)?;
                b.entry(&stream, ts, &line, m).map_err(bad)?;
            }
        }
    }
    Ok(b.batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_like_loki() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"checkout"}},
            {"key":"k8s.pod.name","value":{"stringValue":"pod-1"}},
            {"key":"host.name","value":{"stringValue":"node-7"}}]},
          "scopeLogs":[{"scope":{"name":"app.logger","version":"1.2"},"logRecords":[
            {"timeUnixNano":"1700000000000000001","severityNumber":9,"severityText":"INFO",
             "body":{"stringValue":"order placed"},
             "attributes":[{"key":"order.id","value":{"intValue":"42"}}],
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},
            {"observedTimeUnixNano":"1700000000000000002","body":{"kvlistValue":{"values":[{"key":"a","value":{"boolValue":true}}]}}}]}]}]}"#;
        let b = decode_logs_json(body, 7, &LogLimits::default()).unwrap();
        let rows: Vec<(String, i64, String, String)> = b
            .iter()
            .flat_map(|(l, es)| es.iter().map(move |e| (l.to_string(), e.ts, e.line.clone(), e.metadata.to_string())))
            .collect();
        assert_eq!(rows[0].0, r#"{k8s_pod_name="pod-1", service_name="checkout"}"#);
        assert_eq!((rows[0].1, rows[0].2.as_str()), (1_700_000_000_000_000_001, "order placed"));
        assert_eq!(
            rows[0].3,
            r#"{host_name="node-7", order_id="42", scope_name="app.logger", scope_version="1.2", severity_number="9", severity_text="INFO", span_id="eee19b7ec3c1b174", trace_id="5b8efff798038103d269b633813fc60c"}"#
        );
        assert_eq!((rows[1].1, rows[1].2.as_str()), (1_700_000_000_000_000_002, r#"{"a":true}"#));
    }

    #[test]
    fn protobuf_and_defaults() {
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        body: Some(AnyValue { value: Some(Value::StringValue("hi".into())) }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let b = decode_logs_proto(&req.encode_to_vec(), 99, &LogLimits::default()).unwrap();
        let (l, es) = b.iter().next().unwrap();
        assert_eq!(l.to_string(), r#"{service_name="unknown_service"}"#);
        assert_eq!((es[0].ts, es[0].line.as_str()), (99, "hi"));
        assert!(decode_logs_proto(b"\xff\xff", 0, &LogLimits::default()).is_err());
        assert!(decode_logs_json(b"[]", 0, &LogLimits::default()).is_err());
    }
}
