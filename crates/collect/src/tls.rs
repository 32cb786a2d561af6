//! `tls_config:` in Prometheus's schema (`ca`, `ca_file`, `cert`, `cert_file`, `key`,
//! `key_file`, `server_name`, `insecure_skip_verify`, `min_version`, `max_version`), and the
//! HTTP client that honours it: a ureq agent whose connector wraps `https` connections in
//! rustls with our own `ClientConfig`.
//!
//! Why a connector of our own rather than ureq's `TlsConfig`: ureq has no way to set the
//! name the certificate is checked against (`server_name`) or the protocol versions, both of
//! which Prometheus users rely on. The connector is ~100 lines on ureq's `unversioned`
//! transport API (stable within a ureq minor version).
//!
//! Certificate rotation: like Prometheus, which re-reads its CA and client certificate when
//! they change, the files are checked (size and mtime) whenever a connection is opened, and
//! the rustls config is rebuilt when one changed. The crypto provider is `ring` (its cold
//! build is several times cheaper than `aws-lc-rs`'s; figures in `docs/collect.md`).

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};
use serde::{Deserialize, Serialize};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

/// `tls_config:` of a scrape config or of the agent's remote write.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The CA certificate(s) to verify the server with, as PEM text (or `ca_file`).
    /// Neither: the system's trusted roots.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca: String,
    /// A PEM file of CA certificates to verify the server with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The client certificate (chain) as PEM text (or `cert_file`), for servers that require one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    /// A PEM file holding the client certificate (chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key as PEM text (or `key_file`). Never logged.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// A PEM file holding the client certificate's private key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must be valid for, also sent as SNI (default: the
    /// target's host).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    /// Accept any server certificate (still encrypted, not authenticated).
    pub insecure_skip_verify: bool,
    /// The oldest protocol version to accept: `TLS10`, `TLS11`, `TLS12` (default), `TLS13`.
    /// Only TLS 1.2 and 1.3 are ever spoken, so `TLS10` and `TLS11` mean `TLS12`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// The newest protocol version to offer: `TLS12` or `TLS13` (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
}

fn version(key: &str, v: &str) -> Result<u8, String> {
    match v {
        "TLS10" => Ok(10),
        "TLS11" => Ok(11),
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        _ => Err(format!("{key}: unknown TLS version {v:?} (TLS10, TLS11, TLS12 or TLS13)")),
    }
}

impl TlsConfig {
    /// Whether nothing is set (plain defaults: system roots, verification on).
    pub fn is_default(&self) -> bool {
        *self == TlsConfig::default()
    }

    /// Checks the settings as Prometheus does and loads every file once, so a bad path or
    /// PEM is reported when the config is loaded. The error is one line naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.ca.is_empty() && self.ca_file.is_some() {
            return Err("at most one of ca and ca_file must be configured".into());
        }
        if !self.cert.is_empty() && self.cert_file.is_some() {
            return Err("at most one of cert and cert_file must be configured".into());
        }
        if !self.key.is_empty() && self.key_file.is_some() {
            return Err("at most one of key and key_file must be configured".into());
        }
        let has_cert = !self.cert.is_empty() || self.cert_file.is_some();
        let has_key = !self.key.is_empty() || self.key_file.is_some();
        if has_cert && !has_key {
            return Err(
                "exactly one of key or key_file must be configured when a client certificate is configured".into()
            );
        }
        if has_key && !has_cert {
            return Err("exactly one of cert or cert_file must be configured when a client key is configured".into());
        }
        let (min, max) = self.versions()?;
        if min > max {
            return Err(format!(
                "min_version {} is newer than max_version {}",
                self.min_version.as_deref().unwrap_or("TLS12"),
                self.max_version.as_deref().unwrap_or("TLS13")
            ));
        }
        build(self).map(|_| ())
    }

    /// `(min, max)` as 12 or 13.
    fn versions(&self) -> Result<(u8, u8), String> {
        let min = match &self.min_version {
            Some(v) => version("min_version", v)?.max(12),
            None => 12,
        };
        let max = match &self.max_version {
            Some(v) => version("max_version", v)?,
            None => 13,
        };
        if max < 12 {
            return Err("max_version: TLS 1.0 and 1.1 are not supported (they are insecure); use TLS12 or TLS13".into());
        }
        Ok((min, max))
    }

    fn files(&self) -> Vec<PathBuf> {
        [&self.ca_file, &self.cert_file, &self.key_file].into_iter().flatten().cloned().collect()
    }
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// The system's trusted roots (Debian: /etc/ssl/certs), loaded once.
fn system_roots() -> Arc<RootCertStore> {
    static R: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    R.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "cannot load a system CA certificate");
        }
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(found.certs);
        Arc::new(store)
    })
    .clone()
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot parse {what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate found in {what}"));
    }
    Ok(certs)
}

fn source(inline: &str, file: &Option<PathBuf>, key: &str) -> Result<Option<(Vec<u8>, String)>, String> {
    match file {
        Some(p) => Ok(Some((read(p)?, format!("{key}_file {}", p.display())))),
        None if !inline.is_empty() => Ok(Some((inline.as_bytes().to_vec(), key.to_string()))),
        None => Ok(None),
    }
}

/// The rustls config for `t`, reading its files now.
fn build(t: &TlsConfig) -> Result<Arc<ClientConfig>, String> {
    let (min, max) = t.versions()?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("cannot set TLS versions: {e}"))?;
    let builder = if t.insecure_skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
    } else if let Some((pem, what)) = source(&t.ca, &t.ca_file, "ca")? {
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(certs(&pem, &what)?);
        if added == 0 {
            return Err(format!("no usable CA certificate in {what}"));
        }
        builder.with_root_certificates(store)
    } else {
        builder.with_root_certificates(system_roots())
    };
    let config = match (source(&t.cert, &t.cert_file, "cert")?, source(&t.key, &t.key_file, "key")?) {
        (Some((cert, cwhat)), Some((key, kwhat))) => {
            let chain = certs(&cert, &cwhat)?;
            let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| format!("cannot parse {kwhat}: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate and key do not fit together: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `insecure_skip_verify`: any certificate chain is accepted, but the handshake's signatures
/// are still checked (so the peer holds the key of the certificate it shows).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Size and modification time of each file, to notice a rotated certificate.
type Stamps = Vec<Option<(SystemTime, u64)>>;

fn stamps(files: &[PathBuf]) -> Stamps {
    files
        .iter()
        .map(|f| std::fs::metadata(f).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len())))
        .collect()
}

/// A `TlsConfig` with its rustls config, rebuilt when one of its files changes.
struct Cached {
    tls: TlsConfig,
    files: Vec<PathBuf>,
    current: Mutex<Option<(Stamps, Arc<ClientConfig>)>>,
}

impl Cached {
    fn config(&self) -> Result<Arc<ClientConfig>, String> {
        let now = stamps(&self.files);
        let mut g = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, c)) = g.as_ref() {
            if *s == now {
                return Ok(c.clone());
            }
        }
        let c = build(&self.tls)?;
        *g = Some((now, c.clone()));
        Ok(c)
    }
}

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached").field("files", &self.files).field("server_name", &self.tls.server_name).finish()
    }
}

/// Wraps `https` connections in rustls with our config; passes `http` ones through.
#[derive(Debug)]
struct TlsConnector(Arc<Cached>);

fn io_error(msg: String) -> ureq::Error {
    ureq::Error::Io(std::io::Error::other(msg))
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let config = self.0.config().map_err(io_error)?;
        let host = if self.0.tls.server_name.is_empty() {
            let h = details.uri.host().unwrap_or_default();
            h.trim_start_matches('[').trim_end_matches(']').to_string()
        } else {
            self.0.tls.server_name.clone()
        };
        let name = ServerName::try_from(host.clone())
            .map_err(|_| io_error(format!("{host:?} is not a valid TLS server name")))?;
        let mut conn = ClientConnection::new(config, name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

/// An established TLS connection.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// An HTTP agent (`http` and `https`) with `tls` for its TLS connections and `config` for
/// the rest (timeouts, status handling, proxy). Fails if `tls` does not load.
pub fn agent(tls: &TlsConfig, config: ureq::config::Config) -> Result<ureq::Agent, String> {
    let cached = Cached { tls: tls.clone(), files: tls.files(), current: Mutex::new(None) };
    cached.config()?;
    let connector =
        ().chain(ConnectProxyConnector::default()).chain(TcpConnector::default()).chain(TlsConnector(Arc::new(cached)));
    Ok(ureq::Agent::with_parts(config, connector, DefaultResolver::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> TlsConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn bad_combinations_are_refused_with_prometheus_wording() {
        let err = |y: &str| cfg(y).validate().unwrap_err();
        assert_eq!(err("ca: x\nca_file: /y\n"), "at most one of ca and ca_file must be configured");
        assert_eq!(
            err("cert_file: /c\n"),
            "exactly one of key or key_file must be configured when a client certificate is configured"
        );
        assert_eq!(
            err("key: k\n"),
            "exactly one of cert or cert_file must be configured when a client key is configured"
        );
        assert_eq!(
            err("min_version: TLS14\n"),
            "min_version: unknown TLS version \"TLS14\" (TLS10, TLS11, TLS12 or TLS13)"
        );
        assert!(err("max_version: TLS11\n").starts_with("max_version: TLS 1.0 and 1.1 are not supported"));
        assert_eq!(
            err("min_version: TLS13\nmax_version: TLS12\n"),
            "min_version TLS13 is newer than max_version TLS12"
        );
        assert!(err("ca_file: /nonexistent/ca.pem\n").starts_with("cannot read /nonexistent/ca.pem: "));
        assert_eq!(err("ca: not pem\n"), "no PEM certificate found in ca");
    }

    #[test]
    fn defaults_use_the_system_roots_and_tls12_up() {
        let t = TlsConfig::default();
        assert!(t.is_default());
        t.validate().unwrap();
        assert_eq!(t.versions().unwrap(), (12, 13));
        assert_eq!(cfg("min_version: TLS10\n").versions().unwrap(), (12, 13));
        assert!(agent(&t, ureq::config::Config::default()).is_ok());
    }
}
