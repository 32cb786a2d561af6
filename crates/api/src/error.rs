//! `ApiError`: the one place that knows HTTP status codes.
//!
//! Status mapping (decided here, nowhere else):
//!
//! | ErrorKind       | HTTP | why |
//! |-----------------|------|-----|
//! | InvalidInput    | 400  | malformed body or parameter (415 for a Content-Type we cannot decode, see [`ApiError::unsupported_media_type`]) |
//! | NotFound        | 404  | |
//! | TooLarge        | 413  | body over `server.max_body_size` (compressed or decompressed) |
//! | LimitExceeded   | 400  | per-request limits (labels per series, label length, series/samples per request): the request will never succeed as sent, and Prometheus's remote write retries 429 and 5xx forever but drops 4xx. Rate limits, when they exist, need their own kind and 429. |
//! | Timeout         | 503  | as Prometheus's `errorType: timeout` |
//! | Unavailable     | 503  | disk full, starting up, shutting down: retry later |
//! | Internal        | 500  | |
//! | Conflict        | 409  | a dashboard saved over a newer version than the one the editor loaded |
//! | Unauthenticated | 401  | no credential or a bad one (the auth middleware adds `WWW-Authenticate`); never 5xx, see `authn.rs` |
//! | Forbidden       | 403  | a valid credential without the route's scope or the request's tenant |
//!
//! One exception, from Prometheus's query API: a query that parses but fails while it runs
//! (see [`ApiError::execution`]) is 422 with `errorType: execution`. Another, from Loki: an
//! ingestion rate or stream-count limit (see [`ApiError::rate_limited`]) is 429, the status
//! log shippers back off and retry on.
//!
//! The body shape belongs to the API family, chosen per router by [`Shape`]: the handler
//! returns an `ApiError`, whose response carries the error as an extension, and the
//! family's layer ([`reshape`]) renders it. Default (no layer): the Prometheus JSON shape.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use telltale_model::ErrorKind;

/// An error on its way to becoming an HTTP response.
#[derive(Debug, Clone)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
    /// A status and `errorType` that differ from the kind's usual ones.
    special: Option<Special>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    /// Remote write 2.0 asks for 415 when the Content-Type names a message we cannot decode.
    UnsupportedMedia,
    /// Prometheus answers 422 `execution` for queries that fail while evaluating.
    Execution,
    /// A rate or stream-count limit of the log write paths: 429, so clients back off and retry.
    RateLimited,
}

impl ApiError {
    /// An error of `kind` with a one-line, lowercase `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        // One line, always: clients log the body, and multi-line bodies break log parsers.
        if message.contains('\n') {
            message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        Self { kind, message, special: None }
    }

    /// A 415: the body's media type is not one this endpoint decodes.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self { special: Some(Special::UnsupportedMedia), ..Self::new(ErrorKind::InvalidInput, message) }
    }

    /// A 422 `execution` error: the query is valid but failed while it ran (Prometheus's
    /// `errorExec`, e.g. duplicate series after dropping the metric name, too many samples).
    pub fn execution(message: impl Into<String>) -> Self {
        Self { special: Some(Special::Execution), ..Self::new(ErrorKind::InvalidInput, message) }
    }

    /// A 429: an ingestion rate or stream-count limit was reached; retrying later can succeed.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self { special: Some(Special::RateLimited), ..Self::new(ErrorKind::LimitExceeded, message) }
    }

    /// A 400 for a malformed request.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A 500 for a bug or unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status for this error (see the table in this module's docs).
    pub fn status(&self) -> StatusCode {
        match self.special {
            Some(Special::UnsupportedMedia) => return StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some(Special::Execution) => return StatusCode::UNPROCESSABLE_ENTITY,
            Some(Special::RateLimited) => return StatusCode::TOO_MANY_REQUESTS,
            None => {}
        }
        match self.kind {
            ErrorKind::InvalidInput | ErrorKind::LimitExceeded => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Timeout | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<telltale_storage::Error> for ApiError {
    fn from(e: telltale_storage::Error) -> Self {
        Self::new(e.kind(), error_chain(&e))
    }
}

impl From<telltale_ingest::Error> for ApiError {
    fn from(e: telltale_ingest::Error) -> Self {
        match e {
            telltale_ingest::Error::UnsupportedContentType(_) => Self::unsupported_media_type(e.to_string()),
            _ => Self::new(e.kind(), error_chain(&e)),
        }
    }
}

impl From<telltale_ingest::otlp::Error> for ApiError {
    fn from(e: telltale_ingest::otlp::Error) -> Self {
        Self::new(e.kind(), error_chain(&e))
    }
}

impl From<telltale_promql::Error> for ApiError {
    fn from(e: telltale_promql::Error) -> Self {
        use telltale_promql::Error as E;
        match e {
            E::BadQuery(_) => Self::bad_input(e.to_string()),
            E::Execution(_) | E::TooManySamples { .. } | E::TooManySeries { .. } => Self::execution(e.to_string()),
            _ => Self::new(e.kind(), error_chain(&e)),
        }
    }
}

impl From<telltale_logql::Error> for ApiError {
    fn from(e: telltale_logql::Error) -> Self {
        Self::new(e.kind(), error_chain(&e))
    }
}

/// `e: cause: cause`, one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// How an API family renders errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"status":"error","errorType":"bad_data","error":"..."}` (Prometheus HTTP API).
    Prometheus,
    /// A plain-text one-line reason, as Prometheus's own remote-write receiver answers.
    Text,
    /// InfluxDB 1.x: `{"error":"..."}`.
    InfluxV1,
    /// InfluxDB 2.x: `{"code":"invalid","message":"..."}`.
    InfluxV2,
    /// The reason as a JSON string (Alertmanager API v2).
    JsonString,
    /// Elasticsearch: `{"error":{"root_cause":[...],"type":"...","reason":"..."},"status":400}`.
    Elasticsearch,
    /// Jaeger's query API: `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"..."}]}`.
    Jaeger,
}

impl Shape {
    fn render(self, e: &ApiError) -> (HeaderValue, String) {
        let json = HeaderValue::from_static("application/json");
        match self {
            Shape::Prometheus => {
                #[derive(serde::Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Body<'a> {
                    status: &'a str,
                    error_type: &'a str,
                    error: &'a str,
                }
                let error_type = if e.special == Some(Special::Execution) { "execution" } else { e.kind.as_str() };
                let body = Body { status: "error", error_type, error: &e.message };
                (json, serde_json::to_string(&body).unwrap_or_default())
            }
            Shape::Text => (HeaderValue::from_static("text/plain; charset=utf-8"), format!("{}\n", e.message)),
            Shape::InfluxV1 => (json, serde_json::json!({"error": e.message}).to_string()),
            Shape::JsonString => (json, serde_json::Value::String(e.message.clone()).to_string()),
            Shape::InfluxV2 => {
                // Influx 2's codes: https://docs.influxdata.com/influxdb/v2/api/#operation/PostWrite
                let code = match e.kind {
                    ErrorKind::InvalidInput | ErrorKind::LimitExceeded => "invalid",
                    ErrorKind::TooLarge => "request too large",
                    ErrorKind::NotFound => "not found",
                    ErrorKind::Timeout | ErrorKind::Unavailable => "unavailable",
                    _ => "internal error",
                };
                (json, serde_json::json!({"code": code, "message": e.message}).to_string())
            }
            Shape::Jaeger => {
                let err = serde_json::json!({"code": e.status().as_u16(), "msg": e.message});
                let body = serde_json::json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [err]});
                (json, body.to_string())
            }
            Shape::Elasticsearch => {
                let t = match (e.special, e.kind) {
                    (Some(Special::RateLimited), _) => "es_rejected_execution_exception",
                    (_, ErrorKind::TooLarge) => "content_too_long_exception",
                    (_, ErrorKind::Unavailable) => "cluster_block_exception",
                    (_, ErrorKind::Internal) => "exception",
                    _ => "illegal_argument_exception",
                };
                let cause = serde_json::json!({"type": t, "reason": e.message});
                let body = serde_json::json!({"error": {"root_cause": [cause], "type": t, "reason": e.message}, "status": e.status().as_u16()});
                (json, body.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (ctype, body) = Shape::Prometheus.render(&self);
        let mut res = (self.status(), [(header::CONTENT_TYPE, ctype)], body).into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// Re-renders an [`ApiError`] response in `shape`; other responses pass unchanged.
/// Used as `axum::middleware::map_response` on each family's router.
pub(crate) fn reshape(shape: Shape, mut res: Response) -> Response {
    let Some(e) = res.extensions_mut().remove::<ApiError>() else { return res };
    let (ctype, body) = shape.render(&e);
    let mut res = (e.status(), [(header::CONTENT_TYPE, ctype)], body).into_response();
    // Kept for the request logger.
    res.extensions_mut().insert(e);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_statuses() {
        let cases = [
            (ErrorKind::InvalidInput, 400),
            (ErrorKind::NotFound, 404),
            (ErrorKind::TooLarge, 413),
            (ErrorKind::LimitExceeded, 400),
            (ErrorKind::Timeout, 503),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Internal, 500),
            (ErrorKind::Conflict, 409),
            (ErrorKind::Unauthenticated, 401),
            (ErrorKind::Forbidden, 403),
        ];
        for (kind, code) in cases {
            assert_eq!(ApiError::new(kind, "x").status().as_u16(), code, "{kind:?}");
        }
        assert_eq!(ApiError::unsupported_media_type("x").status().as_u16(), 415);
        assert_eq!(ApiError::execution("x").status().as_u16(), 422);
        assert_eq!(ApiError::rate_limited("x").status().as_u16(), 429);
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(ApiError::bad_input("a\n  b\nc").message(), "a b c");
    }

    #[test]
    fn shapes() {
        let e = ApiError::bad_input("bad thing");
        assert_eq!(Shape::Prometheus.render(&e).1, r#"{"status":"error","errorType":"bad_data","error":"bad thing"}"#);
        assert_eq!(Shape::Text.render(&e).1, "bad thing\n");
        assert_eq!(Shape::InfluxV1.render(&e).1, r#"{"error":"bad thing"}"#);
        assert_eq!(Shape::InfluxV2.render(&e).1, r#"{"code":"invalid","message":"bad thing"}"#);
        let e = ApiError::execution("vector cannot contain metrics with the same labelset");
        assert_eq!(
            Shape::Prometheus.render(&e).1,
            r#"{"status":"error","errorType":"execution","error":"vector cannot contain metrics with the same labelset"}"#
        );
    }
}
