//! Anonymous pipes: one-way, byte-stream pipes between related processes
//! (Windows' `CreatePipe`).
//!
//! [`pipe()`] mirrors [`std::io::pipe`]; [`PipeBuilder`] sets the buffer size
//! (the write quota of spec 2.4) and inheritability. The read end behaves as
//! the server end of an inbound pipe and the write end as its client end
//! (spec 1.2), which is what [`PipeReader::info`] and [`PipeWriter::info`]
//! report.
//!
//! # Data semantics
//!
//! * A write is atomic: its bytes are contiguous in the stream even with
//!   several writers (handles duplicated across threads and processes).
//! * A blocking write returns when at most *quota* bytes, its own included,
//!   are unread (spec 5.2); a single write up to the quota therefore returns
//!   at once, and a larger one returns as the reader catches up. The bytes of
//!   a write are readable from the moment they are published, before the
//!   write returns.
//! * End of data: once every handle of the write end, in every process, is
//!   closed (or its process died), the reader gets what was written and then
//!   end-of-pipe: `Ok(0)` from [`Read::read`](std::io::Read::read), [`ErrorKind::BrokenPipe`](crate::ErrorKind::BrokenPipe) from
//!   [`PipeReader::read_pipe`]. A write after every read handle closed fails
//!   with [`ErrorKind::NoData`](crate::ErrorKind::NoData) (`io::ErrorKind::BrokenPipe`); there is no
//!   SIGPIPE.
//! * Nonblocking ends ([`PipeReader::set_nonblocking`]) return
//!   `WouldBlock` (kind [`ErrorKind::NoData`](crate::ErrorKind::NoData)) from a read with nothing
//!   queued; a nonblocking write follows spec 5.5 (all or nothing,
//!   [`PipeWriter::try_write`]).
//!
//! ```
//! use std::io::{Read, Write};
//! let (mut reader, mut writer) = shmpipe::pipe()?;
//! writer.write_all(b"hello")?;
//! drop(writer);
//! let mut text = String::new();
//! reader.read_to_string(&mut text)?;
//! assert_eq!(text, "hello");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Layout
//!
//! * `end.rs`: what both ends share, written once: the handle of one end of
//!   the pipe's ring (a `Conn`), its modes in the ring's
//!   user words, adopting and giving up descriptors, and the descriptor
//!   trait impls.
//! * `reader.rs`, `writer.rs`: [`PipeReader`] and [`PipeWriter`], thin
//!   public types whose methods delegate to the shared end and carry their
//!   own docs and examples.
//! * `builder.rs`: [`PipeBuilder`], which creates the ring and both ends.

mod builder;
mod end;
mod reader;
mod writer;

pub use builder::PipeBuilder;
pub use reader::PipeReader;
pub use writer::PipeWriter;

use std::io;

/// `user_flags` of an anonymous pipe's segment.
pub(crate) const KIND_ANONYMOUS: u32 = 0x414e_4f4e; // "ANON"
/// The default buffer size (and quota) for a size hint of 0.
///
/// ```
/// use shmpipe::{anonymous::DEFAULT_BUFFER_SIZE, PipeBuilder};
/// let (reader, _writer) = PipeBuilder::new().buffer_size(0).build()?;
/// assert_eq!(reader.info()?.in_size, DEFAULT_BUFFER_SIZE);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const DEFAULT_BUFFER_SIZE: u32 = 4096;

/// Creates an anonymous pipe with the default buffer size (4096 bytes) whose
/// ends are not inheritable. Mirrors [`std::io::pipe`].
///
/// ```
/// let (reader, writer) = shmpipe::pipe()?;
/// assert_eq!(reader.info()?.in_size, 4096);
/// # drop((reader, writer));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    PipeBuilder::new().build()
}
