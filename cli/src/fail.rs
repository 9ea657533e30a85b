//! How the pipe subcommands fail: one line, `<what>: <ERROR_NAME> (<code>)`
//! for pipe errors (the Windows name and code, as the guide's error table
//! lists them), `<what>: <message>` for anything else. A pipe refused
//! because it runs as a user this end does not trust names that user and
//! the flag that trusts it, from what the library says it refused
//! ([`Error::untrusted_peer_of`]). Other failures a user can fix carry a
//! hint ([`Failure::hint`]) naming the cause and the fix, in the same
//! place: `<what> (<cause; fix>): <ERROR_NAME> (<code>)`.

use shmpipe::{Error, ErrorKind, PeerRole};
use std::fmt;
use std::io;

/// What was being done, and the error that stopped it.
#[derive(Debug)]
pub struct Failure {
    what: String,
    error: io::Error,
    /// The cause and the fix, when the caller knows them.
    hint: Option<String>,
}

impl Failure {
    /// A failure of `what` with `error`.
    pub fn new(what: impl Into<String>, error: io::Error) -> Failure {
        Failure {
            what: what.into(),
            error,
            hint: None,
        }
    }

    /// Adds what caused the failure and how to fix it (shown after the
    /// library's own detail, if any).
    pub fn hint(mut self, hint: Option<String>) -> Failure {
        self.hint = hint;
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
            return match &self.hint {
                Some(h) => write!(f, "{} ({h}): {}", self.what, self.error),
                None => write!(f, "{}: {}", self.what, self.error),
            };
        };
        // Refused for the user it runs as: whom, and the flag that trusts
        // it.
        if let Some(peer) = Error::untrusted_peer_of(&self.error) {
            let (whose, flag) = match peer.role {
                PeerRole::Server => ("served", "--trust-uid"),
                PeerRole::Owner => ("owned", "--trust-owner-uid"),
            };
            return write!(
                f,
                "{} ({whose} by uid {uid}, gid {gid}, which is not trusted; pass {flag} {uid} \
                 to trust it): {} ({})",
                self.what,
                kind.windows_name(),
                kind.code(),
                uid = peer.uid,
                gid = peer.gid,
            );
        }
        // Why, when the library said more than the kind, and the fix.
        let detail = self
            .error
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .and_then(std::error::Error::source)
            .map(|d| d.to_string());
        let detail = match (detail, &self.hint) {
            (Some(d), Some(h)) => Some(format!("{d}; {h}")),
            (d, h) => d.or_else(|| h.clone()),
        };
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
    use shmpipe::UntrustedPeer;

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
    fn a_hint_names_cause_and_fix_before_the_code() {
        let f = Failure::kind("cannot call x", ErrorKind::InvalidParameter)
            .hint(Some("x is a byte pipe; use a message pipe".into()));
        assert_eq!(
            f.to_string(),
            "cannot call x (x is a byte pipe; use a message pipe): ERROR_INVALID_PARAMETER (87)"
        );
        // After the library's own detail.
        let f = Failure::new(
            "cannot create x",
            Error::with_source(ErrorKind::PipeBusy, "one process only").into(),
        )
        .hint(Some("stop the other server".into()));
        assert_eq!(
            f.to_string(),
            "cannot create x (one process only; stop the other server): ERROR_PIPE_BUSY (231)"
        );
        let f = Failure::new("cannot read f", io::Error::other("gone"))
            .hint(Some("check the path".into()));
        assert_eq!(f.to_string(), "cannot read f (check the path): gone");
    }

    #[test]
    fn an_untrusted_peer_is_named_with_the_flag_that_trusts_it() {
        // What the library's refusals carry; the CLI's tests (cli_trust)
        // check the line against real refusals.
        let server = UntrustedPeer {
            role: PeerRole::Server,
            pid: Some(4321),
            uid: 65534,
            gid: 65533,
        };
        let f = Failure::new("cannot call x", Error::from(server).into());
        assert_eq!(
            f.to_string(),
            "cannot call x (served by uid 65534, gid 65533, which is not trusted; pass \
             --trust-uid 65534 to trust it): ERROR_ACCESS_DENIED (5)"
        );
        let owner = UntrustedPeer {
            role: PeerRole::Owner,
            pid: None,
            uid: 1001,
            gid: 1001,
        };
        let f = Failure::new("cannot create x", Error::from(owner).into());
        assert_eq!(
            f.to_string(),
            "cannot create x (owned by uid 1001, gid 1001, which is not trusted; pass \
             --trust-owner-uid 1001 to trust it): ERROR_ACCESS_DENIED (5)"
        );
        // Another refusal (the server's security), even one whose text
        // reads like the trust rule's, suggests no flag.
        for why in [
            "no read access for uid 5",
            "a process running as uid 5 (gid 5), which this client does not trust",
        ] {
            let f = Failure::new(
                "cannot open x",
                Error::with_source(ErrorKind::AccessDenied, why).into(),
            );
            assert_eq!(
                f.to_string(),
                format!("cannot open x ({why}): ERROR_ACCESS_DENIED (5)")
            );
        }
    }

    #[test]
    fn short_names_live_under_pipe() {
        assert_eq!(full_name("demo"), r"\\.\pipe\demo");
        assert_eq!(full_name(r"\\.\PIPE\demo"), r"\\.\PIPE\demo");
    }
}
