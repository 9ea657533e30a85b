//! A model check of anonymous pipes: random sequences of writes (blocking
//! and nonblocking, 0 to 3× the quota), reads (blocking, nonblocking,
//! zero-length), peeks, flushes and handle duplication, run against a
//! `VecDeque<u8>` model of the queue and the quota rules of spec 5.2 / 5.5.
//!
//! Everything but a blocking write over the quota runs on the test thread
//! and is predicted exactly. A blocking write that must wait runs on its own
//! thread while this one reads it down; the model then checks both
//! directions of the completion rule: the write may not have returned while
//! more than the quota is unread (unread bytes only shrink, so a write seen
//! complete with more than the quota unread completed too early), and it
//! must return once the unread bytes fit the quota (hang-guarded).
//!
//! The seed is fixed, so a run is reproducible.

mod common;

use common::{Pending, HANG};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use shmpipe::{Error, ErrorKind, PipeBuilder, PipeReader, PipeWriter};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::Instant;

#[derive(Debug, Clone)]
enum Op {
    /// Nonblocking write: all or nothing (spec 5.5, no read pending).
    TryWrite { len: usize, handle: usize },
    /// Blocking write; if it must wait, it is read down in `chunk`s.
    Write {
        len: usize,
        chunk: usize,
        handle: usize,
    },
    /// A read of `len` bytes (never issued blocking on an empty pipe).
    Read { len: usize, nonblocking: bool },
    /// Peek with a buffer of `len` bytes, or none.
    Peek { len: Option<usize> },
    /// Flush: returns at once when everything was read, else after the
    /// test thread read everything.
    Flush { handle: usize },
    /// Replace one writer handle, or the reader, with a fresh duplicate.
    Reclone { which: usize },
}

fn op(quota: usize) -> impl Strategy<Value = Op> {
    let len = 0..=3 * quota;
    prop_oneof![
        3 => (len.clone(), 0..2usize).prop_map(|(len, handle)| Op::TryWrite { len, handle }),
        // Read-down chunks of at least a quarter of the quota: thousands of
        // tiny reads against a waiting writer test nothing more, slowly.
        3 => (len.clone(), (quota / 4).max(1)..=quota + 7, 0..2usize)
            .prop_map(|(len, chunk, handle)| Op::Write { len, chunk, handle }),
        4 => (len.clone(), any::<bool>()).prop_map(|(len, nonblocking)| Op::Read { len, nonblocking }),
        2 => proptest::option::of(len).prop_map(|len| Op::Peek { len }),
        1 => (0..2usize).prop_map(|handle| Op::Flush { handle }),
        1 => (0..3usize).prop_map(|which| Op::Reclone { which }),
    ]
}

fn case() -> impl Strategy<Value = (u32, Vec<Op>)> {
    prop_oneof![Just(1u32), Just(17), Just(512), Just(4096), Just(5000)]
        .prop_flat_map(|q| (Just(q), proptest::collection::vec(op(q as usize), 1..60)))
}

struct Harness {
    quota: usize,
    reader: PipeReader,
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

    fn writer(&mut self, h: usize) -> &mut PipeWriter {
        self.writers[h].as_mut().unwrap()
    }

    /// Reads `len` bytes (or all that is queued, if fewer), all of which
    /// are published, and checks them against the model's head.
    fn read_checked(&mut self, len: usize) -> Result<usize, TestCaseError> {
        let mut buf = vec![0u8; len];
        let n = self.reader.read_pipe(&mut buf).unwrap();
        let want = len.min(self.model.len());
        prop_assert_eq!(n, want, "read of {} with {} queued", len, self.model.len());
        for (i, b) in buf[..n].iter().enumerate() {
            prop_assert_eq!(
                *b,
                self.model.pop_front().unwrap(),
                "byte {} of the read",
                i
            );
        }
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
                for (i, b) in buf[..n].iter().enumerate() {
                    prop_assert_eq!(
                        *b,
                        self.model.pop_front().unwrap(),
                        "byte {} of the read",
                        i
                    );
                }
            }
            Err(e) => {
                prop_assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData), "{}", e);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let q = self.quota;
        match *op {
            Op::TryWrite { len, handle } => {
                let data = self.data(len);
                let fits = self.model.len() + len <= q;
                let w = self.writer(handle);
                w.set_nonblocking(true).unwrap();
                let n = w.try_write(&data).unwrap();
                w.set_nonblocking(false).unwrap();
                let want = if fits { len } else { 0 };
                prop_assert_eq!(n, want, "nonblocking write of {}", len);
                if n == len {
                    self.model.extend(&data);
                }
            }
            Op::Write { len, chunk, handle } => {
                let data = self.data(len);
                let w = self.writers[handle].take().unwrap();
                self.model.extend(&data);
                let write = Pending::start("blocking write", move || {
                    let r = w.try_write(&data);
                    (r, w)
                });
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
                self.writers[handle] = Some(w);
                prop_assert_eq!(self.reader.available(), self.model.len() as u64);
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
                let w = self.writers[handle].take().unwrap();
                let flush = Pending::start("flush", move || (w.flush_buffers(), w));
                while !self.model.is_empty() {
                    flush.assert_pending_now("bytes are unread");
                    let n = self.model.len();
                    self.read_checked(n)?;
                }
                let (res, w) = flush.finish();
                res.unwrap();
                self.writers[handle] = Some(w);
            }
            Op::Reclone { which } => match which {
                0 | 1 => {
                    let fresh = self.writer(which).try_clone().unwrap();
                    self.writers[which] = Some(fresh);
                }
                _ => self.reader = self.reader.try_clone().unwrap(),
            },
        }
        prop_assert_eq!(self.reader.available(), self.model.len() as u64);
        Ok(())
    }

    /// Closes the write end; the reader gets the rest, then the end.
    fn finish(mut self) -> Result<(), TestCaseError> {
        self.writers = [None, None];
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).unwrap();
        prop_assert!(rest.iter().eq(self.model.iter()), "tail differs");
        let e = self.reader.read_pipe(&mut [0u8; 1]).unwrap_err();
        prop_assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe));
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
    fn anonymous_pipe_matches_the_queue_model((quota, ops) in case()) {
        let mut h = Harness::new(quota);
        for op in &ops {
            h.step(op)?;
        }
        h.finish()?;
    }
}
