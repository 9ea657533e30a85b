//! The pending-write mark: what a reader needs to make the unread rest of a
//! dead process's pending write disappear (spec 5.2, 7.5, SEM-117).
//!
//! A write that has not completed (it waits for the quota, or is still
//! publishing a write larger than the ring) is *pending*. If its process
//! dies, the reader may keep what it already read
//! of that write, but the rest must vanish, while every other write,
//! including later ones from duplicates of the same end in live processes,
//! is delivered. So the reader must know where the write lies and whether
//! *its process* is still alive.
//!
//! Three user words of the ring hold one claim at a time:
//! [`UserWord::PendingWrite`] = 1 + the write's start position (0: no
//! claim), [`UserWord::PendingEnd`] = its end position, and
//! [`UserWord::PendingOwner`] = the
//! claimant's *process token* (0 while a claim is being made or released).
//! A write that may pend claims the mark under the writer lock, *before*
//! any of its bytes is published (`Sender::send_marked`): a kill right
//! after the first byte becomes visible must already find the claim, or the
//! rest would stay readable. A write that may pend while another holds the
//! mark is not marked (if its process dies, its rest stays readable: the
//! safe side of the rule). A claimant killed while it was still publishing
//! leaves a claim whose end lies past what was published: nothing is
//! dropped for it (the reader gets the published part of a cut message,
//! see `Conn::read_msg`).
//!
//! **One liveness mechanism.** The claimant is named exactly as an
//! admission-lock holder is: by its process slot on the segment
//! ([`End::holder_token`], engine `liveness::ProcessSlot`), an exclusive
//! OFD lock on a slot byte of the memfd, taken through an open file
//! description private to the process, which the kernel drops when the
//! process dies (SIGKILL included). A reader that finds the slot unlocked
//! ([`slot_held`], `F_OFD_GETLK`) knows the claimant's process is gone. No
//! pid is involved, so a claimant in another pid namespace is judged right;
//! two live processes never share a slot; a child forked without exec draws
//! its own slot (the engine's fork handler closes its copy of the parent's
//! description), so neither can keep the other's dead claim alive nor be
//! mistaken for it. Every writer already has the slot (each write's
//! admission lock names it): pending writes cost no descriptor.
//!
//! A slot names a process, not a write, and that is enough: a claim lives
//! only as long as its write is pending in the claimant process. The claim
//! is a [`PendingMark`] owned by the writing call, released when the write
//! completes or fails, and on unwind (its `Drop`); so a claim still in
//! place whose process is alive belongs to a write still pending, and one
//! whose process is dead belongs to a write nobody will finish. (A fork
//! while another thread of the process holds a claim leaves in the child a
//! copy of that `PendingMark` which is never dropped, the thread not
//! existing there; the claim names the parent's token, and only the
//! parent's end of the write, or death, ends it.)
//!
//! The withdrawal happens in the next read (under the reader's lock, which
//! it needs to drop bytes); a `peek` before it still shows the dead write's
//! rest.
//!
//! Ordering (the engine's methods carry it; see the table of user words in
//! `shmpipe_engine::layout::user_words`): a claimant CASes the mark
//! (AcqRel), then stores the end and then its token (Release); it releases
//! by zeroing the token, then CASing the mark back to 0 (Release). A
//! reader loads the mark, the token (Acquire) and the end, then the mark
//! again: positions only grow, so an unchanged mark is the same claim, and
//! the token it read is that claim's (an older claim's token was zeroed
//! before its mark was released, which happens-before the newer claim). A
//! slot found unlocked is only a death if the claim is *still* in place
//! afterwards: a live claimant releases its claim before its slot can go
//! (the slot outlives every write of the end), so the reader looks at the
//! mark and the token once more after the kernel's answer.
//!
//! **Cancelled writes (spec 7.4, SEM-145).** A claimant whose write is
//! cancelled ([`PendingMark::withdraw`]) does not release its claim: it
//! sets the claim's end to what it published and its token to
//! [`WITHDRAWN`], a value that names no slot. A reader takes such a claim
//! as it takes a dead one, without asking the kernel: it reads up to the
//! claim's start, then drops the unread rest and goes on with what
//! follows (a message-read reader that had part of the message gets
//! `OperationAborted` for its rest first). One claim at a time: a cancelled
//! write that held no claim (another pending write held the mark) leaves
//! its rest readable, as a dead one does. A flush counts withdrawn bytes as
//! read ([`unread_all_withdrawn`]).
//!
//! Everything read here is hostile input: a nonsense end drops nothing; a
//! word that names no slot ([`token_slot`] bounds it) is no claimant at all,
//! so it is never judged dead. A claimant killed between its CAS and its
//! token store leaves the mark taken with token 0 for good: later pending
//! writes go unmarked, again the safe side.

use crate::error::{Error, ErrorKind};
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::RingControl;
use shmpipe_engine::liveness::{slot_held, token_slot};
use shmpipe_engine::sync::Native;
use shmpipe_engine::{Receiver, RingStorage};
use std::io;
use std::sync::atomic::fence;
use std::sync::atomic::Ordering::SeqCst;

type Control = RingControl<Native>;

/// A claim this process holds on the mark, released when dropped: when the
/// write completes, fails, or the wait it covers unwinds. That is what lets
/// a process token stand for the write: a claim left behind by a live
/// process would look alive until the process died, and then a write that
/// was long over would be withdrawn.
pub(crate) struct PendingMark<'a> {
    control: &'a Control,
    mark: u64,
}

impl<'a> PendingMark<'a> {
    /// Claims the mark for the write `start..end` of the process whose
    /// token ([`End::holder_token`]) is `token`, if no other write holds it.
    pub(crate) fn claim(
        control: &'a Control,
        token: u64,
        start: u64,
        end: u64,
    ) -> Option<PendingMark<'a>> {
        let mark = control.claim_pending_write(token, start, end)?;
        Some(PendingMark { control, mark })
    }
}

/// The token of a withdrawn claim: the low half (1) names no process slot
/// (`liveness::token_slot`), so no live claimant can hold it.
pub(crate) const WITHDRAWN: u64 = 1;

impl PendingMark<'_> {
    /// The write was cancelled with `published` of its bytes published:
    /// the claim stays, as a withdrawal of `start..start + published` for
    /// the reader to skip (see the module docs), and the peer's waiters are
    /// woken (a flush the withdrawal completes, a reader).
    pub(crate) fn withdraw(self, published: u64) {
        let start = self.mark - 1;
        self.control
            .withdraw_pending_write(WITHDRAWN, start.saturating_add(published));
        let control = self.control;
        core::mem::forget(self);
        let ev = &control.events.0;
        ev.writable.notify();
        ev.readable.notify();
    }
}

/// Whether every byte the peer has not read of what this end wrote up to
/// payload position `written` lies in a withdrawn write (spec 7.4: a flush
/// that only waits for withdrawn bytes succeeds, SEM-121).
pub(crate) fn unread_all_withdrawn(control: &Control, written: u64) -> bool {
    let mark = control.pending_write_mark();
    if mark == 0 || control.pending_write_owner() != WITHDRAWN {
        return false;
    }
    let end = control.pending_write_end();
    if control.pending_write_mark() != mark {
        return false;
    }
    mark - 1 <= control.consumed() && end >= written
}

/// Unread bytes of a withdrawn write: they will never be read, so they no
/// longer count against the quota of the writes behind them (spec 7.4:
/// "withdrawing may complete later pending writes"). Bounded by what was
/// written: hostile words cannot make a write skip more than the queue.
pub(crate) fn withdrawn_unread(control: &Control) -> u64 {
    let mark = control.pending_write_mark();
    if mark == 0 || control.pending_write_owner() != WITHDRAWN {
        return 0;
    }
    let end = control.pending_write_end();
    if control.pending_write_mark() != mark {
        return 0;
    }
    let (consumed, written) = (control.consumed(), control.written());
    end.min(written).saturating_sub(consumed.max(mark - 1))
}

impl Drop for PendingMark<'_> {
    /// The write is no longer pending.
    fn drop(&mut self) {
        // The mark's CAS fails only if a reader already judged the claim
        // dead, which this process's live slot rules out, or if the peer
        // scribbled on the word.
        self.control.release_pending_write(self.mark);
    }
}

/// The claimed write, if there is one and its process is gone (the reading
/// side's look at the mark). Asks the kernel only while a claim is in place.
pub(crate) fn dead_claim(control: &Control, end: &End) -> Option<DeadClaim> {
    let mark = control.pending_write_mark();
    if mark == 0 {
        return None;
    }
    let owner = control.pending_write_owner();
    let write_end = control.pending_write_end();
    if control.pending_write_mark() != mark {
        return None; // released or re-claimed meanwhile: look next time
    }
    if owner == WITHDRAWN {
        // A cancelled write: gone as a dead one is, no kernel to ask.
        return Some(DeadClaim {
            mark,
            owner,
            start: mark - 1,
            end: write_end,
        });
    }
    // 0 (a claim in flight) or nonsense: no claimant to judge. `slot_held`
    // alone would call such a word dead.
    token_slot(owner)?;
    // Through the end's own descriptor: no process slot is made for a
    // reader, and every slot, this process's included, is seen (a slot
    // lives on a description of its own).
    if slot_held(end.fd(), owner) {
        return None;
    }
    // The slot is free, but maybe only because a live claimant released
    // its claim and then closed its last handle of the end (or exited)
    // after the loads above. It released the claim before its slot could
    // go, so the claim is still in place only if the claimant died holding
    // it.
    fence(SeqCst);
    if control.pending_write_mark() != mark || control.pending_write_owner() != owner {
        return None;
    }
    Some(DeadClaim {
        mark,
        owner,
        start: mark - 1,
        end: write_end,
    })
}

/// A claim whose process is gone.
pub(crate) struct DeadClaim {
    mark: u64,
    owner: u64,
    /// Where the dead write starts and ends (payload positions; `end` is
    /// unchecked shared data).
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl DeadClaim {
    /// Frees the mark for the next pending write.
    pub(crate) fn clear(&self, control: &Control) {
        // Only this claim's token: another reader may have cleared it and a
        // new claimant taken the mark since.
        control.clear_pending_write(self.mark, self.owner);
    }
}

/// Spec 7.5 (SEM-117): if the write that holds the pending-write mark
/// belongs to a process that is gone, the unread rest of that write
/// disappears. Returns how many bytes may be read before that write's
/// start (`Some`), or `None` for no limit; drops the rest once the
/// reader stands inside it. Costs one liveness question per read while
/// a claimed write is pending, nothing otherwise.
///
/// With `cut_is_error` (a message-read mode read), a message of which the
/// reader already got a part (with `complete == false`) was cut: after
/// dropping its rest this read fails with `OperationAborted` (the read
/// after a part must never return the next message as if it continued
/// the cut one). A byte-read mode reader sees no message boundaries: it
/// goes on with what follows.
pub(crate) fn withdrawal_limit(
    rx: &mut Receiver,
    end: &End,
    cut_is_error: bool,
) -> io::Result<Option<usize>> {
    let control = rx.ring().control();
    let Some(dead) = dead_claim(control, end) else {
        return Ok(None);
    };
    let consumed = control.consumed();
    if consumed < dead.start {
        let left = dead.start - consumed;
        return Ok(Some(usize::try_from(left).unwrap_or(usize::MAX)));
    }
    dead.clear(control);
    let mut scratch = [0u8; 4096];
    let dropped = rx
        .batch(|c| {
            // Under the reader lock: another reader may have dropped part or
            // all of it already. Hostile or stale numbers drop nothing: the
            // rest must lie within what was published.
            let written = c.storage().control().written();
            let mut left = if dead.end <= written {
                dead.end.saturating_sub(c.consumed())
            } else {
                0
            };
            // Part of the write was read already (by any reader of the
            // end): the message was cut for the reader.
            let cut = left > 0 && c.consumed() > dead.start;
            while left > 0 {
                let n = left.min(scratch.len() as u64) as usize;
                match c.read_stream(&mut scratch[..n])? {
                    Some(got) if got > 0 => left -= got as u64,
                    _ => break,
                }
            }
            Ok(cut)
        })
        .map_err(|e| super::engine(e, ErrorKind::BrokenPipe))?;
    if dropped && cut_is_error {
        return Err(Error::io(ErrorKind::OperationAborted));
    }
    Ok(None)
}
