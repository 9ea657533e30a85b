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

/// Who a client certificate is on this machine: the certificate named by
/// its SHA-256 `fingerprint` (exactly that one), or every certificate of
/// the client CA whose `subject` is exactly the one given (one of the two).
///
/// ```
/// let m: shmpipe::remote::Mapping = toml::from_str(
///     "fingerprint = \"AB:cd\"\nuid = 65534\ngid = 65534\n",
/// ).unwrap();
/// assert_eq!((m.uid, m.groups.len()), (65534, 0));
/// let m: shmpipe::remote::Mapping = toml::from_str(
///     "subject = \"CN=laptop, O=Example\"\nuid = 1000\ngid = 1000\n",
/// ).unwrap();
/// assert_eq!(m.fingerprint, None);
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// SHA-256 of the certificate's DER, in hex (colons and case ignored).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The certificate's subject, as `CN=laptop, O=Example`: every
    /// attribute of the subject, in the certificate's order, by its short
    /// name; values may not hold `,` `+` `=` `\` or `"` (a certificate
    /// whose subject does would never match).
    #[serde(default)]
    pub subject: Option<String>,
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
        // one would never match), and one certificate or subject listed
        // twice (in another case, with colons, with other spaces) would get
        // whichever identity came first.
        let (mut fps, mut subjects) = (std::collections::HashSet::new(), Vec::new());
        for m in &c.clients {
            let fresh = match (&m.fingerprint, &m.subject) {
                (Some(fp), None) => normalise_fingerprint(fp)
                    .filter(|fp| fp.len() == 32)
                    .map(|fp| fps.insert(fp)),
                (None, Some(s)) => parse_subject(s).map(|s| {
                    let new = !subjects.contains(&s);
                    subjects.push(s);
                    new
                }),
                _ => {
                    return Err(bad(
                        path,
                        "a [[clients]] entry needs a fingerprint or a subject, not both",
                    ))
                }
            };
            match fresh {
                None => return Err(bad(path, format!("bad mapping {m:?}"))),
                Some(false) => return Err(bad(path, format!("mapped twice: {m:?}"))),
                Some(true) => {}
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
        self.clients.iter().find(|m| {
            m.fingerprint
                .as_deref()
                .and_then(normalise_fingerprint)
                .as_deref()
                == Some(sha256)
        })
    }

    /// The mapping of a (verified) certificate, from its DER: the entry of
    /// its fingerprint, else the entry of its subject.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("shmpipe-doc-map-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// shmpipe::remote::init(&dir, &["localhost".into()], 0, 0, "localhost", 4433)?;
    /// let pem = std::fs::read_to_string(dir.join("client.pem"))?;
    /// let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    /// # use rustls_pki_types::pem::PemObject;
    /// let c: shmpipe::remote::GatewayConfig = toml::from_str(r#"
    ///     listen = "127.0.0.1:1"
    ///     cert = "c"
    ///     key = "k"
    ///     client_ca = "a"
    ///     [[clients]]
    ///     subject = "CN=shmpipe client"
    ///     uid = 7
    ///     gid = 7
    /// "#).unwrap();
    /// assert_eq!(c.mapping_of(&der).map(|m| m.uid), Some(7));
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn mapping_of(&self, der: &[u8]) -> Option<&Mapping> {
        if let Some(m) = self.mapping(&super::tls::fingerprint(der)) {
            return Some(m);
        }
        let subject = subject_of(der)?;
        self.clients.iter().find(|m| {
            m.subject
                .as_deref()
                .and_then(parse_subject)
                .is_some_and(|s| s == subject)
        })
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

/// A subject as written in a mapping: `(short name, value)` pairs (names
/// in capitals), `None` if it is malformed.
pub(crate) fn parse_subject(s: &str) -> Option<Vec<(String, String)>> {
    s.split(',')
        .map(|rdn| {
            let (k, v) = rdn.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            let plain = |x: &str| !x.is_empty() && !x.contains(['=', '+', '\\', '"', ',']);
            (plain(k) && plain(v) && k.bytes().all(|b| b.is_ascii_alphanumeric()))
                .then(|| (k.to_ascii_uppercase(), v.to_owned()))
        })
        .collect()
}

/// A certificate's subject as [`parse_subject`] reads a mapping's: `None`
/// if the certificate does not parse, or its subject has an attribute a
/// mapping cannot name (several in one RDN, a value that is not a string
/// or holds a reserved character: such a subject matches nothing, so a
/// value like `a, O=b` cannot pass for two attributes).
fn subject_of(der: &[u8]) -> Option<Vec<(String, String)>> {
    use x509_parser::objects::{oid2abbrev, oid_registry};
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut out = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut attrs = rdn.iter();
        let (Some(a), None) = (attrs.next(), attrs.next()) else {
            return None;
        };
        let k = oid2abbrev(a.attr_type(), oid_registry()).ok()?;
        let v = a.as_str().ok()?;
        let reserved = |x: &str| x.contains(['=', '+', '\\', '"', ',']) || x.trim() != x;
        if reserved(k) || reserved(v) || v.is_empty() {
            return None;
        }
        out.push((k.to_ascii_uppercase(), v.to_owned()));
    }
    (!out.is_empty()).then_some(out)
}

/// A certificate's subject as a mapping writes it (`CN=a, O=b`), if it
/// has one a mapping could write.
pub(crate) fn subject_text(der: &[u8]) -> Option<String> {
    let parts: Vec<String> = subject_of(der)?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Some(parts.join(", "))
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

    /// Entries load only when each names one certificate (32-byte
    /// fingerprint) or one subject, once.
    #[test]
    fn mappings_are_unambiguous() {
        let dir = std::env::temp_dir().join(format!("shmpipe-map-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gateway.toml");
        let head = "listen = \"127.0.0.1:1\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"a\"\n";
        let load = |clients: &str| {
            std::fs::write(&file, format!("{head}{clients}")).unwrap();
            GatewayConfig::load(&file).is_ok()
        };
        let fp = |f: &str| format!("[[clients]]\nfingerprint = \"{f}\"\nuid = 1\ngid = 1\n");
        let sub = |s: &str| format!("[[clients]]\nsubject = \"{s}\"\nuid = 1\ngid = 1\n");
        let good = "ab".repeat(32);
        let results = [
            load(&(fp(&good) + &sub("CN=a, O=b"))),
            load(&fp("ab:cd")),
            load(&(fp(&good) + &fp(&good.to_uppercase()))),
            load(&(sub("CN=a, O=b") + &sub("cn=a,O=b"))),
            load(&sub("CN=a+O=b")),
            load(&format!(
                "[[clients]]\nfingerprint = \"{good}\"\nsubject = \"CN=a\"\nuid = 1\ngid = 1\n"
            )),
            load("[[clients]]\nuid = 1\ngid = 1\n"),
        ];
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(results, [true, false, false, false, false, false, false]);
    }

    #[test]
    fn subjects_parse_strictly() {
        let s = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            parse_subject("cn=laptop, O=Example Org"),
            Some(vec![s("CN", "laptop"), s("O", "Example Org")])
        );
        for bad in [
            "",
            "CN",
            "CN=",
            "=x",
            "CN=a+O=b",
            "CN=\"a\"",
            "C N=a",
            "CN=a,,O=b",
        ] {
            assert_eq!(parse_subject(bad), None, "{bad:?}");
        }
    }
}
