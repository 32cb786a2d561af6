//! `POST /v1/traces` (and `/otlp/v1/traces`): OTLP/HTTP traces, protobuf or JSON by
//! Content-Type, gzip or not, answered as the OTLP spec says
//! (<https://opentelemetry.io/docs/specs/otlp/#otlphttp-response>): 200 with a
//! `partial_success` when some spans were refused, 400 with a `google.rpc.Status` for bad
//! data, 413 past the size limit, 503 with `Retry-After` when the store cannot write.
//! `POST /api/v2/spans`: Zipkin v2, JSON or protobuf, 202.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use telltale_ingest::otlp::{self, DecodedSpans};

use crate::body::{content_encoding, decompress, read_limited};
use crate::state::Limits;
use crate::tenant::Scoped;
use crate::write::otlp_error;
use crate::ApiError;

type Decoder = fn(&[u8], &otlp::TraceLimits) -> Result<DecodedSpans, telltale_ingest::otlp::Error>;

pub(crate) async fn otlp(app: Scoped, headers: HeaderMap, body: Body) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_string();
    let json = ct.starts_with("application/json");
    let decode: Decoder = if json { otlp::decode_traces_json } else { otlp::decode_traces_proto };
    let res = if json || ct.starts_with("application/x-protobuf") {
        ingest(&app, &headers, body, "otlp", decode).await
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "unsupported content type {ct:?}: want application/x-protobuf or application/json"
        )))
    };
    match res {
        Ok(d) => {
            let (ctype, body) = if json {
                ("application/json", d.response_json())
            } else {
                ("application/x-protobuf", d.response_proto())
            };
            ([(header::CONTENT_TYPE, ctype)], body).into_response()
        }
        Err(e) => otlp_error(e, json),
    }
}

pub(crate) async fn zipkin(app: Scoped, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let decode: Decoder = if ct.starts_with("application/x-protobuf") {
        telltale_ingest::zipkin::decode_proto
    } else if ct.starts_with("application/json") || ct.is_empty() {
        telltale_ingest::zipkin::decode_json
    } else {
        return Err(ApiError::unsupported_media_type(format!(
            "unsupported content type {ct:?}: want application/json or application/x-protobuf"
        )));
    };
    let d = ingest(&app, &headers, body, "zipkin", decode).await?;
    if d.rejected > 0 {
        return Err(ApiError::bad_input(d.message().unwrap_or_default()));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Read, decompress, decode, store; what was refused comes back in the result.
async fn ingest(
    app: &Scoped,
    headers: &HeaderMap,
    body: Body,
    protocol: &'static str,
    decode: Decoder,
) -> Result<DecodedSpans, ApiError> {
    let encoding = content_encoding(headers)?;
    let limits: std::sync::Arc<Limits> = app.limits();
    let raw = read_limited(headers, body, limits.max_body_size).await?;
    app.blocking_traces(move |me, traces| {
        let body = decompress(encoding, raw, limits.max_body_size)?;
        let d = decode(&body, &limits.traces)?;
        let stats = traces.write(&d.batch, me.now_ms())?;
        me.metrics().add_spans(protocol, stats.spans, d.rejected);
        Ok(d)
    })
    .await
}
