//! Pipe names (spec 1.3): `\\.\pipe\<name>`, case-insensitive, at most 256
//! UTF-16 code units, no backslash or NUL in `<name>`.

use crate::error::{Error, ErrorKind};
use std::io;

/// The longest full name (`\\.\pipe\` included), in UTF-16 code units,
/// as Windows counts it.
///
/// ```
/// use shmpipe::named::{PipeName, MAX_NAME_UNITS};
/// let pipe_part = "x".repeat(MAX_NAME_UNITS - r"\\.\pipe\".len());
/// assert!(PipeName::for_server(&format!(r"\\.\pipe\{pipe_part}")).is_ok());
/// assert!(PipeName::for_server(&format!(r"\\.\pipe\{pipe_part}x")).is_err());
/// ```
pub const MAX_NAME_UNITS: usize = 256;

/// A validated pipe name.
///
/// ```
/// use shmpipe::named::PipeName;
/// let server = PipeName::for_server(r"\\.\pipe\Demo")?;
/// let client = PipeName::for_client(r"\\.\PIPE\dEMO")?;
/// assert_eq!(server.key(), client.key()); // the same pipe
/// assert_eq!(client.to_string(), r"\\.\pipe\dEMO");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipeName {
    /// The `<name>` part as given.
    display: String,
    /// `<name>` after simple uppercase mapping: the identity of the pipe.
    key: String,
}

fn invalid(why: &'static str) -> io::Error {
    Error::with_source(ErrorKind::InvalidName, why).into()
}

/// Unicode simple uppercase mapping: the full mapping when it is one
/// character, the character itself otherwise (`ß` stays `ß`).
fn simple_upper(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars().map(simple_upper).eq(b.chars().map(simple_upper))
}

impl PipeName {
    /// Parses a name given to `create_instance`: it must be
    /// `\\.\pipe\<name>` (spec 1.3, SEM-001, SEM-004, SEM-005).
    ///
    /// ```
    /// use shmpipe::named::PipeName;
    /// assert!(PipeName::for_server(r"\\.\pipe\demo").is_ok());
    /// assert!(PipeName::for_server("demo").is_err());
    /// ```
    pub fn for_server(full: &str) -> io::Result<PipeName> {
        let (server, name) = split(full)?;
        if server != "." {
            return Err(invalid("servers create names on the local machine only"));
        }
        PipeName::from_parts(full, name)
    }

    /// Parses a name given to `open`, `wait_available` or `call`:
    /// `\\<server>\pipe\<name>` where `<server>` must be `.`
    /// ([`ErrorKind::BadNetPath`] otherwise: the engine is local).
    ///
    /// ```
    /// use shmpipe::{named::PipeName, Error, ErrorKind};
    /// let e = PipeName::for_client(r"\\elsewhere\pipe\demo").unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::BadNetPath));
    /// ```
    pub fn for_client(full: &str) -> io::Result<PipeName> {
        let (server, name) = split(full)?;
        let parsed = PipeName::from_parts(full, name)?;
        if server != "." {
            return Err(Error::io(ErrorKind::BadNetPath));
        }
        Ok(parsed)
    }

    /// Parses `\\<host>\pipe\<name>` naming another machine's pipe: the
    /// host and the name (as `\\.\pipe\<name>` on that machine).
    #[cfg(feature = "remote")]
    pub(crate) fn for_remote(full: &str) -> io::Result<(String, PipeName)> {
        let (server, name) = split(full)?;
        let parsed = PipeName::from_parts(full, name)?;
        if server == "." {
            return Err(invalid("not a remote name"));
        }
        Ok((server.to_owned(), parsed))
    }

    fn from_parts(full: &str, name: &str) -> io::Result<PipeName> {
        if full.encode_utf16().count() > MAX_NAME_UNITS {
            return Err(invalid("pipe name longer than 256 UTF-16 code units"));
        }
        if name.is_empty() {
            return Err(invalid("empty pipe name"));
        }
        if name.contains('\\') {
            return Err(invalid("backslash in the pipe name"));
        }
        if name.contains('\0') {
            return Err(invalid("NUL in the pipe name"));
        }
        Ok(PipeName {
            display: name.to_owned(),
            key: name.chars().map(simple_upper).collect(),
        })
    }

    /// The `<name>` part as given.
    ///
    /// ```
    /// let name = shmpipe::named::PipeName::for_client(r"\\.\PIPE\Demo")?;
    /// assert_eq!(name.as_str(), "Demo");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded identity of the pipe (two names denote the same pipe
    /// exactly when their keys are equal).
    ///
    /// ```
    /// let name = shmpipe::named::PipeName::for_server(r"\\.\pipe\Straße")?;
    /// assert_eq!(name.key(), "STRAßE"); // simple case mapping: ß stays
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The full name, `\\.\pipe\<name>`.
    ///
    /// ```
    /// let name = shmpipe::named::PipeName::for_client(r"\\.\PIPE\Demo")?;
    /// assert_eq!(name.full(), r"\\.\pipe\Demo");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn full(&self) -> String {
        format!(r"\\.\pipe\{}", self.display)
    }

    /// The abstract Unix socket name the pipe's server listens on: a hash of
    /// the key (names are longer than a socket address allows); the
    /// handshake compares the full key, so a hash collision cannot connect
    /// a client to the wrong pipe. (Public for tests that play a hostile
    /// client; not part of the API.)
    #[doc(hidden)]
    pub fn socket_name(&self) -> String {
        let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
        let mut h2: u64 = 0x6c62_272e_07bb_0142;
        for b in self.key.bytes() {
            h1 = (h1 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            h2 = (h2 ^ u64::from(b))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(17);
        }
        format!("shmpipe-v1/{h1:016x}{h2:016x}")
    }
}

impl std::fmt::Display for PipeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, r"\\.\pipe\{}", self.display)
    }
}

/// Splits `\\<server>\<pipe keyword>\<name>`, checking the keyword
/// case-insensitively.
fn split(full: &str) -> io::Result<(&str, &str)> {
    let rest = full
        .strip_prefix(r"\\")
        .ok_or_else(|| invalid(r"a pipe name starts with \\"))?;
    let (server, rest) = rest
        .split_once('\\')
        .ok_or_else(|| invalid(r"expected \\<server>\pipe\<name>"))?;
    let (keyword, name) = rest
        .split_once('\\')
        .ok_or_else(|| invalid(r"expected \\<server>\pipe\<name>"))?;
    if !eq_ignore_case(keyword, "pipe") || server.is_empty() {
        return Err(invalid(r"expected \\<server>\pipe\<name>"));
    }
    Ok((server, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(r: io::Result<PipeName>) -> Option<ErrorKind> {
        r.err().and_then(|e| Error::kind_of(&e))
    }

    #[test]
    fn sem_001_prefix_and_empty_name() {
        assert_eq!(
            kind(PipeName::for_server("not a pipe")),
            Some(ErrorKind::InvalidName)
        );
        assert_eq!(
            kind(PipeName::for_server(r"\\.\pipe\")),
            Some(ErrorKind::InvalidName)
        );
        assert_eq!(
            kind(PipeName::for_server(r"\\.\pope\x")),
            Some(ErrorKind::InvalidName)
        );
    }

    #[test]
    fn sem_002_case_insensitive() {
        let a = PipeName::for_client(r"\\.\PIPE\Alpha").unwrap();
        let b = PipeName::for_server(r"\\.\pipe\alpha").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.socket_name(), b.socket_name());
    }

    #[test]
    fn sem_003_punctuation_and_spaces() {
        let n = PipeName::for_server(r#"\\.\pipe\a <b> *c? |d" /e"#).unwrap();
        assert_eq!(n.as_str(), r#"a <b> *c? |d" /e"#);
    }

    #[test]
    fn sem_004_backslash_and_nul() {
        assert_eq!(
            kind(PipeName::for_server(r"\\.\pipe\a\b")),
            Some(ErrorKind::InvalidName)
        );
        assert_eq!(
            kind(PipeName::for_server("\\\\.\\pipe\\a\0b")),
            Some(ErrorKind::InvalidName)
        );
    }

    #[test]
    fn sem_005_length_limit_in_utf16_units() {
        let prefix = r"\\.\pipe\";
        let ok = format!("{prefix}{}", "x".repeat(256 - prefix.len()));
        assert_eq!(ok.encode_utf16().count(), 256);
        assert!(PipeName::for_server(&ok).is_ok());
        let long = format!("{prefix}{}", "x".repeat(257 - prefix.len()));
        assert_eq!(
            kind(PipeName::for_server(&long)),
            Some(ErrorKind::InvalidName)
        );
        // Counted in UTF-16 units: a character outside the BMP counts twice.
        let astral = format!("{prefix}{}\u{1F600}", "x".repeat(255 - prefix.len()));
        assert_eq!(astral.encode_utf16().count(), 257);
        assert_eq!(
            kind(PipeName::for_server(&astral)),
            Some(ErrorKind::InvalidName)
        );
    }

    #[test]
    fn sem_006_remote_server_is_bad_net_path() {
        assert_eq!(
            kind(PipeName::for_client(r"\\host\pipe\x")),
            Some(ErrorKind::BadNetPath)
        );
        assert_eq!(
            kind(PipeName::for_server(r"\\host\pipe\x")),
            Some(ErrorKind::InvalidName)
        );
    }
}
