//! Zero-copy writes and reads of an end: the caller fills a reservation in
//! the ring in place ([`Conn::write_with`]) or looks at a published record
//! in place ([`Conn::read_msg_with`], [`Conn::read_with`]), over the
//! engine's `Grant::as_mut_slice` and `ReadGrant::as_slice`.
//!
//! # Algorithm
//!
//! **Write** (`len` bytes, one write: one message on a message pipe):
//! 1. Refuse `len` above [`max_len`] (one record, half the ring less its
//!    header line): a zero-copy write is one contiguous slice, and a record
//!    is the largest slice the ring can promise. Nothing is fragmented:
//!    such a write fails with `InvalidParameter` before the closure runs.
//! 2. Under the handle's writing half and the ring's writer lock, reserve
//!    one record of exactly `len` bytes. No room: leave the writer lock,
//!    wait (cancellably) on the ring's `writable` event until the space
//!    the reservation needs is free, and try again. Nothing is published
//!    and the closure has not run, so a cancel or a closed reader here
//!    fails the write with nothing written (`OperationAborted`, `NoData`).
//! 3. Run the closure on the reservation. A panic in it drops the
//!    reservation unpublished (the engine releases the writer lock on
//!    unwind): nothing of the write is ever visible.
//! 4. If the write may pend on the quota, claim the pending-write mark
//!    ([`super::pending`]), still under the writer lock and *after* the
//!    closure, *before* the commit. After the closure, not before: a
//!    process killed while its closure runs must leave no claim, because a
//!    claim whose write was never published would make the reader drop
//!    bytes of the next writer at the same positions. Before the commit,
//!    so that no byte of a write that may pend is ever readable unmarked
//!    (the rule `Sender::send_marked` keeps for copies).
//! 5. Commit (one record: the message is one unit for every reader), leave
//!    the locks, and complete by spec 5.2 exactly as a copy write does:
//!    `Ok` once at most the quota's worth of bytes up to the write's end is
//!    unread (a pending read's advertised share and withdrawn bytes
//!    counted). A cancel during that wait withdraws the write through its
//!    claim, as a cancelled copy write does (spec 7.4).
//!
//! A nonblocking end (spec 5.5) writes only if the write fits the quota (a
//! pending read's share counted) and the ring now, never waits for the
//! writer lock, and otherwise fails with `WouldBlock` without running the
//! closure (a copy write's "0 bytes written" has no closure result to go
//! with it). A write that fits the quota never pends, so it is never marked.
//!
//! **Message read**: under the reading half and the reader lock, a copying
//! message read into an empty buffer first settles the head: it skips
//! markers of writes nobody was reading, consumes an empty message (handed
//! to the closure as `&[]`), and reports a cut message (`OperationAborted`)
//! as a copying read does. Then the head record is presented whole: it is
//! the whole message (or the rest of one a copying read left with
//! `MoreData`) unless more fragments of the same write follow, in which
//! case the read fails with `InvalidParameter` and consumes nothing (the
//! copying read takes such a message: it was written by a copy larger than
//! [`max_len`]). After the closure the record is released in full.
//!
//! **Byte read**: the unconsumed bytes of the head record (markers skipped,
//! an empty message handed over as `&[]` and consumed), cut at the start of
//! a dead writer's withdrawn write; the closure says how many it consumed
//! (clamped to the slice), like `BufRead::consume`.
//!
//! Blocking reads wait for the head with the copying message read of an
//! empty buffer (which waits, cancellably, for a record or the end of the
//! pipe, and consumes at most an empty message), then look again. A
//! blocked zero-copy read advertises no buffer (spec 5.3): it has none, so
//! writers complete by the quota alone, never earlier than for a copy.
//!
//! # Invariants
//!
//! * Every length and index comes from the engine's validated locals
//!   (record length, head offset, `len` checked against the reservation);
//!   nothing here reads a payload byte, so a peer that changes the bytes
//!   under a slice changes *values only*: it cannot lead this crate into a
//!   panic, an out-of-bounds access or a wrong consumption count.
//! * The closure runs under the ring's writer or reader lock: a slice never
//!   outlives the reservation or the record it shows (the closure's
//!   lifetime bound), and no other consumer of the end frees it meanwhile.
//! * A release never exceeds the slice: the closure's count is clamped.
//!
//! # Shared memory under `&[u8]` and `&mut [u8]`
//!
//! The slices lie over the segment, which the peer process maps writable
//! too. A correct peer never writes a reservation it did not make or a
//! record not yet released; a hostile one can. The soundness argument is
//! the engine's (`docs/engine.md`, "Hostile memory"): the mapping stays
//! valid and fully sized while the slice lives (the end holds it; the
//! segment is sealed against shrinking), every byte is always initialised
//! and every value is a valid `u8`, and the slice's extent was fixed from
//! validated locals before it was made. What a peer's writes can do is
//! make two loads of the same byte disagree; the compiler may assume they
//! agree, so code that checks a byte and then uses it must load it once
//! (copy what must not change). The hole-punching limit of the engine
//! (SIGBUS on a full tmpfs) applies as it does to copies.

use super::pending::{self, PendingMark};
use super::queue::Half;
use super::{
    coarse_now_ns, engine, would_block, Conn, HALF_RX, HALF_TX, LIVENESS_AGE_NS, LIVENESS_EVERY,
};
use crate::error::{Error, ErrorKind};
use crate::info::PipeType;
use shmpipe_engine::record::max_payload_in;
use shmpipe_engine::{Consumer, Error as EngineError, Receiver, RingStorage, SegmentRing, Sender};
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, TryLockError};

/// The largest write or message a zero-copy operation presents as one
/// slice on a ring of `capacity` bytes: one record.
pub(crate) fn max_len(capacity: usize) -> usize {
    max_payload_in(capacity / 2)
}

fn too_large(len: usize, max: usize) -> io::Error {
    Error::with_source(
        ErrorKind::InvalidParameter,
        format!("a zero-copy write of {len} bytes: at most {max} fit one slice of this ring"),
    )
    .into()
}

fn fragmented() -> io::Error {
    Error::with_source(
        ErrorKind::InvalidParameter,
        "the message at the head arrives in fragments (larger than one zero-copy slice); \
         nothing was consumed: read it with a copying read",
    )
    .into()
}

/// A reservation attempt under the writer lock.
enum Reserve<R> {
    /// Published; the write's end position and the closure's result.
    Done(u64, R),
    /// No room: wait until `need` bytes are free past `tail`.
    NoRoom { tail: u64, need: u64 },
}

/// What a look at the head found.
enum Look<T> {
    /// The closure ran on the head.
    Taken(T),
    /// The head message arrives in fragments: nothing consumed.
    Fragmented,
    /// The wait for the head consumed an empty message: the closure has
    /// not run; the caller hands it `&[]`.
    Empty,
}

impl Conn {
    /// One write of `len` bytes filled in place by `f` (see the module
    /// docs); `f`'s result once the write completes.
    pub(crate) fn write_with<R>(
        &self,
        len: usize,
        nonblocking: bool,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> io::Result<R> {
        let (half, _) = self.tx()?;
        if len == 0 {
            // No slice to share: an empty write or empty message is the
            // copy path's (its state checks and framing).
            let r = f(&mut []);
            return self.write(&[], nonblocking).map(|_| r);
        }
        let mut tx = self.locked(half, HALF_TX)?;
        let max = max_len(tx.capacity());
        if len > max {
            return Err(too_large(len, max));
        }
        self.check_liveness_due()?;
        if nonblocking {
            return self.write_with_nonblocking(&mut tx, len, f);
        }
        let n = len as u64;
        let quota = u64::from(self.quota);
        let control = self.words.control();
        let queued_guess = tx
            .written()
            .saturating_sub(self.consumed_hint.load(Relaxed));
        let token = if queued_guess.saturating_add(n) > quota {
            self.end.holder_token().ok()
        } else {
            None
        };
        // A write that may pend while every claim is taken publishes
        // nothing until one is free (as a copy write does; see
        // `Conn::wait_for_mark`). Asked before the fill, since a filled
        // record cannot wait unpublished: a claim taken by another write
        // between here and the commit leaves this one unmarked (the safe
        // side), a race of a few instructions.
        if token.is_some()
            && !pending::claim_free(control)
            && pending::claims_judgeable(control)
            && pending::may_pend(control, tx.written().saturating_add(n), quota)
        {
            // Not holding the half meanwhile (see `Conn::write`).
            drop(tx);
            self.wait_for_mark(n)?;
            tx = self.locked(half, HALF_TX)?;
        }
        let mut f = Some(f);
        let mut claim = None;
        let end = loop {
            let step = tx.batch(|p| {
                let start = p.written();
                let Some(mut g) = p.try_reserve(len)? else {
                    let tail = p.storage().control().tail();
                    return Ok(Reserve::NoRoom {
                        tail,
                        need: p.space_needed(len, true),
                    });
                };
                let f = f
                    .take()
                    .expect("the closure runs once: the loop ends after it");
                let r = f(g.as_mut_slice());
                let end = start.wrapping_add(n);
                // It cannot pend if it fits now: `consumed` only grows.
                if let Some(token) = token {
                    if pending::may_pend(control, end, quota) {
                        claim = PendingMark::claim(control, token, start, end);
                    }
                }
                g.commit(0);
                Ok(Reserve::Done(end, r))
            });
            let step = step.and_then(|s: shmpipe_engine::Result<_>| s);
            match step {
                Ok(Reserve::Done(end, r)) => break (end, r),
                Ok(Reserve::NoRoom { tail, need }) => {
                    let cap = tx.capacity() as u64;
                    let room = || control.head().saturating_add(cap) >= tail.saturating_add(need);
                    if let Err(e) = tx.wait_until(None, room) {
                        self.note_gone(&e);
                        return Err(engine(e, ErrorKind::NoData));
                    }
                }
                Err(e) => {
                    self.note_gone(&e);
                    return Err(engine(e, ErrorKind::NoData));
                }
            }
        };
        let (end, r) = end;
        drop(tx);
        self.complete_by_quota(end, n, claim)?;
        Ok(r)
    }

    fn write_with_nonblocking<R>(
        &self,
        tx: &mut Sender,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> io::Result<R> {
        let n = len as u64;
        let queued = tx.written().saturating_sub(tx.consumed());
        let taken = if queued == 0 {
            tx.ring().control().advertised_read().min(n)
        } else {
            0
        };
        if queued.saturating_add(n - taken) <= u64::from(self.quota) {
            let done = tx.try_batch(|p| {
                let Some(mut g) = p.try_reserve(len)? else {
                    return Ok(None);
                };
                let r = f(g.as_mut_slice());
                g.commit(0);
                Ok(Some(r))
            });
            match done.and_then(|d| d.transpose()) {
                Ok(Some(Some(r))) => return Ok(r),
                Ok(_) => {}
                Err(e) => return Err(engine(e, ErrorKind::NoData)),
            }
        }
        // "Nothing now" must not hide a peer that is gone.
        if self.is_disconnected() {
            return Err(Error::io(ErrorKind::PipeNotConnected));
        }
        if self.peer_gone() {
            return Err(Error::io(ErrorKind::NoData));
        }
        Err(would_block())
    }

    /// The periodic liveness question of a write (see the parent module).
    /// Called under the writing half's lock.
    fn check_liveness_due(&self) -> io::Result<()> {
        let writes = self.writes_since_check.load(Relaxed) + 1;
        let now = coarse_now_ns();
        let due = self.gone.load(Relaxed)
            || writes >= LIVENESS_EVERY
            || now.wrapping_sub(self.last_check_ns.load(Relaxed)) >= LIVENESS_AGE_NS;
        if !due {
            self.writes_since_check.store(writes, Relaxed);
            return Ok(());
        }
        self.writes_since_check.store(0, Relaxed);
        self.last_check_ns.store(now, Relaxed);
        if self.peer_gone() {
            return Err(Error::io(ErrorKind::NoData));
        }
        Ok(())
    }

    /// One whole message (message-read mode), presented in place to `f`.
    pub(crate) fn read_msg_with<R>(
        &self,
        nonblocking: bool,
        f: impl FnOnce(&[u8]) -> R,
    ) -> io::Result<R> {
        let cut_is_error = self.pipe_type == PipeType::Message;
        let mut f = Some(f);
        let look = self.read_in_place(nonblocking, cut_is_error, |c, limit| {
            let Some(m) = c.read_message(&mut [])? else {
                return Ok(None);
            };
            let once = "the closure runs once: the read ends after it";
            if m.end {
                // An empty message, consumed by the look.
                return Ok(Some(Look::Taken((f.take().expect(once))(&[]))));
            }
            let Some(g) = c.read_record()? else {
                return Ok(None);
            };
            let s = g.as_slice();
            let n = s.len();
            if g.remaining_in_write() != 0 || limit.is_some_and(|l| n > l) {
                return Ok(Some(Look::Fragmented));
            }
            let r = (f.take().expect(once))(s);
            g.release(n);
            Ok(Some(Look::Taken(r)))
        })?;
        match look {
            Look::Taken(r) => Ok(r),
            Look::Fragmented => Err(fragmented()),
            Look::Empty => Ok((f.take().expect("the closure has not run"))(&[])),
        }
    }

    /// Byte-read mode: the head record's unread bytes in place; `f` says
    /// how many it consumed (clamped to the slice). Returns that count.
    pub(crate) fn read_with(
        &self,
        nonblocking: bool,
        f: impl FnOnce(&[u8]) -> usize,
    ) -> io::Result<usize> {
        let mut f = Some(f);
        let look = self.read_in_place(nonblocking, false, |c, limit| {
            let Some(g) = c.read_record()? else {
                return Ok(None);
            };
            let s = g.as_slice();
            let s = match limit {
                Some(l) if l < s.len() => &s[..l],
                _ => s,
            };
            let f = f
                .take()
                .expect("the closure runs once: the read ends after it");
            let n = f(s).min(s.len());
            g.release(n);
            Ok(Some(Look::Taken(n)))
        });
        match look? {
            Look::Taken(n) => Ok(n),
            // (A byte look never reports fragments.)
            Look::Fragmented | Look::Empty => {
                (f.take().expect("the closure has not run"))(&[]);
                Ok(0)
            }
        }
    }

    /// Byte-read mode's whole-slice read (a named end's `recv_msg_with` in
    /// byte-read mode): [`Conn::read_with`] consuming all it shows.
    pub(crate) fn read_whole_with<R>(
        &self,
        nonblocking: bool,
        f: impl FnOnce(&[u8]) -> R,
    ) -> io::Result<R> {
        let mut out = None;
        self.read_with(nonblocking, |s| {
            out = Some(f(s));
            s.len()
        })?;
        Ok(out.expect("read_with runs its closure when it succeeds"))
    }

    /// Runs `look` under the reader lock until it finds something: at once
    /// for a nonblocking end, else waiting for records between tries.
    /// `look` gets the withdrawal limit (spec 7.5).
    fn read_in_place<T>(
        &self,
        nonblocking: bool,
        cut_is_error: bool,
        mut look: impl FnMut(
            &mut Consumer<SegmentRing>,
            Option<usize>,
        ) -> shmpipe_engine::Result<Option<Look<T>>>,
    ) -> io::Result<Look<T>> {
        let (rx, _) = self.rx()?;
        let mut rx = if nonblocking {
            self.try_half(rx, HALF_RX).ok_or_else(would_block)?
        } else {
            self.locked(rx, HALF_RX)?
        };
        let limit = pending::withdrawal_limit(&mut rx, &self.end, cut_is_error, usize::MAX)?;
        let map = |e| engine(e, ErrorKind::BrokenPipe);
        if nonblocking {
            return match rx.try_batch(|c| look(c, limit)).map_err(map)? {
                None => Err(would_block()),
                Some(Some(t)) => Ok(t),
                Some(None) => {
                    if rx.is_peer_alive().map_err(map)? {
                        return Err(would_block());
                    }
                    match rx.try_batch(|c| look(c, limit)).map_err(map)? {
                        None => Err(would_block()),
                        Some(Some(t)) => Ok(t),
                        Some(None) => {
                            self.gone.store(true, Relaxed);
                            Err(Error::io(ErrorKind::BrokenPipe))
                        }
                    }
                }
            };
        }
        loop {
            if let Some(t) = rx.batch(|c| look(c, limit)).map_err(map)? {
                return Ok(t);
            }
            if self.wait_head(&mut rx, cut_is_error)? {
                return Ok(Look::Empty);
            }
        }
    }

    /// Waits until a record is at the head (a copying message read of
    /// nothing: it waits as every blocking read does, cancellably, and
    /// consumes at most an empty message or a marker). `true`: it consumed
    /// an empty message, which the read reports.
    fn wait_head(&self, rx: &mut Receiver, cut_is_error: bool) -> io::Result<bool> {
        match rx.read_message(&mut []) {
            Ok(m) => Ok(m.end),
            // A byte read goes on past a cut (its marker is consumed).
            Err(EngineError::MessageCut) if !cut_is_error => Ok(false),
            Err(e) => {
                self.note_gone(&e);
                Err(engine(e, ErrorKind::BrokenPipe))
            }
        }
    }

    /// [`Conn::locked`] without waiting for the half.
    fn try_half<'a, H: super::SetPolicy>(
        &'a self,
        half: &'a Mutex<H>,
        which: usize,
    ) -> Option<Half<'a, H>> {
        let h = match half.try_lock() {
            Ok(h) => h,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let mut h = Half::new(h, &self.queue);
        self.apply_policy(&mut *h, which);
        Some(h)
    }
}

#[cfg(test)]
#[path = "zero_copy_tests.rs"]
mod tests;
