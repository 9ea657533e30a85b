//! The two configuration files: the gateway's ([`GatewayConfig`]) and the
//! client's list of hosts ([`ClientConfig`], `remote.toml`).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable naming the client configuration file, read
/// before `$XDG_CONFIG_HOME/shmpipe/remote.toml`.
pub const CLIENT_CONFIG_ENV: &str = "SHMPIPE_REMOTE_CONFIG";

/// Default idle timeout (a dead peer is noticed within it) and connect
/// timeout, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn bad(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {e}", path.display()),
    )
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad(path, e))
}

/// Relative paths in a file are relative to the file's directory.
fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        if let Some(dir) = base.parent() {
            *p = dir.join(&*p);
        }
    }
}

/// Who a client certificate is on this machine.
///
/// ```
/// let m: shmpipe::remote::Mapping = toml::from_str(
///     "fingerprint = \"AB:cd\"\nuid = 65534\ngid = 65534\n",
/// ).unwrap();
/// assert_eq!((m.uid, m.groups.len()), (65534, 0));
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// SHA-256 of the certificate's DER, in hex (colons and case ignored).
    pub fingerprint: String,
    /// The local user the certificate acts as.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Its supplementary groups.
    #[serde(default)]
    pub groups: Vec<u32>,
    /// A label for logs.
    #[serde(default)]
    pub name: Option<String>,
}

/// `gateway.toml`: where the gateway listens, its certificate, the CA its
/// clients' certificates must chain to, and who each client is here.
///
/// ```
/// let c: shmpipe::remote::GatewayConfig = toml::from_str(r#"
///     listen = "127.0.0.1:4433"
///     cert = "gateway.pem"
///     key = "gateway.key"
///     client_ca = "ca.pem"
///     [[clients]]
///     fingerprint = "00"
///     uid = 1000
///     gid = 1000
/// "#).unwrap();
/// assert_eq!(c.idle_timeout_ms, 3000);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// UDP address to listen on.
    pub listen: std::net::SocketAddr,
    /// The gateway's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA client certificates must chain to (PEM).
    pub client_ca: PathBuf,
    /// How long a silent client keeps its connection.
    #[serde(default = "default_timeout")]
    pub idle_timeout_ms: u64,
    /// The certificates accepted, and who they are here.
    #[serde(default)]
    pub clients: Vec<Mapping>,
}

impl GatewayConfig {
    /// Reads `path` (relative file names are relative to its directory).
    ///
    /// ```no_run
    /// let c = shmpipe::remote::GatewayConfig::load("/etc/shmpipe/gateway.toml".as_ref())?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn load(path: &Path) -> io::Result<GatewayConfig> {
        let mut c: GatewayConfig = read_toml(path)?;
        for p in [&mut c.cert, &mut c.key, &mut c.client_ca] {
            resolve(path, p);
        }
        // A mapping must be unambiguous: a SHA-256 is 32 bytes (a shorter
        // one would silently never match), and one certificate listed twice
        // (in another case, or with colons) would get whichever identity
        // came first.
        let mut seen = std::collections::HashSet::new();
        for m in &c.clients {
            let fp = normalise_fingerprint(&m.fingerprint)
                .filter(|fp| fp.len() == 32)
                .ok_or_else(|| {
                    bad(
                        path,
                        format!("bad fingerprint {:?}: not 32 bytes of hex", m.fingerprint),
                    )
                })?;
            if !seen.insert(fp) {
                return Err(bad(
                    path,
                    format!("fingerprint {:?} is mapped twice", m.fingerprint),
                ));
            }
        }
        Ok(c)
    }

    /// The mapping of the certificate with this SHA-256 (raw bytes).
    ///
    /// ```
    /// let c: shmpipe::remote::GatewayConfig = toml::from_str(r#"
    ///     listen = "127.0.0.1:1"
    ///     cert = "c"
    ///     key = "k"
    ///     client_ca = "a"
    ///     [[clients]]
    ///     fingerprint = "0A:0b"
    ///     uid = 7
    ///     gid = 7
    /// "#).unwrap();
    /// assert_eq!(c.mapping(&[0x0a, 0x0b]).map(|m| m.uid), Some(7));
    /// assert!(c.mapping(&[0x0a]).is_none());
    /// ```
    pub fn mapping(&self, sha256: &[u8]) -> Option<&Mapping> {
        self.clients
            .iter()
            .find(|m| normalise_fingerprint(&m.fingerprint).as_deref() == Some(sha256))
    }

    /// The idle timeout as a duration.
    ///
    /// ```
    /// let c: shmpipe::remote::GatewayConfig = toml::from_str(
    ///     "listen = \"127.0.0.1:1\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"a\"\nidle_timeout_ms = 500\n",
    /// ).unwrap();
    /// assert_eq!(c.idle_timeout().as_millis(), 500);
    /// ```
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.max(1))
    }
}

/// A fingerprint's bytes, from hex with optional colons.
pub(crate) fn normalise_fingerprint(s: &str) -> Option<Vec<u8>> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    hex.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

/// One host in `remote.toml`.
///
/// ```
/// let h: shmpipe::remote::HostConfig = toml::from_str(r#"
///     address = "127.0.0.1"
///     port = 4433
///     ca = "ca.pem"
///     cert = "client.pem"
///     key = "client.key"
/// "#).unwrap();
/// assert_eq!(h.server_name, None); // the host's name in the pipe name
/// assert!(h.pin.is_none());
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// IP address or DNS name of the gateway.
    pub address: String,
    /// Its UDP port.
    pub port: u16,
    /// The name the gateway's certificate must carry (default: the host
    /// part of the pipe name).
    #[serde(default)]
    pub server_name: Option<String>,
    /// The CA the gateway's certificate must chain to (PEM); or `pin`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Instead of `ca`: the SHA-256 of the gateway's certificate (hex,
    /// colons allowed). Exactly that certificate is accepted, whatever its
    /// names and validity.
    #[serde(default)]
    pub pin: Option<String>,
    /// This client's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// How long an open waits for the gateway to answer at all.
    #[serde(default = "default_timeout")]
    pub connect_timeout_ms: u64,
    /// How long a silent gateway keeps the connection.
    #[serde(default = "default_timeout")]
    pub idle_timeout_ms: u64,
}

/// `remote.toml`: the hosts a client may reach, by the name used in
/// `\\host\pipe\name` (compared case-insensitively).
///
/// ```
/// let c: shmpipe::remote::ClientConfig = toml::from_str(r#"
///     [hosts.Build-Box]
///     address = "10.0.0.2"
///     port = 4433
///     ca = "ca.pem"
///     cert = "client.pem"
///     key = "client.key"
/// "#).unwrap();
/// assert!(c.host("build-box").is_some());
/// assert!(c.host("other").is_none());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The hosts, by name.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostConfig>,
}

impl ClientConfig {
    /// The file a client reads: `$SHMPIPE_REMOTE_CONFIG`, else
    /// `$XDG_CONFIG_HOME/shmpipe/remote.toml`, else
    /// `$HOME/.config/shmpipe/remote.toml`.
    ///
    /// ```
    /// // Some path, or none without HOME and XDG_CONFIG_HOME.
    /// let _ = shmpipe::remote::ClientConfig::path();
    /// ```
    pub fn path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(CLIENT_CONFIG_ENV) {
            return Some(p.into());
        }
        let base = match std::env::var_os("XDG_CONFIG_HOME") {
            Some(x) if !x.is_empty() => PathBuf::from(x),
            _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
        };
        Some(base.join("shmpipe").join("remote.toml"))
    }

    /// Reads `path`; a missing file is an empty configuration (no host is
    /// known).
    ///
    /// ```
    /// let c = shmpipe::remote::ClientConfig::load("/nonexistent/remote.toml".as_ref())?;
    /// assert!(c.hosts.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn load(path: &Path) -> io::Result<ClientConfig> {
        let mut c: ClientConfig = match read_toml(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ClientConfig::default()),
            r => r?,
        };
        for (name, h) in c.hosts.iter_mut() {
            for p in [&mut h.cert, &mut h.key] {
                resolve(path, p);
            }
            if let Some(ca) = &mut h.ca {
                resolve(path, ca);
            }
            match (&h.ca, &h.pin) {
                (Some(_), None) => {}
                (None, Some(pin)) if normalise_fingerprint(pin).is_some() => {}
                (None, Some(pin)) => return Err(bad(path, format!("{name}: bad pin {pin:?}"))),
                _ => return Err(bad(path, format!("{name}: give either ca or pin"))),
            }
        }
        Ok(c)
    }

    /// The host called `name` (case-insensitively).
    ///
    /// ```
    /// let c = shmpipe::remote::ClientConfig::default();
    /// assert!(c.host("anything").is_none());
    /// ```
    pub fn host(&self, name: &str) -> Option<&HostConfig> {
        self.hosts
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, h)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_gives_exactly_one_of_ca_and_pin() {
        let dir = std::env::temp_dir().join(format!("shmpipe-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("remote.toml");
        let host = |extra: &str| {
            format!("[hosts.h]\naddress = \"a\"\nport = 1\ncert = \"c\"\nkey = \"k\"\n{extra}")
        };
        for (extra, ok) in [
            ("ca = \"ca.pem\"\n", true),
            ("pin = \"0a:0b\"\n", true),
            ("", false),
            ("ca = \"ca.pem\"\npin = \"0a\"\n", false),
            ("pin = \"zz\"\n", false),
        ] {
            std::fs::write(&file, host(extra)).unwrap();
            let r = ClientConfig::load(&file);
            assert_eq!(r.is_ok(), ok, "{extra:?}: {r:?}");
            if let Ok(c) = r {
                // Relative to the file.
                assert_eq!(c.host("h").unwrap().cert, dir.join("c"));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fingerprints_parse_strictly() {
        assert_eq!(normalise_fingerprint("0a:FF"), Some(vec![0x0a, 0xff]));
        assert_eq!(normalise_fingerprint("0aff"), Some(vec![0x0a, 0xff]));
        for bad in ["", "0", "zz", "0a:f", "+1"] {
            assert_eq!(normalise_fingerprint(bad), None, "{bad:?}");
        }
    }

    /// The same certificate listed twice (case and colons differ) with two
    /// identities, and a fingerprint that is not 32 bytes, are refused
    /// when the file is loaded (found by review: the first entry won, the
    /// short one never matched).
    #[test]
    fn ambiguous_or_short_fingerprints_are_refused() {
        let dir = std::env::temp_dir().join(format!("shmpipe-fp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gateway.toml");
        let fp = "ab".repeat(32);
        let head = "listen = \"127.0.0.1:1\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"a\"\n";
        let load = |clients: String| {
            std::fs::write(&file, format!("{head}{clients}")).unwrap();
            GatewayConfig::load(&file)
        };
        let one = |fp: &str, uid: u32| {
            format!("[[clients]]\nfingerprint = \"{fp}\"\nuid = {uid}\ngid = {uid}\n")
        };
        let good = load(one(&fp, 1000));
        let dup = load(one(&fp, 1000) + &one(&fp.to_uppercase(), 0));
        let colons: String = fp
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        let dup_colons = load(one(&fp, 1000) + &one(&colons, 0));
        let short = load(one("ab:cd", 1000));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(good.is_ok(), "{good:?}");
        assert!(dup.is_err(), "duplicate fingerprint accepted");
        assert!(
            dup_colons.is_err(),
            "duplicate fingerprint (with colons) accepted"
        );
        assert!(short.is_err(), "2-byte fingerprint accepted");
    }
}
