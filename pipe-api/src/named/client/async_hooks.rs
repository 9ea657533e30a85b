//! What the async layer (`crate::tokio`) needs of a [`NamedPipeClient`]:
//! its connection for a nonblocking data operation, its access and modes.

use super::end::NamedPipeClient;
use super::err;
use crate::datapath::Conn;
use crate::error::ErrorKind;
use crate::info::PipeType;
use crate::named::options::MODE_MESSAGE_READ;
use std::io;

impl NamedPipeClient {
    /// A remote end's flush beyond its bridge (see `flush_buffers`), to
    /// run once the local flush returned.
    #[cfg(feature = "remote")]
    pub(crate) fn async_remote_flush(&self) -> Option<Box<dyn FnOnce() -> io::Result<()> + Send>> {
        let link = self.shared.remote.get()?.clone();
        let consumed = self.shared.conn.consumed_by_peer();
        Some(Box::new(move || link.flush(consumed)))
    }

    /// Runs `op` on the connection (`PipeNotConnected` once the server
    /// disconnected it).
    pub(crate) fn async_conn<T>(&self, op: impl FnOnce(&Conn) -> io::Result<T>) -> io::Result<T> {
        let c = &self.shared.conn;
        if c.is_disconnected() {
            return Err(err(ErrorKind::PipeNotConnected));
        }
        op(c)
    }

    /// `AccessDenied` unless the end may read (`read`) or write.
    pub(crate) fn async_need(&self, read: bool, write: bool) -> io::Result<()> {
        let a = self.shared.access;
        if (!read || a.read_data) && (!write || a.write_data) {
            Ok(())
        } else {
            Err(err(ErrorKind::AccessDenied))
        }
    }

    /// Whether reads are in message-read mode (never on a byte pipe).
    pub(crate) fn async_message_read(&self) -> bool {
        self.shared.info.pipe_type == PipeType::Message
            && self.shared.modes() as u8 & MODE_MESSAGE_READ != 0
    }

    /// The pipe's type.
    pub(crate) fn async_pipe_type(&self) -> PipeType {
        self.shared.info.pipe_type
    }
}
