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

/// The QUIC receive window of each stream (one pipe instance, each
/// direction), in bytes: how much a peer may send that the receiving
/// bridge has not taken yet. A write's completion across the network
/// means its bytes are within the writer's quota, the bridges' buffers
/// and this window (docs/guide/remote.md, "Quotas"). quinn sets it per
/// connection, for every stream alike; 512 KiB keeps a 1 MiB message
/// streaming at loopback speed while bounding what a stalled reader
/// leaves in flight (quinn's default is 1.25 MB).
///
/// ```
/// assert_eq!(shmpipe::remote::STREAM_WINDOW, 512 << 10);
/// ```
pub const STREAM_WINDOW: u32 = 512 << 10;

fn transport(idle: Duration) -> io::Result<Arc<quinn::TransportConfig>> {
    let mut t = quinn::TransportConfig::default();
    let idle_ms = u32::try_from(idle.as_millis()).unwrap_or(u32::MAX).max(1);
    t.max_idle_timeout(Some(quinn::VarInt::from_u32(idle_ms).into()));
    // Several keep-alives per idle period: one lost packet must not end a
    // healthy connection.
    t.keep_alive_interval(Some(idle / 3));
    // One stream per pipe instance or wait: as many as a busy name may
    // have (255 instances), not unbounded (each costs threads, and up to a
    // message in memory, at the gateway).
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(256));
    // Nothing uses unidirectional streams: allow none. (With quinn's
    // default of 100, a peer could open them and send; the other side
    // never reads them, yet acknowledged and kept everything sent.)
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    // What one peer may have in flight toward us in all, whatever its
    // streams (each stream keeps quinn's own window within this).
    t.receive_window(quinn::VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
    t.stream_receive_window(quinn::VarInt::from_u32(STREAM_WINDOW));
    Ok(Arc::new(t))
}

/// Bytes a peer may send on a connection before we read them (all its
/// streams together).
const CONNECTION_RECEIVE_WINDOW: u32 = 32 << 20;

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

/// How a client recognises its gateway.
pub(crate) enum GatewayTrust<'a> {
    /// Its certificate chains to this CA (PEM) and names the server name.
    Ca(&'a Path),
    /// Its certificate has this SHA-256 (no CA, name or validity check:
    /// the pinned certificate is the gateway).
    Pin(Vec<u8>),
}

/// A verifier that accepts exactly one certificate, by fingerprint; the
/// handshake's signature is still checked against that certificate's key.
#[derive(Debug)]
struct Pinned {
    fingerprint: Vec<u8>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.fingerprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        // The configuration offers TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client's QUIC configuration for one host: how it recognises the
/// gateway, and the client's own certificate.
pub(crate) fn client_config(
    gateway: GatewayTrust<'_>,
    cert: &Path,
    key: &Path,
    idle: Duration,
) -> io::Result<quinn::ClientConfig> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?;
    let builder = match gateway {
        GatewayTrust::Ca(ca) => builder.with_root_certificates(roots(ca)?),
        GatewayTrust::Pin(fingerprint) => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    fingerprint,
                    algorithms: provider.signature_verification_algorithms,
                }))
        }
    };
    let mut tls = builder
        .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_error)?;
    let mut cc = quinn::ClientConfig::new(Arc::new(crypto));
    cc.transport_config(transport(idle)?);
    Ok(cc)
}

#[cfg(test)]
mod tests {
    /// The configured idle timeout is the connection's (both sides build
    /// their transport here), with keep-alives at a third of it, and the
    /// stream window is `STREAM_WINDOW`.
    #[test]
    fn transport_takes_the_configured_liveness_bound() {
        let t = format!(
            "{:?}",
            super::transport(std::time::Duration::from_millis(900)).unwrap()
        );
        for want in [
            "max_idle_timeout: Some(900)",
            "keep_alive_interval: Some(300ms)",
            "stream_receive_window: 524288",
        ] {
            assert!(t.contains(want), "{want} not in {t}");
        }
    }
}
