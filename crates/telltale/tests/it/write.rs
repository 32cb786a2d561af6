//! Every write path end to end, malformed bodies, limits and compression.

use std::io::Write;

use super::{json, start};

/// Appends a protobuf varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A remote write 1.0 `WriteRequest`, hand-encoded
/// (<https://prometheus.io/docs/specs/prw/remote_write_spec/#protocol>), snappy-compressed.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn remote_write_body(series: &[(Pairs<'_>, &[(i64, f64)])]) -> Vec<u8> {
    let mut req = Vec::new();
    for (labels, samples) in series {
        let mut ts = Vec::new();
        for (name, value) in *labels {
            let mut l = Vec::new();
            field_bytes(&mut l, 1, name.as_bytes());
            field_bytes(&mut l, 2, value.as_bytes());
            field_bytes(&mut ts, 1, &l);
        }
        for (t, v) in *samples {
            let mut s = vec![0x09];
            s.extend_from_slice(&v.to_le_bytes());
            s.push(0x10);
            varint(&mut s, *t as u64);
            field_bytes(&mut ts, 2, &s);
        }
        field_bytes(&mut req, 1, &ts);
    }
    snap::raw::Encoder::new().compress_vec(&req).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const RW: &[(&str, &str)] = &[("content-type", "application/x-protobuf"), ("content-encoding", "snappy")];

fn export(s: &telltale_testkit::TestServer, selector: &str) -> String {
    let q: String = form_urlencode(selector);
    let r = s.get(&format!("/api/v1/export?match[]={q}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

fn form_urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const QUIET: &str = "collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n";

#[test]
fn remote_write_stores_samples() {
    let s = start(QUIET);
    let body = remote_write_body(&[(&[("__name__", "up"), ("job", "a")], &[(1000, 1.0), (2000, 0.5)])]);
    let r = s.request("POST", "/api/v1/write", RW, &body);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        export(&s, "up"),
        "{\"metric\":{\"__name__\":\"up\",\"job\":\"a\"},\"values\":[1.0,0.5],\"timestamps\":[1000,2000]}\n"
    );
    let m = s.get("/metrics").text();
    assert!(m.contains("telltale_samples_ingested_total{protocol=\"prometheus_remote_write\"} 2\n"), "{m}");
}

#[test]
fn remote_write_refusals_are_counted_and_the_rest_stored() {
    let s = start(QUIET);
    let up: &[(&str, &str)] = &[("__name__", "up")];
    let r = s.request("POST", "/api/v1/write", RW, &remote_write_body(&[(up, &[(1000, 1.0)])]));
    assert_eq!(r.status, 204);
    // Same timestamp, another value: refused; the other sample is stored.
    let r = s.request("POST", "/api/v1/write", RW, &remote_write_body(&[(up, &[(1000, 2.0), (3000, 3.0)])]));
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("stored 1 of 2 samples, rejected 1: 1 duplicate timestamp"), "{}", r.text());
    assert!(export(&s, "up").contains("\"timestamps\":[1000,3000]"));
    let m = s.get("/metrics").text();
    assert!(m.contains("telltale_samples_rejected_total{reason=\"duplicate_timestamp\"} 1\n"), "{m}");
}

#[test]
fn remote_write_with_an_unknown_proto_is_415() {
    let s = start(QUIET);
    let body = remote_write_body(&[]);
    let ct = [("content-type", "application/x-protobuf;proto=foo.Bar")];
    assert_eq!(s.request("POST", "/api/v1/write", &ct, &body).status, 415);
}

#[test]
fn exposition_import_stores_samples() {
    let s = start(QUIET);
    let text = "# TYPE temp gauge\ntemp{room=\"a\"} 21.5 1700000000000\ntemp{room=\"b\"} 19 1700000000000\n";
    let r = s.post("/api/v1/import/prometheus", "text/plain", text.as_bytes());
    assert_eq!(r.status, 204, "{}", r.text());
    let out = export(&s, "temp");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("\"room\":\"a\"},\"values\":[21.5],\"timestamps\":[1700000000000]"), "{out}");
}

#[test]
fn influx_v1_and_v2_store_fields_as_series() {
    let s = start(QUIET);
    let r = s.post("/write?db=telegraf&precision=s", "text/plain", b"cpu,host=a usage=0.5,idle=2i 1700000000\n");
    assert_eq!(r.status, 204, "{}", r.text());
    let out = export(&s, "cpu_usage");
    assert!(out.contains("\"values\":[0.5],\"timestamps\":[1700000000000]"), "{out}");
    assert!(out.contains("\"host\":\"a\""), "{out}");
    let body = gzip(b"mem,host=b used=7 1700000000000\n");
    let headers = [("content-type", "text/plain"), ("content-encoding", "gzip")];
    let r = s.request("POST", "/api/v2/write?org=o&bucket=b&precision=ms", &headers, &body);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(export(&s, "mem_used").contains("\"values\":[7.0],\"timestamps\":[1700000000000]"));
}

#[test]
fn otlp_json_stores_a_gauge() {
    let s = start(QUIET);
    let body = r#"{"resourceMetrics":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"shop"}},
        {"key":"service.instance.id","value":{"stringValue":"i1"}}]},
      "scopeMetrics":[{"metrics":[{"name":"queue_size","gauge":{"dataPoints":[
        {"asDouble":3.5,"timeUnixNano":"1700000000000000000","attributes":[{"key":"q","value":{"stringValue":"a"}}]}]}}]}]}]}"#;
    let r = s.post("/v1/metrics", "application/json", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "{}");
    let out = export(&s, "queue_size");
    assert!(
        out.contains("\"job\":\"shop\"") && out.contains("\"instance\":\"i1\"") && out.contains("\"q\":\"a\""),
        "{out}"
    );
    assert!(out.contains("\"values\":[3.5],\"timestamps\":[1700000000000]"), "{out}");
}

#[test]
fn malformed_bodies_get_400_with_a_one_line_reason() {
    let s = start(QUIET);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>);
    let cases: Vec<Case> = vec![
        ("/api/v1/write", RW.to_vec(), b"not snappy at all".to_vec()),
        ("/api/v1/write", RW.to_vec(), snap::raw::Encoder::new().compress_vec(&[0x0a, 0xff, 0x01]).unwrap()),
        ("/api/v1/import/prometheus", vec![("content-type", "text/plain")], b"up{job=\"a\" 1\n".to_vec()),
        ("/write", vec![("content-type", "text/plain")], b"cpu,host=a\n".to_vec()),
        ("/api/v2/write", vec![("content-type", "text/plain")], b"cpu usage=\n".to_vec()),
        ("/v1/metrics", vec![("content-type", "application/json")], b"{\"resourceMetrics\": [".to_vec()),
        ("/v1/metrics", vec![("content-type", "application/x-protobuf")], vec![0x0a, 0xff, 0xff]),
        ("/write", vec![("content-encoding", "gzip")], b"not gzip".to_vec()),
    ];
    for (path, headers, body) in cases {
        let r = s.request("POST", path, &headers, &body);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let text = r.text();
        assert!(!text.trim_end().contains('\n') && !text.trim().is_empty(), "{path}: {text:?}");
    }
    assert_eq!(s.get("/-/ready").status, 200);
}

#[test]
fn influx_errors_have_the_influx_shape() {
    let s = start(QUIET);
    let r = s.post("/write", "text/plain", b"cpu,host=a\n");
    assert!(json(&r)["error"].as_str().is_some(), "{}", r.text());
    let r = s.post("/api/v2/write", "text/plain", b"cpu,host=a\n");
    assert_eq!(json(&r)["code"], "invalid", "{}", r.text());
    let r = s.post("/write?precision=fortnights", "text/plain", b"cpu v=1\n");
    assert_eq!(r.status, 400);
}

#[test]
fn limits_are_enforced_and_named() {
    let s = start("collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n  max_body_size: 64KiB\nlimits:\n  max_labels_per_series: 3\n");
    let r = s.post("/api/v1/import/prometheus", "text/plain", b"m{a=\"1\",b=\"2\",c=\"3\"} 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("max_labels_per_series"), "{}", r.text());
    // A gzip bomb: a few KiB on the wire, 4 MiB inflated.
    let bomb = gzip(&vec![b'\n'; 4 << 20]);
    assert!(bomb.len() < 64 << 10);
    let headers = [("content-type", "text/plain"), ("content-encoding", "gzip")];
    let r = s.request("POST", "/write", &headers, &bomb);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("decompressed request body exceeds server.max_body_size (64KiB)"), "{}", r.text());
    let big = vec![b'#'; 100 << 10];
    let r = s.post("/api/v1/import/prometheus", "text/plain", &big);
    assert_eq!(r.status, 413);
    assert!(r.text().contains("server.max_body_size"), "{}", r.text());
}
