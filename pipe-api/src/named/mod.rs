//! Named pipes: found by name, one-way or duplex, many instances of one
//! name, byte or message mode (the Windows named-pipe model, spec sections
//! 1–6 and 8).
//!
//! * [`ServerOptions::create`] makes an instance of `\\.\pipe\<name>`;
//!   [`NamedPipeServer::connect`] waits for a client,
//!   [`NamedPipeServer::disconnect`] cuts it off so the instance can serve
//!   the next one.
//! * [`ClientOptions::open`] attaches to the instance that has been
//!   listening longest; [`wait_available`] waits for one; [`call`] does a
//!   whole request/reply.
//! * Both ends read and write with [`std::io::Read`]/[`std::io::Write`]
//!   (bytes) or `send_msg`/`recv_msg` (messages: [`MsgRead::complete`] is
//!   `false` for Windows' `MoreData`, which is not an error here), and have
//!   `peek`, `transact`, `flush_buffers`, `info`, `state`, `set_state`,
//!   process ids and (server) client credentials.
//! * [`PipeListener`] keeps one instance listening and hands out connected
//!   ones.
//! * [`status`] describes a pipe from outside (instances, processes, queued
//!   bytes), [`list`] every pipe this user may see (`shmpipe list`).
//!
//! How names, instances and liveness work is in the [`server`] module
//! documentation.
//!
//! ```
//! use shmpipe::named::{ClientOptions, ServerOptions};
//! use shmpipe::{PipeType, ReadMode};
//! let name = format!(r"\\.\pipe\doc-named-{}", std::process::id());
//! let server = ServerOptions::new()
//!     .pipe_type(PipeType::Message)
//!     .read_mode(ReadMode::Message)
//!     .create(&name)?;
//! let client = ClientOptions::new().open(&name)?;
//! client.send_msg(b"first")?;
//! client.send_msg(b"second")?;
//! let mut buf = [0u8; 64];
//! let m = server.recv_msg(&mut buf)?;
//! assert!(m.complete);
//! assert_eq!(&buf[..m.len], b"first"); // one message per read
//! # Ok::<(), std::io::Error>(())
//! ```

/// `std::io::Read` and `std::io::Write` for a named end and for a shared
/// reference to it, on top of its `recv_msg`/`send_msg`: byte semantics,
/// `Ok(0)` at the end of the pipe (`BrokenPipe`), and `WouldBlock`
/// (carrying `NoData`) when a nonblocking write took nothing. `flush` does
/// nothing: `flush_buffers` is the call that waits for the reader.
macro_rules! byte_io {
    ($end:ident) => {
        impl std::io::Read for &$end {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if buf.is_empty() {
                    return Ok(0);
                }
                match self.recv_msg(buf) {
                    Ok(m) => Ok(m.len),
                    Err(e) if crate::Error::kind_of(&e) == Some(crate::ErrorKind::BrokenPipe) => {
                        Ok(0)
                    }
                    Err(e) => Err(e),
                }
            }
        }

        impl std::io::Read for $end {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }
        }

        impl std::io::Write for &$end {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                match self.send_msg(buf)? {
                    0 if !buf.is_empty() => Err(std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        crate::Error::new(crate::ErrorKind::NoData),
                    )),
                    n => Ok(n),
                }
            }

            #[doc = concat!("Does nothing (see [`", stringify!($end), "::flush_buffers`]).")]
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for $end {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

pub(crate) mod client;
mod listener;
mod name;
mod options;
pub mod server;
mod status;
mod trust;
pub(crate) mod wire;

pub use crate::datapath::MsgRead;
pub use client::{call, wait_available, ClientOptions, NamedPipeClient};
pub use listener::PipeListener;
pub use name::{PipeName, MAX_NAME_UNITS};
pub use options::{
    Access, Connected, Credentials, Direction, Permissions, Security, ServerCredentials,
    WaitTimeout, REMOTE_MARKER_GID,
};
pub use server::{NamedPipeServer, ServerOptions, UNLIMITED_INSTANCES};
pub use status::{list, status, InstanceState, InstanceStatus, PipeStatus};

/// Engine errors met while setting up a connection.
pub(crate) fn conn_engine_error(e: shmpipe_engine::Error) -> std::io::Error {
    match e {
        shmpipe_engine::Error::Corrupt(_) | shmpipe_engine::Error::Incompatible(_) => {
            crate::Error::with_source(crate::ErrorKind::NoSystemResources, e).into()
        }
        e => crate::error::from_engine(e, crate::ErrorKind::BrokenPipe),
    }
}
