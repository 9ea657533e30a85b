//! A listener that keeps one instance listening and hands out connected
//! ones: the usual server loop in one call.

use super::options::Connected;
use super::server::{NamedPipeServer, ServerOptions};
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
///     move || -> std::io::Result<()> { ClientOptions::new().open(&name)?.write_all(b"hi") }
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
    next: NamedPipeServer,
}

impl PipeListener {
    /// Creates the first instance of `name` with `options`.
    pub fn bind(name: &str, options: ServerOptions) -> io::Result<PipeListener> {
        let next = options.create(name)?;
        Ok(PipeListener {
            name: name.to_owned(),
            options,
            next,
        })
    }

    /// Waits for a client, then returns its connected instance; a new
    /// instance is Listening before this returns, so no client meets
    /// `PipeBusy` between two accepts (unless max instances is reached).
    pub fn accept(&mut self) -> io::Result<NamedPipeServer> {
        match self.next.connect()? {
            Connected::New | Connected::Already => {}
        }
        let mut fresh = self.options.clone();
        fresh.first_instance(false);
        let replacement = fresh.create(&self.name)?;
        Ok(std::mem::replace(&mut self.next, replacement))
    }

    /// Accepts clients forever.
    pub fn incoming(&mut self) -> impl Iterator<Item = io::Result<NamedPipeServer>> + '_ {
        std::iter::repeat_with(move || self.accept())
    }
}
