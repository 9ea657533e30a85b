//! Named pipes across machines (feature `remote`): `\\host\pipe\name`
//! reaches a pipe on `host` through its [`Gateway`], over QUIC with mutual
//! TLS (docs/remote-design.md, docs/guide/remote.md).
//!
//! * A client opens a remote name with the usual
//!   [`ClientOptions::open`](crate::named::ClientOptions::open); the host
//!   is looked up in `remote.toml` ([`ClientConfig`]) and the result is an
//!   ordinary [`NamedPipeClient`](crate::named::NamedPipeClient).
//! * A [`Gateway`] (`shmpipe gateway`) exports this machine's pipes to
//!   clients whose certificate its [`GatewayConfig`] maps to a local
//!   identity; the pipe's server judges that identity as a local client's,
//!   and sees the client as remote
//!   ([`Credentials::remote`](crate::named::Credentials::remote)).
//! * [`init`] makes the certificates and both configuration snippets.
//!
//! ```no_run
//! use shmpipe::named::ClientOptions;
//! // With a `buildbox` entry in remote.toml and its gateway running:
//! let client = ClientOptions::new().open(r"\\buildbox\pipe\jobs")?;
//! client.send_msg(b"build")?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub(crate) mod bridge;
pub(crate) mod client;
mod config;
pub mod frame;
mod gateway;
mod init;
mod tls;

#[doc(hidden)]
pub use client::open_connections;
pub use config::{
    ClientConfig, GatewayConfig, HostConfig, Mapping, CLIENT_CONFIG_ENV, DEFAULT_TIMEOUT_MS,
};
pub use gateway::{Gateway, CLOSE_UNKNOWN_CERT};
pub use init::{init, Initialised};
pub use tls::STREAM_WINDOW;

/// The SHA-256 fingerprint of the first certificate in a PEM file, as the
/// gateway's `[[clients]]` entries write it (hex with colons).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("shmpipe-doc-fp-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let out = shmpipe::remote::init(&dir, &["localhost".into()], 0, 0, "localhost", 4433)?;
/// let fp = shmpipe::remote::fingerprint_of(&dir.join("client.pem"))?;
/// assert_eq!(fp, out.client_fingerprint);
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn fingerprint_of(pem: &std::path::Path) -> std::io::Result<String> {
    let certs = tls::load_certs(pem)?;
    Ok(init::hex(&tls::fingerprint(&certs[0])))
}
