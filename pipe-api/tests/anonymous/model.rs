//! A model check of anonymous pipes: random sequences of writes (blocking
//! and nonblocking, 0 to 3× the quota, and blocking writes larger than the
//! pipe's ring), reads (blocking, nonblocking, zero-length), peeks, flushes,
//! duplicating and closing write handles, run against a `VecDeque<u8>`
//! model of the queue and the quota rules of spec 5.2 / 5.5.
//!
//! Everything but a blocking write over the quota runs on the test thread
//! and is predicted exactly. A blocking write that must wait runs on its own
//! thread while this one reads it down; the model then checks both
//! directions of the completion rule: the write may not have returned while
//! more than the quota is unread (unread bytes only shrink, so a write seen
//! complete with more than the quota unread completed too early), and it
//! must return once the unread bytes fit the quota (hang-guarded). A write
//! larger than the ring cannot even be published whole until it is read
//! down, so it only completes because the reads drain it.
//!
//! The end stays open while any handle of it is: closing one of the two
//! write handles, also while the other one's write is in flight, must change
//! nothing for the reader; closing the last one at the end lets the reader
//! drain the rest and then see the end of the pipe (SEM-021, SEM-028).
//!
//! The seed is fixed, so a run is reproducible.

use crate::common;

use common::{within, Pending, HANG};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use shmpipe::{Error, ErrorKind, PipeBuilder, PipeReader, PipeWriter};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::{Duration, Instant};

/// The quotas the model runs with.
const QUOTAS: [u32; 5] = [1, 17, 512, 4096, 5000];

/// The ring `PipeBuilder` allocates for `quota` (as `ring_capacity` in
/// src/quota.rs computes it). Only used to size writes "larger than the
/// ring"; `big_writes_are_larger_than_the_ring` fails if the two drift
/// apart so that such writes would fit.
fn ring_capacity(quota: usize) -> usize {
    (2 * quota + 16 * 1024)
        .next_power_of_two()
        .clamp(64 * 1024, 1 << 30)
}

#[derive(Debug, Clone)]
enum Op {
    /// Nonblocking write: all or nothing (spec 5.5, no read pending).
    TryWrite { len: usize, handle: usize },
    /// Blocking write; if it must wait, it is read down in `chunk`s. With
    /// `close_other`, the other write handle is closed while it is in
    /// flight.
    Write {
        len: usize,
        chunk: usize,
        handle: usize,
        close_other: bool,
    },
    /// A read of `len` bytes (never issued blocking on an empty pipe).
    Read { len: usize, nonblocking: bool },
    /// Peek with a buffer of `len` bytes, or none.
    Peek { len: Option<usize> },
    /// Flush: returns at once when everything was read, else after the
    /// test thread read everything.
    Flush { handle: usize },
    /// Replace one writer handle, or the reader, with a fresh duplicate (a
    /// closed writer slot gets a duplicate of the open one).
    Reclone { which: usize },
    /// Close one write handle, if the other is open too.
    CloseWriter { handle: usize },
}

fn op(quota: usize) -> impl Strategy<Value = Op> {
    let len = 0..=3 * quota;
    let ring = ring_capacity(quota);
    prop_oneof![
        3 => (len.clone(), 0..2usize).prop_map(|(len, handle)| Op::TryWrite { len, handle }),
        // Read-down chunks of at least a quarter of the quota: thousands of
        // tiny reads against a waiting writer test nothing more, slowly.
        3 => (
            len.clone(),
            (quota / 4).max(1)..=quota + 7,
            0..2usize,
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(len, chunk, handle, close_other)| Op::Write {
                len,
                chunk,
                handle,
                close_other,
            }),
        // Larger than the ring: the writer publishes it piecewise as the
        // reads free room, so chunks are sized to the ring, not the quota.
        1 => (
            ring + 1..=2 * ring + 3 * quota,
            1024..=ring / 2,
            0..2usize,
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(len, chunk, handle, close_other)| Op::Write {
                len,
                chunk,
                handle,
                close_other,
            }),
        4 => (len.clone(), any::<bool>()).prop_map(|(len, nonblocking)| Op::Read { len, nonblocking }),
        2 => proptest::option::of(len).prop_map(|len| Op::Peek { len }),
        1 => (0..2usize).prop_map(|handle| Op::Flush { handle }),
        1 => (0..3usize).prop_map(|which| Op::Reclone { which }),
        1 => (0..2usize).prop_map(|handle| Op::CloseWriter { handle }),
    ]
}

/// A quota, the operations, the chunk the reader drains the rest with at
/// the end, and which write handle closes first.
fn case() -> impl Strategy<Value = (u32, Vec<Op>, usize, usize)> {
    proptest::sample::select(&QUOTAS[..]).prop_flat_map(|q| {
        (
            Just(q),
            proptest::collection::vec(op(q as usize), 1..60),
            1..=2 * q as usize + 1,
            0..2usize,
        )
    })
}

struct Harness {
    quota: usize,
    reader: PipeReader,
    /// Two duplicate handles of the write end; at most one is closed at a
    /// time before [`Harness::finish`].
    writers: [Option<PipeWriter>; 2],
    model: VecDeque<u8>,
    counter: u32,
}

impl Harness {
    fn new(quota: u32) -> Harness {
        let (reader, w) = PipeBuilder::new().buffer_size(quota).build().unwrap();
        let w2 = w.try_clone().unwrap();
        Harness {
            quota: quota as usize,
            reader,
            writers: [Some(w), Some(w2)],
            model: VecDeque::new(),
            counter: 0,
        }
    }

    /// Fresh bytes: every write differs from its neighbours.
    fn data(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.counter = self.counter.wrapping_add(1);
                (self.counter.wrapping_mul(131) ^ (self.counter >> 7)) as u8
            })
            .collect()
    }

    /// Handle `h`, or the other one if `h` is closed.
    fn pick(&self, h: usize) -> usize {
        if self.writers[h].is_some() {
            h
        } else {
            1 - h
        }
    }

    /// Checks that `got` are the next bytes of the model, and consumes them.
    fn expect_head(&mut self, got: &[u8]) -> Result<(), TestCaseError> {
        prop_assert!(got.len() <= self.model.len(), "read more than was written");
        let want: Vec<u8> = self.model.drain(..got.len()).collect();
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            return Err(TestCaseError::fail(format!(
                "byte {i} of a {}-byte read: {} instead of {}",
                got.len(),
                got[i],
                want[i]
            )));
        }
        Ok(())
    }

    /// Reads `len` bytes (or all that is queued, if fewer), all of which
    /// are published, and checks them against the model's head.
    fn read_checked(&mut self, len: usize) -> Result<usize, TestCaseError> {
        let mut buf = vec![0u8; len];
        let n = self.reader.read_pipe(&mut buf).unwrap();
        let want = len.min(self.model.len());
        prop_assert_eq!(n, want, "read of {} with {} queued", len, self.model.len());
        self.expect_head(&buf[..n])?;
        Ok(n)
    }

    /// One nonblocking read of up to `len` bytes while a write is being
    /// published (so it may find nothing yet: then it yields).
    fn read_down(&mut self, len: usize) -> Result<(), TestCaseError> {
        self.reader.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; len];
        let r = self.reader.read_pipe(&mut buf);
        self.reader.set_nonblocking(false).unwrap();
        match r {
            Ok(n) => {
                prop_assert!(n >= 1 && n <= len.min(self.model.len()));
                self.expect_head(&buf[..n])?;
            }
            Err(e) => {
                prop_assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData), "{}", e);
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        Ok(())
    }

    /// The write end is open (a handle of it lives somewhere): what is
    /// queued is all there, and an empty pipe is empty, not ended.
    fn check_end_open(&mut self) -> Result<(), TestCaseError> {
        let p = self
            .reader
            .peek(None)
            .map_err(|e| TestCaseError::fail(format!("peek with the write end open: {e}")))?;
        prop_assert_eq!(p.total_available, self.model.len() as u64);
        if self.model.is_empty() {
            self.reader.set_nonblocking(true).unwrap();
            let e = self.reader.read_pipe(&mut [0u8; 1]).unwrap_err();
            self.reader.set_nonblocking(false).unwrap();
            prop_assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData), "{}", e);
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let q = self.quota;
        match *op {
            Op::TryWrite { len, handle } => {
                let data = self.data(len);
                let fits = self.model.len() + len <= q;
                let w = self.writers[self.pick(handle)].as_mut().unwrap();
                w.set_nonblocking(true).unwrap();
                let n = w.try_write(&data).unwrap();
                w.set_nonblocking(false).unwrap();
                let want = if fits { len } else { 0 };
                prop_assert_eq!(n, want, "nonblocking write of {}", len);
                if n == len {
                    self.model.extend(&data);
                }
            }
            Op::Write {
                len,
                chunk,
                handle,
                close_other,
            } => {
                let h = self.pick(handle);
                let data = self.data(len);
                let w = self.writers[h].take().unwrap();
                self.model.extend(&data);
                let write = Pending::start("blocking write", move || {
                    let r = w.try_write(&data);
                    (r, w)
                });
                // The only handle left on this thread closes; the write's
                // handle keeps the end open.
                let closed = close_other && self.writers[1 - h].take().is_some();
                let start = Instant::now();
                let (res, w) = loop {
                    if self.model.len() <= q {
                        // Everything ahead of the write's end fits: it
                        // must return (hang-guarded).
                        break write.finish();
                    }
                    if write.try_finish().is_some() {
                        return Err(TestCaseError::fail(format!(
                            "write of {len} returned with {} > quota {q} unread",
                            self.model.len()
                        )));
                    }
                    prop_assert!(start.elapsed() < HANG, "read-down never ended");
                    self.read_down(chunk)?;
                };
                prop_assert_eq!(res.unwrap(), len);
                self.writers[h] = Some(w);
                prop_assert_eq!(self.reader.available(), self.model.len() as u64);
                if closed {
                    self.check_end_open()?;
                }
            }
            Op::Read { len, nonblocking } => {
                self.reader.set_nonblocking(nonblocking).unwrap();
                if len == 0 && !self.model.is_empty() {
                    // Data queued: 0 at once, nothing consumed.
                    prop_assert_eq!(self.reader.read_pipe(&mut []).unwrap(), 0);
                } else if len == 0 {
                    // Empty: a blocking zero-length read waits for data
                    // (ReadFile), so only the nonblocking one is tried.
                    self.reader.set_nonblocking(true).unwrap();
                    let e = self.reader.read_pipe(&mut []).unwrap_err();
                    prop_assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                } else if self.model.is_empty() {
                    self.reader.set_nonblocking(true).unwrap();
                    let e = self.reader.read_pipe(&mut vec![0u8; len]).unwrap_err();
                    prop_assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                    prop_assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData));
                } else {
                    self.read_checked(len)?;
                }
                self.reader.set_nonblocking(false).unwrap();
            }
            Op::Peek { len } => {
                let mut buf = vec![0u8; len.unwrap_or(0)];
                let p = self.reader.peek(len.map(|_| buf.as_mut_slice())).unwrap();
                let want = len.unwrap_or(0).min(self.model.len());
                prop_assert_eq!(p.copied, want);
                prop_assert_eq!(p.total_available, self.model.len() as u64);
                prop_assert_eq!(p.left_in_message, 0);
                for (a, b) in buf[..want].iter().zip(self.model.iter()) {
                    prop_assert_eq!(a, b);
                }
            }
            Op::Flush { handle } => {
                let h = self.pick(handle);
                let w = self.writers[h].take().unwrap();
                let flush = Pending::start("flush", move || (w.flush_buffers(), w));
                while !self.model.is_empty() {
                    flush.assert_pending_now("bytes are unread");
                    let n = self.model.len();
                    self.read_checked(n)?;
                }
                let (res, w) = flush.finish();
                res.unwrap();
                self.writers[h] = Some(w);
            }
            Op::Reclone { which } => match which {
                0 | 1 => {
                    let from = self.pick(which);
                    let fresh = self.writers[from].as_ref().unwrap().try_clone().unwrap();
                    self.writers[which] = Some(fresh);
                }
                _ => self.reader = self.reader.try_clone().unwrap(),
            },
            Op::CloseWriter { handle } => {
                if self.writers.iter().all(Option::is_some) {
                    self.writers[handle] = None;
                    self.check_end_open()?;
                }
            }
        }
        prop_assert_eq!(self.reader.available(), self.model.len() as u64);
        Ok(())
    }

    /// Closes the write handles one by one: the first of two changes
    /// nothing; after the last, the reader gets the rest in `chunk`s, then
    /// the end of the pipe.
    fn finish(mut self, chunk: usize, first: usize) -> Result<(), TestCaseError> {
        if self.writers.iter().all(Option::is_some) {
            self.writers[first] = None;
            self.check_end_open()?;
        }
        // With nothing queued, a read already waiting when the last handle
        // closes ends too (SEM-112).
        let waiting = self.model.is_empty().then(|| {
            let r = self.reader.try_clone().unwrap();
            Pending::start("read waiting on the empty pipe", move || {
                r.read_pipe(&mut [0u8; 1])
            })
        });
        self.writers = [None, None];
        if let Some(read) = waiting {
            let r = read.finish();
            prop_assert!(
                r.as_ref()
                    .is_err_and(|e| Error::kind_of(e) == Some(ErrorKind::BrokenPipe)),
                "read waiting when the last write handle closed: {:?}",
                r
            );
        }
        while !self.model.is_empty() {
            self.read_checked(chunk)?;
        }
        let reader = self.reader;
        let (blocking, nonblocking, peek, std_read) = within("reads at the end", move || {
            let mut reader = reader;
            let blocking = reader.read_pipe(&mut [0u8; 1]);
            reader.set_nonblocking(true).unwrap();
            let nonblocking = reader.read_pipe(&mut [0u8; 1]);
            reader.set_nonblocking(false).unwrap();
            let peek = reader.peek(None);
            let std_read = reader.read(&mut [0u8; 1]);
            (blocking, nonblocking, peek, std_read)
        });
        for (what, e) in [
            ("blocking read", blocking.map(|_| ()).err()),
            ("nonblocking read", nonblocking.map(|_| ()).err()),
            ("peek", peek.map(|_| ()).err()),
        ] {
            prop_assert_eq!(
                e.as_ref().and_then(Error::kind_of),
                Some(ErrorKind::BrokenPipe),
                "{} at the end: {:?}",
                what,
                e
            );
        }
        prop_assert_eq!(std_read.ok(), Some(0), "Read::read at the end");
        Ok(())
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x5348_4d50_4950_4521),
        failure_persistence: None,
        max_shrink_iters: 300,
        ..Config::default()
    })]

    #[test]
    fn anonymous_pipe_matches_the_queue_model((quota, ops, chunk, first) in case()) {
        let mut h = Harness::new(quota);
        for op in &ops {
            h.step(op)?;
        }
        h.finish(chunk, first)?;
    }
}

/// The model's big writes must not fit the ring, or they would test
/// nothing the ordinary writes do not: with nobody reading, a write of
/// `ring_capacity(q) + 1` bytes stays partly unpublished, for every quota.
#[test]
fn big_writes_are_larger_than_the_ring() {
    let pipes: Vec<_> = QUOTAS
        .iter()
        .map(|&q| {
            let (r, w) = PipeBuilder::new().buffer_size(q).build().unwrap();
            let len = ring_capacity(q as usize) + 1;
            let write = Pending::start("write larger than the ring", move || {
                (w.try_write(&vec![7u8; len]), w)
            });
            (q, r, len, write)
        })
        .collect();
    for (q, r, _, _) in &pipes {
        let start = Instant::now();
        while r.available() == 0 {
            assert!(start.elapsed() < HANG, "quota {q}: nothing was published");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for (q, r, len, write) in pipes {
        // Once the write sleeps, it published all it could: a ring of the
        // size assumed cannot hold the rest.
        write.assert_pending("nobody reads");
        let published = r.available();
        assert!(
            published < len as u64,
            "quota {q}: {published} of {len} bytes published with nobody reading"
        );
        let got = within("read the big write", move || {
            let mut r = r;
            let mut got = vec![0u8; len];
            r.read_exact(&mut got).map(|()| got)
        })
        .unwrap();
        assert!(got.iter().all(|&b| b == 7));
        assert_eq!(write.finish().0.unwrap(), len, "quota {q}");
    }
}
