//! The frames on a remote pipe's QUIC stream (docs/remote-design.md):
//! `type: u8, len: u32 LE, payload`. Both sides decode what the other sent
//! as hostile input: the length is checked before anything is allocated,
//! every field strictly, and nothing here panics on any input (fuzz target
//! `remote_frames`).

use crate::error::ErrorKind;
use crate::info::PipeType;
use crate::named::{Direction, WaitTimeout};
use std::fmt;

/// The largest payload of one frame. Messages longer than this travel as
/// several `MORE` frames and a final `DATA`.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Frame header: type and length.
pub const HEADER: usize = 5;
/// The longest pipe name an `OPEN` may carry, in bytes (256 UTF-16 units
/// are at most 1024 UTF-8 bytes).
pub const MAX_NAME: usize = 1024;
/// The protocol version an `OPEN` carries.
pub const VERSION: u8 = 1;

const T_OPEN: u8 = 1;
const T_OPENED: u8 = 2;
const T_ERROR: u8 = 3;
const T_DATA: u8 = 4;
const T_MORE: u8 = 5;
const T_WAIT: u8 = 6;
const T_WAITED: u8 = 7;
const T_FLUSH: u8 = 8;
const T_FLUSH_ACK: u8 = 9;
const T_LAST: u8 = T_FLUSH_ACK;
const OPENED_LEN: usize = 2 + 4 * 7;

/// What the gateway tells the client about the instance it opened.
///
/// ```
/// use shmpipe::remote::frame::{Frame, Opened};
/// use shmpipe::named::Direction;
/// use shmpipe::PipeType;
/// let o = Opened { pipe_type: PipeType::Message, direction: Direction::Duplex,
///     max_instances: 1, out_size: 4096, in_size: 4096, default_timeout_ms: 50,
///     server_pid: 7, server_uid: 0, server_gid: 0 };
/// let bytes = Frame::Opened(o).encode();
/// assert_eq!(Frame::decode(&bytes).unwrap(), Some((Frame::Opened(o), bytes.len())));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Byte or message pipe.
    pub pipe_type: PipeType,
    /// The pipe's direction, seen from its server.
    pub direction: Direction,
    /// 1 to 255 (`UNLIMITED_INSTANCES`).
    pub max_instances: u32,
    /// Server→client quota.
    pub out_size: u32,
    /// Client→server quota.
    pub in_size: u32,
    /// The pipe's default timeout.
    pub default_timeout_ms: u32,
    /// The server's pid in the gateway's pid namespace.
    pub server_pid: u32,
    /// The server's uid (the gateway's view).
    pub server_uid: u32,
    /// The server's gid (the gateway's view).
    pub server_gid: u32,
}

/// Which servers the client accepts (its `ClientOptions::trust_*`): the
/// gateway applies it, with the default rule (root, or the mapped user),
/// when it opens or waits for the pipe.
///
/// ```
/// use shmpipe::remote::frame::{Frame, Trust};
/// let trust = Trust { any: false, uids: vec![990], gids: vec![] };
/// let f = Frame::Open { access: 3, trust, name: "svc".into() };
/// let bytes = f.encode();
/// assert_eq!(Frame::decode(&bytes).unwrap(), Some((f, bytes.len())));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// Any server (Windows' behaviour).
    pub any: bool,
    /// Servers running as these uids, too (at most [`MAX_TRUSTED`]).
    pub uids: Vec<u32>,
    /// Servers running with these primary gids, too (at most [`MAX_TRUSTED`]).
    pub gids: Vec<u32>,
}

/// The most uids (and the most gids) a [`Trust`] carries.
pub const MAX_TRUSTED: usize = 64;

impl Trust {
    fn encode(&self, p: &mut Vec<u8>) {
        p.push(u8::from(self.any));
        for ids in [&self.uids, &self.gids] {
            let ids = &ids[..ids.len().min(MAX_TRUSTED)];
            p.push(ids.len() as u8);
            for id in ids {
                p.extend_from_slice(&id.to_le_bytes());
            }
        }
    }

    /// The trust at the start of `p`, and the rest.
    fn parse(p: &[u8]) -> Option<(Trust, &[u8])> {
        let (&flags, mut rest) = p.split_first()?;
        if flags > 1 {
            return None;
        }
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let (&n, r) = rest.split_first()?;
            let n = usize::from(n);
            if n > MAX_TRUSTED {
                return None;
            }
            let bytes = r.get(..n * 4)?;
            *list = bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            rest = &r[n * 4..];
        }
        let [uids, gids] = lists;
        Some((
            Trust {
                any: flags == 1,
                uids,
                gids,
            },
            rest,
        ))
    }
}

/// A pipe name in a frame: 1 to [`MAX_NAME`] bytes of UTF-8.
fn parse_name(name: &[u8]) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    std::str::from_utf8(name).ok().map(str::to_owned)
}

/// One frame.
///
/// ```
/// use shmpipe::remote::frame::Frame;
/// let bytes = Frame::Data(b"hi".to_vec()).encode();
/// assert_eq!(bytes, [4, 2, 0, 0, 0, b'h', b'i']);
/// assert_eq!(Frame::decode(&bytes[..3]).unwrap(), None); // incomplete
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Client → gateway: open `name` (the `<name>` part) with these
    /// `Access` bits.
    Open {
        /// `Access` as its wire byte.
        access: u8,
        /// Which servers the client accepts.
        trust: Trust,
        /// The `<name>` part of `\\host\pipe\<name>`.
        name: String,
    },
    /// Gateway → client: the open succeeded.
    Opened(Opened),
    /// Gateway → client: the open failed with this kind.
    Error(ErrorKind),
    /// The end of a message (or a byte-mode write).
    Data(Vec<u8>),
    /// A part of a message; more of it follows.
    More(Vec<u8>),
    /// Client → gateway: wait until an instance of `name` listens.
    Wait {
        /// How long.
        timeout: WaitTimeout,
        /// Which servers the client accepts.
        trust: Trust,
        /// The `<name>` part of `\\host\pipe\<name>`.
        name: String,
    },
    /// Gateway → client: the wait succeeded.
    Waited,
    /// Client → gateway: tell me when the server has read everything
    /// before this frame (the gateway flushes its local end).
    Flush,
    /// Gateway → client: the oldest unanswered `FLUSH` is done: the
    /// server read everything before it.
    FlushAck,
}

/// Why bytes are not a frame.
///
/// ```
/// use shmpipe::remote::frame::{Frame, FrameError};
/// assert_eq!(Frame::decode(&[10, 0, 0, 0, 0]), Err(FrameError::UnknownType(10)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A type byte this version does not know.
    UnknownType(u8),
    /// A length above [`MAX_PAYLOAD`].
    TooLong(u32),
    /// A payload that does not parse as its type.
    Malformed(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::UnknownType(t) => write!(f, "unknown frame type {t}"),
            FrameError::TooLong(n) => write!(f, "frame of {n} bytes exceeds {MAX_PAYLOAD}"),
            FrameError::Malformed(t) => write!(f, "malformed frame of type {t}"),
        }
    }
}

impl std::error::Error for FrameError {}

fn u32_at(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

impl Frame {
    /// The frame's bytes, header included. Payloads above
    /// [`MAX_PAYLOAD`] are the caller's error (the decoder refuses them);
    /// senders split data with [`MAX_PAYLOAD`].
    ///
    /// ```
    /// use shmpipe::remote::frame::Frame;
    /// assert_eq!(Frame::More(vec![1]).encode(), [5, 1, 0, 0, 0, 1]);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let (t, payload): (u8, Vec<u8>) = match self {
            Frame::Open {
                access,
                trust,
                name,
            } => {
                let mut p = vec![VERSION, *access];
                trust.encode(&mut p);
                p.extend_from_slice(name.as_bytes());
                (T_OPEN, p)
            }
            Frame::Opened(o) => {
                let mut p = vec![
                    u8::from(o.pipe_type == PipeType::Message),
                    o.direction.to_u8(),
                ];
                for v in [
                    o.max_instances,
                    o.out_size,
                    o.in_size,
                    o.default_timeout_ms,
                    o.server_pid,
                    o.server_uid,
                    o.server_gid,
                ] {
                    p.extend_from_slice(&v.to_le_bytes());
                }
                (T_OPENED, p)
            }
            Frame::Error(k) => (T_ERROR, k.code().to_le_bytes().to_vec()),
            Frame::Data(d) => (T_DATA, d.clone()),
            Frame::More(d) => (T_MORE, d.clone()),
            Frame::Wait {
                timeout,
                trust,
                name,
            } => {
                let (mode, ms) = match timeout {
                    WaitTimeout::Default => (0u8, 0u32),
                    WaitTimeout::NoWait => (1, 0),
                    WaitTimeout::Forever => (2, 0),
                    WaitTimeout::Duration(d) => (3, d.as_millis().min(u128::from(u32::MAX)) as u32),
                };
                let mut p = vec![VERSION, mode];
                p.extend_from_slice(&ms.to_le_bytes());
                trust.encode(&mut p);
                p.extend_from_slice(name.as_bytes());
                (T_WAIT, p)
            }
            Frame::Waited => (T_WAITED, Vec::new()),
            Frame::Flush => (T_FLUSH, Vec::new()),
            Frame::FlushAck => (T_FLUSH_ACK, Vec::new()),
        };
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.push(t);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// The header of a frame: its type and payload length, checked (the
    /// reader then reads exactly that many bytes).
    ///
    /// ```
    /// use shmpipe::remote::frame::Frame;
    /// assert_eq!(Frame::header(&[4, 3, 0, 0, 0]), Ok((4, 3)));
    /// assert!(Frame::header(&[4, 0xff, 0xff, 0xff, 0xff]).is_err());
    /// ```
    pub fn header(h: &[u8; HEADER]) -> Result<(u8, usize), FrameError> {
        let t = h[0];
        if !(T_OPEN..=T_LAST).contains(&t) {
            return Err(FrameError::UnknownType(t));
        }
        let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
        if len as usize > MAX_PAYLOAD {
            return Err(FrameError::TooLong(len));
        }
        Ok((t, len as usize))
    }

    /// Parses the payload of a frame of type `t` (from [`Frame::header`]).
    ///
    /// ```
    /// use shmpipe::remote::frame::Frame;
    /// assert_eq!(Frame::parse(4, b"x".to_vec()), Ok(Frame::Data(b"x".to_vec())));
    /// assert!(Frame::parse(3, vec![0; 3]).is_err()); // an ERROR carries 4 bytes
    /// ```
    pub fn parse(t: u8, p: Vec<u8>) -> Result<Frame, FrameError> {
        let bad = FrameError::Malformed(t);
        match t {
            T_OPEN => {
                let [version, access, rest @ ..] = &p[..] else {
                    return Err(bad);
                };
                if *version != VERSION {
                    return Err(bad);
                }
                let (trust, name) = Trust::parse(rest).ok_or(bad)?;
                Ok(Frame::Open {
                    access: *access,
                    trust,
                    name: parse_name(name).ok_or(bad)?,
                })
            }
            T_OPENED => {
                if p.len() != OPENED_LEN {
                    return Err(bad);
                }
                let pipe_type = match p[0] {
                    0 => PipeType::Byte,
                    1 => PipeType::Message,
                    _ => return Err(bad),
                };
                let direction = Direction::from_u8(p[1]).ok_or(bad)?;
                let w = |k: usize| u32_at(&p, 2 + 4 * k).ok_or(bad);
                let max_instances = w(0)?;
                if max_instances == 0 || max_instances > 255 {
                    return Err(bad);
                }
                Ok(Frame::Opened(Opened {
                    pipe_type,
                    direction,
                    max_instances,
                    out_size: w(1)?,
                    in_size: w(2)?,
                    default_timeout_ms: w(3)?,
                    server_pid: w(4)?,
                    server_uid: w(5)?,
                    server_gid: w(6)?,
                }))
            }
            T_ERROR => {
                if p.len() != 4 {
                    return Err(bad);
                }
                let code = u32_at(&p, 0).ok_or(bad)?;
                ErrorKind::from_code(code).map(Frame::Error).ok_or(bad)
            }
            T_DATA => Ok(Frame::Data(p)),
            T_MORE => Ok(Frame::More(p)),
            T_WAIT => {
                let [version, mode, w0, w1, w2, w3, rest @ ..] = &p[..] else {
                    return Err(bad);
                };
                let ms = u32::from_le_bytes([*w0, *w1, *w2, *w3]);
                let timeout = match (mode, ms) {
                    (0, 0) => WaitTimeout::Default,
                    (1, 0) => WaitTimeout::NoWait,
                    (2, 0) => WaitTimeout::Forever,
                    (3, ms) => WaitTimeout::Duration(std::time::Duration::from_millis(ms.into())),
                    _ => return Err(bad),
                };
                if *version != VERSION {
                    return Err(bad);
                }
                let (trust, name) = Trust::parse(rest).ok_or(bad)?;
                Ok(Frame::Wait {
                    timeout,
                    trust,
                    name: parse_name(name).ok_or(bad)?,
                })
            }
            T_WAITED if p.is_empty() => Ok(Frame::Waited),
            T_FLUSH if p.is_empty() => Ok(Frame::Flush),
            T_FLUSH_ACK if p.is_empty() => Ok(Frame::FlushAck),
            T_WAITED | T_FLUSH | T_FLUSH_ACK => Err(bad),
            t => Err(FrameError::UnknownType(t)),
        }
    }

    /// Decodes the frame at the start of `buf`: the frame and how many
    /// bytes it took, `None` if `buf` holds only part of one.
    ///
    /// ```
    /// use shmpipe::remote::frame::Frame;
    /// let mut bytes = Frame::Data(vec![1, 2]).encode();
    /// bytes.extend(Frame::More(vec![]).encode());
    /// let (f, n) = Frame::decode(&bytes)?.unwrap();
    /// assert_eq!((f, n), (Frame::Data(vec![1, 2]), 7));
    /// assert_eq!(Frame::decode(&bytes[n..])?, Some((Frame::More(vec![]), 5)));
    /// # Ok::<(), shmpipe::remote::frame::FrameError>(())
    /// ```
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(h) = buf.first_chunk::<HEADER>() else {
            // An unknown type is refused as soon as it is seen.
            if let Some(&t) = buf.first() {
                if !(T_OPEN..=T_LAST).contains(&t) {
                    return Err(FrameError::UnknownType(t));
                }
            }
            return Ok(None);
        };
        let (t, len) = Frame::header(h)?;
        let Some(p) = buf.get(HEADER..HEADER + len) else {
            return Ok(None);
        };
        Ok(Some((Frame::parse(t, p.to_vec())?, HEADER + len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_round_trips_and_every_cut_is_incomplete() {
        let frames = [
            Frame::Open {
                access: 3,
                trust: Trust::default(),
                name: "pipe näme".into(),
            },
            Frame::Open {
                access: 1,
                trust: Trust {
                    any: true,
                    uids: vec![1, 2],
                    gids: vec![u32::MAX],
                },
                name: "t".into(),
            },
            Frame::Opened(Opened {
                pipe_type: PipeType::Byte,
                direction: Direction::Inbound,
                max_instances: 255,
                out_size: 1,
                in_size: 2,
                default_timeout_ms: 3,
                server_pid: 4,
                server_uid: 5,
                server_gid: 6,
            }),
            Frame::Error(ErrorKind::PipeBusy),
            Frame::Data(vec![0; 100]),
            Frame::More(vec![]),
            Frame::Wait {
                timeout: WaitTimeout::Duration(std::time::Duration::from_millis(1500)),
                trust: Trust::default(),
                name: "w".into(),
            },
            Frame::Wait {
                timeout: WaitTimeout::Forever,
                trust: Trust {
                    any: false,
                    uids: vec![],
                    gids: vec![7],
                },
                name: "w".into(),
            },
            Frame::Waited,
            Frame::Flush,
            Frame::FlushAck,
        ];
        for f in frames {
            let b = f.encode();
            assert_eq!(Frame::decode(&b), Ok(Some((f.clone(), b.len()))));
            for cut in 0..b.len() {
                assert_eq!(Frame::decode(&b[..cut]), Ok(None), "{f:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn hostile_frames_are_refused() {
        let open = |v: u8, name: &[u8]| {
            // No trust beyond the default: flags 0, no uids, no gids.
            let mut p = vec![v, 3, 0, 0, 0];
            p.extend_from_slice(name);
            Frame::parse(T_OPEN, p)
        };
        assert!(open(VERSION, b"x").is_ok());
        assert!(open(2, b"x").is_err(), "unknown version");
        assert!(open(VERSION, b"").is_err(), "empty name");
        assert!(open(VERSION, &[0xff]).is_err(), "not UTF-8");
        assert!(open(VERSION, &[b'x'; MAX_NAME + 1]).is_err(), "too long");
        assert!(Frame::parse(T_ERROR, 4u32.to_le_bytes().to_vec()).is_err());
        assert!(
            Frame::parse(T_WAITED, vec![0]).is_err(),
            "WAITED carries nothing"
        );
        for t in [T_FLUSH, T_FLUSH_ACK] {
            assert_eq!(Frame::parse(t, vec![0]), Err(FrameError::Malformed(t)));
        }
        let wait = |mode: u8, ms: u32| {
            let mut p = vec![VERSION, mode];
            p.extend_from_slice(&ms.to_le_bytes());
            p.extend_from_slice(&[0, 0, 0, b'x']);
            Frame::parse(T_WAIT, p)
        };
        // Trust: flags only 0 or 1; at most MAX_TRUSTED ids, all present.
        let trusting = |t: &[u8]| {
            let mut p = vec![VERSION, 3];
            p.extend_from_slice(t);
            p.push(b'x');
            Frame::parse(T_OPEN, p)
        };
        assert!(trusting(&[1, 1, 9, 0, 0, 0, 0]).is_ok());
        assert!(trusting(&[2, 0, 0]).is_err(), "unknown flag");
        assert!(trusting(&[0, 2, 9, 0, 0, 0, 0]).is_err(), "a uid missing");
        let mut many = vec![0, MAX_TRUSTED as u8 + 1];
        many.extend(std::iter::repeat_n(0u8, 4 * (MAX_TRUSTED + 1)));
        many.push(0);
        assert!(trusting(&many).is_err(), "too many uids");
        assert!(wait(3, 7).is_ok());
        assert!(wait(0, 1).is_err(), "Default with a duration");
        assert!(wait(4, 0).is_err(), "unknown mode");
        let mut opened = Frame::Opened(Opened {
            pipe_type: PipeType::Byte,
            direction: Direction::Duplex,
            max_instances: 1,
            out_size: 0,
            in_size: 0,
            default_timeout_ms: 0,
            server_pid: 0,
            server_uid: 0,
            server_gid: 0,
        })
        .encode();
        for (at, v) in [(5, 2), (6, 0), (7, 0), (7, 0xff)] {
            let mut q = opened.clone();
            q[at] = v;
            if at == 7 {
                q[8] = u8::from(v == 0xff);
            }
            assert!(Frame::decode(&q).is_err(), "byte {at} = {v}");
        }
        opened.push(0);
        opened[1] += 1;
        assert!(Frame::decode(&opened).is_err(), "trailing byte");
        let huge = [T_DATA, 0x01, 0x00, 0x10, 0x00];
        assert_eq!(Frame::decode(&huge), Err(FrameError::TooLong(0x0010_0001)));
        assert_eq!(Frame::decode(&[0]), Err(FrameError::UnknownType(0)));
    }
}
