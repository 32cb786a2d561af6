//! `POST /v1/logs`: OTLP/HTTP logs, protobuf or JSON by Content-Type
//! (<https://opentelemetry.io/docs/specs/otlp/#otlphttp>), mapped as Loki 3 maps them; answers
//! in the request's encoding, errors as `google.rpc.Status`.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use telltale_ingest::otlp;

use crate::body::content_encoding;
use crate::logwrite::ingest_logs;
use crate::state::Limits;
use crate::tenant::Scoped;
use crate::write::otlp_error;
use crate::ApiError;

pub(crate) async fn logs(app: Scoped, headers: HeaderMap, body: Body) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_string();
    let json = ct.starts_with("application/json");
    match inner(&app, &headers, body, json, &ct).await {
        Ok(()) => {
            let (ctype, body): (&str, Vec<u8>) =
                if json { ("application/json", b"{}".to_vec()) } else { ("application/x-protobuf", Vec::new()) };
            ([(header::CONTENT_TYPE, ctype)], body).into_response()
        }
        Err(e) => otlp_error(e, json),
    }
}

async fn inner(app: &Scoped, headers: &HeaderMap, body: Body, json: bool, ct: &str) -> Result<(), ApiError> {
    if !json && !ct.starts_with("application/x-protobuf") {
        return Err(ApiError::unsupported_media_type(format!(
            "unsupported content type {ct:?}: want application/x-protobuf or application/json"
        )));
    }
    let encoding = content_encoding(headers)?;
    let now = app.now_ms().saturating_mul(1_000_000);
    let decode = move |b: &[u8], l: &Limits| {
        Ok(if json { otlp::decode_logs_json(b, now, &l.logs)? } else { otlp::decode_logs_proto(b, now, &l.logs)? })
    };
    ingest_logs(app, headers, body, encoding, "otlp", decode).await?;
    Ok(())
}
