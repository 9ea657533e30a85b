//! What `get_info`, `get_state` and `peek` report (spec 4.8, 4.14, 4.15).

/// Which end of an instance a handle is (spec 4.14).
///
/// ```
/// use shmpipe::EndKind;
/// let (reader, writer) = shmpipe::pipe()?;
/// assert_eq!(reader.info()?.end, EndKind::Server);
/// assert_eq!(writer.info()?.end, EndKind::Client);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndKind {
    /// The server end (the read end of an anonymous pipe).
    Server,
    /// The client end (the write end of an anonymous pipe).
    Client,
}

/// How a pipe delimits data (spec 2.2).
///
/// ```
/// use shmpipe::PipeType;
/// let (reader, _writer) = shmpipe::pipe()?;
/// assert_eq!(reader.info()?.pipe_type, PipeType::Byte); // anonymous pipes are byte pipes
/// assert_eq!(PipeType::default(), PipeType::Byte);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PipeType {
    /// A byte stream: write boundaries are not kept.
    #[default]
    Byte,
    /// Each write is one message.
    Message,
}

/// How an end's reads consume data (spec 2.2).
///
/// ```
/// use shmpipe::{Error, ErrorKind, ReadMode};
/// let (reader, _writer) = shmpipe::pipe()?;
/// let e = reader.set_state(Some(ReadMode::Message), None).unwrap_err();
/// assert_eq!(Error::kind_of(&e), Some(ErrorKind::InvalidParameter)); // byte pipe
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReadMode {
    /// Reads take bytes across message boundaries.
    #[default]
    Byte,
    /// Each read takes from one message (`MoreData` when it does not fit).
    Message,
}

/// Whether an end's reads and writes wait (spec 2.3).
///
/// ```
/// use shmpipe::WaitMode;
/// let (_reader, writer) = shmpipe::pipe()?;
/// writer.set_state(None, Some(WaitMode::Nonblocking))?;
/// assert!(writer.state()?.nonblocking);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WaitMode {
    /// Operations wait until they can finish.
    #[default]
    Blocking,
    /// Operations return at once.
    Nonblocking,
}

impl WaitMode {
    /// `Nonblocking` if `yes`.
    ///
    /// ```
    /// assert_eq!(shmpipe::WaitMode::from_nonblocking(true), shmpipe::WaitMode::Nonblocking);
    /// ```
    pub fn from_nonblocking(yes: bool) -> WaitMode {
        if yes {
            WaitMode::Nonblocking
        } else {
            WaitMode::Blocking
        }
    }
}

/// The result of `get_info` (spec 4.14). Sizes are in the server's
/// perspective: `out_size` is the server→client quota.
///
/// ```
/// use shmpipe::{EndKind, PipeBuilder, PipeInfo, PipeType};
/// let (reader, _writer) = PipeBuilder::new().buffer_size(8192).build()?;
/// let expected = PipeInfo {
///     end: EndKind::Server,
///     pipe_type: PipeType::Byte,
///     out_size: 8192,
///     in_size: 8192,
///     max_instances: 1,
/// };
/// assert_eq!(reader.info()?, expected);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeInfo {
    /// Which end this is.
    pub end: EndKind,
    /// The pipe's type.
    pub pipe_type: PipeType,
    /// Quota of server→client data, as requested.
    pub out_size: u32,
    /// Quota of client→server data, as requested.
    pub in_size: u32,
    /// Maximum instances; 255 means unlimited.
    pub max_instances: u32,
}

/// The result of `get_state` (spec 4.15).
///
/// ```
/// use shmpipe::PipeState;
/// let (reader, _writer) = shmpipe::pipe()?;
/// reader.set_nonblocking(true)?;
/// let expected = PipeState { nonblocking: true, message_read: false, current_instances: 1 };
/// assert_eq!(reader.state()?, expected);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeState {
    /// The end is in nonblocking mode.
    pub nonblocking: bool,
    /// The end is in message-read mode.
    pub message_read: bool,
    /// Instances of the pipe that exist.
    pub current_instances: u32,
}

/// The result of `peek` (spec 4.8).
///
/// ```
/// use shmpipe::named::{ClientOptions, ServerOptions};
/// use shmpipe::PipeType;
/// let name = format!(r"\\.\pipe\doc-peek-info-{}", std::process::id());
/// let server = ServerOptions::new().pipe_type(PipeType::Message).create(&name)?;
/// let client = ClientOptions::new().open(&name)?;
/// client.send_msg(b"hello")?;
/// client.send_msg(b"world")?;
/// let p = server.peek(Some(&mut [0u8; 2]))?;
/// assert_eq!((p.copied, p.total_available, p.left_in_message), (2, 10, 3));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeekInfo {
    /// Bytes copied into the buffer.
    pub copied: usize,
    /// Every unread byte queued for this end.
    pub total_available: u64,
    /// Unread bytes of the head message after the copied ones (0 on byte
    /// pipes).
    pub left_in_message: u64,
}
