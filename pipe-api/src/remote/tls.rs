//! rustls and quinn configurations: TLS 1.3 only, ring only, a client
//! certificate always required by the gateway, keep-alive and idle timeout
//! on both sides.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The ALPN protocol both sides require.
pub(crate) const ALPN: &[u8] = b"shmpipe/1";

fn invalid(what: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {e}", what.display()),
    )
}

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("TLS setup: {e}"))
}

pub(crate) fn load_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, e))?;
    if certs.is_empty() {
        return Err(invalid(path, "no certificate"));
    }
    Ok(certs)
}

pub(crate) fn load_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| invalid(path, e))
}

fn roots(path: &Path) -> io::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(path)? {
        roots.add(c).map_err(|e| invalid(path, e))?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Deprecated only for lacking post-quantum key exchange; ring is chosen
    // over aws-lc-rs (which has it) for a build without cmake. Revisit when
    // rustls' ring provider gains ML-KEM.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport(idle: Duration) -> io::Result<Arc<quinn::TransportConfig>> {
    let mut t = quinn::TransportConfig::default();
    let idle_ms = u32::try_from(idle.as_millis()).unwrap_or(u32::MAX).max(1);
    t.max_idle_timeout(Some(quinn::VarInt::from_u32(idle_ms).into()));
    // Several keep-alives per idle period: one lost packet must not end a
    // healthy connection.
    t.keep_alive_interval(Some(idle / 3));
    // One stream per pipe instance: as many as a busy name may have.
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(1024));
    Ok(Arc::new(t))
}

/// The SHA-256 of a certificate's DER.
pub(crate) fn fingerprint(cert: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, cert)
        .as_ref()
        .to_vec()
}

/// The gateway's QUIC server configuration: its certificate, and client
/// certificates required, chaining to `client_ca`.
pub(crate) fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    idle: Duration,
) -> io::Result<quinn::ServerConfig> {
    let provider = provider();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(client_ca)?),
        Arc::clone(&provider),
    )
    .build()
    .map_err(tls_error)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(tls_error)?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    sc.transport_config(transport(idle)?);
    Ok(sc)
}

/// A client's QUIC configuration for one host: the CA its gateway's
/// certificate must chain to, and the client's own certificate.
pub(crate) fn client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
    idle: Duration,
) -> io::Result<quinn::ClientConfig> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_error)?;
    let mut cc = quinn::ClientConfig::new(Arc::new(crypto));
    cc.transport_config(transport(idle)?);
    Ok(cc)
}
