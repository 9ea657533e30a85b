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

mod client;
mod listener;
mod name;
mod options;
pub mod server;
mod status;
mod trust;
pub(crate) mod wire;

pub use crate::conn::MsgRead;
pub use client::{call, wait_available, ClientOptions, NamedPipeClient};
pub use listener::PipeListener;
pub use name::{PipeName, MAX_NAME_UNITS};
pub use options::{
    Access, Connected, Credentials, Direction, Permissions, Security, ServerCredentials,
    WaitTimeout,
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
