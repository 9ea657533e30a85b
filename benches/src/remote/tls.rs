//! The baselines' TLS: the same certificates `shmpipe gateway init` makes
//! for the remote pipe, and the same rules as the gateway's own
//! configuration (TLS 1.3 only, rustls' ring provider, a client
//! certificate required and chained to the CA, keep-alive and idle
//! timeout as the gateway's defaults), so the rows differ only in what
//! carries the bytes.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The ALPN both baselines require.
const ALPN: &[u8] = b"shmpipe-bench/1";
/// The name in the gateway certificate the clients check.
pub(crate) const SERVER_NAME: &str = "localhost";
/// The gateway's default idle timeout (`shmpipe::remote::DEFAULT_TIMEOUT_MS`).
const IDLE: Duration = Duration::from_millis(shmpipe::remote::DEFAULT_TIMEOUT_MS);

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("TLS setup: {e}"))
}

fn certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(format!("{}: {e}", path.display())))
}

fn key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| tls_error(format!("{}: {e}", path.display())))
}

fn roots(dir: &Path) -> io::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&dir.join("ca.pem"))? {
        roots.add(c).map_err(tls_error)?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // The gateway's provider (ring), deprecated only for lacking ML-KEM.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side (gateway certificate, client certificates required),
/// from the files `shmpipe::remote::init` wrote into `dir`.
pub(crate) fn server(dir: &Path) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = provider();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(dir)?),
        Arc::clone(&provider),
    )
    .build()
    .map_err(tls_error)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            certs(&dir.join("gateway.pem"))?,
            key(&dir.join("gateway.key"))?,
        )
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(tls))
}

/// The client side (trusts the CA, presents the client certificate).
pub(crate) fn client(dir: &Path) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_root_certificates(roots(dir)?)
        .with_client_auth_cert(
            certs(&dir.join("client.pem"))?,
            key(&dir.join("client.key"))?,
        )
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(tls))
}

/// The gateway's QUIC transport settings.
fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    let ms = u32::try_from(IDLE.as_millis()).unwrap_or(u32::MAX);
    t.max_idle_timeout(Some(quinn::VarInt::from_u32(ms).into()));
    t.keep_alive_interval(Some(IDLE / 3));
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(256));
    Arc::new(t)
}

/// The bare quinn server's configuration.
pub(crate) fn quinn_server(dir: &Path) -> io::Result<quinn::ServerConfig> {
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(server(dir)?).map_err(tls_error)?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    sc.transport_config(transport());
    Ok(sc)
}

/// The bare quinn client's configuration.
pub(crate) fn quinn_client(dir: &Path) -> io::Result<quinn::ClientConfig> {
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(client(dir)?).map_err(tls_error)?;
    let mut cc = quinn::ClientConfig::new(Arc::new(crypto));
    cc.transport_config(transport());
    Ok(cc)
}
