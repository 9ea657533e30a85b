//! The shmpipe engine: lock-free rings in shared memory, cross-process
//! wait/wake, and peer liveness.
//!
//! Layers, bottom up (each module's documentation explains its algorithm and
//! invariants; `docs/engine.md` ties them together):
//!
//! * [`sync`]: the seam between the algorithms and the memory they run on
//!   (production atomics and the shared futex, or loom's model).
//! * [`record`], [`layout`]: the shared format: record framing, the ring
//!   control block, the segment header.
//! * [`ring`]: the SPSC ring of variable-length records ([`Producer`],
//!   [`Consumer`]): zero-copy reserve/commit and read/release, plus copying
//!   reads and writes in byte-stream and message modes.
//! * [`wait`]: events (futex words) and the spin-then-park [`WaitPolicy`].
//! * [`cancel`]: cancelling a handle's blocked operations from another
//!   thread ([`wait::Canceller`]).
//! * [`lock`]: the admission lock that turns the ring into an MPSC (and
//!   multi-reader) ring and survives the death of its holder.
//! * [`liveness`]: whether the peer end is open anywhere (OFD locks) and
//!   whether a lock holder's process lives (process slots).
//! * [`segment`]: sealed, pre-allocated memfds mapped in every process.
//! * [`mod@channel`]: blocking [`Sender`] / [`Receiver`] ends over a segment.
//! * [`readiness`]: an eventfd per pending operation for event loops
//!   (tokio, mio, epoll), signalled by a per-process bridge thread.
//!
//! ```
//! let (mut tx, mut rx) = shmpipe_engine::channel(64 * 1024)?;
//! std::thread::spawn(move || tx.write(&[7u8; 100_000]).unwrap());
//! let mut buf = vec![0u8; 100_000];
//! let m = rx.read_message(&mut buf)?;
//! assert!(m.end && m.len == 100_000 && buf.iter().all(|&b| b == 7));
//! # Ok::<(), shmpipe_engine::Error>(())
//! ```
#![warn(missing_docs)]

pub mod cancel;
pub mod channel;
mod error;
pub mod heap;
pub mod layout;
pub mod liveness;
pub mod lock;
#[cfg(loom)]
pub mod loom_model;
#[cfg(not(loom))]
pub mod readiness;
pub mod record;
pub mod ring;
pub mod segment;
pub mod sync;
pub mod wait;
#[cfg(test)]
mod zero_copy_tests;

pub use channel::{channel, channel_with, Receiver, SendError, Sender};
pub use error::{Error, Result};
pub use heap::HeapRing;
pub use ring::{Consumer, DirectStorage, Grant, MessageRead, Producer, ReadGrant, RingStorage};
pub use segment::{Segment, SegmentRing};
pub use wait::WaitPolicy;
