//! Jaeger's metrics API, what the UI's Monitor tab (Service Performance Monitoring) calls:
//! `GET /api/metrics/{latencies,calls,errors,minstep}`
//! (<https://www.jaegertracing.io/docs/latest/spm/#api>).
//!
//! Each answer is the PromQL Jaeger's Prometheus metrics reader issues
//! (`internal/storage/metricstore/prometheus/metricstore/reader.go`) over the Jaeger-named
//! series the span-metrics generator writes (`traces_span_metrics_calls_total`,
//! `traces_span_metrics_duration_milliseconds_bucket`), run as a range query from
//! `endTs - lookback` to `endTs` every `step` through the same path as
//! `/api/v1/query_range`, and rendered as Jaeger's `MetricFamily` the way its gogo `jsonpb`
//! marshaller writes it: camelCase fields, `"type": "GAUGE"`, RFC 3339 timestamps, `NaN` as
//! the string `"NaN"`, empty lists left out. Parameters and defaults follow
//! `cmd/query/app/query_parser.go` and `default_params.go`: times and durations in
//! milliseconds, `lookback` 1 h, `step` 5 s, `ratePer` 10 min, `spanKind` server. `spanKind`
//! takes Jaeger's enum names (`SPAN_KIND_SERVER`) and, for convenience, the bare kind
//! (`server`).

use axum::response::Response;
use serde_json::{json, Value as J};
use telltale_model::civil_from_days;
use telltale_promql::Value;
use telltale_spanmetrics::metrics::{JAEGER_CALLS_TOTAL, JAEGER_DURATION};

use super::deps::millis;
use crate::params::Params;
use crate::query::eval_range;
use crate::tenant::Scoped;
use crate::ApiError;

/// What every metrics request shares (Jaeger's `BaseQueryParameters`).
#[derive(Debug, Clone, PartialEq)]
struct Base {
    services: Vec<String>,
    group_by_operation: bool,
    span_kinds: Vec<String>,
    end: i64,
    lookback: i64,
    step: i64,
    rate_per: i64,
}

const KINDS: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

fn parse_error(param: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::bad_input(format!("unable to parse param '{param}': {what}"))
}

fn base(p: &Params, now_ms: i64) -> Result<Base, ApiError> {
    let services = p.all_owned("service");
    if services.is_empty() {
        return Err(parse_error("service", "please provide at least one service name"));
    }
    let group_by_operation = match p.get("groupByOperation").unwrap_or("") {
        "" | "false" | "0" | "f" | "F" | "FALSE" | "False" => false,
        "true" | "1" | "t" | "T" | "TRUE" | "True" => true,
        s => return Err(parse_error("groupByOperation", format!("invalid syntax {s:?}"))),
    };
    let mut span_kinds = Vec::new();
    for k in p.all("spanKind") {
        let upper = k.to_ascii_uppercase();
        let name = if upper.starts_with("SPAN_KIND_") { upper } else { format!("SPAN_KIND_{upper}") };
        if !KINDS.contains(&name.as_str()) {
            return Err(parse_error("spanKind", format!("unsupported span kind: '{k}'")));
        }
        span_kinds.push(name);
    }
    if span_kinds.is_empty() {
        span_kinds.push("SPAN_KIND_SERVER".to_string());
    }
    let positive = |name: &str, default: i64| -> Result<i64, ApiError> {
        let v = millis(p, name, default)?;
        if v <= 0 {
            return Err(parse_error(name, format!("{v} is not a positive number of milliseconds")));
        }
        Ok(v)
    };
    Ok(Base {
        services,
        group_by_operation,
        span_kinds,
        end: millis(p, "endTs", now_ms)?,
        lookback: positive("lookback", 3_600_000)?,
        step: positive("step", 5_000)?,
        rate_per: positive("ratePer", 600_000)?,
    })
}

/// A duration as one PromQL unit (`10m`, `30s`, `1500ms`), as Jaeger's `promqlDurationString`.
fn promql_duration(ms: i64) -> String {
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A service name as a literal alternative inside a PromQL `=~` string.
fn regex_literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    // The PromQL string is double-quoted: escape for it too.
    out.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The label filters and grouping Jaeger's `buildPromQuery` makes.
struct Parts {
    services: String,
    kinds: String,
    rate: String,
    group_by: String,
}

fn parts(b: &Base, hist_bucket: bool) -> Parts {
    let mut group_by = vec!["service_name"];
    if b.group_by_operation {
        group_by.push("span_name");
    }
    if hist_bucket {
        group_by.push("le");
    }
    Parts {
        services: b.services.iter().map(|s| regex_literal(s)).collect::<Vec<_>>().join("|"),
        kinds: format!("span_kind =~ \"{}\"", b.span_kinds.join("|")),
        rate: promql_duration(b.rate_per),
        group_by: group_by.join(","),
    }
}

/// Which metric family a request asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Latencies(f64),
    Calls,
    Errors,
}

/// The PromQL for `kind`, as Jaeger's reader writes it.
fn promql(kind: Kind, b: &Base) -> String {
    match kind {
        Kind::Latencies(q) => {
            let p = parts(b, true);
            format!(
                "histogram_quantile({q:.2}, sum(rate({JAEGER_DURATION}_bucket{{service_name =~ \"{}\", {}}}[{}])) by ({}))",
                p.services, p.kinds, p.rate, p.group_by
            )
        }
        Kind::Calls => {
            let p = parts(b, false);
            format!(
                "sum(rate({JAEGER_CALLS_TOTAL}{{service_name =~ \"{}\", {}}}[{}])) by ({})",
                p.services, p.kinds, p.rate, p.group_by
            )
        }
        Kind::Errors => {
            let p = parts(b, false);
            let calls = |extra: &str| {
                format!(
                    "sum(rate({JAEGER_CALLS_TOTAL}{{service_name =~ \"{}\", {extra}{}}}[{}])) by ({})",
                    p.services, p.kinds, p.rate, p.group_by
                )
            };
            format!("{} / {}", calls("status_code = \"STATUS_CODE_ERROR\", "), calls(""))
        }
    }
}

/// The family's name and help text (`service_...`, `service_operation_...` when grouped).
fn name_and_help(kind: Kind, b: &Base) -> (String, String) {
    let (name, mut help) = match kind {
        Kind::Latencies(q) => ("service_latencies", format!("{q:.2}th quantile latency, grouped by service")),
        Kind::Calls => ("service_call_rate", "calls/sec, grouped by service".to_string()),
        Kind::Errors => (
            "service_error_rate",
            "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service".to_string(),
        ),
    };
    let mut name = name.to_string();
    if b.group_by_operation {
        name = name.replacen("service", "service_operation", 1);
        help.push_str(" & operation");
    }
    (name, help)
}

/// A protobuf `Timestamp` as jsonpb writes it: RFC 3339 in UTC, 0 or 3 fractional digits here.
fn timestamp(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, frac) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    let frac = if frac == 0 { String::new() } else { format!(".{frac:03}") };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}Z")
}

/// A double as jsonpb writes it: a number, or `"NaN"`/`"Infinity"`/`"-Infinity"`.
fn double(v: f64) -> J {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

/// One metric: labels (`span_name` renamed `operation`, as the UI expects) and points.
fn metric(labels: Vec<(String, String)>, points: &[(i64, f64)]) -> J {
    let labels: Vec<J> = labels
        .into_iter()
        .map(|(k, v)| json!({"name": if k == "span_name" { "operation".to_string() } else { k }, "value": v}))
        .collect();
    let points: Vec<J> = points
        .iter()
        .map(|(t, v)| json!({"gaugeValue": {"doubleValue": double(*v)}, "timestamp": timestamp(*t)}))
        .collect();
    let mut m = serde_json::Map::new();
    if !labels.is_empty() {
        m.insert("labels".into(), J::Array(labels));
    }
    if !points.is_empty() {
        m.insert("metricPoints".into(), J::Array(points));
    }
    J::Object(m)
}

/// A series' labels and `(ms, value)` points.
type Points = (Vec<(String, String)>, Vec<(i64, f64)>);

/// The matrix of a range query as labels and points.
fn series(v: &Value) -> Vec<Points> {
    let Value::Matrix(m) = v else { return Vec::new() };
    m.iter()
        .map(|s| {
            let labels = s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            (labels, s.samples.iter().map(|x| (x.t, x.v)).collect())
        })
        .collect()
}

/// A `MetricFamily`.
fn family(name: &str, help: &str, metrics: Vec<J>) -> J {
    let mut f = json!({"name": name, "type": "GAUGE", "help": help});
    if !metrics.is_empty() {
        f["metrics"] = J::Array(metrics);
    }
    f
}

async fn run(app: &Scoped, p: &Params, kind: Kind, b: &Base) -> Result<Vec<J>, ApiError> {
    let out = eval_range(app, p, promql(kind, b), b.end - b.lookback, b.end, b.step).await?;
    let mut found = series(&out.value);
    if kind == Kind::Errors && found.is_empty() {
        // As Jaeger: no error series but some calls means a zero error rate, not no data.
        let calls = eval_range(app, p, promql(Kind::Calls, b), b.end - b.lookback, b.end, b.step).await?;
        found = series(&calls.value)
            .into_iter()
            .map(|(l, pts)| (l, pts.into_iter().map(|(t, _)| (t, 0.0)).collect()))
            .collect();
    }
    Ok(found.into_iter().map(|(l, pts)| metric(l, &pts)).collect())
}

async fn answer(
    app: Scoped,
    p: Params,
    kind: impl FnOnce(&Params) -> Result<Kind, ApiError>,
) -> Result<Response, ApiError> {
    let kind = kind(&p)?;
    let b = base(&p, app.now_ms())?;
    let metrics = run(&app, &p, kind, &b).await?;
    let (name, help) = name_and_help(kind, &b);
    Ok(crate::json(family(&name, &help, metrics)))
}

/// `GET /api/metrics/latencies?service=&quantile=&groupByOperation=&endTs=&lookback=&step=&ratePer=&spanKind=`.
pub(crate) async fn latencies(app: Scoped, p: Params) -> Result<Response, ApiError> {
    answer(app, p, |p| {
        let q = p.get("quantile").unwrap_or("");
        let q: f64 = q.parse().map_err(|_| parse_error("quantile", format!("invalid syntax {q:?}")))?;
        Ok(Kind::Latencies(q))
    })
    .await
}

/// `GET /api/metrics/calls`: calls per second.
pub(crate) async fn calls(app: Scoped, p: Params) -> Result<Response, ApiError> {
    answer(app, p, |_| Ok(Kind::Calls)).await
}

/// `GET /api/metrics/errors`: the fraction of calls that failed.
pub(crate) async fn errors(app: Scoped, p: Params) -> Result<Response, ApiError> {
    answer(app, p, |_| Ok(Kind::Errors)).await
}

/// `GET /api/metrics/minstep`: the smallest step, in milliseconds (Prometheus's reader: 1 ms).
pub(crate) async fn minstep() -> Response {
    crate::json(super::render::jaeger_envelope(json!(1), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(q: &str) -> Base {
        base(&Params::from_query(q), 1_700_000_000_000).unwrap()
    }

    #[test]
    fn parameters_and_defaults() {
        let x = b("service=a&service=b.c");
        assert_eq!(x.services, ["a", "b.c"]);
        assert_eq!(x.span_kinds, ["SPAN_KIND_SERVER"]);
        assert_eq!((x.end, x.lookback, x.step, x.rate_per), (1_700_000_000_000, 3_600_000, 5_000, 600_000));
        assert_eq!(
            b("service=a&spanKind=client&spanKind=SPAN_KIND_PRODUCER").span_kinds,
            ["SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER"]
        );
        assert!(base(&Params::from_query(""), 0).unwrap_err().message().contains("at least one service"));
        assert!(base(&Params::from_query("service=a&spanKind=nope"), 0).is_err());
        assert!(base(&Params::from_query("service=a&step=0"), 0).is_err());
    }

    #[test]
    fn the_promql_jaeger_issues() {
        let x = b("service=a&service=b.c&groupByOperation=true&ratePer=60000");
        assert_eq!(
            promql(Kind::Latencies(0.95), &x),
            r#"histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{service_name =~ "a|b\\.c", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name,span_name,le))"#
        );
        let y = b("service=a");
        assert_eq!(
            promql(Kind::Calls, &y),
            r#"sum(rate(traces_span_metrics_calls_total{service_name =~ "a", span_kind =~ "SPAN_KIND_SERVER"}[10m])) by (service_name)"#
        );
        assert_eq!(
            promql(Kind::Errors, &y),
            r#"sum(rate(traces_span_metrics_calls_total{service_name =~ "a", status_code = "STATUS_CODE_ERROR", span_kind =~ "SPAN_KIND_SERVER"}[10m])) by (service_name) / sum(rate(traces_span_metrics_calls_total{service_name =~ "a", span_kind =~ "SPAN_KIND_SERVER"}[10m])) by (service_name)"#
        );
        for k in [Kind::Latencies(0.5), Kind::Calls, Kind::Errors] {
            telltale_promql::parse(&promql(k, &x)).unwrap();
        }
        assert_eq!(promql_duration(1_500), "1500ms");
        assert_eq!(promql_duration(7_200_000), "2h");
        assert_eq!(name_and_help(Kind::Calls, &x).0, "service_operation_call_rate");
        assert_eq!(name_and_help(Kind::Latencies(0.95), &y).1, "0.95th quantile latency, grouped by service");
    }

    #[test]
    fn rendering_matches_jsonpb() {
        assert_eq!(timestamp(1_704_067_200_000), "2024-01-01T00:00:00Z");
        assert_eq!(timestamp(1_704_067_200_250), "2024-01-01T00:00:00.250Z");
        let m = metric(
            vec![("service_name".into(), "a".into()), ("span_name".into(), "op".into())],
            &[(1_704_067_200_000, 0.5), (1_704_067_205_000, f64::NAN)],
        );
        assert_eq!(
            family("service_operation_call_rate", "h", vec![m]).to_string(),
            r#"{"help":"h","metrics":[{"labels":[{"name":"service_name","value":"a"},{"name":"operation","value":"op"}],"metricPoints":[{"gaugeValue":{"doubleValue":0.5},"timestamp":"2024-01-01T00:00:00Z"},{"gaugeValue":{"doubleValue":"NaN"},"timestamp":"2024-01-01T00:00:05Z"}]}],"name":"service_operation_call_rate","type":"GAUGE"}"#
        );
        assert_eq!(family("x", "h", vec![]).to_string(), r#"{"help":"h","name":"x","type":"GAUGE"}"#);
    }
}
