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
//! Slots 0-7 are on the writing side's line (`user[0]`), slots 8-15 on the
//! reading side's (`user[1]`): the reader stores its pending-read
//! advertisement around every blocking read, and the writer reads its mode
//! word on every write, so the two must not share a line (they would bounce
//! it between the two processes on every operation). A slot goes on the line
//! of the side that touches it on its fast path; words the other side reads
//! only on a slow path (a writer about to wait reads the advertisement) or
//! both sides touch may go on either.
//!
//! | index | slot ([`UserWord`]) | owner (code) | meaning | who writes | who reads | ordering |
//! |---|---|---|---|---|---|---|
//! | 1 | [`WriterMode`](UserWord::WriterMode) | `shmpipe` `anonymous::end` | the write end's modes (bit 1: nonblocking), shared by every duplicate (SEM-027) | any handle of the write end (`set_state`) | any handle of the write end | Relaxed load, `fetch_or`/`fetch_and` (a flag, orders nothing) |
//! | 4 | [`ClientModes`](UserWord::ClientModes) | `shmpipe` `named::client` | the named client end's modes (nonblocking, message-read), shared by its duplicates; in the ring the client writes | any handle of the client end | any handle of the client end | Relaxed load, `fetch_or`/`fetch_and` |
//! | 0, 2, 3, 5, 6, 7 | pending claims 0 and 1 ([`PENDING_CLAIMS`]) | `shmpipe` data path (`pending`) | two of the four pending-write claims, see below | | | |
//! | 8 | [`ReaderMode`](UserWord::ReaderMode) | `shmpipe` `anonymous::end` | the read end's modes, as `WriterMode` | any handle of the read end | any handle of the read end | Relaxed, as above |
//! | 9 | [`PendingRead`](UserWord::PendingRead) | `shmpipe` data path (`Conn`) | 1 + the buffer size of a read blocked on this ring, 0: none (spec 5.3: a pending read's share never counts against the quota) | the reader, around a blocking read | the writer, on its way to waiting for the quota | store Relaxed (set and cleared), load Acquire |
//! | 10-15 | pending claims 2 and 3 | `shmpipe` data path (`pending`) | the other two claims, see below | | | |
//!
//! **Pending-write claims.** [`PENDING_CLAIMS`] claims, each of three
//! words: `mark`, `owner` and `end` are slots 3, 5, 6 for claim 0; 0, 2, 7
//! for claim 1; 10, 11, 12 for claim 2; 13, 14, 15 for claim 3. Claims go
//! wherever words were free: they are written only by writers about to
//! pend (a slow path) and read by the reader on every read, which only
//! shares the lines.
//!
//! | word | meaning | who writes | who reads | ordering |
//! |---|---|---|---|---|
//! | mark | 1 + the claimed write's start position, 0: the claim is free | a writer that may pend (claim, release); a reader or writer that found the claim dead, withdrawn and spent (clear) | readers (`withdrawal_limit`), writers looking for a free claim | claim CAS 0→mark AcqRel (failure Relaxed); release and clear CAS mark→0 Release (failure Relaxed); loads Acquire |
//! | owner | the claimant's process token (`End::holder_token`), 0 while a claim is made or released, 1 (`WITHDRAWN`, names no slot) once the claimant's write was cancelled | the claimant (store token Release after the end; store 0 Relaxed before releasing; on a cancel, store the published end, then 1 Release, and keep the claim); a clearer (CAS token→0 Relaxed) | readers | load Acquire |
//! | end | end position of the claimed write (of its published part, once withdrawn) | the claimant, before its token | readers, between the two loads of the mark | store Relaxed, load Relaxed (published by the token's Release) |
//!
//! Each access goes through a method of [`RingControl`] that carries its
//! ordering: [`modes`](RingControl::modes),
//! [`set_modes`](RingControl::set_modes),
//! [`clear_modes`](RingControl::clear_modes) for the mode words;
//! [`advertise_read`](RingControl::advertise_read),
//! [`withdraw_read`](RingControl::withdraw_read),
//! [`advertised_read`](RingControl::advertised_read) for the pending read;
//! [`claim_pending_write`](RingControl::claim_pending_write),
//! [`release_pending_write`](RingControl::release_pending_write),
//! [`withdraw_pending_write`](RingControl::withdraw_pending_write),
//! [`clear_pending_write`](RingControl::clear_pending_write) and the three
//! loads [`pending_write_mark`](RingControl::pending_write_mark),
//! [`pending_write_owner`](RingControl::pending_write_owner),
//! [`pending_write_end`](RingControl::pending_write_end) for the
//! pending-write mark. (The reader's protocol around those loads, with its
//! `SeqCst` fence and the kernel's answer, is the pipe layer's:
//! `shmpipe`'s `datapath::pending`.)
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
//! // The reader's words are on the second line.
//! assert_eq!(UserWord::ReaderMode.index(), 8);
//! assert_eq!(control.user[1].0[0].load(Relaxed), 1);
//! ```

use super::RingControl;
use crate::sync::{Atomic64, Native, Platform};
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// A slot of [`RingControl::user`]; see the [module table](self) for what
/// each holds, who writes and reads it, and with which ordering.
///
/// ```
/// use shmpipe_engine::layout::UserWord;
/// assert_eq!(UserWord::PendingRead.index(), 9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum UserWord {
    /// The anonymous read end's modes (the reader's line).
    ReaderMode = 8,
    /// The anonymous write end's modes.
    WriterMode = 1,
    /// 1 + the buffer size of a blocked read, or 0 (the reader's line).
    PendingRead = 9,
    /// The named client end's modes.
    ClientModes = 4,
}

impl UserWord {
    /// The slot's index in [`RingControl::user`], counting across both
    /// lines: slot `i` is `user[i / 8].0[i % 8]`.
    ///
    /// ```
    /// use shmpipe_engine::layout::UserWord;
    /// assert_eq!(UserWord::WriterMode.index(), 1);
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
    /// assert_eq!(control.user_word(UserWord::PendingRead).load(Relaxed), 0);
    /// ```
    pub fn user_word(&self, w: UserWord) -> &P::U64 {
        let i = w.index();
        &self.user[i / 8].0[i % 8]
    }
}

/// The user words with the orderings of the table: every access of the
/// layer above goes through one of these (the meaning is the pipe layer's;
/// the engine only keeps the orderings in one place).
impl RingControl<Native> {
    /// The mode flags in mode word `w` ([`UserWord::ReaderMode`],
    /// [`UserWord::WriterMode`], [`UserWord::ClientModes`]); Relaxed: a
    /// flag orders nothing.
    ///
    /// ```
    /// use shmpipe_engine::layout::{RingControl, UserWord};
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// c.set_modes(UserWord::ClientModes, 0b11);
    /// c.clear_modes(UserWord::ClientModes, 0b01);
    /// assert_eq!(c.modes(UserWord::ClientModes), 0b10);
    /// ```
    pub fn modes(&self, w: UserWord) -> u64 {
        self.user_word(w).load(Relaxed)
    }

    /// Sets `bits` in mode word `w` (`fetch_or`, Relaxed); returns the
    /// previous flags.
    ///
    /// ```
    /// use shmpipe_engine::layout::{RingControl, UserWord};
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!(c.set_modes(UserWord::ReaderMode, 1), 0);
    /// ```
    pub fn set_modes(&self, w: UserWord, bits: u64) -> u64 {
        self.user_word(w).fetch_or(bits, Relaxed)
    }

    /// Clears `bits` in mode word `w` (`fetch_and`, Relaxed); returns the
    /// previous flags.
    ///
    /// ```
    /// use shmpipe_engine::layout::{RingControl, UserWord};
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// c.set_modes(UserWord::WriterMode, 1);
    /// assert_eq!(c.clear_modes(UserWord::WriterMode, 1), 1);
    /// assert_eq!(c.modes(UserWord::WriterMode), 0);
    /// ```
    pub fn clear_modes(&self, w: UserWord, bits: u64) -> u64 {
        self.user_word(w).fetch_and(!bits, Relaxed)
    }
}

impl<P: Platform> RingControl<P> {
    /// A read of up to `len` bytes is blocked on this ring
    /// ([`UserWord::PendingRead`] = `len + 1`, Relaxed).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// c.advertise_read(100);
    /// assert_eq!(c.advertised_read(), 100);
    /// c.withdraw_read();
    /// assert_eq!(c.advertised_read(), 0);
    /// ```
    pub fn advertise_read(&self, len: u64) {
        self.user_word(UserWord::PendingRead)
            .store(len.saturating_add(1), Relaxed);
    }

    /// No read is blocked any more ([`UserWord::PendingRead`] = 0, Relaxed).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// c.withdraw_read();
    /// assert_eq!(c.advertised_read(), 0);
    /// ```
    pub fn withdraw_read(&self) {
        self.user_word(UserWord::PendingRead).store(0, Relaxed);
    }

    /// The buffer size a blocked reader advertised, 0 for none (Acquire;
    /// unbounded hostile input: the caller bounds it).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!(c.advertised_read(), 0);
    /// ```
    pub fn advertised_read(&self) -> u64 {
        self.user_word(UserWord::PendingRead)
            .load(Acquire)
            .saturating_sub(1)
    }

    /// The word `field` (0: mark, 1: owner, 2: end) of pending claim
    /// `slot` (`slot < PENDING_CLAIMS`; see the module docs).
    fn claim_word(&self, slot: usize, field: usize) -> &P::U64 {
        let i = CLAIM_WORDS[slot][field];
        &self.user[i / 8].0[i % 8]
    }

    /// Claims a free pending claim for the write `start..end` of the
    /// process with token `token`, trying the claims in order: CAS its mark
    /// 0 → `start + 1` (AcqRel, failure Relaxed), then store the end
    /// (Relaxed) and then the token (Release). Returns the claim and its
    /// mark, for [`release_pending_write`]; `None` if all
    /// [`PENDING_CLAIMS`] are taken.
    ///
    /// [`release_pending_write`]: RingControl::release_pending_write
    ///
    /// ```
    /// use shmpipe_engine::layout::{RingControl, PENDING_CLAIMS};
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// let (slot, mark) = c.claim_pending_write(7, 10, 20).unwrap();
    /// assert_eq!(
    ///     (c.pending_write_mark(slot), c.pending_write_owner(slot), c.pending_write_end(slot)),
    ///     (11, 7, 20)
    /// );
    /// for i in 1..PENDING_CLAIMS as u64 {
    ///     assert!(c.claim_pending_write(8, 20 * i, 20 * i + 20).is_some());
    /// }
    /// assert!(c.claim_pending_write(9, 100, 120).is_none()); // all taken
    /// c.release_pending_write(slot, mark);
    /// assert_eq!((c.pending_write_mark(slot), c.pending_write_owner(slot)), (0, 0));
    /// ```
    pub fn claim_pending_write(&self, token: u64, start: u64, end: u64) -> Option<(usize, u64)> {
        let mark = start.checked_add(1)?;
        let slot = (0..PENDING_CLAIMS).find(|&slot| {
            self.claim_word(slot, MARK)
                .compare_exchange(0, mark, AcqRel, Relaxed)
                .is_ok()
        })?;
        self.claim_word(slot, END).store(end, Relaxed);
        self.claim_word(slot, OWNER).store(token, Release);
        Some((slot, mark))
    }

    /// The claimant releases its claim (`slot`, `mark`): token to 0
    /// (Relaxed), then CAS the mark `mark` → 0 (Release, failure Relaxed;
    /// it fails only if the claim was cleared as dead or the word scribbled
    /// on).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// let (slot, mark) = c.claim_pending_write(1, 0, 5).unwrap();
    /// c.release_pending_write(slot, mark);
    /// assert_eq!(c.claim_pending_write(2, 5, 9).unwrap().0, slot);
    /// ```
    pub fn release_pending_write(&self, slot: usize, mark: u64) {
        self.claim_word(slot, OWNER).store(0, Relaxed);
        let _ = self
            .claim_word(slot, MARK)
            .compare_exchange(mark, 0, Release, Relaxed);
    }

    /// The claimant's write was cancelled: claim `slot` stays, as a
    /// withdrawal ending at `end` (what the write published), under the
    /// token `withdrawn` (a value that names no process slot). The end
    /// first (Relaxed), then the token (Release), as a claim is made: a
    /// reader whose Acquire load sees the token sees this end.
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// let (slot, mark) = c.claim_pending_write(7, 10, 20).unwrap();
    /// c.withdraw_pending_write(slot, 1, 14);
    /// assert_eq!(
    ///     (c.pending_write_mark(slot), c.pending_write_owner(slot), c.pending_write_end(slot)),
    ///     (mark, 1, 14)
    /// );
    /// ```
    pub fn withdraw_pending_write(&self, slot: usize, withdrawn: u64, end: u64) {
        self.claim_word(slot, END).store(end, Relaxed);
        self.claim_word(slot, OWNER).store(withdrawn, Release);
    }

    /// Clears claim `slot` (`mark`, `owner`), found dead or withdrawn and
    /// passed: CAS the token `owner` → 0 (Relaxed), then, only if that
    /// succeeded, the mark `mark` → 0 (Release, failure Relaxed). Another
    /// clearer may have cleared it and a new claimant taken the claim
    /// since, possibly at the same mark (a write that published nothing
    /// leaves the position where it was): its token differs, so this
    /// clear leaves it alone.
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// let (slot, mark) = c.claim_pending_write(3, 0, 5).unwrap();
    /// c.clear_pending_write(slot, mark, 3);
    /// assert_eq!((c.pending_write_mark(slot), c.pending_write_owner(slot)), (0, 0));
    /// // A stale clear of a new claim at the same mark leaves it alone.
    /// let (slot2, mark2) = c.claim_pending_write(4, 0, 5).unwrap();
    /// assert_eq!((slot2, mark2), (slot, mark));
    /// c.clear_pending_write(slot, mark, 3);
    /// assert_eq!((c.pending_write_mark(slot), c.pending_write_owner(slot)), (mark, 4));
    /// ```
    pub fn clear_pending_write(&self, slot: usize, mark: u64, owner: u64) {
        let cleared = self
            .claim_word(slot, OWNER)
            .compare_exchange(owner, 0, Relaxed, Relaxed)
            .is_ok();
        if cleared {
            let _ = self
                .claim_word(slot, MARK)
                .compare_exchange(mark, 0, Release, Relaxed);
        }
    }

    /// Claim `slot`'s mark: 1 + the claimed write's start, 0 for none
    /// (Acquire).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!(c.pending_write_mark(0), 0);
    /// ```
    pub fn pending_write_mark(&self, slot: usize) -> u64 {
        self.claim_word(slot, MARK).load(Acquire)
    }

    /// Claim `slot`'s process token, 0 while a claim is made or released
    /// (Acquire).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!(c.pending_write_owner(3), 0);
    /// ```
    pub fn pending_write_owner(&self, slot: usize) -> u64 {
        self.claim_word(slot, OWNER).load(Acquire)
    }

    /// Where claim `slot`'s write ends (Relaxed: read between two loads of
    /// the mark and published by the token's Release; unchecked shared
    /// data).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!(c.pending_write_end(1), 0);
    /// ```
    pub fn pending_write_end(&self, slot: usize) -> u64 {
        self.claim_word(slot, END).load(Relaxed)
    }
}

/// How many writes may be claimed as pending on one ring at once (spec
/// 5.2, 7.4, 7.5): a further write that may pend waits for a claim before
/// publishing anything (the pipe layer's `wait_for_mark`).
pub const PENDING_CLAIMS: usize = 4;
const MARK: usize = 0;
const OWNER: usize = 1;
const END: usize = 2;
/// The user slots of each claim's mark, owner and end (module docs).
const CLAIM_WORDS: [[usize; 3]; PENDING_CLAIMS] =
    [[3, 5, 6], [0, 2, 7], [10, 11, 12], [13, 14, 15]];

// Every slot fits its line: the writer's words on line 0, the reader's on
// line 1.
const _: () = {
    assert!(UserWord::WriterMode.index() < 8);
    assert!(UserWord::ClientModes.index() < 8);
    assert!(UserWord::ReaderMode.index() / 8 == 1);
    assert!(UserWord::PendingRead.index() / 8 == 1);
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader's hot words and the writer's are 128 bytes apart at least
    /// (x86 fetches lines in pairs): a reader advertising a blocking read
    /// does not take the line holding the writer's mode word. (Before
    /// layout version 4 they shared one line.)
    #[test]
    fn the_two_sides_words_are_on_separate_line_pairs() {
        let c = RingControl::<Native>::new();
        let block = |w: UserWord| (c.user_word(w) as *const _ as usize) / 128;
        let reader = [UserWord::ReaderMode, UserWord::PendingRead];
        let writer = [UserWord::WriterMode, UserWord::ClientModes];
        for r in reader {
            for w in writer {
                assert_ne!(block(r), block(w), "{r:?} and {w:?} share a line pair");
            }
        }
        // And neither shares the producer's or the consumer's line.
        let producer = (&c.producer as *const _ as usize) / 128;
        let consumer = (&c.consumer as *const _ as usize) / 128;
        for w in reader.into_iter().chain(writer) {
            assert!(block(w) != producer && block(w) != consumer);
        }
    }

    /// Every user slot has one job: the claims' words and the named slots
    /// are all different, and all 16 are in use.
    #[test]
    fn claims_and_named_slots_never_overlap() {
        let mut used = [false; 16];
        let named = [
            UserWord::ReaderMode,
            UserWord::WriterMode,
            UserWord::PendingRead,
            UserWord::ClientModes,
        ];
        for i in named
            .iter()
            .map(|w| w.index())
            .chain(CLAIM_WORDS.iter().flatten().copied())
        {
            assert!(!used[i], "slot {i} has two jobs");
            used[i] = true;
        }
        assert!(used.iter().all(|&u| u));
    }
}
