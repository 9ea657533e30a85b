//! The owner's side of a link: its record of a member's instance
//! ([`Remote`]: the state the member last reported, and whether a client is
//! being forwarded to it), and the member's side of joining a name
//! ([`request_create`], and the `JOINED` reply it checks).
//!
//! What flows over a link once it exists (forwards, state reports,
//! takeover) is the name's business: see the `link` module.

use super::lock;
use super::options::{Attrs, UNLIMITED_INSTANCES};
use crate::error::ErrorKind;
use crate::info::{PipeType, ReadMode, WaitMode};
use crate::named::name::PipeName;
use crate::named::options::{Direction, Permissions, Security};
use crate::named::status::{InstanceState, InstanceStatus};
use crate::named::trust::{Role, TrustRule};
use crate::named::wire;
use std::io;
use std::os::fd::AsFd;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How long a send on a link may block: a peer that does not read its
/// link for that long is cut off.
pub(super) const LINK_SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a CREATE may wait for the owner's answer.
pub(super) const CREATE_TIMEOUT: Duration = Duration::from_secs(10);

/// The owner's record of an instance of another process.
pub(super) struct Remote {
    pub(super) link: wire::Link,
    /// The member's pid, as the kernel reported it when it connected.
    pub(super) pid: u32,
    pub(super) st: Mutex<RemoteSt>,
    pub(super) cv: Condvar,
}

pub(super) struct RemoteSt {
    /// The last state the member reported (a `wire::LINK_*` state).
    pub(super) state: u8,
    pub(super) modes: u8,
    pub(super) client_pid: u32,
    /// In the owner's listening queue.
    pub(super) queued: bool,
    /// A client was forwarded; its verdict has not come yet.
    pub(super) pending: bool,
    /// The forwarded client's pid (as the owner sees it).
    pub(super) pending_pid: u32,
    pub(super) verdict: u8,
    /// A forward timed out: the member may still answer it. Until it
    /// reports again the instance counts (for max instances) but is offered
    /// to no client; a slow member loses nothing, a silent one only the
    /// clients it was sent.
    pub(super) late: bool,
    /// The link is gone.
    pub(super) dead: bool,
}

impl Remote {
    /// A member's fresh instance behind `link`: Listening and queued.
    pub(super) fn new(link: wire::Link, pid: u32) -> Remote {
        Remote {
            link,
            pid,
            st: Mutex::new(RemoteSt {
                state: wire::LINK_LISTENING,
                modes: 0,
                client_pid: 0,
                queued: true,
                pending: false,
                pending_pid: 0,
                verdict: wire::VERDICT_NONE,
                late: false,
                dead: false,
            }),
            cv: Condvar::new(),
        }
    }

    /// Takes the instance for a client, after it was popped off the queue
    /// (under the name's lock); `false` if it cannot have one.
    pub(super) fn claim(&self) -> bool {
        let mut st = lock(&self.st);
        let ok = st.queued && !st.dead && !st.pending && st.state == wire::LINK_LISTENING;
        st.queued = false;
        st.pending |= ok;
        ok
    }

    /// Undoes [`Remote::claim`] before anything was forwarded (under the
    /// name's lock); `true` if the instance is to be queued again.
    pub(super) fn unclaim(&self) -> bool {
        let mut st = lock(&self.st);
        if st.dead || !st.pending {
            return false;
        }
        st.pending = false;
        st.queued = true;
        true
    }

    /// How INFO shows the instance; `None` for a ServerGone one.
    pub(super) fn status(&self) -> Option<InstanceStatus> {
        let st = lock(&self.st);
        // Being attached: no longer Listening, and the member may have
        // answered the client already.
        let (state, client_pid) = if st.pending {
            (wire::LINK_CONNECTED, st.pending_pid)
        } else {
            (st.state, st.client_pid)
        };
        let state = match state {
            wire::LINK_LISTENING => InstanceState::Listening,
            wire::LINK_CONNECTED => InstanceState::Connected,
            wire::LINK_CLIENT_GONE => InstanceState::ClientGone,
            wire::LINK_DISCONNECTED => InstanceState::Disconnected,
            _ => return None,
        };
        let client = matches!(state, InstanceState::Connected | InstanceState::ClientGone);
        let mut i = InstanceStatus {
            state,
            read_mode: ReadMode::Byte,
            wait_mode: WaitMode::Blocking,
            client_pid: client.then_some(client_pid),
            // Queued bytes live in the member's segments.
            queued_out: 0,
            queued_in: 0,
            server_pid: self.pid,
        };
        i.set_modes(st.modes);
        Some(i)
    }
}

fn permissions_byte(p: Permissions) -> u8 {
    u8::from(p.connect_read) | u8::from(p.connect_write) << 1 | u8::from(p.create_instance) << 2
}

fn permissions_from(b: u8) -> Option<Permissions> {
    (b & !7 == 0).then_some(Permissions {
        connect_read: b & 1 != 0,
        connect_write: b & 2 != 0,
        create_instance: b & 4 != 0,
    })
}

pub(super) fn joined_packet(a: &Attrs) -> Vec<u8> {
    let mut p = vec![
        wire::RESP_JOINED,
        u8::from(a.pipe_type == PipeType::Message),
        a.direction.to_u8(),
        a.max_instances.min(UNLIMITED_INSTANCES) as u8,
        0,
    ];
    let ms = a.default_timeout.as_millis().min(u128::from(u32::MAX)) as u32;
    for v in [ms, a.owner.0, a.owner.1] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.push(permissions_byte(a.security.group));
    p.push(permissions_byte(a.security.others));
    p
}

fn decode_joined(p: &[u8]) -> io::Result<Attrs> {
    let bad = wire::bad_packet;
    if p.len() != wire::JOINED_LEN || p[0] != wire::RESP_JOINED || p[4] != 0 || p[3] == 0 {
        return Err(bad());
    }
    let pipe_type = match p[1] {
        0 => PipeType::Byte,
        1 => PipeType::Message,
        _ => return Err(bad()),
    };
    Ok(Attrs {
        direction: Direction::from_u8(p[2]).ok_or_else(bad)?,
        pipe_type,
        max_instances: u32::from(p[3]),
        default_timeout: Duration::from_millis(u64::from(wire::u32_at(p, 5)?)),
        reject_remote: false,
        security: Security {
            group: permissions_from(p[17]).ok_or_else(bad)?,
            others: permissions_from(p[18]).ok_or_else(bad)?,
        },
        owner: (wire::u32_at(p, 9)?, wire::u32_at(p, 13)?),
    })
}

/// Asks the owner of `name` to register an instance of ours: the link and
/// the name's attributes, or `Ok(None)` when nobody (or a vanishing owner)
/// answered and the caller should look again.
///
/// First the kernel says who owns the name (`SO_PEERCRED` of our
/// connection: the process listening on the name's socket); an owner
/// `trust` does not allow gets nothing, not even the request
/// (`AccessDenied` naming its uid). Of the JOINED reply only what the
/// kernel cannot check is used (the pipe's type, limits and timeout), and
/// the direction must be the one we asked for.
pub(super) fn request_create(
    name: &PipeName,
    direction: Direction,
    trust: &TrustRule,
) -> io::Result<Option<(wire::Link, Attrs)>> {
    let Some(sock) = wire::connect(&name.socket_name())? else {
        return Ok(None);
    };
    let owner = match wire::peer_cred(&sock) {
        Ok(c) => c,
        // Hung up already: the owner is going.
        Err(_) => return Ok(None),
    };
    trust.check(Role::Owner, owner.pid, owner.uid, owner.gid)?;
    let mut req = vec![wire::REQ_CREATE, direction.to_u8(), 0];
    req.extend_from_slice(name.key().as_bytes());
    if wire::send(sock.as_fd(), &req, None).is_err() {
        return Ok(None);
    }
    let mut buf = [0u8; wire::MAX_PACKET];
    let p = match wire::recv_timeout(&sock, &mut buf, Some(CREATE_TIMEOUT)) {
        Ok(Some((n, None))) => &buf[..n],
        // The owner went away while we asked.
        Ok(None) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(None),
        Err(e) => return Err(e),
        Ok(Some(_)) => return Err(wire::bad_packet()),
    };
    if p.first() == Some(&wire::RESP_ERROR) {
        let e = wire::decode_error(p);
        // The name is vanishing: it may be ours to create in a moment.
        if crate::Error::kind_of(&e) == Some(ErrorKind::FileNotFound) {
            return Ok(None);
        }
        return Err(e);
    }
    let attrs = decode_joined(p)?;
    if attrs.direction != direction {
        // The owner refuses another direction: this JOINED is forged.
        return Err(wire::bad_packet());
    }
    wire::set_recv_timeout(sock.as_fd(), None)?;
    wire::set_send_timeout(sock.as_fd(), Some(LINK_SEND_TIMEOUT))?;
    Ok(Some((wire::Link::new(sock), attrs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_round_trip_and_strictness() {
        let a = Attrs {
            direction: Direction::Outbound,
            pipe_type: PipeType::Message,
            max_instances: 7,
            default_timeout: Duration::from_millis(1234),
            security: Security {
                group: Permissions::ALL,
                others: Permissions {
                    connect_read: true,
                    ..Permissions::NONE
                },
            },
            owner: (1000, 100),
            reject_remote: false,
        };
        let p = joined_packet(&a);
        assert_eq!(p.len(), wire::JOINED_LEN);
        let d = decode_joined(&p).unwrap();
        assert_eq!(
            (d.direction, d.pipe_type, d.max_instances, d.default_timeout),
            (a.direction, a.pipe_type, a.max_instances, a.default_timeout)
        );
        assert_eq!((d.security, d.owner), (a.security, a.owner));
        for cut in 0..p.len() {
            assert!(decode_joined(&p[..cut]).is_err(), "cut at {cut}");
        }
        for (at, v) in [
            (0, 0x84),
            (1, 2),
            (2, 0),
            (3, 0),
            (4, 1),
            (17, 8),
            (18, 0x80),
        ] {
            let mut q = p.clone();
            q[at] = v;
            assert!(decode_joined(&q).is_err(), "byte {at} = {v} accepted");
        }
    }
}
