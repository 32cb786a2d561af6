//! A rustls server config from a web config's `tls_server_config`, with Go's names mapped to
//! rustls's and what rustls lacks refused by key path.
//!
//! Go's `tls.CipherSuites()` (the names the exporter-toolkit accepts) map as follows: the TLS 1.2
//! AES-GCM and ChaCha20 suites to the same rustls suites; the TLS 1.3 names are accepted and, as
//! in Go, change nothing (TLS 1.3 suites are not configurable); the CBC suites are refused
//! (rustls has none). Curves: `X25519`, `CurveP256`, `CurveP384`; `CurveP521` is refused (ring
//! has no P-521 key exchange). Versions: only TLS 1.2 and 1.3 exist here, so `min_version: TLS10`
//! means TLS 1.2 and a `max_version` below TLS 1.2 is refused.

use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme, SupportedCipherSuite,
};

use crate::error::{Error, Result};
use crate::webconfig::TlsServerConfig;

const KEY: &str = "tls_server_config";

fn err(key: &str, msg: impl Into<String>) -> Error {
    Error::config(format!("{KEY}.{key}"), msg.into())
}

/// Go's names of the TLS 1.3 suites: accepted, no effect (as in Go).
const TLS13_NAMES: [&str; 3] = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];
/// Go's secure TLS 1.2 CBC suites, which rustls does not implement.
const CBC_NAMES: [&str; 4] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

/// Go's names of the TLS 1.2 suites rustls implements.
fn cipher(name: &str) -> Option<SupportedCipherSuite> {
    use ring::cipher_suite::*;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

fn curve(name: &str) -> Option<&'static dyn SupportedKxGroup> {
    match name {
        "X25519" => Some(ring::kx_group::X25519),
        "CurveP256" => Some(ring::kx_group::SECP256R1),
        "CurveP384" => Some(ring::kx_group::SECP384R1),
        _ => None,
    }
}

fn version(key: &str, v: &str) -> Result<u8> {
    match v {
        "TLS10" => Ok(10),
        "TLS11" => Ok(11),
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        _ => Err(err(key, format!("unknown TLS version: {v}"))),
    }
}

fn read(key: &str, path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| err(key, format!("failed to read {key} ({}): {e}", path.display())))
}

/// The certificate chain and key, from files or inline PEM.
fn cert_and_key(t: &TlsServerConfig) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let cert_pem = match (&t.cert_file, &t.cert) {
        (Some(p), _) if !p.as_os_str().is_empty() => read("cert_file", p)?,
        (_, Some(c)) if !c.is_empty() => c.clone().into_bytes(),
        _ => return Err(Error::config(KEY, "missing one of cert or cert_file")),
    };
    let key_pem = match (&t.key_file, &t.key) {
        (Some(p), _) if !p.as_os_str().is_empty() => read("key_file", p)?,
        (_, Some(k)) if !k.is_empty() => k.clone().into_bytes(),
        _ => return Err(Error::config(KEY, "missing one of key or key_file")),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err("cert_file", format!("failed to load X509KeyPair: {e}")))?;
    if certs.is_empty() {
        return Err(err("cert_file", "failed to load X509KeyPair: no certificate in the PEM data"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| err("key_file", format!("failed to load X509KeyPair: {e}")))?;
    Ok((certs, key))
}

fn client_roots(t: &TlsServerConfig) -> Result<Option<RootCertStore>> {
    let pem = match (&t.client_ca_file, &t.client_ca) {
        (Some(p), _) if !p.as_os_str().is_empty() => read("client_ca_file", p)?,
        (_, Some(c)) if !c.is_empty() => c.clone().into_bytes(),
        _ => return Ok(None),
    };
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| err("client_ca_file", format!("not PEM certificates: {e}")))?;
        roots.add(c).map_err(|e| err("client_ca_file", format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Some(roots))
}

/// Builds the server config; every refusal names its key.
pub fn server_config(t: &TlsServerConfig) -> Result<Arc<ServerConfig>> {
    let (certs, key) = cert_and_key(t)?;
    let mut provider: CryptoProvider = ring::default_provider();
    if let Some(names) = t.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        let mut tls12_suites = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if TLS13_NAMES.contains(&n.as_str()) {
                continue;
            }
            if CBC_NAMES.contains(&n.as_str()) {
                return Err(err(
                    &format!("cipher_suites[{i}]"),
                    format!("{n} is not supported by rustls, Telltale's TLS library (no CBC suites)"),
                ));
            }
            match cipher(n) {
                Some(s) => tls12_suites.push(s),
                None => return Err(err(&format!("cipher_suites[{i}]"), format!("unknown cipher: {n}"))),
            }
        }
        let tls13 = provider.cipher_suites.iter().copied().filter(|s| s.version() == &rustls::version::TLS13);
        provider.cipher_suites = tls13.chain(tls12_suites).collect();
    }
    if let Some(names) = t.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        let mut groups = Vec::new();
        for (i, n) in names.iter().enumerate() {
            match (n.as_str(), curve(n)) {
                (_, Some(g)) => groups.push(g),
                ("CurveP521", None) => {
                    return Err(err(
                        &format!("curve_preferences[{i}]"),
                        "CurveP521 is not supported by rustls with ring, Telltale's TLS library",
                    ))
                }
                _ => return Err(err(&format!("curve_preferences[{i}]"), format!("unknown curve: {n}"))),
            }
        }
        provider.kx_groups = groups;
    }
    let min = t.min_version.as_deref().map_or(Ok(12), |v| version("min_version", v))?.max(12);
    let max = t.max_version.as_deref().map_or(Ok(13), |v| version("max_version", v))?;
    if max < 12 {
        return Err(err(
            "max_version",
            "TLS 1.0 and 1.1 are not supported by rustls, Telltale's TLS library; use TLS12 or TLS13",
        ));
    }
    if min > max {
        return Err(err("min_version", "is newer than max_version"));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    // A TLS 1.2-only server with only TLS 1.3 suites left could never complete a handshake.
    if max == 12 && !provider.cipher_suites.iter().any(|s| s.version() == &rustls::version::TLS12) {
        return Err(err("cipher_suites", "no TLS 1.2 cipher suite left while max_version is TLS12"));
    }
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| Error::config(KEY, format!("inconsistent TLS settings: {e}")))?;
    let roots = client_roots(t)?;
    let auth = t.client_auth_type.as_deref().unwrap_or("");
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match auth {
        "" | "NoClientCert" => None,
        "RequestClientCert" => Some(Arc::new(AnyClientCert { provider: provider.clone(), mandatory: false })),
        "RequireAnyClientCert" | "RequireClientCert" => {
            Some(Arc::new(AnyClientCert { provider: provider.clone(), mandatory: true }))
        }
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let roots = roots
                .clone()
                .ok_or_else(|| err("client_ca_file", format!("{auth} needs client_ca_file or client_ca")))?;
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if auth == "VerifyClientCertIfGiven" { b.allow_unauthenticated() } else { b };
            Some(b.build().map_err(|e| err("client_ca_file", format!("cannot verify clients with it: {e}")))?)
        }
        other => return Err(err("client_auth_type", format!("invalid ClientAuth: {other}"))),
    };
    if roots.is_some() && verifier.is_none() {
        return Err(Error::config(KEY, "client CA's have been configured without a Client Auth Policy"));
    }
    let verifier = match (&t.client_allowed_sans, verifier) {
        (None, v) => v,
        (Some(allowed), Some(inner)) if inner.client_auth_mandatory() => {
            Some(Arc::new(AllowedSans { inner, allowed: allowed.clone() }) as Arc<dyn ClientCertVerifier>)
        }
        // As the exporter-toolkit: with a certificate optional, a client could skip the check.
        (Some(_), _) => {
            return Err(err(
                "client_allowed_sans",
                "requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert",
            ))
        }
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| err("key_file", format!("failed to load X509KeyPair: {e}")))?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `RequestClientCert` and `RequireAnyClientCert`: a client certificate is asked for (and
/// required), its signature over the handshake checked, but it is not verified against a CA
/// (Go's semantics for these two; not authentication).
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after `inner` accepted the client's certificate, one of its subject
/// alternative names (DNS, email, IP, URI) must be an allowed value, compared as exact strings.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let names = crate::san::subject_alt_names(end_entity)
            .map_err(|e| rustls::Error::General(format!("cannot read the client certificate's names: {e}")))?;
        if names.iter().any(|n| self.allowed.contains(n)) {
            return Ok(verified);
        }
        tracing::info!(names = ?names, "TLS client refused: none of its certificate's names is in client_allowed_sans");
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
