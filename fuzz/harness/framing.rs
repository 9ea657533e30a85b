//! Fuzz body: record framing against a model.
//!
//! A producer writes messages of 0 to 4× the ring capacity (whole records,
//! zero-copy reservations, or fragments for long ones, sometimes aborted
//! half-way) while a consumer reads them back in every mode with buffers of
//! random sizes. A [`Model`] keeps the published records in a `VecDeque`;
//! after every step the engine must agree with it on the exact bytes, the
//! message boundaries ([`MessageRead::end`]), peeks, `available()` and the
//! progress counters. The ring itself (positions, wrapping, padding, the
//! shared consumer state) is what is under test; the model is the simple
//! definition of the documented semantics.
//!
//! [`MessageRead::end`]: shmpipe_engine::MessageRead::end

use crate::input::Input;
use shmpipe_engine::{Consumer, Error, HeapRing, Producer};
use std::collections::VecDeque;

/// Upper bound on operations per input.
const MAX_OPS: usize = 2000;

/// A published record, as the consumer should see it (padding is invisible).
#[derive(Debug, Clone)]
struct Rec {
    data: Vec<u8>,
    /// Bytes already consumed.
    offset: usize,
    /// Header `remaining`: bytes of the same write in later records.
    remaining: u64,
    abort: bool,
}

/// The ring as a queue of records.
#[derive(Debug, Clone, Default)]
struct Model {
    recs: VecDeque<Rec>,
    /// The last fully consumed record left its write open.
    continues: bool,
    written: u64,
    consumed: u64,
    /// `remaining` of the last published record.
    open: u64,
}

impl Model {
    fn publish(&mut self, data: &[u8], remaining: u64) {
        self.written += data.len() as u64;
        self.open = remaining;
        self.recs.push_back(Rec {
            data: data.to_vec(),
            offset: 0,
            remaining,
            abort: false,
        });
    }

    fn publish_abort(&mut self) {
        self.open = 0;
        self.recs.push_back(Rec {
            data: Vec::new(),
            offset: 0,
            remaining: 0,
            abort: true,
        });
    }

    fn pop(&mut self) {
        let r = self.recs.pop_front().expect("a record to pop");
        self.continues = r.remaining > 0 && !r.abort;
    }

    /// Moves up to `n` bytes of the head record to `out`.
    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> usize {
        let r = self.recs.front_mut().expect("a head record");
        let k = (r.data.len() - r.offset).min(n);
        out.extend_from_slice(&r.data[r.offset..r.offset + k]);
        r.offset += k;
        self.consumed += k as u64;
        k
    }

    fn head_done(&self) -> bool {
        self.recs.front().is_some_and(|r| r.offset == r.data.len())
    }

    /// Byte-stream read: across records and writes, stopping before an empty
    /// message that follows copied bytes (an empty message at the head is
    /// consumed as a 0-byte read); aborts are skipped.
    fn read_stream(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut found = false;
        while let Some(r) = self.recs.front() {
            if r.abort {
                self.pop();
                continue;
            }
            found = true;
            if r.data.is_empty() {
                if out.is_empty() {
                    self.pop();
                }
                break;
            }
            if self.take(n - out.len(), &mut out) == 0 {
                break;
            }
            if self.head_done() {
                self.pop();
            }
        }
        found.then_some(out)
    }

    /// Message read: the head message only; `end` when its last byte was
    /// copied or it was empty. An abort that ends a message cut short (its
    /// write was open) is never an end: a read that copied bytes returns
    /// them unfinished and leaves the abort; a read that finds it at the
    /// head consumes it and reports the cut (`Err`).
    fn read_message(&mut self, n: usize) -> Result<Option<(Vec<u8>, bool)>, Cut> {
        let mut out = Vec::new();
        let mut found = false;
        loop {
            let Some(r) = self.recs.front() else {
                return Ok(found.then_some((out, false)));
            };
            if r.abort {
                if !self.continues {
                    self.pop();
                    continue;
                }
                if !out.is_empty() {
                    return Ok(Some((out, false)));
                }
                self.pop();
                return Err(Cut);
            }
            found = true;
            self.take(n - out.len(), &mut out);
            if self.head_done() {
                let remaining = self.recs.front().map_or(0, |r| r.remaining);
                self.pop();
                if remaining == 0 {
                    return Ok(Some((out, true)));
                }
            }
            if out.len() == n {
                return Ok(Some((out, false)));
            }
        }
    }

    /// What a stream read would copy, without consuming.
    fn peek_stream(&self, n: usize) -> Vec<u8> {
        self.clone().read_stream(n).unwrap_or_default()
    }

    /// What a message read would copy, without consuming, and the bytes of
    /// the head message left after those (counting unpublished fragments).
    fn peek_message(&self, n: usize) -> (Vec<u8>, u64) {
        let copied = self
            .clone()
            .read_message(n)
            .ok()
            .flatten()
            .map(|(d, _)| d)
            .unwrap_or_default();
        let left = match self.recs.front() {
            Some(r) if !r.abort => (r.data.len() - r.offset) as u64 + r.remaining,
            _ => 0,
        };
        let left = left.saturating_sub(copied.len() as u64);
        (copied, left)
    }
}

/// The model's [`Error::MessageCut`].
#[derive(Debug, PartialEq)]
struct Cut;

/// A write whose fragments are still being published.
struct Pending {
    data: Vec<u8>,
    sent: usize,
}

/// Distinct bytes per message and position, so a byte from the wrong place
/// is caught.
fn payload(id: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32 ^ id.rotate_left(11)).wrapping_mul(0x9E37_79B1) >> 24) as u8)
        .collect()
}

/// Runs one fuzz input.
pub fn check(data: &[u8]) {
    let input = Input::new(data);
    let cap = 256usize << (input.u8() % 5);
    let (mut tx, mut rx) = HeapRing::new(cap).expect("valid capacity").split();
    let max_record = tx.max_record();
    let mut model = Model::default();
    let mut writing: Option<Pending> = None;
    let mut next_id = 0u32;
    let mut buf = vec![0u8; 4 * cap + 1];

    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        // Drained and published: any record up to `max_record` must fit.
        let empty = model.recs.is_empty();
        // A reservation may only fail while the free space the consumer
        // published is below what `space_needed` says it takes: a blocked
        // writer waits for exactly that, so failing beyond it would spin.
        let fits = |tx: &Producer<std::sync::Arc<HeapRing>>, len: usize, exact: bool| {
            tx.free_hint() >= tx.space_needed(len, exact)
        };
        match input.u8() % 16 {
            // A new write (or the next fragment of the current one).
            0..=4 => {
                let len = input.size(4 * cap);
                let how = input.u8() % 4;
                if writing.is_none() {
                    next_id += 1;
                    let data = payload(next_id, len);
                    match how {
                        0 => {
                            let fit = fits(&tx, len, true);
                            let r = tx.try_push(&data, 0);
                            if len > max_record {
                                assert!(
                                    matches!(r, Err(Error::TooLarge { .. })),
                                    "try_push({len}) over max_record {max_record}: {r:?}"
                                );
                            } else if r.expect("try_push") {
                                model.publish(&data, 0);
                            } else {
                                assert!(!empty, "try_push({len}) refused on an empty ring");
                                assert!(!fit, "try_push({len}) refused with the space it needs");
                            }
                        }
                        1 if len <= max_record => {
                            let quiet = input.u8() & 1 == 1;
                            let fit = fits(&tx, len, true);
                            match tx.try_reserve(len).expect("try_reserve") {
                                Some(mut g) => {
                                    assert_eq!(g.len(), len);
                                    g.as_mut_slice().copy_from_slice(&data);
                                    if quiet {
                                        g.commit_quiet(0);
                                        tx.notify();
                                    } else {
                                        g.commit(0);
                                    }
                                    model.publish(&data, 0);
                                }
                                None => {
                                    assert!(!empty, "try_reserve({len}) refused on an empty ring");
                                    assert!(
                                        !fit,
                                        "try_reserve({len}) refused with the space it needs"
                                    );
                                }
                            }
                        }
                        _ => writing = Some(Pending { data, sent: 0 }),
                    }
                }
                if let Some(w) = &mut writing {
                    let rest = w.data.len() - w.sent;
                    let fit = fits(&tx, rest, false);
                    match tx.try_reserve_up_to(rest).expect("try_reserve_up_to") {
                        Some(mut g) => {
                            let n = g.len();
                            assert!(
                                n <= rest && (n > 0 || rest == 0),
                                "fragment of {n} for {rest}"
                            );
                            g.fill(&w.data[w.sent..w.sent + n]);
                            g.commit((rest - n) as u64);
                            model.publish(&w.data[w.sent..w.sent + n], (rest - n) as u64);
                            w.sent += n;
                            if w.sent == w.data.len() {
                                writing = None;
                            }
                        }
                        None => {
                            assert!(!empty, "try_reserve_up_to({rest}) refused on an empty ring");
                            assert!(
                                !fit,
                                "try_reserve_up_to({rest}) refused with the space it needs"
                            );
                        }
                    }
                }
            }
            // A reservation dropped unpublished changes nothing.
            5 => {
                if writing.is_none() {
                    let len = input.size(max_record);
                    if let Some(mut g) = tx.try_reserve(len).expect("try_reserve") {
                        g.as_mut_slice().fill(0xEE);
                    }
                }
            }
            // The writer gives up its current write.
            6 => {
                let published = writing.as_ref().is_some_and(|w| w.sent > 0);
                if writing.is_none() || !published {
                    writing = None;
                    assert!(tx.try_abort_open_write().expect("abort"));
                } else {
                    let fit = fits(&tx, 0, true);
                    if tx.try_abort_open_write().expect("abort") {
                        model.publish_abort();
                        writing = None;
                    } else {
                        assert!(!empty, "abort refused on an empty ring");
                        assert!(!fit, "abort refused with the space it needs");
                    }
                }
            }
            7 => {
                let n = input.size(buf.len() - 1);
                let got = rx.read_stream(&mut buf[..n]).expect("read_stream");
                let want = model.read_stream(n);
                assert_eq!(got.map(|k| &buf[..k]), want.as_deref(), "read_stream({n})");
            }
            8 | 9 => {
                let n = input.size(buf.len() - 1);
                let got = match rx.read_message(&mut buf[..n]) {
                    Ok(m) => Ok(m.map(|m| (buf[..m.len].to_vec(), m.end))),
                    Err(Error::MessageCut) => Err(Cut),
                    Err(e) => panic!("read_message({n}): {e}"),
                };
                assert_eq!(got, model.read_message(n), "read_message({n})");
            }
            10 => {
                let n = input.size(buf.len() - 1);
                let k = rx.peek_stream(&mut buf[..n]).expect("peek_stream");
                assert_eq!(&buf[..k], &model.peek_stream(n)[..], "peek_stream({n})");
            }
            11 => {
                let n = input.size(buf.len() - 1);
                let (k, left) = rx.peek_message(&mut buf[..n]).expect("peek_message");
                let (want, want_left) = model.peek_message(n);
                assert_eq!(
                    (&buf[..k], left),
                    (&want[..], want_left),
                    "peek_message({n})"
                );
            }
            12 => {
                let take = input.u16();
                while model.recs.front().is_some_and(|r| r.abort) {
                    model.pop();
                }
                match rx.read_record().expect("read_record") {
                    Some(g) => {
                        let r = model.recs.front().expect("the engine found a record");
                        assert_eq!(g.as_slice(), &r.data[r.offset..], "read_record");
                        assert_eq!(g.remaining_in_write(), r.remaining);
                        let n = usize::from(take) % (g.as_slice().len() + 1);
                        g.release(n);
                        let mut sink = Vec::new();
                        model.take(n, &mut sink);
                        if model.head_done() {
                            model.pop();
                        }
                    }
                    None => assert!(model.recs.is_empty(), "read_record found nothing"),
                }
            }
            13 => {
                rx.discard_all().expect("discard_all");
                while let Some(r) = model.recs.front() {
                    model.consumed += (r.data.len() - r.offset) as u64;
                    model.pop();
                }
            }
            // Either side taking over from the shared state must continue
            // exactly where the previous one stopped.
            14 => {
                if input.u8() & 1 == 0 {
                    // SAFETY: single thread, no grant alive: the old
                    // producer is not used again (the assignment drops it).
                    tx = unsafe { Producer::new(tx.storage().clone()) }.expect("Producer::new");
                } else {
                    tx.resync().expect("Producer::resync");
                }
            }
            _ => {
                if input.u8() & 1 == 0 {
                    // SAFETY: as for the producer above.
                    rx = unsafe { Consumer::new(rx.storage().clone()) }.expect("Consumer::new");
                } else {
                    rx.resync().expect("Consumer::resync");
                }
            }
        }
        assert_eq!(tx.written(), model.written, "written");
        assert_eq!(rx.consumed(), model.consumed, "consumed");
        assert_eq!(tx.consumed(), model.consumed, "published consumed");
        assert_eq!(rx.available(), model.written - model.consumed, "available");
        assert_eq!(rx.has_records(), !model.recs.is_empty(), "has_records");
        assert_eq!(tx.open_write(), model.open, "open_write");
    }
}
