//! OTLP over gRPC (<https://opentelemetry.io/docs/specs/otlp/#otlpgrpc>) on `traces.grpc_listen`
//! (default `127.0.0.1:4317`; empty turns it off): `TraceService/Export`, `MetricsService/Export`
//! and `LogsService/Export`.
//!
//! The one decision to know: each export is answered by the HTTP router itself. The message's
//! bytes (gzip already undone by tonic) are sent as an in-process `POST /v1/traces`,
//! `/v1/metrics` or `/v1/logs` with the call's `authorization` and `x-scope-orgid` metadata, so
//! the route table's scope (`ingest`), the tenant rules, the audit log, the limits, the rate
//! limits and the counters are the HTTP path's own, not a copy that could drift. The HTTP answer
//! becomes the gRPC one: 200's body is the `Export*ServiceResponse` (with `partial_success` when
//! something was refused), and an error's status maps to the code the OTLP spec asks for
//! ([`code_for`]). OK therefore means what 200 means: the data is in the WAL.
//!
//! Messages are taken as raw bytes (a codec of our own) and decoded by the same decoders as
//! OTLP/HTTP, so undecodable data is INVALID_ARGUMENT with the decoder's reason rather than
//! tonic's INTERNAL. The size limit is `server.max_body_size`, read per call (it reloads), on the
//! message as sent and again after gzip.
//!
//! TLS: when the web config serves the HTTP listener over TLS, this listener uses the same
//! certificates (read again per connection, so a rotation applies), offering ALPN `h2` as gRPC
//! clients require. Without authentication a non-loopback address is refused unless
//! `--insecure-no-auth`, as for the HTTP listener.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bytes::{Buf, BufMut, Bytes};
use http_body_util::BodyExt;
use telltale_api::{ApiError, AppState};
use telltale_auth::WebConfigFile;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls::ServerConfig;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::codegen::{http, Context, Poll, Service};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};
use tracing::{debug, info, warn};

use crate::config::Config;

/// A boxed, sendable future.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The config key, named in errors.
const KEY: &str = "traces.grpc_listen";

/// How long shutdown waits for calls in flight before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The retry delay suggested with RESOURCE_EXHAUSTED and UNAVAILABLE when the HTTP answer
/// carried no `Retry-After`.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Binds `traces.grpc_listen` and serves OTLP/gRPC until `stop`; no task when it is empty.
pub(crate) async fn start(
    config: &Config,
    state: AppState,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let listen = config.traces.grpc_listen.as_str();
    if listen.is_empty() {
        info!("OTLP/gRPC off (traces.grpc_listen is empty)");
        return Ok(Vec::new());
    }
    let addr = crate::config::listen_addr(listen).map_err(|e| anyhow::anyhow!("{KEY}: {e}"))?;
    let auth = state.auth();
    let required = auth.as_ref().is_some_and(|a| a.required);
    if !required && !addr.ip().is_loopback() && !config.server.insecure_no_auth {
        anyhow::bail!(
            "refusing to listen on {KEY} {addr} without authentication: anyone who can reach it could write data. \
             Turn on auth (auth.enabled), set {KEY} to a loopback address or \"\" (off), or pass --insecure-no-auth \
             if the network in front is trusted"
        );
    }
    let tls = auth.as_ref().filter(|a| a.tls).and_then(|a| a.web.clone());
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        // The built-in default must not stop a server that never asked for gRPC (an OpenTelemetry
        // Collector on the same host holds 4317 too); an address the config chose must.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && is_default(listen) => {
            warn!(
                addr = %addr,
                error = %e,
                "OTLP/gRPC off: the default address of traces.grpc_listen is in use; set it to a free address, or \"\" to silence this"
            );
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot listen on {KEY} {addr} (set {KEY} to a free address, or \"\" to turn OTLP/gRPC off)")
            })
        }
    };
    let bound = listener.local_addr()?;
    let http = telltale_api::router(state.clone());
    let (in_flight, calls) = watch::channel(0usize);
    let in_flight = Arc::new(in_flight);
    let server = tonic::transport::Server::builder()
        .add_service(Otlp::<Traces>::new(http.clone(), state.clone(), in_flight.clone()))
        .add_service(Otlp::<Metrics>::new(http.clone(), state.clone(), in_flight.clone()))
        .add_service(Otlp::<Logs>::new(http, state, in_flight));
    let mut stopped = stop.clone();
    let signal = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let serve: BoxFuture<Result<(), tonic::transport::Error>> = match tls {
        Some(web) => {
            info!(addr = %bound, tls = true, "OTLP/gRPC listening");
            Box::pin(server.serve_with_incoming_shutdown(tls_incoming(listener, web, stop.clone()), signal))
        }
        None => {
            info!(addr = %bound, tls = false, "OTLP/gRPC listening");
            Box::pin(server.serve_with_incoming_shutdown(tcp_incoming(listener), signal))
        }
    };
    Ok(vec![tokio::spawn(run(serve, stop, calls))])
}

/// Whether `listen` is the built-in default of `traces.grpc_listen`.
fn is_default(listen: &str) -> bool {
    listen == crate::traces::TracesConfig::default().grpc_listen
}

/// How long shutdown lets idle connections take their leave (HTTP/2 `GOAWAY`) once no call is in
/// flight; a client that does not answer is not waited for.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves until shutdown, then waits at most [`DRAIN_TIMEOUT`] for the calls in flight (counted
/// in `calls`), so the stores close only after their answers.
async fn run(
    serve: BoxFuture<Result<(), tonic::transport::Error>>,
    mut stop: watch::Receiver<bool>,
    mut calls: watch::Receiver<usize>,
) {
    let mut serve = serve;
    let outcome = tokio::select! {
        r = &mut serve => Some(r),
        _ = stop.wait_for(|s| *s) => None,
    };
    let outcome = match outcome {
        Some(r) => r,
        None => {
            if tokio::time::timeout(DRAIN_TIMEOUT, calls.wait_for(|n| *n == 0)).await.is_err() {
                warn!(timeout_s = DRAIN_TIMEOUT.as_secs(), "OTLP/gRPC calls still running at shutdown; leaving them");
            }
            match tokio::time::timeout(GOODBYE_TIMEOUT, serve).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    };
    match outcome {
        Ok(()) => info!("OTLP/gRPC stopped"),
        Err(e) => warn!(error = %e, "OTLP/gRPC server failed"),
    }
}

/// Counts one call in flight while it lives.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn new(count: &Arc<watch::Sender<usize>>) -> InFlight {
        count.send_modify(|n| *n += 1);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Accepted TCP connections, without Nagle (an answer's last small write must not wait).
fn tcp_incoming(
    listener: TcpListener,
) -> impl futures_util::Stream<Item = Result<TcpStream, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(listener, |l| async move {
        loop {
            match l.accept().await {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    return Some((Ok(tcp), l));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, as axum does.
                    debug!(error = %e, "OTLP/gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// Connections handshaken with the web config's TLS settings, each on a task of its own so a
/// slow client cannot hold up the others.
fn tls_incoming(
    listener: TcpListener,
    web: Arc<WebConfigFile>,
    mut stop: watch::Receiver<bool>,
) -> impl futures_util::Stream<Item = Result<TlsStream, std::io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<TlsStream>(64);
    let h2 = Arc::new(H2Config { web, cache: Mutex::new(None) });
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                c = listener.accept() => c,
                _ = stop.wait_for(|s| *s) => return,
            };
            let tcp = match tcp {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    debug!(error = %e, "OTLP/gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (tx, h2) = (tx.clone(), h2.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Some(config) = h2.current() else { return };
                let accept = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(tls).await;
                    }
                    Ok(Err(e)) => debug!(error = %e, "OTLP/gRPC TLS handshake failed"),
                    Err(_) => debug!("OTLP/gRPC TLS handshake timed out"),
                }
            });
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|tls| (Ok(tls), rx)) })
}

/// The web config's TLS settings with ALPN `h2` (the HTTP listener offers `http/1.1`, and gRPC
/// clients refuse a server that selects no `h2`); made again when the web config changes.
struct H2Config {
    web: Arc<WebConfigFile>,
    cache: Mutex<Option<(Arc<ServerConfig>, Arc<ServerConfig>)>>,
}

impl H2Config {
    fn current(&self) -> Option<Arc<ServerConfig>> {
        let http = self.web.current().tls.clone()?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((from, h2)) = &*cache {
            if Arc::ptr_eq(from, &http) {
                return Some(h2.clone());
            }
        }
        let mut h2 = (*http).clone();
        h2.alpn_protocols = vec![b"h2".to_vec()];
        let h2 = Arc::new(h2);
        *cache = Some((http, h2.clone()));
        Some(h2)
    }
}

/// One OTLP service: its gRPC name and the HTTP route that answers its `Export`.
trait Signal: Send + Sync + 'static {
    const NAME: &'static str;
    const EXPORT: &'static str;
    const HTTP_PATH: &'static str;
}

struct Traces;
struct Metrics;
struct Logs;

impl Signal for Traces {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const EXPORT: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const HTTP_PATH: &'static str = "/v1/traces";
}

impl Signal for Metrics {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const EXPORT: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    const HTTP_PATH: &'static str = "/v1/metrics";
}

impl Signal for Logs {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const EXPORT: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const HTTP_PATH: &'static str = "/v1/logs";
}

/// The gRPC service of one signal.
struct Otlp<S> {
    http: axum::Router,
    state: AppState,
    in_flight: Arc<watch::Sender<usize>>,
    signal: PhantomData<fn() -> S>,
}

impl<S> Clone for Otlp<S> {
    fn clone(&self) -> Self {
        Self {
            http: self.http.clone(),
            state: self.state.clone(),
            in_flight: self.in_flight.clone(),
            signal: PhantomData,
        }
    }
}

impl<S: Signal> Otlp<S> {
    fn new(http: axum::Router, state: AppState, in_flight: Arc<watch::Sender<usize>>) -> Self {
        Self { http, state, in_flight, signal: PhantomData }
    }
}

impl<S: Signal> NamedService for Otlp<S> {
    const NAME: &'static str = S::NAME;
}

impl<S: Signal> Service<http::Request<tonic::body::Body>> for Otlp<S> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let export = Export { http: self.http.clone(), path: S::HTTP_PATH };
        let max = usize::try_from(self.state.limits().max_body_size).unwrap_or(usize::MAX);
        let counted = InFlight::new(&self.in_flight);
        Box::pin(async move {
            let _counted = counted;
            if req.uri().path() != S::EXPORT {
                return Ok(Status::unimplemented(format!("no method {}", req.uri().path())).into_http());
            }
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(RawCodec)
                .apply_compression_config(gzip, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(export, req).await)
        })
    }
}

/// One `Export` call, answered by the HTTP route at `path`.
struct Export {
    http: axum::Router,
    path: &'static str,
}

impl UnaryService<Bytes> for Export {
    type Response = Bytes;
    type Future = BoxFuture<Result<tonic::Response<Bytes>, Status>>;

    fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
        Box::pin(forward(self.http.clone(), self.path, req))
    }
}

/// The metadata an export carries over to the HTTP request: the credential, the tenant, and
/// the client's name for the logs.
const FORWARDED: [&str; 3] = ["authorization", "x-scope-orgid", "user-agent"];

async fn forward(
    mut http: axum::Router,
    path: &'static str,
    req: tonic::Request<Bytes>,
) -> Result<tonic::Response<Bytes>, Status> {
    let (metadata, _, body) = req.into_parts();
    let headers = metadata.into_headers();
    let mut builder = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .header(http::header::CONTENT_LENGTH, body.len());
    for name in FORWARDED {
        for v in headers.get_all(name) {
            builder = builder.header(name, v);
        }
    }
    let req = builder.body(axum::body::Body::from(body)).map_err(|e| Status::internal(e.to_string()))?;
    let res = match Service::call(&mut http, req).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let (parts, body) = res.into_parts();
    let body = body.collect().await.map_err(|e| Status::internal(format!("reading the answer: {e}")))?.to_bytes();
    if parts.status.is_success() {
        return Ok(tonic::Response::new(body));
    }
    let message = match parts.extensions.get::<ApiError>() {
        Some(e) => e.message().to_string(),
        None => String::from_utf8_lossy(&body).trim().to_string(),
    };
    let retry_after = parts
        .headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    debug!(path, status = parts.status.as_u16(), error = %message, "OTLP/gRPC export refused");
    Err(status_for(parts.status, message, retry_after))
}

/// The gRPC code for an HTTP status of the OTLP routes, and whether the client should retry
/// (<https://opentelemetry.io/docs/specs/otlp/#failures>): RESOURCE_EXHAUSTED is retried only
/// with a `RetryInfo`, so a rate limit carries one and a message past the size limit does not;
/// UNAVAILABLE (store full, starting up, a tenant that cannot open) is always retryable.
fn code_for(status: http::StatusCode) -> (Code, bool) {
    match status.as_u16() {
        400 | 415 | 422 => (Code::InvalidArgument, false),
        401 => (Code::Unauthenticated, false),
        403 => (Code::PermissionDenied, false),
        404 => (Code::NotFound, false),
        413 => (Code::ResourceExhausted, false),
        429 => (Code::ResourceExhausted, true),
        503 => (Code::Unavailable, true),
        _ => (Code::Internal, false),
    }
}

fn status_for(status: http::StatusCode, message: String, retry_after: Option<Duration>) -> Status {
    match code_for(status) {
        (code, true) => {
            let details = rpc_status_with_retry(code, &message, retry_after.unwrap_or(DEFAULT_RETRY_DELAY));
            Status::with_details(code, message, details)
        }
        (code, false) => Status::new(code, message),
    }
}

/// `google.rpc.Status` with one `google.rpc.RetryInfo` detail (what `grpc-status-details-bin`
/// carries); the OTLP exporters read `retry_delay` from it.
fn rpc_status_with_retry(code: Code, message: &str, delay: Duration) -> Bytes {
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    let status = RpcStatus {
        code: code as i32,
        message: message.to_string(),
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: prost::Message::encode_to_vec(&retry),
        }],
    };
    prost::Message::encode_to_vec(&status).into()
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// Messages as bytes both ways: the HTTP route decodes requests, and its answers are already
/// encoded.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_the_codes_otlp_asks_for() {
        let code = |s: u16| code_for(http::StatusCode::from_u16(s).unwrap());
        assert_eq!(code(400), (Code::InvalidArgument, false));
        assert_eq!(code(415), (Code::InvalidArgument, false));
        assert_eq!(code(401), (Code::Unauthenticated, false));
        assert_eq!(code(403), (Code::PermissionDenied, false));
        assert_eq!(code(413), (Code::ResourceExhausted, false));
        assert_eq!(code(429), (Code::ResourceExhausted, true));
        assert_eq!(code(503), (Code::Unavailable, true));
        assert_eq!(code(500), (Code::Internal, false));
    }

    #[test]
    fn retryable_refusals_carry_retry_info() {
        let s = status_for(http::StatusCode::SERVICE_UNAVAILABLE, "disk full".into(), Some(Duration::from_secs(5)));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "disk full");
        let rpc: RpcStatus = prost::Message::decode(s.details()).unwrap();
        assert_eq!((rpc.code, rpc.message.as_str()), (Code::Unavailable as i32, "disk full"));
        assert_eq!(rpc.details[0].type_url, "type.googleapis.com/google.rpc.RetryInfo");
        let retry: RetryInfo = prost::Message::decode(rpc.details[0].value.as_slice()).unwrap();
        assert_eq!(retry.retry_delay, Some(ProtoDuration { seconds: 5, nanos: 0 }));

        let s = status_for(http::StatusCode::BAD_REQUEST, "bad".into(), None);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.details().is_empty());
    }

    #[test]
    fn only_the_built_in_address_may_be_busy() {
        assert!(is_default("127.0.0.1:4317"));
        assert!(!is_default("127.0.0.1:4318"));
    }
}
