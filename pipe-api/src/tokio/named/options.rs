//! The async constructors on the blocking option builders, so that a tokio
//! user starting from [`ServerOptions`] / [`ClientOptions`] (as with
//! `tokio::net::windows::named_pipe`) gets an async end without going
//! through the blocking one. `create` / `open` keep returning the blocking
//! ends: the `_async` suffix is what picks the tokio types.

use super::{NamedPipeClient, NamedPipeServer};
use crate::named::{ClientOptions, ServerOptions};
use std::io;

impl ServerOptions {
    /// Creates an instance of `name` with these options as an async server
    /// ([`crate::tokio::NamedPipeServer`]); must run inside a tokio runtime
    /// with the I/O driver. [`ServerOptions::create`] makes the blocking
    /// server instead.
    ///
    /// ```
    /// use shmpipe::named::ServerOptions;
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let name = format!(r"\\.\pipe\doc-create-async-{}", std::process::id());
    /// let server: shmpipe::tokio::NamedPipeServer = ServerOptions::new().create_async(&name)?;
    /// assert_eq!(server.get_ref().name(), name);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_async(&self, name: &str) -> io::Result<NamedPipeServer> {
        NamedPipeServer::create(self, name)
    }
}

impl ClientOptions {
    /// Opens `name` with these options as an async client
    /// ([`crate::tokio::NamedPipeClient`]); must run inside a tokio runtime
    /// with the I/O driver. [`ClientOptions::open`] makes the blocking
    /// client instead.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let name = format!(r"\\.\pipe\doc-open-async-{}", std::process::id());
    /// let _server = ServerOptions::new().create_async(&name)?;
    /// let client: shmpipe::tokio::NamedPipeClient = ClientOptions::new().open_async(&name)?;
    /// # drop(client);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open_async(&self, name: &str) -> io::Result<NamedPipeClient> {
        NamedPipeClient::open(self, name)
    }
}
