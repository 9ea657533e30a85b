//! The peer process: the child on the other end of every measurement,
//! started by re-executing the current binary, and the registry of what it
//! can be asked to do (its *role*).
//!
//! * `protocol.rs`: spawning the peer and the control socket
//!   that drives it, shared by every role.
//! * `link.rs`: the far side of one transport ([`Peer`]); the role
//!   is the transport's name.
//! * [`CONNECT_ROLE`]: the server of the connection set-up measurement, in
//!   [`crate::connect`].
//! * [`KILL_ROLE`], `kill.rs`: the holder of one pipe end, which the
//!   killed-peer measurement ([`crate::liveness`]) SIGKILLs.
//! * [`ASYNC_ROLE`](crate::asyncio::ASYNC_ROLE): the far side of an async
//!   transport, on a tokio runtime (`asyncio/peer.rs`).
//!
//! Every role starts the same way and shares the control socket: the child
//! rebuilds what it was handed, then says hello (or reports why not); every
//! later line is the role's own command, and `quit` (or EOF) ends the
//! child with status 0:
//!
//! ```text
//! child:  hello pinned=<0|1>                 (or: error <why>)
//! parent: <the role's commands>          -> ... ok | error <why>
//! parent: quit                               (child exits 0; so does EOF)
//! ```
//!
//! Every binary that spawns peers calls [`run_if_peer`] first thing in
//! `main`: the criterion bench binary and the `shmpipe` CLI each re-execute
//! themselves.

mod kill;
mod link;
pub(crate) mod protocol;

pub use link::Peer;
pub use protocol::{
    CONNECT_ROLE, CONTROL_FD, FIRST_LINK_FD, KILL_ROLE, PEER_ARG_ENV, PEER_ENV, SMALL, STAGING_MIN,
};

use crate::transport::Kind;
use protocol::Control;
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::io;
use std::os::unix::net::UnixStream;

/// If this process was started as a peer (see [`PEER_ENV`]), or as the
/// server of a [`scale`](crate::scale) round, serves the parent and exits;
/// otherwise returns at once. Call it first in `main`.
pub fn run_if_peer() {
    crate::scale::run_if_server();
    let Ok(spec) = std::env::var(PEER_ENV) else {
        return;
    };
    let code = match peer_main(&spec) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shmpipe bench peer: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// What a peer process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The far side of a transport.
    Link(Kind),
    /// The server of the connection set-up measurement ([`crate::connect`]).
    Connect,
    /// The holder of a pipe end, killed by the killed-peer measurement
    /// ([`crate::liveness`]).
    Kill,
    /// The receiver of the zero-copy measurement ([`crate::zero_copy`]).
    ZeroCopy,
    /// The far side of an async transport ([`crate::asyncio`]).
    Async,
    /// The servers and gateway of the remote rows ([`crate::remote`]).
    Remote,
}

struct Spec {
    role: Role,
    fds: usize,
    args: usize,
    cpu: Option<usize>,
}

fn parse_spec(spec: &str) -> Option<Spec> {
    let mut role = None;
    let mut fds = None;
    let mut args = None;
    let mut cpu = None;
    for part in spec.split(';') {
        let (k, v) = part.split_once('=')?;
        match k {
            "kind" if v == CONNECT_ROLE => role = Some(Role::Connect),
            "kind" if v == KILL_ROLE => role = Some(Role::Kill),
            "kind" if v == crate::zero_copy::ROLE => role = Some(Role::ZeroCopy),
            "kind" if v == crate::asyncio::ASYNC_ROLE => role = Some(Role::Async),
            "kind" if v == crate::remote::ROLE => role = Some(Role::Remote),
            "kind" => role = Kind::from_name(v).map(Role::Link),
            "fds" => fds = v.parse().ok().filter(|&n: &usize| n <= 8),
            "args" => args = v.parse().ok().filter(|&n: &usize| n <= 8),
            "cpu" => cpu = Some(v.parse().ok()),
            _ => return None,
        }
    }
    Some(Spec {
        role: role?,
        fds: fds?,
        args: args?,
        cpu: cpu?,
    })
}

/// Takes ownership of a descriptor the parent placed at `fd`.
fn claim(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: only checks that `fd` is open; the borrow ends with the call.
    rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(fd) })
        .map_err(|e| io::Error::other(format!("descriptor {fd} was not inherited: {e}")))?;
    // SAFETY: the spawn protocol reserves these numbers: the parent put an
    // open descriptor at `fd` for this process, nothing in this process
    // opened it (it was open before `main`), and each number is claimed once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The string arguments the parent passed (see [`PEER_ARG_ENV`]).
fn claim_args(n: usize) -> io::Result<Vec<String>> {
    (0..n)
        .map(|i| {
            let var = format!("{PEER_ARG_ENV}{i}");
            std::env::var(&var).map_err(|e| io::Error::other(format!("{var}: {e}")))
        })
        .collect()
}

fn peer_main(spec: &str) -> io::Result<()> {
    let spec = parse_spec(spec)
        .ok_or_else(|| io::Error::other(format!("bad {PEER_ENV} value {spec:?}")))?;
    let mut ctl = Control::new(UnixStream::from(claim(CONTROL_FD)?))?;
    let r = (|| {
        let fds = (0..spec.fds)
            .map(|i| claim(FIRST_LINK_FD + i as RawFd))
            .collect::<io::Result<Vec<_>>>()?;
        for fd in &fds {
            rustix::io::fcntl_setfd(fd.as_fd(), rustix::io::FdFlags::CLOEXEC)?;
        }
        let args = claim_args(spec.args)?;
        match spec.role {
            Role::Link(kind) => link::serve(&mut ctl, kind, fds, args, spec.cpu),
            Role::Connect => crate::connect::serve(&mut ctl, &args, spec.cpu),
            Role::Kill => kill::serve(&mut ctl, fds, &args, spec.cpu),
            Role::ZeroCopy => crate::zero_copy::serve(&mut ctl, fds, &args, spec.cpu),
            Role::Async => crate::asyncio::peer::serve(&mut ctl, fds, &args, spec.cpu),
            Role::Remote => crate::remote::serve(&mut ctl, &args),
        }
    })();
    match r {
        Ok(()) => Ok(()),
        Err(e) => {
            // The parent reports it; say it here only if it cannot hear.
            match ctl.send(&format!("error {e}")) {
                Ok(()) => std::process::exit(1),
                Err(_) => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_and_rejects_garbage() {
        let s = parse_spec("kind=pipe;fds=2;args=0;cpu=1").unwrap();
        assert_eq!(
            (s.role, s.fds, s.args, s.cpu),
            (Role::Link(Kind::Pipe), 2, 0, Some(1))
        );
        let s = parse_spec("kind=named-msg;fds=0;args=1;cpu=none").unwrap();
        assert_eq!(
            (s.role, s.args, s.cpu),
            (Role::Link(Kind::NamedMsg), 1, None)
        );
        let s = parse_spec("kind=connect-server;fds=0;args=2;cpu=none").unwrap();
        assert_eq!(s.role, Role::Connect);
        let s = parse_spec("kind=kill;fds=1;args=2;cpu=3").unwrap();
        assert_eq!((s.role, s.fds, s.args, s.cpu), (Role::Kill, 1, 2, Some(3)));
        let s = parse_spec("kind=async;fds=2;args=1;cpu=none").unwrap();
        assert_eq!((s.role, s.fds, s.args), (Role::Async, 2, 1));
        let s = parse_spec("kind=remote;fds=0;args=2;cpu=none").unwrap();
        assert_eq!((s.role, s.args), (Role::Remote, 2));
        assert!(parse_spec("kind=nope;fds=1;args=0;cpu=none").is_none());
        assert!(parse_spec("kind=pipe;fds=99;args=0;cpu=none").is_none());
        assert!(parse_spec("kind=pipe;fds=2;args=0").is_none());
        assert!(parse_spec("kind=pipe;fds=2;cpu=none").is_none());
    }
}
