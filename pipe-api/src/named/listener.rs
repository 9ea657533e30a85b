//! A listener that keeps one instance listening and hands out connected
//! ones: the usual server loop in one call.

use super::options::Connected;
use super::server::{NamedPipeServer, ServerOptions};
use crate::{Error, ErrorKind};
use std::io;

/// Keeps one instance of a name Listening; [`PipeListener::accept`] waits for
/// a client on it, puts a fresh instance in its place and returns the
/// connected one.
///
/// ```
/// use shmpipe::named::{ClientOptions, PipeListener, ServerOptions};
/// use std::io::{Read, Write};
/// let name = format!(r"\\.\pipe\doc-listener-{}", std::process::id());
/// let mut listener = PipeListener::bind(&name, ServerOptions::new())?;
/// let client = std::thread::spawn({
///     let name = name.clone();
///     move || -> std::io::Result<_> {
///         let mut client = ClientOptions::new().open(&name)?;
///         client.write_all(b"hi")?;
///         Ok(client) // still open when `accept` looks: a client gone by then is `NoData`
///     }
/// });
/// let mut server = listener.accept()?;
/// let mut buf = [0u8; 2];
/// server.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hi");
/// client.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PipeListener {
    name: String,
    options: ServerOptions,
    /// The listening instance; `None` after handing out the last one
    /// allowed by max instances.
    next: Option<NamedPipeServer>,
}

impl PipeListener {
    /// Creates the first instance of `name` with `options`.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, PipeListener, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-listener-bind-{}", std::process::id());
    /// let _listener = PipeListener::bind(&name, ServerOptions::new())?;
    /// let client = ClientOptions::new().open(&name)?; // an instance is Listening
    /// assert_eq!(client.server_process_id()?, std::process::id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(name: &str, options: ServerOptions) -> io::Result<PipeListener> {
        let next = options.create(name)?;
        Ok(PipeListener {
            name: name.to_owned(),
            options,
            next: Some(next),
        })
    }

    /// Waits for a client, then returns its connected instance; a new
    /// instance is Listening before this returns, so no client meets
    /// `PipeBusy` between two accepts, unless max instances is reached: then
    /// the connected instance is still returned, and the next `accept`
    /// fails with `PipeBusy` until a handed-out instance is dropped. A client
    /// that opened and closed before `accept` looked is skipped (the
    /// instance is disconnected and listens again).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, PipeListener, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-listener-accept-{}", std::process::id());
    /// let mut listener = PipeListener::bind(&name, ServerOptions::new())?;
    /// let _first = ClientOptions::new().open(&name)?;
    /// let server = listener.accept()?; // at once: the client is already there
    /// let _second = ClientOptions::new().open(&name)?; // the fresh instance: no PipeBusy
    /// assert_eq!(server.state()?.current_instances, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&mut self) -> io::Result<NamedPipeServer> {
        let mut fresh = self.options.clone();
        fresh.first_instance(false);
        let server = match self.next.take() {
            Some(s) => s,
            // At max instances earlier: `PipeBusy` until one is dropped.
            None => fresh.create(&self.name)?,
        };
        loop {
            match server.connect() {
                Ok(Connected::New | Connected::Already) => break,
                // A client came and went before we looked: re-arm the
                // instance and wait for the next one.
                Err(e) if Error::kind_of(&e) == Some(ErrorKind::NoData) => server.disconnect()?,
                Err(e) => {
                    self.next = Some(server);
                    return Err(e);
                }
            }
        }
        // If no further instance can be created now (max instances, or
        // anything else), the connected client is handed out anyway and the
        // next accept tries again.
        self.next = fresh.create(&self.name).ok();
        Ok(server)
    }

    /// Accepts clients forever.
    ///
    /// ```
    /// use shmpipe::named::{wait_available, ClientOptions, PipeListener, ServerOptions};
    /// use shmpipe::named::WaitTimeout;
    /// use std::io::{Read, Write};
    /// let name = format!(r"\\.\pipe\doc-listener-incoming-{}", std::process::id());
    /// let mut listener = PipeListener::bind(&name, ServerOptions::new())?;
    /// let clients = std::thread::spawn(move || -> std::io::Result<Vec<_>> {
    ///     let mut open = Vec::new();
    ///     for msg in [b"a", b"b"] {
    ///         wait_available(&name, WaitTimeout::Forever)?;
    ///         let mut client = ClientOptions::new().open(&name)?;
    ///         client.write_all(msg)?;
    ///         open.push(client);
    ///     }
    ///     Ok(open)
    /// });
    /// let mut got = Vec::new();
    /// for server in listener.incoming().take(2) {
    ///     let mut buf = [0u8; 1];
    ///     (&server?).read_exact(&mut buf)?;
    ///     got.push(buf[0]);
    /// }
    /// assert_eq!(got, b"ab");
    /// clients.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&mut self) -> impl Iterator<Item = io::Result<NamedPipeServer>> + '_ {
        std::iter::repeat_with(move || self.accept())
    }
}
