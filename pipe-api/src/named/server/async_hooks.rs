//! What the async layer (`crate::tokio`) needs of a [`NamedPipeServer`]:
//! its connection for a nonblocking data operation, its access and modes,
//! and a `connect` that returns `Pending` instead of waiting on the
//! instance's `Condvar` (woken by [`Instance::wake_async`] where the
//! `Condvar` is notified).

use super::instance::{Instance, Phase};
use super::{err, lock, NamedPipeServer};
use crate::datapath::Conn;
use crate::error::ErrorKind;
use crate::info::PipeType;
use crate::named::options::{Connected, MODE_MESSAGE_READ};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Poll, Waker};

/// What one `connect` future remembers between polls: the epoch it
/// started in, whether it has waited (a client that attaches after that
/// is `New`, never `Already`), and where its waker is registered, which
/// its drop withdraws (a dropped future's waker is not kept until the next
/// client: a loop of `timeout(connect)` stays bounded).
#[derive(Default)]
pub(crate) struct ConnectProgress {
    epoch: Option<u64>,
    waited: bool,
    registered: Option<(Arc<Instance>, u64)>,
}

impl core::fmt::Debug for ConnectProgress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnectProgress")
            .field("epoch", &self.epoch)
            .field("waited", &self.waited)
            .finish_non_exhaustive()
    }
}

impl Drop for ConnectProgress {
    fn drop(&mut self) {
        if let Some((inst, key)) = self.registered.take() {
            inst.deregister_async(key);
        }
    }
}

impl NamedPipeServer {
    /// Runs `op` on the current connection (`PipeListening` /
    /// `PipeNotConnected` without one).
    pub(crate) fn async_conn<T>(&self, op: impl FnOnce(&Conn) -> io::Result<T>) -> io::Result<T> {
        self.with_conn(op)
    }

    /// `AccessDenied` unless the end may read (`read`) or write.
    pub(crate) fn async_need(&self, read: bool, write: bool) -> io::Result<()> {
        let a = self.access();
        self.need((!read || a.read_data) && (!write || a.write_data))
    }

    /// Whether reads are in message-read mode.
    pub(crate) fn async_message_read(&self) -> bool {
        self.modes() & MODE_MESSAGE_READ != 0
    }

    /// The pipe's type.
    pub(crate) fn async_pipe_type(&self) -> PipeType {
        self.name.attrs.pipe_type
    }

    /// Wakes pending async connects (after a state change made here).
    pub(crate) fn async_wake(&self) {
        self.inst.wake_async();
    }

    /// One poll of an async `connect`: the blocking [`NamedPipeServer::connect`]
    /// with its `Condvar` wait replaced by registering `waker` (under the
    /// state lock, so a client that attaches afterwards wakes it) and
    /// returning `Pending`. Dropping the future changes nothing: the
    /// instance stays Listening.
    pub(crate) fn poll_connect(
        &self,
        progress: &mut ConnectProgress,
        waker: &Waker,
    ) -> Poll<io::Result<Connected>> {
        let inst = &self.inst;
        let mut st = lock(&inst.st);
        let epoch = *progress.epoch.get_or_insert(st.epoch);
        loop {
            match st.phase {
                Phase::Connected => {
                    let conn = st
                        .conn
                        .clone()
                        .expect("connected instance has a connection");
                    return Poll::Ready(if conn.peer_alive() {
                        Ok(if progress.waited {
                            Connected::New
                        } else {
                            Connected::Already
                        })
                    } else {
                        Err(err(ErrorKind::NoData))
                    });
                }
                Phase::Disconnected if progress.waited || st.epoch != epoch => {
                    return Poll::Ready(Err(err(ErrorKind::PipeNotConnected)));
                }
                Phase::Disconnected => {
                    progress.waited = true;
                    st = self.listen_again(st);
                }
                Phase::Listening => {
                    if self.nonblocking() {
                        return Poll::Ready(Err(err(ErrorKind::PipeListening)));
                    }
                    progress.waited = true;
                    static KEYS: AtomicU64 = AtomicU64::new(1);
                    let (_, key) = progress
                        .registered
                        .get_or_insert_with(|| (Arc::clone(inst), KEYS.fetch_add(1, Relaxed)));
                    inst.register_async(*key, waker);
                    return Poll::Pending;
                }
            }
        }
    }
}
