//! The fixed-layout packets that both sides of the protocol read and write,
//! each as one type with its `encode` and its strict `decode`, so that
//! sender and receiver can never disagree on a layout: [`Opened`] (server
//! → client) and [`LinkState`] (member → owner). (`JOINED` is in the
//! server's `remote` module, `INFO` in `status/info.rs`.)

use super::{
    bad_packet, u32_at, LINK_SERVER_GONE, LINK_STATE, LINK_STATE_LEN, RESP_OPENED, VERDICT_BUSY,
};
use crate::info::PipeType;
use crate::named::options::{Direction, MODE_MESSAGE_READ, MODE_NONBLOCKING};
use std::io;

/// OPENED flags bit: the server pid is in the packet.
const OPENED_FORWARDED: u8 = 1;

/// A link `STATE` packet: a member's instance, as it reports it to the
/// owner (see "Links" above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkState {
    /// `VERDICT_*`: the answer to a forwarded client, or none.
    pub(crate) verdict: u8,
    /// `LINK_*`: Listening to ServerGone.
    pub(crate) state: u8,
    /// The server end's mode bits (`MODE_*`).
    pub(crate) modes: u8,
    /// Its client's pid as the member sees it (0 without a client).
    pub(crate) client_pid: u32,
}

impl LinkState {
    /// `[0x91][verdict][state][modes][client pid u32]`.
    pub(crate) fn encode(&self) -> [u8; LINK_STATE_LEN] {
        let p = self.client_pid.to_le_bytes();
        [
            LINK_STATE,
            self.verdict,
            self.state,
            self.modes,
            p[0],
            p[1],
            p[2],
            p[3],
        ]
    }

    /// Decodes a member's packet: exactly [`LINK_STATE_LEN`] bytes, a known
    /// verdict, state and mode bits, or a malformed-packet error. (Whether
    /// the modes fit the pipe's type is the owner's to check.)
    pub(crate) fn decode(p: &[u8]) -> io::Result<LinkState> {
        let &[LINK_STATE, verdict, state, modes, a, b, c, d] = p else {
            return Err(bad_packet());
        };
        if verdict > VERDICT_BUSY
            || state > LINK_SERVER_GONE
            || modes & !(MODE_MESSAGE_READ | MODE_NONBLOCKING) != 0
        {
            return Err(bad_packet());
        }
        Ok(LinkState {
            verdict,
            state,
            modes,
            client_pid: u32::from_le_bytes([a, b, c, d]),
        })
    }
}

/// The `OPENED` reply: what the instance that took a client tells it about
/// the pipe. The server encodes it, the client decodes it, with this one
/// codec. The client's segment travels with it (`SCM_RIGHTS`), and the
/// kernel's credentials of the sender, not `server_pid`, say who serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opened {
    pub(crate) pipe_type: PipeType,
    pub(crate) direction: Direction,
    /// 1 to 255 (`UNLIMITED_INSTANCES`).
    pub(crate) max_instances: u32,
    /// The instance lives in another process than the one that accepted
    /// the connection (the name's owner forwarded it).
    pub(crate) forwarded: bool,
    /// Server→client quota.
    pub(crate) out_size: u32,
    /// Client→server quota.
    pub(crate) in_size: u32,
    pub(crate) default_timeout_ms: u32,
    /// The server's pid in its own pid namespace.
    pub(crate) server_pid: u32,
    /// The server's session id in its own pid namespace.
    pub(crate) server_sid: u32,
}

impl Opened {
    /// Length of an OPENED packet.
    pub(crate) const LEN: usize = 5 + 5 * 4;

    /// `[0x81][type][direction][max][flags][out u32][in u32][timeout_ms u32]
    /// [server pid u32][server sid u32]`, little-endian.
    pub(crate) fn encode(&self) -> [u8; Opened::LEN] {
        let mut p = [0u8; Opened::LEN];
        p[..5].copy_from_slice(&[
            RESP_OPENED,
            u8::from(self.pipe_type == PipeType::Message),
            self.direction.to_u8(),
            self.max_instances.min(u32::from(u8::MAX)) as u8,
            u8::from(self.forwarded) * OPENED_FORWARDED,
        ]);
        let words = [
            self.out_size,
            self.in_size,
            self.default_timeout_ms,
            self.server_pid,
            self.server_sid,
        ];
        for (at, v) in (5..).step_by(4).zip(words) {
            p[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        p
    }

    /// Decodes an OPENED packet from a server: exactly [`Opened::LEN`]
    /// bytes, every field in range, or a malformed-packet error.
    pub(crate) fn decode(p: &[u8]) -> io::Result<Opened> {
        let bad = bad_packet;
        let &[RESP_OPENED, kind, dir, max, flags, ..] = p else {
            return Err(bad());
        };
        if p.len() != Opened::LEN || max == 0 || flags & !OPENED_FORWARDED != 0 {
            return Err(bad());
        }
        let pipe_type = match kind {
            0 => PipeType::Byte,
            1 => PipeType::Message,
            _ => return Err(bad()),
        };
        Ok(Opened {
            pipe_type,
            direction: Direction::from_u8(dir).ok_or_else(bad)?,
            max_instances: u32::from(max),
            forwarded: flags & OPENED_FORWARDED != 0,
            out_size: u32_at(p, 5)?,
            in_size: u32_at(p, 9)?,
            default_timeout_ms: u32_at(p, 13)?,
            server_pid: u32_at(p, 17)?,
            server_sid: u32_at(p, 21)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LINK_FWD, RESP_ERROR};
    use super::*;

    fn opened() -> Opened {
        Opened {
            pipe_type: PipeType::Message,
            direction: Direction::Outbound,
            max_instances: 255,
            forwarded: true,
            out_size: 4096,
            in_size: 0x0102_0304,
            default_timeout_ms: 50,
            server_pid: 4321,
            server_sid: 99,
        }
    }

    #[test]
    fn link_state_round_trips_and_refuses_garbage() {
        let s = LinkState {
            verdict: VERDICT_BUSY,
            state: LINK_SERVER_GONE,
            modes: MODE_MESSAGE_READ | MODE_NONBLOCKING,
            client_pid: 0x0102_0304,
        };
        let p = s.encode();
        assert_eq!(p, [LINK_STATE, 2, 4, 3, 4, 3, 2, 1]);
        assert_eq!(LinkState::decode(&p).unwrap(), s);
        for cut in 0..p.len() {
            assert!(LinkState::decode(&p[..cut]).is_err(), "cut at {cut}");
        }
        assert!(LinkState::decode(&[&p[..], &[0]].concat()).is_err());
        for (at, v) in [(0, LINK_FWD), (1, 3), (2, 5), (3, 4)] {
            let mut q = p;
            q[at] = v;
            assert!(LinkState::decode(&q).is_err(), "byte {at} = {v} accepted");
        }
    }

    #[test]
    fn opened_round_trips() {
        for (pipe_type, direction, max, forwarded) in [
            (PipeType::Message, Direction::Outbound, 255, true),
            (PipeType::Byte, Direction::Inbound, 1, false),
            (PipeType::Byte, Direction::Duplex, 7, false),
        ] {
            let o = Opened {
                pipe_type,
                direction,
                max_instances: max,
                forwarded,
                ..opened()
            };
            let p = o.encode();
            assert_eq!((p[0], p.len()), (RESP_OPENED, Opened::LEN));
            assert_eq!(Opened::decode(&p).unwrap(), o);
        }
        // The layout the protocol documents, byte for byte.
        let p = opened().encode();
        assert_eq!(&p[..5], &[RESP_OPENED, 1, 2, 255, 1]);
        assert_eq!(&p[9..13], &0x0102_0304u32.to_le_bytes());
        assert_eq!(&p[17..21], &4321u32.to_le_bytes());
    }

    #[test]
    fn opened_refuses_short_long_and_garbage_packets() {
        let p = opened().encode();
        for cut in 0..p.len() {
            assert!(Opened::decode(&p[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = p.to_vec();
        longer.push(0);
        assert!(Opened::decode(&longer).is_err(), "a byte too many");
        for (at, v, what) in [
            (0, RESP_ERROR, "another reply"),
            (1, 2, "pipe type"),
            (2, 0, "direction"),
            (2, 4, "direction"),
            (3, 0, "max instances"),
            (4, 2, "unknown flag"),
        ] {
            let mut q = p;
            q[at] = v;
            assert!(Opened::decode(&q).is_err(), "{what} {v} accepted");
        }
        assert!(Opened::decode(&[0xff; Opened::LEN]).is_err());
    }
}
