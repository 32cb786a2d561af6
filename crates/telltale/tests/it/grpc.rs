//! OTLP over gRPC end to end: opentelemetry-proto's generated tonic clients export spans,
//! metrics and logs (plain and gzip) to `traces.grpc_listen`, and the data is read back over
//! HTTP (Tempo, PromQL, LogQL); the status codes for bad data and bad credentials; tenants by
//! `x-scope-orgid`; the listener off and a busy port.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Gauge, Metric, NumberDataPoint};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use telltale_testkit::TestServer;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

use super::logs::logql;
use super::security::{bearer, secured, token};
use super::BIN;

const QUIET: &str = "server:\n  self_scrape_interval: 0s\ncollectors:\n  enabled: false\n";
const GRPC: &str = "traces:\n  grpc_listen: 127.0.0.1:0\n";

/// The address the server's OTLP/gRPC listener bound, from its log.
fn grpc_url(s: &TestServer) -> String {
    // Logged before "ready", which the test kit waited for.
    let log = s.log();
    let line = log.lines().find(|l| l.contains("OTLP/gRPC listening")).expect("the OTLP/gRPC listener's log line");
    let addr = line.split("addr=").nth(1).and_then(|r| r.split_whitespace().next()).expect("addr in the log line");
    format!("http://{addr}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn text(s: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(s.into())) })
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue { key: "service.name".into(), value: text(service), ..Default::default() }],
        ..Default::default()
    })
}

fn spans(service: &str, trace_id: [u8; 16], name: &str) -> ExportTraceServiceRequest {
    let now = now_ns();
    let span = Span {
        trace_id: trace_id.to_vec(),
        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        name: name.into(),
        kind: 2,
        start_time_unix_nano: now - 5_000_000,
        end_time_unix_nano: now,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn gauge(name: &str, value: f64) -> ExportMetricsServiceRequest {
    let point = NumberDataPoint {
        time_unix_nano: now_ns(),
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    };
    let m = Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge { data_points: vec![point] })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("grpc-test"),
            scope_metrics: vec![ScopeMetrics { metrics: vec![m], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn logs(service: &str, line: &str) -> ExportLogsServiceRequest {
    let r =
        LogRecord { time_unix_nano: now_ns(), body: text(line), severity_text: "INFO".into(), ..Default::default() };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs { log_records: vec![r], ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// `msg` with `authorization` and `x-scope-orgid` metadata when given.
fn request<T>(msg: T, auth: Option<&str>, tenant: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(a) = auth {
        r.metadata_mut().insert("authorization", a.parse().unwrap());
    }
    if let Some(t) = tenant {
        r.metadata_mut().insert("x-scope-orgid", t.parse().unwrap());
    }
    r
}

fn hex(id: [u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn instant_query(s: &TestServer, q: &str) -> serde_json::Value {
    let enc: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = s.get(&format!("/api/v1/query?query={enc}"));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn exports_spans_metrics_and_logs_with_and_without_gzip() {
    let s = super::start(&format!("{QUIET}{GRPC}"));
    let url = grpc_url(&s);
    let rt = runtime();
    for (i, gzip) in [false, true].into_iter().enumerate() {
        let trace_id = [0xa0 + i as u8; 16];
        let name = format!("checkout-{i}");
        rt.block_on(async {
            let mut traces = TraceServiceClient::connect(url.clone()).await.unwrap();
            let mut metrics = MetricsServiceClient::connect(url.clone()).await.unwrap();
            let mut logs_client = LogsServiceClient::connect(url.clone()).await.unwrap();
            if gzip {
                traces = traces.send_compressed(CompressionEncoding::Gzip);
                metrics = metrics.send_compressed(CompressionEncoding::Gzip);
                logs_client = logs_client.send_compressed(CompressionEncoding::Gzip);
            }
            let r = traces.export(spans("shop", trace_id, &name)).await.unwrap().into_inner();
            assert!(r.partial_success.as_ref().is_none_or(|p| p.rejected_spans == 0), "{r:?}");
            let r = metrics.export(gauge(&format!("grpc_gauge_{i}"), 40.0 + i as f64)).await.unwrap().into_inner();
            assert!(r.partial_success.as_ref().is_none_or(|p| p.rejected_data_points == 0), "{r:?}");
            logs_client.export(logs("grpc-logs", &format!("hello over grpc {i}"))).await.unwrap();
        });
        // OK means in the WAL and readable: no waiting.
        let r = s.get(&format!("/api/v2/traces/{}", hex(trace_id)));
        assert_eq!(r.status, 200, "{}", r.text());
        let t: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let spans = &t["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"];
        assert_eq!(spans[0]["name"], name.as_str(), "{t}");
        let v = instant_query(&s, &format!("grpc_gauge_{i}"));
        assert_eq!(v["data"]["result"][0]["value"][1], (40 + i).to_string(), "{v}");
        let lines: Vec<String> = logql(&s, r#"{service_name="grpc-logs"}"#).into_iter().map(|(_, _, l)| l).collect();
        assert_eq!(lines.len(), i + 1, "{lines:?}");
        assert_eq!(lines[i], format!("hello over grpc {i}"));
    }
    // Counted like OTLP/HTTP.
    let m = s.get("/metrics").text();
    assert!(
        m.lines()
            .any(|l| l.starts_with("telltale_spans_ingested_total{") && l.contains("\"otlp\"") && l.ends_with(" 2")),
        "{m}"
    );
}

#[test]
fn tenants_by_x_scope_orgid() {
    let s = super::start(&format!("{QUIET}{GRPC}"));
    let url = grpc_url(&s);
    runtime().block_on(async {
        let mut c = LogsServiceClient::connect(url).await.unwrap();
        c.export(request(logs("tenanted", "for acme only"), None, Some("acme"))).await.unwrap();
        let e = c.export(request(logs("tenanted", "x"), None, Some("not a tenant!"))).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    });
    let q = r#"{service_name="tenanted"}"#;
    assert!(logql(&s, q).is_empty(), "the default tenant must not see acme's lines");
    let enc: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
    let path = format!("/loki/api/v1/query_range?query={enc}&start=0&end=4000000000");
    let r = s.request("GET", &path, &[("X-Scope-OrgID", "acme")], &[]);
    assert!(r.text().contains("for acme only"), "{}", r.text());
}

#[test]
fn auth_needs_a_bearer_token_with_the_ingest_scope() {
    let s = secured(GRPC);
    let url = grpc_url(&s);
    let ingest = bearer(&token(&s, &["--service-account", "otel", "--scopes", "ingest"]));
    let viewer = bearer(&token(&s, &["--service-account", "wallboard", "--role", "viewer"]));
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let trace_id = [0x5a; 16];
    runtime().block_on(async {
        let mut c = TraceServiceClient::connect(url).await.unwrap();
        let e = c.export(request(spans("auth", trace_id, "x"), None, None)).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        let e = c.export(request(spans("auth", trace_id, "x"), Some("Bearer tt_not-a-token"), None)).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        let e = c.export(request(spans("auth", trace_id, "x"), Some(&viewer), None)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains("ingest"), "{e:?}");
        c.export(request(spans("auth", trace_id, "allowed"), Some(&ingest), None)).await.unwrap();
    });
    let r = s.request("GET", &format!("/api/v2/traces/{}", hex(trace_id)), &[("authorization", &admin)], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("allowed"), "{}", r.text());
}

/// Bytes both ways, to send what no generated client would.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[test]
fn undecodable_bytes_get_invalid_argument_and_unknown_methods_unimplemented() {
    let s = super::start(&format!("{QUIET}{GRPC}"));
    let url = grpc_url(&s);
    runtime().block_on(async {
        let channel = tonic::transport::Endpoint::new(url).unwrap().connect().await.unwrap();
        for service in ["trace.v1.TraceService", "metrics.v1.MetricsService", "logs.v1.LogsService"] {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let path = format!("/opentelemetry.proto.collector.{service}/Export");
            let e = grpc
                .unary(tonic::Request::new(Bytes::from_static(b"\xff\xff\xff\xff")), path.parse().unwrap(), Raw)
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{service}: {e:?}");
        }
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Nope".parse().unwrap();
        let e = grpc.unary(tonic::Request::new(Bytes::new()), path, Raw).await.unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    });
}

#[test]
fn off_when_empty_and_a_busy_port_stops_startup() {
    let s = super::start(&format!("{QUIET}traces:\n  grpc_listen: \"\"\n"));
    assert!(s.log().contains("OTLP/gRPC off (traces.grpc_listen is empty)"), "{}", s.log());
    drop(s);

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("telltale.yml");
    std::fs::write(&config, format!("{QUIET}traces:\n  grpc_listen: 127.0.0.1:{port}\n")).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("cannot listen on traces.grpc_listen 127.0.0.1:{port}")), "{err}");
}

#[test]
fn tls_from_the_web_config_and_a_prompt_shutdown_with_clients_connected() {
    let pki = telltale_testkit::pki::Pki::new();
    pki.server("server", &["IP:127.0.0.1"]);
    let d = pki.path("");
    let web = pki.path("web.yml");
    std::fs::write(
        &web,
        format!("tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n", d.display()),
    )
    .unwrap();
    let config = "server:\n  self_scrape_interval: 0s\n  web_config_file: {web}\ncollectors:\n  enabled: false\n";
    let mut s = super::start(&format!("{}{GRPC}", config.replace("{web}", &web.display().to_string())));
    assert!(s.log().contains("tls=true"), "{}", s.log());
    let url = grpc_url(&s).replace("http://", "https://");
    let ca = tonic::transport::Certificate::from_pem(std::fs::read(pki.path("ca.crt")).unwrap());
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(ca).domain_name("127.0.0.1");
    let rt = runtime();
    let mut client = rt.block_on(async {
        let plain = LogsServiceClient::connect(url.replace("https://", "http://")).await;
        let refused = match plain {
            Ok(mut c) => c.export(logs("tls", "plain")).await.is_err(),
            Err(_) => true,
        };
        assert!(refused, "plaintext gRPC to the TLS listener must fail");
        let channel = tonic::transport::Endpoint::new(url).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
        let mut c = LogsServiceClient::new(channel).send_compressed(CompressionEncoding::Gzip);
        c.export(logs("tls", "over tls")).await.unwrap();
        c
    });
    // OK means the line is in the WAL. Shut down with the client still connected.
    let started = std::time::Instant::now();
    let status = s.terminate();
    assert!(status.success(), "{status:?}\n{}", s.log());
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "shutdown took {:?}", started.elapsed());
    assert!(s.log().contains("OTLP/gRPC stopped"), "{}", s.log());
    rt.block_on(async {
        let e = client.export(logs("tls", "after")).await.unwrap_err();
        assert!(matches!(e.code(), Code::Unavailable | Code::Unknown | Code::Internal), "{e:?}");
    });
}
