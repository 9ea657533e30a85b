//! The write path of an end: quota writes (spec 4.7, 5.2, 5.5), the
//! nonblocking write's share rule, the pending-write claim around a write
//! that may wait for the quota, and the periodic liveness question (see the
//! parent module on when a killed peer is noticed).

use super::pending::{self, PendingMark};
use super::{coarse_now_ns, engine, Conn, HALF_TX, LIVENESS_AGE_NS, LIVENESS_EVERY};
use crate::error::{Error, ErrorKind};
use crate::info::PipeType;
use shmpipe_engine::layout::RingControl;
use shmpipe_engine::sync::Native;
use shmpipe_engine::{RingStorage, Sender};
use std::io;
use std::sync::atomic::Ordering::Relaxed;

/// How many of `n` bytes a pending read of the peer, advertised in
/// `control`, takes at once (spec 5.3), if nothing unread is queued ahead of
/// them (hostile values are bounded by `n`).
fn advertised_share(control: &RingControl<Native>, n: u64) -> u64 {
    // A blocked reader advertises its buffer size plus one (spec 5.3/5.5:
    // bytes a pending read takes never count against the quota).
    control.advertised_read().min(n)
}

impl Conn {
    /// Writes one write (spec 4.7, 5.2, 5.5). Returns the bytes written
    /// (all, or for a nonblocking end possibly fewer, even 0).
    pub(crate) fn write(&self, buf: &[u8], nonblocking: bool) -> io::Result<usize> {
        let (half, _) = self.tx()?;
        let mut tx = self.locked(half, HALF_TX)?;
        let message = self.pipe_type == PipeType::Message;
        // A killed peer leaves no hang-up hint: ask now and then. Plain
        // loads and stores suffice: we hold the `tx` lock.
        let writes = self.writes_since_check.load(Relaxed) + 1;
        let now = coarse_now_ns();
        let due = self.gone.load(Relaxed)
            || writes >= LIVENESS_EVERY
            || now.wrapping_sub(self.last_check_ns.load(Relaxed)) >= LIVENESS_AGE_NS;
        if due {
            self.writes_since_check.store(0, Relaxed);
            self.last_check_ns.store(now, Relaxed);
            if self.peer_gone() {
                return Err(Error::io(ErrorKind::NoData));
            }
        } else {
            self.writes_since_check.store(writes, Relaxed);
        }
        if buf.is_empty() {
            // The state outcomes come first (spec 4.7): a cut instance or a
            // closed peer fails even a write of nothing. A write of nothing
            // never reaches the engine, which would see a closing peer's
            // hang-up hint, so look at the hint here (a kill is caught by
            // the periodic check above, as for other writes).
            if self.is_disconnected() {
                return Err(Error::io(ErrorKind::PipeNotConnected));
            }
            let hinted = self.words.control().hangup_hinted();
            if hinted && self.peer_gone() {
                return Err(Error::io(ErrorKind::NoData));
            }
            if !message {
                return Ok(0);
            }
            // An empty message: queued, occupies no quota, never waits.
            return match tx.try_write(&[]) {
                Ok(true) => Ok(0),
                Ok(false) => tx
                    .write(&[])
                    .map(|()| 0)
                    .map_err(|e| engine(e, ErrorKind::NoData)),
                Err(e) => Err(engine(e, ErrorKind::NoData)),
            };
        }
        if nonblocking {
            return self.write_nonblocking(&mut tx, buf, message);
        }
        let n = buf.len() as u64;
        // `words` is the ring this end writes.
        let control = self.words.control();
        // A write that may pend on the quota is claimed (spec 5.2, 7.5)
        // under the writer lock *before* any of its bytes is published: a
        // kill after publication must find the claim in place, or the rest
        // of the write would stay readable. Whether it may pend is first
        // guessed from this handle's lower bound of `consumed` (too high a
        // guess only costs the token lookup) and then decided under the lock.
        // The claimant is named by this process's slot, the one the write's
        // admission lock names it by (one atomic load once made; if it
        // cannot be made, the write goes unmarked: the safe side).
        let queued_guess = tx
            .written()
            .saturating_sub(self.consumed_hint.load(Relaxed));
        let token = if queued_guess.saturating_add(n) > u64::from(self.quota) {
            self.end.holder_token().ok()
        } else {
            None
        };
        let quota = u64::from(self.quota);
        let (end, claim) = loop {
            // The claim is kept out here, not returned through
            // `send_marked`: a write cancelled while it publishes must
            // still withdraw it.
            let claimed = std::cell::RefCell::new(None);
            let decide = |start: u64| {
                let (Some(token), Some(end)) = (token, start.checked_add(n)) else {
                    return Some(()); // unmarked: the safe side
                };
                if !pending::may_pend(control, end, quota) {
                    return Some(());
                }
                match PendingMark::claim(control, token, start, end) {
                    Some(mark) => *claimed.borrow_mut() = Some(mark),
                    // Every claim is another write's: decline, publish
                    // nothing, and wait for one (unless none of them can
                    // ever be freed: then unmarked, the safe side).
                    None if pending::claims_judgeable(control) => return None,
                    None => {}
                }
                Some(())
            };
            let sent = tx.send_marked(buf, None, decide);
            let mut claim = claimed.into_inner();
            match sent {
                Ok(Some((end, ()))) => break (end, claim),
                Ok(None) => {
                    // Not holding the half meanwhile: a nonblocking write
                    // or an empty message of this handle never waits
                    // behind a write waiting for a claim.
                    drop(tx);
                    self.wait_for_mark(n)?;
                    tx = self.locked(half, HALF_TX)?;
                }
                Err(e) => {
                    if let (shmpipe_engine::Error::Cancelled, Some(claim)) =
                        (&e.error, claim.take())
                    {
                        // Spec 7.4: the unread rest of a cancelled write is
                        // withdrawn (the part not yet published never will
                        // be).
                        claim.withdraw(e.published as u64);
                    }
                    let kind = if e.published == 0 {
                        ErrorKind::NoData
                    } else {
                        ErrorKind::BrokenPipe
                    };
                    self.note_gone(&e.error);
                    return Err(engine(e.error, kind));
                }
            }
        };
        drop(tx);
        self.complete_by_quota(end, n, claim)?;
        Ok(buf.len())
    }

    /// Spec 5.2 after publication, for a copy or a zero-copy write of `n`
    /// bytes ending at payload position `end`: returns once the write is
    /// within the quota (a pending read's share counted, withdrawn bytes
    /// ahead of it not), waiting if need be; a cancelled wait withdraws the
    /// write's unread rest through its `claim` (spec 7.4).
    pub(super) fn complete_by_quota(
        &self,
        end: u64,
        n: u64,
        claim: Option<PendingMark<'_>>,
    ) -> io::Result<()> {
        let control = self.words.control();
        let target = end.saturating_sub(u64::from(self.quota));
        // `consumed` only grows, so any value once read is a lower bound:
        // while it already proves the quota met, the reader's cache line
        // (which it writes on every read) need not be pulled over.
        if self.consumed_hint.load(Relaxed) >= target {
            return Ok(());
        }
        let consumed = control.consumed().min(end);
        self.consumed_hint.store(consumed, Relaxed);
        // Bytes of a cancelled write still queued ahead will never be read:
        // they do not hold this write back (spec 7.4).
        let withdrawn =
            |consumed: u64| consumed.saturating_add(pending::withdrawn_unread(control, end));
        if consumed >= target || withdrawn(consumed) >= target {
            return Ok(());
        }
        // Bytes a pending read takes never count against the quota (spec
        // 5.2, 5.3): if nothing was unread ahead of this write, the read
        // advertised in the ring takes its share at once, and the write
        // completes when the rest fits. Asked only here, on the way to
        // waiting, so the fast path never touches the reader's words.
        // `end` comes from shared counters: nonsense skips the share.
        if let Some(start) = end.checked_sub(n).filter(|&start| consumed >= start) {
            let share = advertised_share(control, n);
            // What the read already consumed of its share counts once.
            if consumed.max(start + share) >= target {
                return Ok(());
            }
        }
        let waiter = self.waiter()?;
        let r = waiter.wait_until(None, || withdrawn(control.consumed()) >= target);
        match (&r, claim) {
            (Err(shmpipe_engine::Error::Cancelled), Some(claim)) => claim.withdraw(n),
            (_, claim) => drop(claim),
        }
        r.map_err(|e| {
            self.note_gone(&e);
            engine(e, ErrorKind::BrokenPipe)
        })
    }

    /// A write of `n` bytes that may pend found the pending-write mark
    /// taken by another pending write: waits, cancellably, until the mark
    /// is free, the write would no longer pend, or the claim holding it is
    /// spent (a withdrawn or dead write none of whose bytes is left unread,
    /// which is then cleared here: a reader asleep on an empty ring would
    /// never clear it). Nothing of the write is published meanwhile, so a
    /// cancel or a peer's close leaves nothing behind. The caller does not
    /// hold its half meanwhile, so nothing of the handle waits behind it.
    ///
    /// Waiting, rather than publishing unmarked, is what makes every pending
    /// write withdrawable (spec 7.4) and droppable when its process dies
    /// (7.5), however many pend at once on one ring. Its cost, only when
    /// more writes pend at once than a ring has claims: the reader sees
    /// this write's bytes only once a write pending ahead of it completes
    /// (as soon as the reader has taken all but a quota of them), and a
    /// write issued meanwhile that needs no claim (an empty message, a
    /// `transact` request, a write that fits) or wins the freed claim goes
    /// into the pipe before it.
    pub(super) fn wait_for_mark(&self, n: u64) -> io::Result<()> {
        let control = self.words.control();
        let quota = u64::from(self.quota);
        loop {
            if pending::clear_spent_claim(control, &self.end) {
                return Ok(());
            }
            let waiter = self.waiter()?;
            let free = || {
                pending::claim_free(control)
                    || !pending::may_pend(control, control.written().saturating_add(n), quota)
                    || pending::spent_claim(control, &self.end)
            };
            if let Err(e) = waiter.wait_until(None, free) {
                self.note_gone(&e);
                return Err(engine(e, ErrorKind::NoData));
            }
            if !pending::spent_claim(control, &self.end) {
                return Ok(());
            }
        }
    }

    fn write_nonblocking(&self, tx: &mut Sender, buf: &[u8], message: bool) -> io::Result<usize> {
        let n = buf.len() as u64;
        let queued = tx.written().saturating_sub(tx.consumed());
        let taken = if queued == 0 {
            advertised_share(tx.ring().control(), n)
        } else {
            0
        };
        let fits = queued.saturating_add(n - taken) <= u64::from(self.quota);
        let all = if fits { tx.try_write(buf) } else { Ok(false) };
        let written = match all {
            Ok(true) => return Ok(buf.len()),
            // Byte pipe: the pending read gets its share, nothing is queued.
            // Message pipe: nothing at all (spec 5.5).
            Ok(false) if !message && taken > 0 => match tx.try_write(&buf[..taken as usize]) {
                Ok(true) => return Ok(taken as usize),
                Ok(false) => 0,
                Err(e) => return Err(engine(e, ErrorKind::NoData)),
            },
            Ok(false) => 0,
            Err(e) => return Err(engine(e, ErrorKind::NoData)),
        };
        // "Nothing written" must not hide a peer that is gone (the write
        // path that found no room never asked the engine).
        if self.is_disconnected() {
            return Err(Error::io(ErrorKind::PipeNotConnected));
        }
        if self.peer_gone() {
            return Err(Error::io(ErrorKind::NoData));
        }
        Ok(written)
    }
}
