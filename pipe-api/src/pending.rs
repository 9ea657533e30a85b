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
//! `W_PENDING_WRITE` = 1 + the write's start position (0: no claim),
//! `W_PENDING_END` = its end position, and `W_PENDING_OWNER` = the
//! claimant's *slot* (0 while a claim is being made or released). A write
//! that may pend claims the mark under the writer lock, *before* any of its
//! bytes is published (`Sender::send_marked`): a kill right after the first
//! byte becomes visible must already find the claim, or the rest would stay
//! readable. A write that may pend while another holds the mark is not
//! marked (if its process dies, its rest stays readable: the safe side of
//! the rule). A claimant killed while it was still publishing leaves a claim
//! whose end lies past what was published: nothing is dropped for it (the
//! reader gets the published part of a cut message, see `Conn::read_msg`).
//!
//! **Liveness follows a kernel object, not a pid.** A slot is a byte of the
//! segment's lock range; each handle takes, on its first pending write, an
//! OFD read lock on a random slot through an open file description private
//! to its process ([`PendingSlot`]), and keeps it until the handle is
//! dropped. The kernel drops that lock when the process dies, SIGKILL
//! included. A reader that finds the claimant's slot unlocked (`F_OFD_GETLK`)
//! knows the claimant's process is gone. Two handles that draw the same slot
//! make a dead claimant look alive: again the safe side.
//!
//! The withdrawal happens in the next read (under the reader's lock, which
//! it needs to drop bytes); a `peek` before it still shows the dead write's
//! rest.
//!
//! Ordering: a claimant CASes the mark (AcqRel), then stores the end and
//! then its slot (Release); it releases by zeroing the slot, then CASing the
//! mark back to 0 (Release). A reader loads the mark, the slot (Acquire) and
//! the end, then the mark again: positions only grow, so an unchanged mark
//! is the same claim, and the slot it read is that claim's (an older claim's
//! slot was zeroed before its mark was released, which happens-before the
//! newer claim). A slot found unlocked is only a death if the claim is
//! *still* in place afterwards: a live claimant releases its claim before
//! its handle (and lock) can go, so the reader looks at the mark and the
//! slot once more after the kernel's answer.
//!
//! Everything read here is hostile input: a nonsense end drops nothing, a
//! nonsense slot is "alive". A claimant killed between its CAS and its slot
//! store leaves the mark taken with slot 0 for good: later pending writes go
//! unmarked, again the safe side.

use crate::error::{Error, ErrorKind};
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::RingControl;
use shmpipe_engine::liveness::EndLock;
use shmpipe_engine::sync::Native;
use shmpipe_engine::{Receiver, RingStorage};
use std::io;
use std::sync::atomic::fence;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::Arc;

/// User word (per ring) holding 1 + the start of the claimed write, or 0.
const W_PENDING_WRITE: usize = 3;
/// User word (per ring): the claimant's slot, 0 while claiming or releasing.
const W_PENDING_OWNER: usize = 5;
/// User word (per ring): where the claimed write ends.
const W_PENDING_END: usize = 6;
/// Liveness roles from here on are pending-write slots (roles below name
/// ends); slots are drawn from `PENDING_SLOTS` values.
const PENDING_SLOT_BASE: u64 = 1 << 16;
const PENDING_SLOTS: u64 = 1 << 30;

type Control = RingControl<Native>;

/// A handle's slot in one process: the lock that says "alive" for it.
pub(crate) struct PendingSlot {
    pub(crate) slot: u64,
    _lock: EndLock,
}

impl PendingSlot {
    /// Draws a slot and locks it through a new open file description of
    /// `end`'s segment. `None` if that cannot be done (no `/proc`, no
    /// descriptors left): the handle's pending writes are then never
    /// marked, so a dead one's rest stays readable.
    pub(crate) fn new(end: &Arc<End>) -> Option<PendingSlot> {
        let slot = PENDING_SLOT_BASE + random_u64() % PENDING_SLOTS;
        let lock = EndLock::acquire(end.fd(), role_of(slot)?).ok()?;
        Some(PendingSlot { slot, _lock: lock })
    }
}

fn role_of(slot: u64) -> Option<u32> {
    if (PENDING_SLOT_BASE..PENDING_SLOT_BASE + PENDING_SLOTS).contains(&slot) {
        u32::try_from(slot).ok()
    } else {
        None
    }
}

/// Random enough to keep two handles off one slot; not a secret.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(shmpipe_engine::liveness::process_token());
    h.finish()
}

/// A claim this process holds on the mark, released when dropped (also if
/// the wait it covers unwinds: a claim left behind would make the write
/// look dead once its handle closes).
pub(crate) struct PendingMark<'a> {
    control: &'a Control,
    mark: u64,
}

impl<'a> PendingMark<'a> {
    /// Claims the mark for the write `start..end` of the holder of `slot`,
    /// if no other write holds it.
    pub(crate) fn claim(
        control: &'a Control,
        slot: u64,
        start: u64,
        end: u64,
    ) -> Option<PendingMark<'a>> {
        let words = &control.user.0;
        let mark = start.checked_add(1)?;
        words[W_PENDING_WRITE]
            .compare_exchange(0, mark, AcqRel, Relaxed)
            .ok()?;
        words[W_PENDING_END].store(end, Relaxed);
        words[W_PENDING_OWNER].store(slot, Release);
        Some(PendingMark { control, mark })
    }
}

impl Drop for PendingMark<'_> {
    /// The write is no longer pending.
    fn drop(&mut self) {
        let words = &self.control.user.0;
        words[W_PENDING_OWNER].store(0, Relaxed);
        // Fails only if a reader already judged the claim dead, which a live
        // slot lock rules out, or if the peer scribbled on the word.
        let _ = words[W_PENDING_WRITE].compare_exchange(self.mark, 0, Release, Relaxed);
    }
}

/// The claimed write, if there is one and its process is gone (the reading
/// side's look at the mark). Asks the kernel only while a claim is in place.
pub(crate) fn dead_claim(control: &Control, end: &End) -> Option<DeadClaim> {
    let words = &control.user.0;
    let mark = words[W_PENDING_WRITE].load(Acquire);
    if mark == 0 {
        return None;
    }
    let slot = words[W_PENDING_OWNER].load(Acquire);
    let write_end = words[W_PENDING_END].load(Relaxed);
    if words[W_PENDING_WRITE].load(Acquire) != mark {
        return None; // released or re-claimed meanwhile: look next time
    }
    let role = role_of(slot)?; // 0 (claim in flight) or nonsense
    if end.peer_alive(role).unwrap_or(true) {
        return None;
    }
    // The lock is gone, but maybe only because a live claimant released
    // its claim and then closed its handle (or exited) after the loads
    // above. It released the claim before its lock could go, so the
    // claim is still in place only if the claimant died holding it.
    fence(SeqCst);
    if words[W_PENDING_WRITE].load(Acquire) != mark || words[W_PENDING_OWNER].load(Acquire) != slot
    {
        return None;
    }
    Some(DeadClaim {
        mark,
        slot,
        start: mark - 1,
        end: write_end,
    })
}

/// A claim whose process is gone.
pub(crate) struct DeadClaim {
    mark: u64,
    slot: u64,
    /// Where the dead write starts and ends (payload positions; `end` is
    /// unchecked shared data).
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl DeadClaim {
    /// Frees the mark for the next pending write.
    pub(crate) fn clear(&self, control: &Control) {
        let words = &control.user.0;
        // Only this claim's slot: another reader may have cleared it and a
        // new claimant taken the mark since.
        let _ = words[W_PENDING_OWNER].compare_exchange(self.slot, 0, Relaxed, Relaxed);
        let _ = words[W_PENDING_WRITE].compare_exchange(self.mark, 0, Release, Relaxed);
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
    let consumed = control.consumer.0.consumed.load(Acquire);
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
            let written = c.storage().control().producer.0.written.load(Acquire);
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
        .map_err(|e| crate::conn::engine(e, ErrorKind::BrokenPipe))?;
    if dropped && cut_is_error {
        return Err(Error::io(ErrorKind::OperationAborted));
    }
    Ok(None)
}
