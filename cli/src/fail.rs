//! How the pipe subcommands fail: one line, `<what>: <ERROR_NAME> (<code>)`
//! for pipe errors (the Windows name and code, as the guide's error table
//! lists them), `<what>: <message>` for anything else. A pipe refused
//! because it runs as a user this end does not trust names that user and
//! the flag that trusts it.

use shmpipe::{Error, ErrorKind};
use std::fmt;
use std::io;

/// What was being done, and the error that stopped it.
#[derive(Debug)]
pub struct Failure {
    what: String,
    error: io::Error,
    untrusted: Option<Untrusted>,
}

/// Whom a step may have refused for the user it runs as, which decides
/// the flag an `AccessDenied` of the trust rule suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    /// The process serving the pipe a client opened (`--trust-uid`).
    Server,
    /// The process owning the name `serve` was to join (`--trust-owner-uid`).
    Owner,
}

impl Failure {
    /// A failure of `what` with `error`.
    pub fn new(what: impl Into<String>, error: io::Error) -> Failure {
        Failure {
            what: what.into(),
            error,
            untrusted: None,
        }
    }

    /// The same failure, from a step whose `who` the library may have
    /// refused for the user it runs as.
    pub fn untrusted(mut self, who: Untrusted) -> Failure {
        self.untrusted = Some(who);
        self
    }

    /// A failure of `what` with the pipe error `kind`.
    pub fn kind(what: impl Into<String>, kind: ErrorKind) -> Failure {
        Failure::new(what, Error::new(kind).into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(kind) = Error::kind_of(&self.error) else {
            return write!(f, "{}: {}", self.what, self.error);
        };
        // Why, when the library said more than the kind.
        let detail = self
            .error
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .and_then(std::error::Error::source);
        let refused = detail
            .filter(|_| kind == ErrorKind::AccessDenied)
            .and_then(|d| self.untrusted.zip(refused_ids(&d.to_string())));
        if let Some((who, (uid, gid))) = refused {
            let gid = gid.map(|g| format!(", gid {g}")).unwrap_or_default();
            let (whose, flag) = match who {
                Untrusted::Server => ("served", "--trust-uid"),
                Untrusted::Owner => ("owned", "--trust-owner-uid"),
            };
            return write!(
                f,
                "{} ({whose} by uid {uid}{gid}, which is not trusted; pass {flag} {uid} to \
                 trust it): {} ({})",
                self.what,
                kind.windows_name(),
                kind.code()
            );
        }
        match detail {
            Some(d) => write!(
                f,
                "{} ({d}): {} ({})",
                self.what,
                kind.windows_name(),
                kind.code()
            ),
            None => write!(
                f,
                "{}: {} ({})",
                self.what,
                kind.windows_name(),
                kind.code()
            ),
        }
    }
}

/// The uid (and gid) the library's trust rule refused, from its message
/// ("... running as uid U (gid G), which this client does not trust ...");
/// `None` for any other `AccessDenied` (a server's security, say), which
/// no trust flag would change.
fn refused_ids(detail: &str) -> Option<(u32, Option<u32>)> {
    if !detail.contains("does not trust") {
        return None;
    }
    Some((number_after(detail, "uid ")?, number_after(detail, "(gid ")))
}

/// The decimal number right after the first `label` in `s`.
fn number_after(s: &str, label: &str) -> Option<u32> {
    let rest = &s[s.find(label)? + label.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Names what a fallible step was doing.
pub trait Context<T> {
    /// Turns an error into a [`Failure`] of `what()`.
    fn what(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T> Context<T> for io::Result<T> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(what(), e))
    }
}

/// `NAME` as a full pipe name: names that do not start with `\\` are taken
/// to mean `\\.\pipe\NAME` (a shell makes backslashes awkward).
pub fn full_name(name: &str) -> String {
    if name.starts_with(r"\\") {
        name.to_owned()
    } else {
        format!(r"\\.\pipe\{name}")
    }
}

/// Whether `e` only says that the other end went away (which ends a
/// conversation rather than failing it).
pub fn peer_left(e: &io::Error) -> bool {
    matches!(
        Error::kind_of(e),
        Some(ErrorKind::BrokenPipe | ErrorKind::NoData | ErrorKind::PipeNotConnected)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_the_windows_name_and_code() {
        let f = Failure::kind(r"cannot open \\.\pipe\x", ErrorKind::FileNotFound);
        assert_eq!(
            f.to_string(),
            r"cannot open \\.\pipe\x: ERROR_FILE_NOT_FOUND (2)"
        );
        let f = Failure::new(
            "cannot create x",
            Error::with_source(ErrorKind::PipeBusy, "one process only").into(),
        );
        assert_eq!(
            f.to_string(),
            "cannot create x (one process only): ERROR_PIPE_BUSY (231)"
        );
        let f = Failure::new("cannot read f", io::Error::other("gone"));
        assert_eq!(f.to_string(), "cannot read f: gone");
    }

    #[test]
    fn an_untrusted_peer_is_named_with_the_flag_that_trusts_it() {
        // The library's wording (pipe-api/src/named/trust.rs); the CLI's
        // tests check it against the real refusal.
        let server = "the pipe is served by a process running as uid 65534 (gid 65533), which \
                      this client does not trust (see ClientOptions::trust_server_uid)";
        let f = Failure::new(
            "cannot call x",
            Error::with_source(ErrorKind::AccessDenied, server).into(),
        )
        .untrusted(Untrusted::Server);
        assert_eq!(
            f.to_string(),
            "cannot call x (served by uid 65534, gid 65533, which is not trusted; pass \
             --trust-uid 65534 to trust it): ERROR_ACCESS_DENIED (5)"
        );
        let owner = "the pipe name is owned by a process running as uid 1001 (gid 1001), which \
                     this server does not trust (see ServerOptions::trust_owner_uid)";
        let f = Failure::new(
            "cannot create x",
            Error::with_source(ErrorKind::AccessDenied, owner).into(),
        )
        .untrusted(Untrusted::Owner);
        assert_eq!(
            f.to_string(),
            "cannot create x (owned by uid 1001, gid 1001, which is not trusted; pass \
             --trust-owner-uid 1001 to trust it): ERROR_ACCESS_DENIED (5)"
        );
        // Another refusal (the server's security) suggests no flag.
        let f = Failure::new(
            "cannot open x",
            Error::with_source(ErrorKind::AccessDenied, "no read access for uid 5").into(),
        )
        .untrusted(Untrusted::Server);
        assert_eq!(
            f.to_string(),
            "cannot open x (no read access for uid 5): ERROR_ACCESS_DENIED (5)"
        );
    }

    #[test]
    fn short_names_live_under_pipe() {
        assert_eq!(full_name("demo"), r"\\.\pipe\demo");
        assert_eq!(full_name(r"\\.\PIPE\demo"), r"\\.\PIPE\demo");
    }
}
