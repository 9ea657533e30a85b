//! The `INFO` reply (see the `wire` module for its layout): [`encode`] on
//! the server, [`decode`] on whoever asked.
//!
//! Decoding trusts nothing: every field must be in range, the name must be
//! a valid and canonical pipe name, the entries must agree with the counts
//! (all listed unless there are more than `MAX_INFO_ENTRIES`), nothing may
//! be queued in a direction the pipe does not carry or on an instance with
//! no client, and the packet must end exactly where the last field does.

use super::{InstanceState, InstanceStatus, PipeStatus};
use crate::info::{PipeType, ReadMode, WaitMode};
use crate::named::name::PipeName;
use crate::named::options::{Direction, MODE_MESSAGE_READ, MODE_NONBLOCKING};
use crate::named::wire;
use std::io;
use std::time::Duration;

/// Longest name an INFO reply may carry (256 UTF-16 units, 3 bytes each at
/// most in UTF-8).
const MAX_NAME_BYTES: usize = 768;

const STATE_LISTENING: u8 = 0;
const STATE_CONNECTED: u8 = 1;
const STATE_CLIENT_GONE: u8 = 2;
const STATE_DISCONNECTED: u8 = 3;
const ENTRY_LEN: usize = 1 + 1 + 4 + 8 + 8;
/// INFO flags bit: a server pid per entry follows the entries.
const INFO_SERVER_PIDS: u8 = 1;

fn state_code(s: InstanceState) -> u8 {
    match s {
        InstanceState::Listening => STATE_LISTENING,
        InstanceState::Connected => STATE_CONNECTED,
        InstanceState::ClientGone => STATE_CLIENT_GONE,
        InstanceState::Disconnected => STATE_DISCONNECTED,
    }
}

/// The INFO reply describing `s` (its first `MAX_INFO_ENTRIES` instances).
pub(crate) fn encode(s: &PipeStatus) -> Vec<u8> {
    let listed = &s.instances[..s.instances.len().min(wire::MAX_INFO_ENTRIES)];
    let name = s.name.as_bytes();
    // Server pids are listed only when some instance is not the owner's.
    let pids = listed.iter().any(|i| i.server_pid != s.server_pid);
    let mut p = Vec::with_capacity(64 + name.len() + listed.len() * (ENTRY_LEN + 4));
    p.extend_from_slice(&[
        wire::RESP_INFO,
        u8::from(s.pipe_type == PipeType::Message),
        s.direction.to_u8(),
        s.max_instances.min(255) as u8,
        u8::from(pids) * INFO_SERVER_PIDS,
    ]);
    let timeout_ms = s.default_timeout.as_millis().min(u128::from(u32::MAX)) as u32;
    for v in [
        s.server_pid,
        s.owner_uid,
        timeout_ms,
        s.listening,
        s.connected,
        s.client_gone,
        s.disconnected,
        s.server_gone,
    ] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(&(name.len() as u16).to_le_bytes());
    p.extend_from_slice(name);
    p.extend_from_slice(&(listed.len() as u16).to_le_bytes());
    for i in listed {
        let modes = (u8::from(i.read_mode == ReadMode::Message) * MODE_MESSAGE_READ)
            | (u8::from(i.wait_mode == WaitMode::Nonblocking) * MODE_NONBLOCKING);
        p.push(state_code(i.state));
        p.push(modes);
        p.extend_from_slice(&i.client_pid.unwrap_or(0).to_le_bytes());
        p.extend_from_slice(&i.queued_out.to_le_bytes());
        p.extend_from_slice(&i.queued_in.to_le_bytes());
    }
    if pids {
        for i in listed {
            p.extend_from_slice(&i.server_pid.to_le_bytes());
        }
    }
    p
}

/// Reads a packet front to back; running off its end is a malformed packet.
struct Fields<'a> {
    p: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if n > self.p.len() {
            return Err(wire::bad_packet());
        }
        let (head, rest) = self.p.split_at(n);
        self.p = rest;
        Ok(head)
    }

    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> io::Result<u64> {
        let mut v = [0u8; 8];
        v.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(v))
    }
}

/// Decodes an INFO reply, checking that every field is in range and that
/// the entries agree with the counts.
pub(crate) fn decode(p: &[u8]) -> io::Result<PipeStatus> {
    let bad = wire::bad_packet;
    let mut f = Fields { p };
    if f.u8()? != wire::RESP_INFO {
        return Err(bad());
    }
    let pipe_type = match f.u8()? {
        0 => PipeType::Byte,
        1 => PipeType::Message,
        _ => return Err(bad()),
    };
    let direction = Direction::from_u8(f.u8()?).ok_or_else(bad)?;
    let max_instances = u32::from(f.u8()?);
    let flags = f.u8()?;
    if max_instances == 0 || flags & !INFO_SERVER_PIDS != 0 {
        return Err(bad());
    }
    let server_pid = f.u32()?;
    let owner_uid = f.u32()?;
    let default_timeout = Duration::from_millis(u64::from(f.u32()?));
    let counts = [f.u32()?, f.u32()?, f.u32()?, f.u32()?];
    let server_gone = f.u32()?;
    let name_len = usize::from(f.u16()?);
    if name_len > MAX_NAME_BYTES {
        return Err(bad());
    }
    let name = std::str::from_utf8(f.take(name_len)?).map_err(|_| bad())?;
    match PipeName::for_client(name) {
        Ok(n) if n.full() == name => {}
        _ => return Err(bad()),
    }
    let listed = usize::from(f.u16()?);
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if listed as u64 != total.min(wire::MAX_INFO_ENTRIES as u64) {
        return Err(bad());
    }
    let mut tally = [0u64; 4];
    let mut instances = Vec::with_capacity(listed);
    for _ in 0..listed {
        let state = f.u8()?;
        let modes = f.u8()?;
        let pid = f.u32()?;
        let queued_out = f.u64()?;
        let queued_in = f.u64()?;
        let state = match state {
            STATE_LISTENING => InstanceState::Listening,
            STATE_CONNECTED => InstanceState::Connected,
            STATE_CLIENT_GONE => InstanceState::ClientGone,
            STATE_DISCONNECTED => InstanceState::Disconnected,
            _ => return Err(bad()),
        };
        tally[usize::from(state_code(state))] += 1;
        if modes & !(MODE_MESSAGE_READ | MODE_NONBLOCKING) != 0
            || (modes & MODE_MESSAGE_READ != 0 && pipe_type == PipeType::Byte)
        {
            return Err(bad());
        }
        let has_client = matches!(state, InstanceState::Connected | InstanceState::ClientGone);
        // No connection, no client and nothing queued; and nothing queued
        // in a direction the pipe does not carry.
        if (!has_client && (pid != 0 || queued_out != 0 || queued_in != 0))
            || (direction == Direction::Inbound && queued_out != 0)
            || (direction == Direction::Outbound && queued_in != 0)
        {
            return Err(bad());
        }
        instances.push(InstanceStatus {
            state,
            read_mode: if modes & MODE_MESSAGE_READ != 0 {
                ReadMode::Message
            } else {
                ReadMode::Byte
            },
            wait_mode: WaitMode::from_nonblocking(modes & MODE_NONBLOCKING != 0),
            client_pid: has_client.then_some(pid),
            queued_out,
            queued_in,
            server_pid,
        });
    }
    if flags & INFO_SERVER_PIDS != 0 {
        for i in &mut instances {
            i.server_pid = f.u32()?;
        }
    }
    if !f.p.is_empty() {
        return Err(bad());
    }
    let complete = total <= wire::MAX_INFO_ENTRIES as u64;
    for (t, &c) in tally.iter().zip(&counts) {
        if *t > u64::from(c) || (complete && *t != u64::from(c)) {
            return Err(bad());
        }
    }
    let [listening, connected, client_gone, disconnected] = counts;
    Ok(PipeStatus {
        name: name.to_owned(),
        pipe_type,
        direction,
        max_instances,
        default_timeout,
        server_pid,
        owner_uid,
        listening,
        connected,
        client_gone,
        disconnected,
        server_gone,
        instances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(instances: usize) -> PipeStatus {
        let mut s = PipeStatus {
            name: r"\\.\pipe\Sample".to_owned(),
            pipe_type: PipeType::Message,
            direction: Direction::Duplex,
            max_instances: 255,
            default_timeout: Duration::from_millis(1500),
            server_pid: 4321,
            owner_uid: 1000,
            listening: 0,
            connected: 0,
            client_gone: 0,
            disconnected: 0,
            server_gone: 2,
            instances: Vec::new(),
        };
        for k in 0..instances {
            let state = [
                InstanceState::Listening,
                InstanceState::Connected,
                InstanceState::ClientGone,
                InstanceState::Disconnected,
            ][k % 4];
            let client = matches!(state, InstanceState::Connected | InstanceState::ClientGone);
            match state {
                InstanceState::Listening => s.listening += 1,
                InstanceState::Connected => s.connected += 1,
                InstanceState::ClientGone => s.client_gone += 1,
                InstanceState::Disconnected => s.disconnected += 1,
            }
            s.instances.push(InstanceStatus {
                state,
                read_mode: if k % 3 == 0 {
                    ReadMode::Message
                } else {
                    ReadMode::Byte
                },
                wait_mode: WaitMode::from_nonblocking(k % 5 == 0),
                client_pid: client.then_some(1000 + k as u32),
                queued_out: if client { u64::MAX - k as u64 } else { 0 },
                queued_in: if client { k as u64 } else { 0 },
                server_pid: 4321,
            });
        }
        s
    }

    #[test]
    fn round_trip() {
        for n in [0, 1, 7, 300] {
            let s = sample(n);
            assert_eq!(decode(&encode(&s)).unwrap(), s, "{n} instances");
        }
    }

    #[test]
    fn instances_of_other_processes_carry_their_server_pid() {
        let mut s = sample(5);
        s.instances[2].server_pid = 99;
        let p = encode(&s);
        assert_eq!(p.len(), encode(&sample(5)).len() + 5 * 4);
        assert_eq!(decode(&p).unwrap(), s);
        for cut in 0..p.len() {
            assert!(decode(&p[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn many_instances_are_cut_at_the_limit_but_counted() {
        let s = sample(wire::MAX_INFO_ENTRIES + 9);
        let p = encode(&s);
        assert!(p.len() <= wire::MAX_INFO_PACKET);
        let d = decode(&p).unwrap();
        assert_eq!(d.instances, s.instances[..wire::MAX_INFO_ENTRIES]);
        assert_eq!(d.current_instances(), s.current_instances());
        assert_eq!(
            d.current_instances() as usize,
            wire::MAX_INFO_ENTRIES + 9 + 2
        );
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let p = encode(&sample(5));
        for cut in 0..p.len() {
            assert!(decode(&p[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = p.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn inconsistent_replies_are_refused() {
        let ok = sample(4);
        let mut cases: Vec<(&str, PipeStatus)> = Vec::new();
        let mut s = ok.clone();
        s.listening += 1;
        cases.push(("count without entry", s));
        let mut s = ok.clone();
        s.instances[0].client_pid = Some(7); // Listening
        cases.push(("listening with a client", s));
        let mut s = ok.clone();
        s.instances[3].queued_in = 1; // Disconnected
        cases.push(("disconnected with queued data", s));
        let mut s = ok.clone();
        s.pipe_type = PipeType::Byte; // instance 0 is in message-read mode
        cases.push(("message read on a byte pipe", s));
        let mut s = ok.clone();
        s.direction = Direction::Inbound; // instance 1 has data queued out
        cases.push(("queued against the direction", s));
        let mut s = ok.clone();
        s.name = r"\\.\pipe\a\b".to_owned();
        cases.push(("invalid name", s));
        let mut s = ok.clone();
        s.name = r"\\.\PIPE\Sample".to_owned();
        cases.push(("non-canonical name", s));
        for (what, s) in cases {
            assert!(decode(&encode(&s)).is_err(), "{what} accepted");
        }
        // Field values out of range.
        let p = encode(&ok);
        for (at, v, what) in [
            (0, 0x84, "other reply"),
            (1, 2, "pipe type"),
            (2, 0, "direction"),
            (3, 0, "max instances"),
            (4, 1, "reserved byte"),
        ] {
            let mut q = p.clone();
            q[at] = v;
            assert!(decode(&q).is_err(), "{what} accepted");
        }
        let entries = p.len() - 4 * ENTRY_LEN;
        let mut q = p.clone();
        q[entries] = 9;
        assert!(decode(&q).is_err(), "state 9 accepted");
        let mut q = p.clone();
        q[entries + 1] = 4;
        assert!(decode(&q).is_err(), "unknown mode bit accepted");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn corrupted_replies_never_panic(
            n in 0usize..6,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        ) {
            let mut p = encode(&sample(n));
            for (at, v) in flips {
                let at = at % p.len();
                p[at] = v;
            }
            let _ = decode(&p);
        }
    }
}
