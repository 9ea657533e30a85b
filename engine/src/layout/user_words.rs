//! The user words of a ring's control block ([`RingControl::user`]): the
//! one table of what each slot holds. The engine never reads them itself;
//! it only names the slots, so that every user in the layers above takes
//! the index from here and two layers can never pick the same slot by
//! accident. The meaning column is documentation for the pipe layer
//! (`shmpipe`), which owns every slot in use.
//!
//! All words start at 0 (a fresh segment is zeroed). Everything in them was
//! written by another process and is hostile input: a mode word is only
//! tested as flags, a position is bounded before it is used, a token is
//! checked with `liveness::token_slot` before it is believed.
//!
//! | index | slot ([`UserWord`]) | owner (code) | meaning | who writes | who reads | ordering |
//! |---|---|---|---|---|---|---|
//! | 0 | [`ReaderMode`](UserWord::ReaderMode) | `shmpipe` `anonymous::end` | the read end's modes (bit 1: nonblocking), shared by every duplicate (SEM-027) | any handle of the read end (`set_state`) | any handle of the read end | Relaxed load, `fetch_or`/`fetch_and` (a flag, orders nothing) |
//! | 1 | [`WriterMode`](UserWord::WriterMode) | `shmpipe` `anonymous::end` | the write end's modes, as above | any handle of the write end | any handle of the write end | Relaxed, as above |
//! | 2 | [`PendingRead`](UserWord::PendingRead) | `shmpipe` data path (`Conn`) | 1 + the buffer size of a read blocked on this ring, 0: none (spec 5.3: a pending read's share never counts against the quota) | the reader, around a blocking read | the writer, on its way to waiting for the quota | store Relaxed (set and cleared), load Acquire |
//! | 3 | [`PendingWrite`](UserWord::PendingWrite) | `shmpipe` data path (`pending`) | the pending-write mark: 1 + the claimed write's start position, 0: no claim | a writer that may pend (claim, release); a reader that found the claimant dead (clear) | readers (`withdrawal_limit`) | claim CAS 0→mark AcqRel (failure Relaxed); release and clear CAS mark→0 Release (failure Relaxed); loads Acquire |
//! | 4 | [`ClientModes`](UserWord::ClientModes) | `shmpipe` `named::client` | the named client end's modes (nonblocking, message-read), shared by its duplicates | any handle of the client end | any handle of the client end | Relaxed load, `fetch_or`/`fetch_and` |
//! | 5 | [`PendingOwner`](UserWord::PendingOwner) | `shmpipe` data path (`pending`) | the claimant's process token (`End::holder_token`), 0 while a claim is made or released | the claimant (store token Release after the end; store 0 Relaxed before releasing); a reader clearing a dead claim (CAS token→0 Relaxed) | readers | load Acquire |
//! | 6 | [`PendingEnd`](UserWord::PendingEnd) | `shmpipe` data path (`pending`) | end position of the claimed write | the claimant, before its token | readers, between the two loads of the mark | store Relaxed, load Relaxed (published by the token's Release) |
//! | 7 | — | — | free | — | — | — |
//!
//! In a named pipe the user words of the ring the end writes are used (or,
//! for an end that only reads, of the ring it reads): the server's ring
//! "out" (0) and the client's ring "in" (1) each have their own slots.
//!
//! ```
//! use shmpipe_engine::layout::{RingControl, UserWord};
//! use shmpipe_engine::sync::{Atomic64, Native};
//! use std::sync::atomic::Ordering::Relaxed;
//!
//! let control = RingControl::<Native>::new();
//! control.user_word(UserWord::ReaderMode).store(1, Relaxed);
//! assert_eq!(control.user.0[UserWord::ReaderMode.index()].load(Relaxed), 1);
//! ```

use super::RingControl;
use crate::sync::Platform;

/// A slot of [`RingControl::user`]; see the [module table](self) for what
/// each holds, who writes and reads it, and with which ordering.
///
/// ```
/// use shmpipe_engine::layout::UserWord;
/// assert_eq!(UserWord::PendingRead.index(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum UserWord {
    /// The anonymous read end's modes.
    ReaderMode = 0,
    /// The anonymous write end's modes.
    WriterMode = 1,
    /// 1 + the buffer size of a blocked read, or 0.
    PendingRead = 2,
    /// The pending-write mark: 1 + the claimed write's start, or 0.
    PendingWrite = 3,
    /// The named client end's modes.
    ClientModes = 4,
    /// The pending-write claimant's process token, or 0.
    PendingOwner = 5,
    /// Where the claimed pending write ends.
    PendingEnd = 6,
}

impl UserWord {
    /// The slot's index in [`RingControl::user`].
    ///
    /// ```
    /// use shmpipe_engine::layout::UserWord;
    /// assert_eq!(UserWord::ReaderMode.index(), 0);
    /// ```
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl<P: Platform> RingControl<P> {
    /// The user word `w` of this ring.
    ///
    /// ```
    /// use shmpipe_engine::layout::{RingControl, UserWord};
    /// use shmpipe_engine::sync::{Atomic64, Native};
    /// use std::sync::atomic::Ordering::Relaxed;
    ///
    /// let control = RingControl::<Native>::new();
    /// assert_eq!(control.user_word(UserWord::PendingEnd).load(Relaxed), 0);
    /// ```
    pub fn user_word(&self, w: UserWord) -> &P::U64 {
        &self.user.0[w.index()]
    }
}

// Every slot fits the array.
const _: () = assert!(UserWord::PendingEnd.index() < 8);
