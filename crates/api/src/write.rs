//! The write paths: read the body (size-limited, decompressed where the protocol allows),
//! decode it with the pure `telltale_ingest` decoder, write the batch, answer in the
//! protocol's own shape. Decoding and writing run together on the blocking pool.
//!
//! When the store refuses some samples (out of order, too old, duplicate timestamp) the
//! rest is stored and the answer is a 400 naming the counts, except OTLP, whose spec wants
//! a 200 with `partial_success`
//! (<https://opentelemetry.io/docs/specs/otlp/#partial-success-1>).

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use telltale_ingest::otlp;
use telltale_ingest::{exposition, influx, prom_remote_write};
use telltale_model::{ErrorKind, WriteBatch};
use telltale_storage::{Rejected, WriteStats};

use crate::body::{content_encoding, decompress, read_limited, Encoding};
use crate::state::Limits;
use crate::tenant::Scoped;
use crate::ApiError;

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// Read, decompress, decode, write: the one pipeline every write path shares.
async fn ingest<F>(
    app: &Scoped,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
    protocol: &'static str,
    decode: F,
) -> Result<(WriteStats, usize), ApiError>
where
    F: FnOnce(&[u8], &Limits) -> Result<WriteBatch, ApiError> + Send + 'static,
{
    let limits = app.limits();
    let raw = read_limited(headers, body, limits.max_body_size).await?;
    let state = app.clone();
    app.blocking(move |store| {
        let body = decompress(encoding, raw, limits.max_body_size)?;
        let batch = decode(&body, &limits)?;
        let stats = state.write_counted(store, protocol, &batch)?;
        Ok((stats, batch.sample_count()))
    })
    .await
}

/// The 400 for samples the store refused, or `None` when it took them all.
fn rejection(stats: &WriteStats, total: usize) -> Option<ApiError> {
    let r = &stats.rejected;
    (r.total() > 0).then(|| ApiError::new(ErrorKind::InvalidInput, rejection_text(r, stats.samples, total)))
}

fn rejection_text(r: &Rejected, stored: usize, total: usize) -> String {
    let mut parts = Vec::new();
    for (n, why) in
        [(r.out_of_order, "out of order"), (r.too_old, "too old"), (r.duplicate_timestamp, "duplicate timestamp")]
    {
        if n > 0 {
            parts.push(format!("{n} {why}"));
        }
    }
    let mut text = format!("stored {stored} of {total} samples, rejected {}: {}", r.total(), parts.join(", "));
    if let Some(first) = &r.first {
        text.push_str(&format!(" (first: {first})"));
    }
    text
}

/// `POST /api/v1/write`: Prometheus remote write 1.0 or 2.0, chosen by Content-Type
/// (<https://prometheus.io/docs/specs/prw/remote_write_spec_2_0/>). The body is snappy by spec.
pub(crate) async fn remote_write(app: Scoped, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let version = prom_remote_write::version_from_content_type(content_type(&headers))?;
    let decode = move |b: &[u8], l: &Limits| Ok(prom_remote_write::decode_version(version, b, &l.ingest)?);
    let (stats, total) = ingest(&app, &headers, body, Encoding::Identity, "prometheus_remote_write", decode).await?;
    if let Some(e) = rejection(&stats, total) {
        return Err(e);
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if version == prom_remote_write::Version::V2 {
        // 2.0 senders read what was written from these headers.
        let h = res.headers_mut();
        h.insert("x-prometheus-remote-write-samples-written", HeaderValue::from(stats.samples));
        h.insert("x-prometheus-remote-write-histograms-written", HeaderValue::from(0));
        h.insert("x-prometheus-remote-write-exemplars-written", HeaderValue::from(0));
    }
    Ok(res)
}

/// `POST /api/v1/import/prometheus`: Prometheus text exposition or OpenMetrics; samples
/// without a timestamp get the server's clock.
pub(crate) async fn import_prometheus(app: Scoped, headers: HeaderMap, body: Body) -> Result<StatusCode, ApiError> {
    let encoding = content_encoding(&headers)?;
    let format = exposition::Format::from_content_type(content_type(&headers));
    let now = app.now_ms();
    let decode = move |b: &[u8], l: &Limits| {
        Ok(match format {
            exposition::Format::OpenMetrics => exposition::decode_format(b, format, now, &l.ingest)?,
            _ => exposition::decode(b, now, &l.ingest)?,
        })
    };
    let (stats, total) = ingest(&app, &headers, body, encoding, "prometheus_import", decode).await?;
    rejection(&stats, total).map_or(Ok(StatusCode::NO_CONTENT), Err)
}

/// `POST /write` (InfluxDB 1.x: `db`, `precision`) and `POST /api/v2/write` (2.x:
/// `precision`): line protocol, `measurement_field` names with tags as labels.
pub(crate) async fn influx_write(
    app: Scoped,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let precision = match param("precision") {
        Some(p) if !p.is_empty() => p.parse::<influx::Precision>()?,
        _ => influx::Precision::default(),
    };
    let db = param("db");
    let encoding = content_encoding(&headers)?;
    let now = app.now_ms();
    let decode = move |b: &[u8], l: &Limits| Ok(influx::decode(b, precision, now, db.as_deref(), &l.ingest)?);
    let (stats, total) = ingest(&app, &headers, body, encoding, "influx", decode).await?;
    match rejection(&stats, total) {
        Some(e) => Err(ApiError::new(e.kind(), format!("partial write: {}", e.message()))),
        None => Ok(StatusCode::NO_CONTENT),
    }
}

/// `POST /v1/metrics`: OTLP/HTTP, protobuf or JSON by Content-Type
/// (<https://opentelemetry.io/docs/specs/otlp/#otlphttp>); answers in the request's encoding.
pub(crate) async fn otlp_metrics(app: Scoped, headers: HeaderMap, body: Body) -> Response {
    let json = content_type(&headers).is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    match otlp_metrics_inner(&app, &headers, body, json).await {
        Ok(res) => res,
        Err(e) => otlp_error(e, json),
    }
}

async fn otlp_metrics_inner(app: &Scoped, headers: &HeaderMap, body: Body, json: bool) -> Result<Response, ApiError> {
    let ct = content_type(headers).unwrap_or("");
    if !json && !ct.trim_start().starts_with("application/x-protobuf") {
        return Err(ApiError::unsupported_media_type(format!(
            "unsupported content type {ct:?}: want application/x-protobuf or application/json"
        )));
    }
    let encoding = content_encoding(headers)?;
    let dropped = std::sync::Arc::new(std::sync::Mutex::new(otlp::Dropped::default()));
    let dropped_out = dropped.clone();
    let decode = move |b: &[u8], l: &Limits| {
        let decoded = if json {
            otlp::decode_metrics_json(b, &l.otlp, &l.otlp_limits)?
        } else {
            otlp::decode_metrics_proto(b, &l.otlp, &l.otlp_limits)?
        };
        *dropped_out.lock().unwrap_or_else(|p| p.into_inner()) = decoded.dropped;
        Ok(decoded.batch)
    };
    let (stats, _) = ingest(app, headers, body, encoding, "otlp", decode).await?;
    let dropped = *dropped.lock().unwrap_or_else(|p| p.into_inner());
    let rejected = dropped.rejected_data_points() + stats.rejected.total() as u64;
    let mut message: Vec<String> = dropped.message().into_iter().collect();
    if stats.rejected.total() > 0 {
        message.push(rejection_text(&stats.rejected, stats.samples, stats.samples + stats.rejected.total()));
    }
    if !message.is_empty() {
        tracing::debug!(rejected, reason = %message.join("; "), "otlp partial success");
    }
    let body = otlp::metrics_response(json, rejected, &message.join("; "));
    let ctype = if json { "application/json" } else { "application/x-protobuf" };
    Ok(([(header::CONTENT_TYPE, ctype)], body).into_response())
}

/// An OTLP error: the status from [`ApiError::status`], the body a `google.rpc.Status`
/// (<https://opentelemetry.io/docs/specs/otlp/#failures-1>).
pub(crate) fn otlp_error(e: ApiError, json: bool) -> Response {
    let status = e.status();
    // gRPC codes: 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE, 13 INTERNAL.
    let code: u64 = match status.as_u16() {
        400 | 415 => 3,
        413 => 8,
        503 => 14,
        _ => 13,
    };
    let (ctype, body) = if json {
        ("application/json", serde_json::json!({"code": code, "message": e.message()}).to_string().into_bytes())
    } else {
        // google.rpc.Status { int32 code = 1; string message = 2; }
        let mut b = vec![0x08];
        put_varint(&mut b, code);
        b.push(0x12);
        put_varint(&mut b, e.message().len() as u64);
        b.extend_from_slice(e.message().as_bytes());
        ("application/x-protobuf", b)
    };
    let mut res = (status, [(header::CONTENT_TYPE, ctype)], body).into_response();
    res.extensions_mut().insert(e);
    res
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_partial_success_encodings() {
        assert_eq!(otlp::metrics_response(false, 0, ""), Vec::<u8>::new());
        assert_eq!(otlp::metrics_response(true, 0, ""), b"{}");
        assert_eq!(otlp::metrics_response(false, 300, "x"), vec![0x0a, 0x06, 0x08, 0xac, 0x02, 0x12, 0x01, b'x']);
        assert_eq!(
            String::from_utf8(otlp::metrics_response(true, 2, "dropped")).unwrap(),
            r#"{"partialSuccess":{"errorMessage":"dropped","rejectedDataPoints":"2"}}"#
        );
    }

    #[test]
    fn rejections_name_the_counts() {
        let stats = WriteStats {
            samples: 7,
            new_series: 0,
            rejected: Rejected { out_of_order: 2, too_old: 0, duplicate_timestamp: 1, first: Some("up at 5".into()) },
        };
        let e = rejection(&stats, 10).unwrap();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message(),
            "stored 7 of 10 samples, rejected 3: 2 out of order, 1 duplicate timestamp (first: up at 5)"
        );
        assert!(rejection(&WriteStats::default(), 1).is_none());
    }
}
