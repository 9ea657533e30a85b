//! [`NamedPipeServer::announce_read`] and
//! [`NamedPipeServer::announce_write`], for [`crate::readiness`].

use super::NamedPipeServer;
use crate::datapath::Conn;
use crate::readiness::Tickets;
use std::io;

impl NamedPipeServer {
    /// Announces a pending read of the current connection for a
    /// [`Readiness`](crate::readiness::Readiness) (step 2 of the
    /// [protocol](crate::readiness#protocol)); follow it with a retry of
    /// the nonblocking read before arming. Errors as a read without a
    /// connection (`PipeListening`, `PipeNotConnected`) or read access
    /// (`AccessDenied`).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::readiness::Readiness;
    /// use std::io::ErrorKind;
    /// let name = format!(r"\\.\pipe\doc-ready-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// server.set_nonblocking(true)?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(server.recv_msg(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// let ready = Readiness::new()?;
    /// let tickets = server.announce_read()?;
    /// assert_eq!(server.recv_msg(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// ready.arm(tickets)?;
    /// client.send_msg(b"hi")?;
    /// let mut fds = [rustix::event::PollFd::new(&ready, rustix::event::PollFlags::IN)];
    /// rustix::event::poll(&mut fds, None)?;
    /// ready.clear()?;
    /// assert_eq!(server.recv_msg(&mut buf)?.len, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn announce_read(&self) -> io::Result<Tickets> {
        self.with_conn(Conn::announce_read)
    }

    /// Announces a pending write (a full quota) of the current connection
    /// for a [`Readiness`](crate::readiness::Readiness) (step 2 of the
    /// [protocol](crate::readiness#protocol)); follow it with a retry of
    /// the nonblocking write before arming.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-ready-w-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let _client = ClientOptions::new().open(&name)?;
    /// let tickets = server.announce_write()?;
    /// assert!(!tickets.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn announce_write(&self) -> io::Result<Tickets> {
        self.with_conn(Conn::announce_write)
    }
}
