//! [`NamedPipeClient::announce_read`] and
//! [`NamedPipeClient::announce_write`], for [`crate::readiness`].

use super::end::NamedPipeClient;
use super::err;
use crate::error::ErrorKind;
use crate::readiness::Tickets;
use std::io;

impl NamedPipeClient {
    /// Announces a pending read for a
    /// [`Readiness`](crate::readiness::Readiness) (step 2 of the
    /// [protocol](crate::readiness#protocol)); follow it with a retry of
    /// the nonblocking read before arming. `PipeNotConnected` once the
    /// server disconnected this end; `AccessDenied` without read access.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::readiness::Readiness;
    /// use std::io::ErrorKind;
    /// let name = format!(r"\\.\pipe\doc-ready-c-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.set_nonblocking(true)?;
    /// let ready = Readiness::new()?;
    /// let tickets = client.announce_read()?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(client.recv_msg(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// ready.arm(tickets)?;
    /// server.send_msg(b"hi")?;
    /// let mut fds = [rustix::event::PollFd::new(&ready, rustix::event::PollFlags::IN)];
    /// rustix::event::poll(&mut fds, None)?;
    /// ready.clear()?;
    /// assert_eq!(client.recv_msg(&mut buf)?.len, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn announce_read(&self) -> io::Result<Tickets> {
        self.announce(true)
    }

    /// Announces a pending write (a full quota) for a
    /// [`Readiness`](crate::readiness::Readiness) (step 2 of the
    /// [protocol](crate::readiness#protocol)); follow it with a retry of
    /// the nonblocking write before arming.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-ready-cw-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// assert!(!client.announce_write()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn announce_write(&self) -> io::Result<Tickets> {
        self.announce(false)
    }

    fn announce(&self, read: bool) -> io::Result<Tickets> {
        let a = self.shared.access;
        if !(if read { a.read_data } else { a.write_data }) {
            return Err(err(ErrorKind::AccessDenied));
        }
        let c = &self.shared.conn;
        if c.is_disconnected() {
            return Err(err(ErrorKind::PipeNotConnected));
        }
        if read {
            c.announce_read()
        } else {
            c.announce_write()
        }
    }
}
