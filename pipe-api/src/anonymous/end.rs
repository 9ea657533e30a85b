//! What a reader and a writer share, written once: [`AnonEnd`], one handle
//! of one end of the pipe's single ring, and the descriptor trait impls
//! both public types get from [`fd_conversions`].
//!
//! Invariants: an end's modes (nonblocking) live in the ring's user words,
//! not in the handle, so that every duplicate in every process sees one
//! value (SEM-027); the quota is read back from the segment header when a
//! descriptor is adopted, clamped, since another process wrote it.

use super::KIND_ANONYMOUS;
use crate::datapath::Conn;
use crate::error::{from_engine, Error, ErrorKind};
use crate::info::{EndKind, PipeInfo, PipeState, PipeType, ReadMode, WaitMode};
use shmpipe_engine::channel::{End, ROLE_READER, ROLE_WRITER};
use shmpipe_engine::layout::{UserWord, HANGUP_READER, HANGUP_WRITER};
use shmpipe_engine::WaitPolicy;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

// Per-end modes live in the ring's user words, so that every handle of an
// end, in every process, shares them (SEM-027). A peer could write anything
// there: they are only ever tested as flags.
const MODE_NONBLOCKING: u64 = 1;

/// Which end of the pipe's one ring a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Reader,
    Writer,
}

impl Side {
    fn role(self) -> u32 {
        match self {
            Side::Reader => ROLE_READER,
            Side::Writer => ROLE_WRITER,
        }
    }

    fn peer_role(self) -> u32 {
        match self {
            Side::Reader => ROLE_WRITER,
            Side::Writer => ROLE_READER,
        }
    }

    fn hangup(self) -> u32 {
        match self {
            Side::Reader => HANGUP_READER,
            Side::Writer => HANGUP_WRITER,
        }
    }

    /// The ring's user word holding this end's modes: in the segment, so
    /// duplicates in every process share them.
    fn mode_word(self) -> UserWord {
        match self {
            Side::Reader => UserWord::ReaderMode,
            Side::Writer => UserWord::WriterMode,
        }
    }

    /// Windows reports the read end as the server end (spec 4.14).
    fn end_kind(self) -> EndKind {
        match self {
            Side::Reader => EndKind::Server,
            Side::Writer => EndKind::Client,
        }
    }
}

/// What a reader and a writer share: one handle of one end of the ring.
#[derive(Debug)]
pub(crate) struct AnonEnd {
    pub(crate) conn: Conn,
    side: Side,
    quota: u32,
    pub(super) inheritable: bool,
}

impl AnonEnd {
    pub(super) fn new(
        end: Arc<End>,
        side: Side,
        quota: u32,
        inheritable: bool,
        policy: Option<WaitPolicy>,
    ) -> io::Result<AnonEnd> {
        let (write, read) = match side {
            Side::Reader => (None, Some(0)),
            Side::Writer => (Some(0), None),
        };
        let conn = Conn::new(
            end,
            write,
            read,
            side.peer_role(),
            PipeType::Byte,
            quota,
            policy,
        )?;
        Ok(AnonEnd {
            conn,
            side,
            quota,
            inheritable,
        })
    }

    pub(super) fn from_fd(fd: OwnedFd, side: Side) -> io::Result<AnonEnd> {
        let end = End::attach(fd, side.role(), &[(0, side.hangup())]).map_err(map_from_fd)?;
        let quota = quota_of(&end)?;
        AnonEnd::new(end, side, quota, false, None)
    }

    pub(super) fn try_clone(&self) -> io::Result<AnonEnd> {
        let end = self.conn.end().try_clone().map_err(map_from_fd)?;
        AnonEnd::new(end, self.side, self.quota, self.inheritable, None)
    }

    pub(super) fn into_fd(self) -> OwnedFd {
        End::into_fd(Arc::clone(self.conn.end())).expect("duplicating a descriptor we own")
    }

    pub(super) fn is_nonblocking(&self) -> bool {
        self.conn.modes(self.side.mode_word()) & MODE_NONBLOCKING != 0
    }

    pub(super) fn info(&self) -> PipeInfo {
        PipeInfo {
            end: self.side.end_kind(),
            pipe_type: PipeType::Byte,
            out_size: self.quota,
            in_size: self.quota,
            max_instances: 1,
        }
    }

    pub(super) fn state(&self) -> PipeState {
        PipeState {
            nonblocking: self.is_nonblocking(),
            message_read: false,
            current_instances: 1,
        }
    }

    pub(super) fn set_state(
        &self,
        read_mode: Option<ReadMode>,
        wait_mode: Option<WaitMode>,
    ) -> io::Result<()> {
        if read_mode == Some(ReadMode::Message) {
            return Err(Error::io(ErrorKind::InvalidParameter));
        }
        match wait_mode {
            Some(WaitMode::Nonblocking) => {
                self.conn.set_modes(self.side.mode_word(), MODE_NONBLOCKING);
            }
            Some(WaitMode::Blocking) => {
                self.conn
                    .clear_modes(self.side.mode_word(), MODE_NONBLOCKING);
            }
            None => {}
        }
        Ok(())
    }
}

/// Reads the quota from a validated segment header (still peer-written data:
/// clamp to the u32 range the API promises).
fn quota_of(end: &End) -> io::Result<u32> {
    let h = end.segment().header();
    if h.user_flags != KIND_ANONYMOUS || h.ring_count != 1 {
        return Err(Error::with_source(
            ErrorKind::InvalidHandle,
            "descriptor is not an anonymous pipe end",
        )
        .into());
    }
    Ok(h.user[0].min(u64::from(u32::MAX)) as u32)
}

fn map_from_fd(e: shmpipe_engine::Error) -> io::Error {
    match e {
        shmpipe_engine::Error::WrongEnd => Error::with_source(ErrorKind::AccessDenied, e).into(),
        shmpipe_engine::Error::Corrupt(_) | shmpipe_engine::Error::Incompatible(_) => {
            Error::with_source(ErrorKind::InvalidHandle, e).into()
        }
        e => from_engine(e, ErrorKind::BrokenPipe),
    }
}

pub(super) fn would_block() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, Error::new(ErrorKind::NoData))
}

/// The descriptor conversions of an end type, the same for both ends
/// (`AsFd`, `AsRawFd`, `From<End> for OwnedFd`, `TryFrom<OwnedFd>`), each
/// with docs and an example naming the type. `$var` is the end's name in
/// the examples and `$pair` the pattern that binds it from `pipe()`.
macro_rules! fd_conversions {
    ($ty:ident, $var:literal, $pair:literal) => {
        #[doc = concat!("The end's descriptor: the shared-memory segment, holding the end's
liveness lock. It is not a kernel pipe: polling it says nothing about
data, and it must not become a child's stdin or stdout (see
[`crate::redirect`]); pass it on with [`", stringify!($ty), "::send_to`] or
[`CommandExt::inherit_end`](crate::CommandExt::inherit_end).

```
use std::os::fd::AsFd;
let ", $pair, " = shmpipe::pipe()?;
let fd = ", $var, ".as_fd();
# let _ = fd;
# Ok::<(), std::io::Error>(())
```")]
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.0.conn.end().fd()
            }
        }

        #[doc = concat!("The descriptor number (see `AsFd for ", stringify!($ty), "`).

```
use std::os::fd::AsRawFd;
let ", $pair, " = shmpipe::pipe()?;
assert!(", $var, ".as_raw_fd() >= 0);
# Ok::<(), std::io::Error>(())
```")]
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(self))
            }
        }

        #[doc = concat!("Gives up the handle, keeping the end open in the descriptor (see
[`", stringify!($ty), "::into_fd`]).

```
use std::os::fd::OwnedFd;
let ", $pair, " = shmpipe::pipe()?;
let fd: OwnedFd = ", $var, ".into();
let back = shmpipe::", stringify!($ty), "::try_from(fd)?;
# let _ = back;
# Ok::<(), std::io::Error>(())
```")]
        impl From<$ty> for std::os::fd::OwnedFd {
            fn from(end: $ty) -> std::os::fd::OwnedFd {
                end.into_fd()
            }
        }

        #[doc = concat!("Adopts a descriptor of this kind of end ([`", stringify!($ty), "::from_fd`]: the
segment is validated, and a descriptor of anything else is refused, so
this is `TryFrom`, unlike std's infallible `From<OwnedFd>`).

```
use std::os::fd::OwnedFd;
let ", $pair, " = shmpipe::pipe()?;
let fd: OwnedFd = ", $var, ".into();
let again = shmpipe::", stringify!($ty), "::try_from(fd)?;
# let _ = again;
# Ok::<(), std::io::Error>(())
```")]
        impl TryFrom<std::os::fd::OwnedFd> for $ty {
            type Error = std::io::Error;

            fn try_from(fd: std::os::fd::OwnedFd) -> std::io::Result<$ty> {
                $ty::from_fd(fd)
            }
        }
    };
}
pub(super) use fd_conversions;
