//! [`PipeBuilder`]: the options of a new anonymous pipe, and `build`, which
//! creates the pipe's one ring (sized from the quota by
//! `ring_capacity`) and wraps its two ends.

use super::end::{AnonEnd, Side};
use super::{PipeReader, PipeWriter, DEFAULT_BUFFER_SIZE, KIND_ANONYMOUS};
use crate::error::{from_engine, ErrorKind};
use crate::quota::ring_capacity;
use shmpipe_engine::WaitPolicy;
use std::io;
use std::sync::Arc;

/// Options for creating an anonymous pipe.
///
/// ```
/// let (reader, writer) = shmpipe::PipeBuilder::new()
///     .buffer_size(64 * 1024)
///     .inheritable(true)
///     .build()?;
/// assert!(writer.is_inheritable());
/// assert_eq!(reader.info()?.out_size, 64 * 1024);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PipeBuilder {
    size: u32,
    inheritable: bool,
    policy: Option<WaitPolicy>,
}

impl Default for PipeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PipeBuilder {
    /// Default options: buffer size 4096, not inheritable.
    ///
    /// ```
    /// let (_reader, writer) = shmpipe::PipeBuilder::new().build()?;
    /// assert!(!writer.is_inheritable());
    /// assert_eq!(writer.info()?.out_size, 4096);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        PipeBuilder {
            size: 0,
            inheritable: false,
            policy: None,
        }
    }

    /// The buffer size hint: the write quota (spec 2.4). 0 means 4096.
    ///
    /// ```
    /// let (_reader, mut writer) = shmpipe::PipeBuilder::new().buffer_size(100).build()?;
    /// writer.set_nonblocking(true)?;
    /// assert_eq!(writer.try_write(&[7; 100])?, 100);
    /// assert_eq!(writer.try_write(&[7; 1])?, 0); // 100 bytes unread: the quota is full
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn buffer_size(&mut self, size: u32) -> &mut Self {
        self.size = size;
        self
    }

    /// Whether both ends may be handed to child processes
    /// ([`CommandExt::inherit_end`](crate::CommandExt::inherit_end)).
    ///
    /// ```
    /// let (reader, writer) = shmpipe::PipeBuilder::new().inheritable(true).build()?;
    /// assert!(reader.is_inheritable() && writer.is_inheritable());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inheritable(&mut self, yes: bool) -> &mut Self {
        self.inheritable = yes;
        self
    }

    /// How blocking operations wait (default: spin briefly, then park).
    ///
    /// ```
    /// use shmpipe::{PipeBuilder, WaitPolicy};
    /// use std::io::{Read, Write};
    /// let (mut reader, mut writer) = PipeBuilder::new().wait_policy(WaitPolicy::spin()).build()?;
    /// writer.write_all(b"spun")?;
    /// let mut buf = [0u8; 4];
    /// reader.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"spun");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_policy(&mut self, policy: WaitPolicy) -> &mut Self {
        self.policy = Some(policy);
        self
    }

    /// Creates the pipe.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut reader, mut writer) = shmpipe::PipeBuilder::new().build()?;
    /// writer.write_all(b"ok")?;
    /// let mut buf = [0u8; 2];
    /// reader.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"ok");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(&self) -> io::Result<(PipeReader, PipeWriter)> {
        let quota = if self.size == 0 {
            DEFAULT_BUFFER_SIZE
        } else {
            self.size
        };
        let mut user = [0u64; 8];
        user[0] = u64::from(quota);
        let (tx, rx) = shmpipe_engine::channel_with(ring_capacity(quota), KIND_ANONYMOUS, user)
            .map_err(|e| from_engine(e, ErrorKind::BrokenPipe))?;
        let (wend, rend) = (Arc::clone(tx.end()), Arc::clone(rx.end()));
        drop((tx, rx));
        Ok((
            PipeReader(AnonEnd::new(
                rend,
                Side::Reader,
                quota,
                self.inheritable,
                self.policy,
            )?),
            PipeWriter(AnonEnd::new(
                wend,
                Side::Writer,
                quota,
                self.inheritable,
                self.policy,
            )?),
        ))
    }
}
