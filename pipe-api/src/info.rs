//! What `get_info`, `get_state` and `peek` report (spec 4.8, 4.14, 4.15).

/// Which end of an instance a handle is (spec 4.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndKind {
    /// The server end (the read end of an anonymous pipe).
    Server,
    /// The client end (the write end of an anonymous pipe).
    Client,
}

/// How a pipe delimits data (spec 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PipeType {
    /// A byte stream: write boundaries are not kept.
    #[default]
    Byte,
    /// Each write is one message.
    Message,
}

/// How an end's reads consume data (spec 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReadMode {
    /// Reads take bytes across message boundaries.
    #[default]
    Byte,
    /// Each read takes from one message (`MoreData` when it does not fit).
    Message,
}

/// Whether an end's reads and writes wait (spec 2.3).
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
