//! Readiness descriptors for event loops other than tokio (mio,
//! `polling`, plain `poll`/`epoll`).
//!
//! An end's own descriptor is not pollable: a blocking operation waits on
//! a futex word in shared memory. A [`Readiness`] is a process-local
//! `eventfd` that this process's readiness bridge (a helper thread) makes
//! readable when it is armed with [`Tickets`] and one of their words
//! changes: the pipe's state changed, and the operation may make progress
//! (or fail: the peer closed). The async ends of `shmpipe::tokio`
//! (feature `tokio`) are built on the same announcements.
//!
//! # Protocol
//!
//! The end must be nonblocking (`set_nonblocking(true)`), so that step 1
//! and step 3 never wait:
//!
//! 1. Try the operation ([`PipeReader::read_pipe`] reports
//!    [`WouldBlock`](std::io::ErrorKind::WouldBlock); a nonblocking
//!    [`PipeWriter::try_write`] returns 0). Done: done.
//! 2. Announce it: [`PipeReader::announce_read`],
//!    [`PipeWriter::announce_write`] (and the same methods of
//!    [`NamedPipeServer`] and [`NamedPipeClient`]).
//! 3. Try again. Done: done (the tickets are dropped; the announcement
//!    costs the peer at most one spurious wake-up).
//! 4. Still not now: [`Readiness::arm`] with the tickets, and wait for the
//!    `eventfd` to be readable ([`AsFd`](std::os::fd::AsFd)).
//! 5. When it is readable: [`Readiness::clear`], and start again at 1.
//!
//! Step 3 is not optional: a state change between step 1 and step 2 is
//! seen only by the retry; one after step 2 changes an announced word.
//! The `eventfd` can also be signalled without progress (a liveness
//! re-check of a peer that may have been killed): the retry then reports
//! `WouldBlock` again, and the loop arms again. A closed peer signals it,
//! and the retry reports the end of the pipe (a read's
//! [`ErrorKind::BrokenPipe`](crate::ErrorKind::BrokenPipe), a write's
//! [`ErrorKind::NoData`](crate::ErrorKind::NoData)).
//!
//! Use one `Readiness` per direction and end you wait on; arming again
//! replaces what it was armed with.
//!
//! ```
//! use rustix::event::{poll, PollFd, PollFlags};
//! use shmpipe::readiness::Readiness;
//! use std::io::{ErrorKind, Write};
//!
//! let (reader, mut writer) = shmpipe::pipe()?;
//! reader.set_nonblocking(true)?;
//! let ready = Readiness::new()?;
//! let t = std::thread::spawn(move || writer.write_all(b"hello"));
//! let mut buf = [0u8; 16];
//! let n = loop {
//!     match reader.read_pipe(&mut buf) {                           // 1
//!         Err(e) if e.kind() == ErrorKind::WouldBlock => {}
//!         done => break done?,
//!     }
//!     let tickets = reader.announce_read()?;                       // 2
//!     match reader.read_pipe(&mut buf) {                           // 3
//!         Err(e) if e.kind() == ErrorKind::WouldBlock => {}
//!         done => break done?,
//!     }
//!     ready.arm(tickets)?;                                         // 4
//!     let mut fds = [PollFd::new(&ready, PollFlags::IN)];          // (epoll, mio: the same fd)
//!     poll(&mut fds, None).map_err(std::io::Error::from)?;
//!     ready.clear()?;                                              // 5
//! };
//! assert_eq!(&buf[..n], b"hello");
//! # t.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`NamedPipeServer`]: crate::named::NamedPipeServer
//! [`NamedPipeClient`]: crate::named::NamedPipeClient

pub use shmpipe_engine::readiness::{Readiness, Tickets};

use crate::{PipeReader, PipeWriter};
use std::io;

impl PipeReader {
    /// Announces a pending read for a [`Readiness`] (step 2 of the
    /// [protocol](crate::readiness#protocol)): the returned tickets name
    /// what a blocking read would wait on. Follow it with a retry of the
    /// (nonblocking) read before arming: a write that came before the
    /// announcement signals nothing.
    ///
    /// ```
    /// use std::io::Write;
    /// let (reader, mut writer) = shmpipe::pipe()?;
    /// reader.set_nonblocking(true)?;
    /// let ready = shmpipe::readiness::Readiness::new()?;
    /// let tickets = reader.announce_read()?;
    /// writer.write_all(b"x")?; // after the announcement: signals
    /// // (the retry would read it now; shown here: arming sees the change)
    /// ready.arm(tickets)?;
    /// let mut fds = [rustix::event::PollFd::new(&ready, rustix::event::PollFlags::IN)];
    /// rustix::event::poll(&mut fds, None)?;
    /// assert!(ready.clear()?);
    /// assert_eq!(reader.read_pipe(&mut [0u8; 4])?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn announce_read(&self) -> io::Result<Tickets> {
        self.0.conn.announce_read()
    }
}

impl PipeWriter {
    /// Announces a pending write for a [`Readiness`] (step 2 of the
    /// [protocol](crate::readiness#protocol)): the tickets name what a
    /// blocking write would wait on (the quota, the write lock). Follow it
    /// with a retry of the nonblocking [`try_write`](PipeWriter::try_write)
    /// before arming.
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut reader, writer) = shmpipe::pipe()?; // quota 4096
    /// writer.set_nonblocking(true)?;
    /// assert_eq!(writer.try_write(&[7; 4096])?, 4096);
    /// let tickets = writer.announce_write()?;
    /// assert_eq!(writer.try_write(&[7; 1])?, 0); // retry: still full
    /// let ready = shmpipe::readiness::Readiness::new()?;
    /// ready.arm(tickets)?;
    /// reader.read_exact(&mut [0u8; 4096])?; // drains: signals
    /// let mut fds = [rustix::event::PollFd::new(&ready, rustix::event::PollFlags::IN)];
    /// rustix::event::poll(&mut fds, None)?;
    /// ready.clear()?;
    /// assert_eq!(writer.try_write(&[7; 1])?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn announce_write(&self) -> io::Result<Tickets> {
        self.0.conn.announce_write()
    }
}
