//! The pending-write claims: what a reader needs to make the unread rest
//! of a dead process's, or a cancelled, pending write disappear (spec 5.2,
//! 7.4, 7.5, SEM-117, SEM-145).
//!
//! A write that has not completed (it waits for the quota, or is still
//! publishing a write larger than the ring) is *pending*. If its process
//! dies, the reader may keep what it already read
//! of that write, but the rest must vanish, while every other write,
//! including later ones from duplicates of the same end in live processes,
//! is delivered. So the reader must know where the write lies and whether
//! *its process* is still alive.
//!
//! The ring's user words hold [`PENDING_CLAIMS`] (four) claims of three
//! words each (the table in `shmpipe_engine::layout::user_words`): the
//! *mark* = 1 + the write's start position (0: the claim is free), the
//! *end* position, and the *owner* = the claimant's *process token* (0
//! while a claim is being made or released).
//! A write that may pend takes a claim under the writer lock, *before*
//! any of its bytes is published (`Sender::send_marked`): a kill right
//! after the first byte becomes visible must already find the claim, or the
//! rest would stay readable. A write that may pend while all claims are
//! taken publishes nothing: it declines, waits (cancellably) until one is
//! free, and tries again (`Conn::wait_for_mark`); so every pending write
//! is claimed, however many pend on one ring (the spec's worked example
//! of 5.2 has two pending and readable at once, hence more than one
//! claim). A writer that cannot be named (no process slot) goes unmarked:
//! if its process dies, its rest stays readable, the safe side of the
//! rule. A claimant killed while it was still publishing
//! leaves a claim whose end lies past what was published: while it does,
//! nothing is dropped for it (the reader gets the published part of a cut
//! message, see `Conn::read_msg`). Later writes may carry the ring past
//! that end; so a drop never trusts the claimed end alone: it reads the
//! dead write's records as one message and stops at its last fragment or
//! at the abort marker that ends a cut write, whichever comes first.
//! (Left open: a reader that looked at the claims just before the
//! claimant died, and then read through the cut part and into a later
//! write in the same read, can meet the dead claim on its next read
//! standing in that later write.)
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
//! `OperationAborted` for its rest first). A withdrawn or dead claim none
//! of whose bytes is left unread is cleared by the next write that needs
//! a claim ([`clear_spent_claim`]), since a reader asleep on an empty ring
//! never would. A reader meets the claims in position order: it reads up
//! to the first dead or withdrawn one, drops its rest, and goes on to the
//! next. A flush counts withdrawn bytes as read
//! ([`unread_all_withdrawn`]).
//!
//! Everything read here is hostile input: a nonsense end drops nothing; a
//! word that names no slot ([`token_slot`] bounds it) is no claimant at all,
//! so it is never judged dead. A claimant killed between its CAS and its
//! token store leaves that claim taken with token 0 for good; if every
//! claim is taken by such words, later pending writes go unmarked
//! ([`claims_judgeable`]), again the safe side, rather than wait for a
//! claim nobody will free.

use crate::error::{Error, ErrorKind};
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::{RingControl, PENDING_CLAIMS};
use shmpipe_engine::liveness::{slot_held, token_slot};
use shmpipe_engine::sync::Native;
use shmpipe_engine::{Receiver, RingStorage};
use std::io;
use std::sync::atomic::fence;
use std::sync::atomic::Ordering::SeqCst;

type Control = RingControl<Native>;

/// A claim this process holds, released when dropped: when the write
/// completes, fails, or the wait it covers unwinds. That is what lets a
/// process token stand for the write: a claim left behind by a live
/// process would look alive until the process died, and then a write that
/// was long over would be withdrawn.
pub(crate) struct PendingMark<'a> {
    control: &'a Control,
    slot: usize,
    mark: u64,
}

impl<'a> PendingMark<'a> {
    /// Claims a free claim for the write `start..end` of the process whose
    /// token ([`End::holder_token`]) is `token`; `None` if all are taken.
    pub(crate) fn claim(
        control: &'a Control,
        token: u64,
        start: u64,
        end: u64,
    ) -> Option<PendingMark<'a>> {
        let (slot, mark) = control.claim_pending_write(token, start, end)?;
        Some(PendingMark {
            control,
            slot,
            mark,
        })
    }
}

/// The token of a withdrawn claim: the low half (1) names no process slot
/// (`liveness::token_slot`), so no live claimant can hold it.
pub(crate) const WITHDRAWN: u64 = 1;

impl PendingMark<'_> {
    /// The write was cancelled with `published` of its bytes published:
    /// the claim stays, as a withdrawal of `start..start + published` for
    /// the reader to skip (see the module docs), and the peer's waiters are
    /// woken (a flush the withdrawal completes, a reader). With nothing
    /// published there is nothing to skip: the claim is released. (Kept,
    /// it would leave the write position where it was, and a later claim
    /// of the same slot could carry the same mark: a stale clear or a
    /// reader's two loads of the mark could not tell the two apart.)
    pub(crate) fn withdraw(self, published: u64) {
        if published == 0 {
            drop(self); // releases and notifies `writable`
            return;
        }
        let start = self.mark - 1;
        self.control
            .withdraw_pending_write(self.slot, WITHDRAWN, start.saturating_add(published));
        let control = self.control;
        core::mem::forget(self);
        let ev = &control.events.0;
        ev.writable.notify();
        ev.readable.notify();
    }
}

impl Drop for PendingMark<'_> {
    /// The write is no longer pending.
    fn drop(&mut self) {
        // The mark's CAS fails only if a reader already judged the claim
        // dead, which this process's live slot rules out, or if the peer
        // scribbled on the word.
        self.control.release_pending_write(self.slot, self.mark);
        // A write of another handle may wait for a claim (`wait_for_mark`).
        self.control.events.0.writable.notify();
    }
}

/// One claim as read from the ring: hostile data, consistent only in that
/// its mark did not change while its owner and end were loaded.
#[derive(Clone, Copy)]
pub(crate) struct Claim {
    slot: usize,
    mark: u64,
    owner: u64,
    /// Where the claimed write starts and ends (payload positions; `end`
    /// is unchecked shared data).
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl Claim {
    /// Loads claim `slot`: the mark, the token (Acquire) and the end, then
    /// the mark again. Positions only grow, so an unchanged mark is the
    /// same claim, and the token read is that claim's (an older claim's
    /// token was zeroed before its mark was released).
    fn load(control: &Control, slot: usize) -> Option<Claim> {
        let mark = control.pending_write_mark(slot);
        if mark == 0 {
            return None;
        }
        let owner = control.pending_write_owner(slot);
        let end = control.pending_write_end(slot);
        if control.pending_write_mark(slot) != mark {
            return None; // released or re-claimed meanwhile: look next time
        }
        Some(Claim {
            slot,
            mark,
            owner,
            start: mark - 1,
            end,
        })
    }

    /// Frees the claim for the next pending write, if it is still this one
    /// (another reader may have cleared it and a new claimant taken it).
    pub(crate) fn clear(&self, control: &Control) {
        control.clear_pending_write(self.slot, self.mark, self.owner);
        // A write of another handle may wait for a claim (`wait_for_mark`).
        control.events.0.writable.notify();
    }
}

/// The claims in place (each loaded as [`Claim::load`] does).
fn claims(control: &Control) -> impl Iterator<Item = Claim> + '_ {
    (0..PENDING_CLAIMS).filter_map(|slot| Claim::load(control, slot))
}

/// The withdrawn claims in place.
fn withdrawn(control: &Control) -> impl Iterator<Item = Claim> + '_ {
    claims(control).filter(|c| c.owner == WITHDRAWN)
}

/// Whether a claim is free now.
pub(crate) fn claim_free(control: &Control) -> bool {
    (0..PENDING_CLAIMS).any(|slot| control.pending_write_mark(slot) == 0)
}

/// Whether some taken claim will be freed by someone: its owner is a
/// process slot (released when the write ends, cleared when the process
/// is found dead) or it is withdrawn (cleared once passed). A claim whose
/// token is 0 or names no slot is either being made (for a few
/// instructions) or was left by a claimant killed between its CAS and its
/// token store, or scribbled by the peer: nobody can judge it, so a write
/// that found every claim taken by such words goes unmarked (the safe
/// side) instead of waiting for a claim that may never come.
pub(crate) fn claims_judgeable(control: &Control) -> bool {
    claims(control).any(|c| c.owner == WITHDRAWN || token_slot(c.owner).is_some())
}

/// Whether every byte the peer has not read of what this end wrote up to
/// payload position `written` lies in a withdrawn write (spec 7.4: a flush
/// that only waits for withdrawn bytes succeeds, SEM-121).
pub(crate) fn unread_all_withdrawn(control: &Control, written: u64) -> bool {
    let mut ranges = [(0u64, 0u64); PENDING_CLAIMS];
    let mut n = 0;
    for c in withdrawn(control) {
        ranges[n] = (c.start, c.end);
        n += 1;
    }
    if n == 0 {
        return false; // nothing withdrawn (unread empty messages count too)
    }
    // Claims first, then `consumed`: a claim cleared in between had its
    // bytes dropped, which moves `consumed` past them.
    let ranges = &mut ranges[..n];
    ranges.sort_unstable();
    let mut covered = control.consumed();
    for &(start, end) in ranges.iter() {
        if start <= covered {
            covered = covered.max(end);
        }
    }
    covered >= written
}

/// Unread bytes of withdrawn writes below payload position `upto`: they
/// will never be read, so they no longer count against the quota of a
/// write ending at `upto` (spec 7.4: "withdrawing may complete later
/// pending writes"). Only what lies ahead of that write counts: a write
/// withdrawn *behind* it must not complete it. Bounded by what is unread:
/// hostile words cannot make a write skip more than the queue.
pub(crate) fn withdrawn_unread(control: &Control, upto: u64) -> u64 {
    let mut ranges = [None; PENDING_CLAIMS];
    for (r, c) in ranges.iter_mut().zip(withdrawn(control)) {
        *r = Some((c.start, c.end));
    }
    if ranges[0].is_none() {
        return 0;
    }
    let (consumed, written) = (control.consumed(), control.written().min(upto));
    let sum = ranges
        .into_iter()
        .flatten()
        .fold(0u64, |sum, (start, end)| {
            sum.saturating_add(end.min(written).saturating_sub(consumed.max(start)))
        });
    sum.min(written.saturating_sub(consumed))
}

/// Whether a write ending at payload position `end` would pend on `quota`
/// now: its bytes and those unread ahead of it exceed the quota, not
/// counting bytes of a withdrawn write, which will never be read. `consumed`
/// only grows, and bytes once withdrawn stay so until the reader passes
/// them, so a write that would not pend now never will.
pub(crate) fn may_pend(control: &Control, end: u64, quota: u64) -> bool {
    end.saturating_sub(control.consumed())
        .saturating_sub(withdrawn_unread(control, end))
        > quota
}

/// Whether claim `c` belongs to a write that is withdrawn or whose process
/// is gone (the reading side's look). Asks the kernel only for a claim
/// whose owner names a process slot.
fn is_dead(control: &Control, end: &End, c: &Claim) -> bool {
    if c.owner == WITHDRAWN {
        // A cancelled write: gone as a dead one is, no kernel to ask.
        return true;
    }
    // 0 (a claim in flight) or nonsense: no claimant to judge. `slot_held`
    // alone would call such a word dead.
    if token_slot(c.owner).is_none() {
        return false;
    }
    // Through the end's own descriptor: no process slot is made for a
    // reader, and every slot, this process's included, is seen (a slot
    // lives on a description of its own).
    #[cfg(test)]
    tests::ASKED.with(|n| n.set(n.get() + 1));
    if slot_held(end.fd(), c.owner) {
        return false;
    }
    // The slot is free, but maybe only because a live claimant released
    // its claim and then closed its last handle of the end (or exited)
    // after the loads above. It released the claim before its slot could
    // go, so the claim is still in place only if the claimant died holding
    // it.
    fence(SeqCst);
    control.pending_write_mark(c.slot) == c.mark && control.pending_write_owner(c.slot) == c.owner
}

/// The claims whose write is withdrawn or whose process is gone.
fn dead_claims<'a>(control: &'a Control, end: &'a End) -> impl Iterator<Item = Claim> + 'a {
    claims(control).filter(move |c| is_dead(control, end, c))
}

/// Whether `c`, a dead or withdrawn claim, has none of its bytes left
/// unread: it protects nothing, and only a reader passing it would clear
/// it, which a reader asleep on an empty ring never does. Everything the
/// dead write published lies below `written` read after its death was
/// confirmed, so `consumed` at or past the smaller of the claim's end and
/// that `written` proves it all read (hostile words can only make this
/// clear a claim early: that decides whether bytes are dropped, never
/// memory safety).
fn is_spent(control: &Control, c: &Claim) -> bool {
    let written = control.written();
    control.consumed() >= c.end.min(written)
}

/// Whether some claim is [spent](is_spent).
pub(crate) fn spent_claim(control: &Control, end: &End) -> bool {
    dead_claims(control, end).any(|c| is_spent(control, &c))
}

/// Clears every [spent](is_spent) claim; returns whether there was one.
pub(crate) fn clear_spent_claim(control: &Control, end: &End) -> bool {
    let mut cleared = false;
    for c in dead_claims(control, end) {
        if is_spent(control, &c) {
            c.clear(control);
            cleared = true;
        }
    }
    cleared
}

/// Spec 7.5 (SEM-117) and 7.4 (SEM-145): if a claimed write belongs to a
/// process that is gone, or was cancelled, the unread rest of that write
/// disappears. Returns how many bytes may be read before the first such
/// write's start (`Some`), or `None` for no limit; drops the rest of each
/// such write the reader stands in.
///
/// `reach` is the most payload bytes the read can consume (its buffer's
/// length; `usize::MAX` when unbounded). Only claims starting within
/// `reach` of the reader are judged: a dead write starting further on
/// would give a limit of at least `reach`, which limits nothing, so its
/// owner's liveness is not asked. That question is a system call: asked on
/// every read while a write pends (a writer a quota ahead of a streaming
/// reader claims every write), it made the reader slower than the writer
/// for good, at a third of its speed. Claims within reach cost one
/// question per read each, as before.
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
    reach: usize,
) -> io::Result<Option<usize>> {
    let mut cut = false;
    let mut limit = None;
    // Each pass clears a claim; hostile words that survive their clear
    // cannot keep the reader here.
    for _ in 0..=PENDING_CLAIMS {
        let control = rx.ring().control();
        // Inclusive: a claim starting right at the reader matters even to a
        // read of nothing (an empty message ahead of it, or its rest to
        // drop).
        let horizon = control.consumed().saturating_add(reach as u64);
        let Some(dead) = claims(control)
            .filter(|c| c.start <= horizon)
            .filter(|c| is_dead(control, end, c))
            .min_by_key(|c| c.start)
        else {
            break;
        };
        let consumed = control.consumed();
        if consumed < dead.start {
            let left = dead.start - consumed;
            limit = Some(usize::try_from(left).unwrap_or(usize::MAX));
            break;
        }
        // An empty message queued just before the dead write has its
        // payload position: it is the next thing to read, not part of the
        // write. Read it first (a limit of 0 bytes).
        if consumed == dead.start
            && rx
                .batch(|c| c.head_is_empty_message())
                .map_err(|e| super::engine(e, ErrorKind::BrokenPipe))?
        {
            limit = Some(0);
            break;
        }
        let control = rx.ring().control();
        dead.clear(control);
        cut |= drop_rest(rx, &dead)?;
    }
    if cut && cut_is_error {
        return Err(Error::io(ErrorKind::OperationAborted));
    }
    Ok(limit)
}

/// Drops the unread rest of the dead write `dead`, which the reader stands
/// in; returns whether the reader had read part of it (a cut message).
fn drop_rest(rx: &mut Receiver, dead: &Claim) -> io::Result<bool> {
    let mut scratch = [0u8; 4096];
    rx.batch(|c| {
        // Under the reader lock: another reader may have dropped part or
        // all of it already. Hostile or stale numbers drop nothing: the
        // rest must lie within what was published.
        let written = c.storage().control().written();
        let mut left = if dead.end <= written {
            dead.end.saturating_sub(c.consumed())
        } else {
            0
        };
        // Part of the write was read already (by any reader of the end):
        // the message was cut for the reader.
        let cut = left > 0 && c.consumed() > dead.start;
        // Message reads: the drop ends with the dead write's own records,
        // at its last fragment or at the abort marker a later writer put
        // after the part a writer killed mid-publish left. The claim's end
        // is where the write *would* have ended: once later writes carry
        // the ring past it, bytes up to it are theirs, not the dead one's.
        while left > 0 {
            let n = left.min(scratch.len() as u64) as usize;
            match c.read_message(&mut scratch[..n]) {
                Ok(Some(m)) if !m.end && m.len > 0 => left -= m.len as u64,
                Ok(_) | Err(shmpipe_engine::Error::MessageCut) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(cut)
    })
    .map_err(|e| super::engine(e, ErrorKind::BrokenPipe))
}

#[cfg(test)]
#[path = "pending_tests.rs"]
mod tests;
