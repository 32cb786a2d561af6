//! The Elasticsearch `_bulk` API (NDJSON) into a [`LogBatch`], so Filebeat, Logstash, Fluent
//! Bit, Vector and the Elasticsearch clients ship logs unchanged.
//!
//! Spec: <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html>.
//!
//! Mapping (decisions, also in `docs/logs.md`):
//! - `index` and `create` actions store their document; `delete` and `update` are answered
//!   with a per-item 400 (logs are append-only), as is a document without an index name.
//! - The index (the action's `_index`, else the one in the path) becomes the stream label
//!   `index`; nothing else becomes a label, so documents never multiply streams.
//! - The line is the first string of `message`, `msg`, `log` (Logstash, Bunyan, Docker); a
//!   document without one is kept whole as compact JSON.
//! - `@timestamp` (RFC 3339 or epoch milliseconds) is the time; without it, the server's clock.
//! - Every other field is kept as structured metadata: nested objects flattened with `_`
//!   (`http.request.method` becomes `http_request_method`, names sanitized as Loki does for
//!   OTLP), strings as they are, other values as compact JSON.
//! - One malformed document fails its item, not the request (as Elasticsearch does); a
//!   malformed action line fails the whole request.

use serde_json::{Map, Value};
use telltale_model::{Labels, LogBatch, Nanos};

use crate::error::{excerpt, Error, Result};
use crate::loglimits::{sanitize_label_name, LogBuilder, LogLimits};
use crate::loki::parse_rfc3339_ns;

/// A bulk action's outcome, for the response's `items`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem {
    /// `index`, `create`, `delete` or `update`.
    pub action: String,
    /// The index it named (or the path's).
    pub index: String,
    /// The `_id` given, if any.
    pub id: Option<String>,
    /// Why it was not stored (`type`, `reason`), or `None` when it was.
    pub error: Option<(String, String)>,
}

/// A decoded bulk request: what to store, and one item per action.
#[derive(Debug, Clone, Default)]
pub struct Bulk {
    /// The documents to store.
    pub batch: LogBatch,
    /// Per action, in request order.
    pub items: Vec<BulkItem>,
}

/// Decodes a bulk body. `default_index` is the `/<index>/_bulk` path segment; `now` the time
/// given to documents without `@timestamp`.
pub fn decode(body: &[u8], default_index: Option<&str>, now: Nanos, limits: &LogLimits) -> Result<Bulk> {
    let mut b = LogBuilder::new(limits);
    let mut items = Vec::new();
    let mut lines = body.split(|&c| c == b'\n').enumerate().filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace));
    let mut streams: Vec<(String, Labels)> = Vec::new();
    while let Some((n, action_line)) = lines.next() {
        let lineno = n + 1;
        let action: Map<String, Value> = serde_json::from_slice(action_line).map_err(|e| {
            Error::syntax(lineno, format!("malformed action/metadata line: {e}: {}", excerpt(action_line)))
        })?;
        let Some((kind, meta)) = action.into_iter().next() else {
            return Err(Error::syntax(lineno, "malformed action/metadata line: empty object"));
        };
        let meta = match meta {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let index = meta.get("_index").and_then(Value::as_str).or(default_index).unwrap_or("").to_string();
        let id = meta
            .get("_id")
            .and_then(|v| v.as_str().map(str::to_string).or_else(|| Some(v.to_string())))
            .filter(|s| s != "null");
        let mut item = BulkItem { action: kind.clone(), index: index.clone(), id, error: None };
        match kind.as_str() {
            "index" | "create" => {
                let Some((_, doc_line)) = lines.next() else {
                    return Err(Error::syntax(lineno, "the last action has no document line"));
                };
                if index.is_empty() {
                    item.error = Some(("action_request_validation_exception".into(), "index is missing".into()));
                    items.push(item);
                    continue;
                }
                match serde_json::from_slice::<Map<String, Value>>(doc_line) {
                    Ok(doc) => {
                        let stream = match streams.iter().find(|(i, _)| *i == index) {
                            Some((_, l)) => l.clone(),
                            None => {
                                let l = b.stream([("index", index.as_str())])?;
                                streams.push((index.clone(), l.clone()));
                                l
                            }
                        };
                        if let Err(e) = store(&mut b, &stream, doc, now) {
                            item.error = Some(("document_parsing_exception".into(), e));
                        }
                    }
                    Err(e) => {
                        item.error =
                            Some(("document_parsing_exception".into(), format!("failed to parse the document: {e}")));
                    }
                }
            }
            "delete" => {
                item.error =
                    Some(("illegal_argument_exception".into(), "logs are append-only: delete is not supported".into()))
            }
            "update" => {
                lines.next();
                item.error =
                    Some(("illegal_argument_exception".into(), "logs are append-only: update is not supported".into()));
            }
            other => {
                return Err(Error::syntax(lineno, format!("malformed action/metadata line: unknown action {other:?}")));
            }
        }
        items.push(item);
    }
    Ok(Bulk { batch: b.batch, items })
}

fn store(
    b: &mut LogBuilder<'_>,
    stream: &Labels,
    mut doc: Map<String, Value>,
    now: Nanos,
) -> std::result::Result<(), String> {
    let ts = match doc.remove("@timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => parse_rfc3339_ns(&s)
            .or_else(|| parse_date(&s))
            .ok_or_else(|| format!("failed to parse field [@timestamp] with value [{s}]"))?,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) => ms.saturating_mul(1_000_000),
            None => (n.as_f64().ok_or("failed to parse field [@timestamp]")? * 1e6).round() as i64,
        },
        Some(other) => return Err(format!("failed to parse field [@timestamp] of type {other}")),
    };
    let key = ["message", "msg", "log"].into_iter().find(|k| matches!(doc.get(*k), Some(Value::String(_))));
    let line = match key {
        Some(k) => match doc.remove(k) {
            Some(Value::String(s)) => s,
            _ => unreachable!("checked above"),
        },
        None => serde_json::to_string(&doc).unwrap_or_default(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if key.is_some() {
        flatten("", doc, &mut pairs);
    }
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<(&str, &str)> = Vec::new();
    for (k, v) in &pairs {
        if seen.insert(k.as_str()) {
            kept.push((k.as_str(), v.as_str()));
        }
    }
    let meta = b.metadata(kept).map_err(|e| e.to_string())?;
    b.entry(stream, ts, &line, meta).map_err(|e| e.to_string())
}

fn flatten(prefix: &str, m: Map<String, Value>, out: &mut Vec<(String, String)>) {
    for (k, v) in m {
        let name =
            if prefix.is_empty() { sanitize_label_name(&k) } else { format!("{prefix}_{}", sanitize_label_name(&k)) };
        match v {
            Value::Object(inner) => flatten(&name, inner, out),
            Value::String(s) => out.push((name, s)),
            Value::Null => {}
            other => out.push((name, other.to_string())),
        }
    }
}

/// `2025-11-22` and `2025-11-22T06:00:00` (no zone: UTC), which Elasticsearch's default
/// `strict_date_optional_time` accepts.
fn parse_date(s: &str) -> Option<Nanos> {
    if s.len() == 10 {
        return parse_rfc3339_ns(&format!("{s}T00:00:00Z"));
    }
    if s.len() >= 19 && !s.ends_with('Z') && !s[19..].contains(['+', '-']) {
        return parse_rfc3339_ns(&format!("{s}Z"));
    }
    None
}

/// The response body of `POST /_bulk` for `items`, in Elasticsearch's shape (JSON text).
/// Written directly rather than built as a `serde_json::Value`: a tree per item was a tenth
/// of the server's CPU on `_bulk` ingest (perf).
pub fn response(items: &[BulkItem], took_ms: u64) -> Vec<u8> {
    use std::io::Write;
    fn string(out: &mut Vec<u8>, s: &str) {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec");
    }
    let errors = items.iter().any(|i| i.error.is_some());
    let mut out = Vec::with_capacity(64 + items.len() * 192);
    let _ = write!(out, r#"{{"took":{took_ms},"errors":{errors},"items":["#);
    for (n, i) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'{');
        string(&mut out, &i.action);
        out.extend_from_slice(br#":{"_index":"#);
        string(&mut out, &i.index);
        out.extend_from_slice(br#","_id":"#);
        match &i.id {
            Some(id) => string(&mut out, id),
            None => {
                let _ = write!(out, r#""tt{n:x}{took_ms:x}""#);
            }
        }
        match &i.error {
            None => {
                let _ = write!(
                    out,
                    r#","_version":1,"result":"created","_shards":{{"total":1,"successful":1,"failed":0}},"_seq_no":{n},"_primary_term":1,"status":201}}}}"#
                );
            }
            Some((t, reason)) => {
                out.extend_from_slice(br#","status":400,"error":{"type":"#);
                string(&mut out, t);
                out.extend_from_slice(br#","reason":"#);
                string(&mut out, reason);
                out.extend_from_slice(b"}}}");
            }
        }
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> LogLimits {
        LogLimits::default()
    }

    #[test]
    fn documents_become_lines_with_metadata() {
        let body = br#"{"create":{"_index":"logs-web"}}
{"@timestamp":"2025-11-22T06:00:00.123456789Z","message":"GET / 200","host":{"name":"n1"},"level":"info","status":200}
{"index":{"_index":"logs-web","_id":"x1"}}
{"@timestamp":1763791200123,"msg":"second","tags":["a","b"]}
{"index":{}}
{"log":"from the path index\n"}
"#;
        let bulk = decode(body, Some("fallback"), 42, &lim()).unwrap();
        assert!(bulk.items.iter().all(|i| i.error.is_none()), "{:?}", bulk.items);
        let rows: Vec<(String, i64, String, String)> = bulk
            .batch
            .iter()
            .flat_map(|(l, es)| es.iter().map(move |e| (l.to_string(), e.ts, e.line.clone(), e.metadata.to_string())))
            .collect();
        assert_eq!(
            rows,
            [
                (
                    r#"{index="logs-web"}"#.into(),
                    1_763_791_200_123_456_789,
                    "GET / 200".into(),
                    r#"{host_name="n1", level="info", status="200"}"#.into()
                ),
                (
                    r#"{index="logs-web"}"#.into(),
                    1_763_791_200_123_000_000,
                    "second".into(),
                    r#"{tags="[\"a\",\"b\"]"}"#.into()
                ),
                (r#"{index="fallback"}"#.into(), 42, "from the path index\n".into(), "{}".into()),
            ]
        );
        assert_eq!(bulk.items[1].id.as_deref(), Some("x1"));
    }

    #[test]
    fn item_errors_do_not_fail_the_request() {
        let body = b"{\"index\":{\"_index\":\"a\"}}\n{not json}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"index\":{}}\n{\"message\":\"no index\"}\n{\"create\":{\"_index\":\"a\"}}\n{\"message\":\"ok\",\"@timestamp\":\"yesterday\"}\n";
        let bulk = decode(body, None, 0, &lim()).unwrap();
        let errs: Vec<_> = bulk.items.iter().map(|i| i.error.as_ref().map(|e| e.0.as_str())).collect();
        assert_eq!(
            errs,
            [
                Some("document_parsing_exception"),
                Some("illegal_argument_exception"),
                Some("action_request_validation_exception"),
                Some("document_parsing_exception")
            ]
        );
        let r: Value = serde_json::from_slice(&response(&bulk.items, 3)).unwrap();
        assert_eq!(r["errors"], true);
        assert_eq!(r["items"][1]["delete"]["error"]["type"], "illegal_argument_exception");
        assert_eq!(r["items"][0]["index"]["_index"], "a");
        assert_eq!(r["items"][1]["delete"]["status"], 400);
        assert!(decode(b"not an action\n", None, 0, &lim()).is_err());
        assert!(decode(b"{\"index\":{\"_index\":\"a\"}}\n", None, 0, &lim()).is_err());
    }

    #[test]
    fn response_shape_clients_accept() {
        let items = vec![
            BulkItem { action: "create".into(), index: "i".into(), id: Some("7".into()), error: None },
            BulkItem { action: "index".into(), index: "q\"uote".into(), id: None, error: None },
        ];
        let r: Value = serde_json::from_slice(&response(&items, 5)).unwrap();
        assert_eq!(r["took"], 5);
        assert_eq!(r["items"][1]["index"]["_index"], "q\"uote");
        assert_eq!(r["items"][1]["index"]["_id"], "tt15");
        assert_eq!(r["items"][1]["index"]["_seq_no"], 1);
        assert_eq!(r["items"][0]["create"]["_shards"]["successful"], 1);
        assert_eq!(r["errors"], false);
        assert_eq!(r["items"][0]["create"]["status"], 201);
        assert_eq!(r["items"][0]["create"]["result"], "created");
        assert_eq!(r["items"][0]["create"]["_id"], "7");
    }
}
