//! Async pipe ends for tokio (feature `tokio`), shaped like tokio's own
//! Unix types and `tokio::net::windows::named_pipe`.
//!
//! **Start here:** the option builders' plain `create` / `open` make the
//! *blocking* ends. For async ones write
//! [`ServerOptions::create_async`](crate::named::ServerOptions::create_async)
//! and [`ClientOptions::open_async`](crate::named::ClientOptions::open_async)
//! (or [`NamedPipeServer::create`] / [`NamedPipeClient::open`]), and
//! [`pipe()`] or [`PipeReader::from_std`] for anonymous pipes.
//!
//! ```
//! use shmpipe::named::{ClientOptions, ServerOptions};
//! # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
//! let name = format!(r"\\.\pipe\doc-tokio-start-{}", std::process::id());
//! let server = ServerOptions::new().create_async(&name)?; // not `create`
//! let client = ClientOptions::new().open_async(&name)?; // not `open`
//! server.connect().await?;
//! client.try_write(b"hi")?;
//! # Ok::<(), std::io::Error>(())
//! # })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! * [`pipe()`], [`PipeReader`], [`PipeWriter`]: anonymous pipes, made
//!   async from the blocking ends ([`PipeReader::from_std`]) and back.
//! * [`NamedPipeServer`], [`NamedPipeClient`], [`wait_available`], [`call`]: named
//!   pipes (create, async `connect`, open, messages, `transact`).
//!
//! Every async end must be made inside a tokio runtime with the I/O driver
//! enabled (`enable_io`, or `enable_all`).
//!
//! # How it waits
//!
//! Each direction of an async end owns a readiness `eventfd`
//! (`shmpipe_engine::readiness::Readiness`) registered with tokio's
//! reactor. An operation tries without waiting; if it cannot progress, it
//! announces itself on the futex words a blocking call would sleep on,
//! tries once more, and arms this process's readiness bridge (a thread
//! waiting with `futex_waitv` on every armed word), which writes the
//! eventfd when the peer notifies. No system call is added to the peer's
//! fast path when nobody waits.
//!
//! # Cancellation (dropping a future)
//!
//! * A read copies into the caller's buffer and consumes in one step
//!   inside `poll`: dropping a pending read consumes nothing; the data goes
//!   to the next read.
//! * A write publishes what fits the quota when polled and completes with
//!   that count; it is pending only while nothing fits, and then nothing of
//!   it is published, so dropping it leaves nothing to withdraw.
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
//! let (mut reader, mut writer) = shmpipe::tokio::pipe()?;
//! let task = tokio::spawn(async move { writer.write_all(&[9; 20_000]).await });
//! let mut got = vec![0u8; 20_000];
//! reader.read_exact(&mut got).await?;
//! task.await??;
//! assert!(got.iter().all(|&b| b == 9));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod anonymous;
mod half;
mod named;

pub use anonymous::{pipe, PipeReader, PipeWriter};
pub use named::{call, wait_available, NamedPipeClient, NamedPipeServer};
