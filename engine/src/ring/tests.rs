//! Model tests of the ring: random operation sequences against a
//! `VecDeque` of messages.

use super::*;
use crate::record::{max_payload_in, FLAG_ABORT, FLAG_PAD};
use crate::HeapRing;
use core::sync::atomic::Ordering::Release;
use proptest::prelude::*;
use std::collections::VecDeque;

/// A message as the model sees it: the bytes published so far, its full
/// length, and how much the reader consumed.
#[derive(Debug)]
struct Msg {
    data: Vec<u8>,
    total: usize,
    consumed: usize,
}

impl Msg {
    fn complete(&self) -> bool {
        self.data.len() == self.total
    }
}

#[derive(Debug, Default)]
struct Model {
    q: VecDeque<Msg>,
}

impl Model {
    fn available(&self) -> u64 {
        self.q
            .iter()
            .map(|m| (m.data.len() - m.consumed) as u64)
            .sum()
    }

    fn read_stream(&mut self, buf_len: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut found = false;
        while let Some(m) = self.q.front_mut() {
            if m.total == 0 {
                found = true;
                if out.is_empty() {
                    self.q.pop_front();
                }
                break;
            }
            let avail = m.data.len() - m.consumed;
            if avail == 0 {
                break;
            }
            found = true;
            let n = avail.min(buf_len - out.len());
            if n == 0 {
                break;
            }
            out.extend_from_slice(&m.data[m.consumed..m.consumed + n]);
            m.consumed += n;
            if m.consumed == m.total {
                self.q.pop_front();
            }
        }
        found.then_some(out)
    }

    fn read_message(&mut self, buf_len: usize) -> Option<(Vec<u8>, bool)> {
        let m = self.q.front_mut()?;
        let avail = m.data.len() - m.consumed;
        if avail == 0 && !m.complete() {
            return None;
        }
        let n = avail.min(buf_len);
        let out = m.data[m.consumed..m.consumed + n].to_vec();
        m.consumed += n;
        if m.consumed == m.total {
            self.q.pop_front();
            return Some((out, true));
        }
        Some((out, false))
    }

    fn peek_stream(&self, buf_len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for m in &self.q {
            if m.total == 0 || out.len() == buf_len {
                break;
            }
            let avail = &m.data[m.consumed..];
            let n = avail.len().min(buf_len - out.len());
            out.extend_from_slice(&avail[..n]);
            if !m.complete() {
                break;
            }
        }
        out
    }

    fn peek_message(&self, buf_len: usize) -> (Vec<u8>, u64) {
        let Some(m) = self.q.front() else {
            return (Vec::new(), 0);
        };
        let avail = &m.data[m.consumed..];
        if avail.is_empty() && !m.complete() {
            return (Vec::new(), 0);
        }
        let n = avail.len().min(buf_len);
        (avail[..n].to_vec(), (m.total - m.consumed - n) as u64)
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// One record (if it fits now); zero-copy fill when `direct`.
    Push {
        len: usize,
        direct: bool,
    },
    /// Start a write of `len` bytes streamed in fragments.
    Start {
        len: usize,
    },
    /// Publish the next fragment of the write in progress, if space allows.
    Continue,
    ReadStream(usize),
    ReadMessage(usize),
    PeekStream(usize),
    PeekMessage(usize),
    /// Zero-copy read of up to `n` bytes of the head record.
    ReadRecord(usize),
}

fn op(cap: usize) -> impl Strategy<Value = Op> {
    let max_rec = max_payload_in(cap / 2);
    prop_oneof![
        3 => (0..=max_rec, any::<bool>()).prop_map(|(len, direct)| Op::Push { len, direct }),
        1 => (1..=4 * cap).prop_map(|len| Op::Start { len }),
        3 => Just(Op::Continue),
        2 => (0..2 * cap).prop_map(Op::ReadStream),
        2 => (0..2 * cap).prop_map(Op::ReadMessage),
        1 => (0..2 * cap).prop_map(Op::PeekStream),
        1 => (0..2 * cap).prop_map(Op::PeekMessage),
        1 => (0..2 * cap).prop_map(Op::ReadRecord),
    ]
}

fn pattern(id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (id.wrapping_mul(131) as usize + i * 7) as u8)
        .collect()
}

fn run(cap: usize, ops: Vec<Op>) {
    let (mut tx, mut rx) = HeapRing::new(cap).unwrap().split();
    let mut model = Model::default();
    let mut next_id = 0u64;
    // The write in progress: its full content and how much is published.
    let mut open: Option<(Vec<u8>, usize)> = None;
    for op in ops {
        match op {
            Op::Push { len, direct } => {
                if open.is_some() {
                    continue;
                }
                let data = pattern(next_id, len);
                if let Some(mut g) = tx.try_reserve(len).unwrap() {
                    if direct {
                        g.as_mut_slice().copy_from_slice(&data);
                    } else {
                        g.fill(&data);
                    }
                    g.commit(0);
                    next_id += 1;
                    model.q.push_back(Msg {
                        data,
                        total: len,
                        consumed: 0,
                    });
                }
            }
            Op::Start { len } => {
                if open.is_none() {
                    open = Some((pattern(next_id, len), 0));
                    next_id += 1;
                    model.q.push_back(Msg {
                        data: Vec::new(),
                        total: len,
                        consumed: 0,
                    });
                }
            }
            Op::Continue => {
                let Some((data, done)) = open.as_mut() else {
                    continue;
                };
                let rest = data.len() - *done;
                if let Some(mut g) = tx.try_reserve_up_to(rest).unwrap() {
                    let n = g.len();
                    assert!(n >= 1 && n <= rest);
                    g.fill(&data[*done..*done + n]);
                    g.commit((rest - n) as u64);
                    let m = model.q.back_mut().unwrap();
                    m.data.extend_from_slice(&data[*done..*done + n]);
                    *done += n;
                    if *done == data.len() {
                        open = None;
                    }
                }
            }
            Op::ReadStream(n) => {
                let mut buf = vec![0u8; n];
                let got = rx.read_stream(&mut buf).unwrap();
                let want = model.read_stream(n);
                assert_eq!(got.map(|k| buf[..k].to_vec()), want);
            }
            Op::ReadMessage(n) => {
                let mut buf = vec![0u8; n];
                let got = rx.read_message(&mut buf).unwrap();
                let want = model.read_message(n);
                assert_eq!(got.map(|m| (buf[..m.len].to_vec(), m.end)), want);
            }
            Op::PeekStream(n) => {
                let mut buf = vec![0u8; n];
                let k = rx.peek_stream(&mut buf).unwrap();
                assert_eq!(buf[..k].to_vec(), model.peek_stream(n));
            }
            Op::PeekMessage(n) => {
                let mut buf = vec![0u8; n];
                let (k, left) = rx.peek_message(&mut buf).unwrap();
                assert_eq!((buf[..k].to_vec(), left), model.peek_message(n));
            }
            Op::ReadRecord(n) => {
                let Some(g) = rx.read_record().unwrap() else {
                    continue;
                };
                let slice = g.as_slice().to_vec();
                let k = n.min(slice.len());
                g.release(k);
                // The record is a prefix of the head message's unread bytes.
                let want = model.read_stream_exact(k, slice.len());
                assert_eq!(slice[..k].to_vec(), want);
            }
        }
        assert_eq!(rx.available(), model.available());
        assert_eq!(tx.written() - rx.consumed(), model.available());
    }
}

impl Model {
    /// Consumes `k` bytes of the head message as a zero-copy release does
    /// (zero-length messages included: releasing one consumes it).
    fn read_stream_exact(&mut self, k: usize, record_len: usize) -> Vec<u8> {
        let m = self.q.front_mut().expect("a record was there");
        assert!(m.data.len() - m.consumed >= record_len);
        let out = m.data[m.consumed..m.consumed + k].to_vec();
        m.consumed += k;
        if m.consumed == m.total {
            self.q.pop_front();
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]

    #[test]
    fn ring_matches_model(
        (cap, ops) in prop_oneof![Just(256usize), Just(512), Just(1024), Just(4096)]
            .prop_flat_map(|cap| (Just(cap), proptest::collection::vec(op(cap), 1..200)))
    ) {
        run(cap, ops);
    }
}

#[test]
fn fragments_larger_than_ring_stream_through() {
    let (mut tx, mut rx) = HeapRing::new(256).unwrap().split();
    let data = pattern(1, 5000);
    let (mut sent, mut got) = (0, Vec::new());
    let mut buf = [0u8; 100];
    while got.len() < data.len() {
        if sent < data.len() {
            if let Some(mut g) = tx.try_reserve_up_to(data.len() - sent).unwrap() {
                let n = g.len();
                g.fill(&data[sent..sent + n]);
                sent += n;
                g.commit((data.len() - sent) as u64);
            }
        }
        if let Some(m) = rx.read_message(&mut buf).unwrap() {
            got.extend_from_slice(&buf[..m.len]);
            assert_eq!(m.end, got.len() == data.len());
        }
    }
    assert_eq!(got, data);
}

#[test]
fn too_large_is_an_error_not_a_panic() {
    let (mut tx, _rx) = HeapRing::new(256).unwrap().split();
    assert!(matches!(
        tx.try_reserve(10_000),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn corrupt_tail_is_detected() {
    let (tx, mut rx) = HeapRing::new(256).unwrap().split();
    let ring = tx.storage();
    // The consumer never reads `tail` on its way to records: a taking-over
    // consumer checks it.
    ring.control().producer.0.tail.store(1 << 20, Release);
    assert!(matches!(rx.resync(), Err(Error::Corrupt(_))));
    ring.control().producer.0.tail.store(64 + 3, Release);
    assert!(matches!(rx.resync(), Err(Error::Corrupt(_))));
}

#[test]
fn corrupt_header_is_detected() {
    let (mut tx, mut rx) = HeapRing::new(256).unwrap().split();
    let ring = std::sync::Arc::clone(tx.storage());
    assert!(tx.try_push(b"abc", 0).unwrap());
    // A length that would run past the free space and the buffer end.
    let long = Header {
        len: u32::MAX,
        flags: 0,
        remaining: 0,
    };
    // SAFETY: index 0..16 is inside the 256-byte data area; single thread.
    unsafe { ring.write(0, &long.encode(0)) };
    assert!(matches!(
        rx.read_stream(&mut [0; 8]),
        Err(Error::Corrupt(_))
    ));
    // Both flags at once.
    let bad = Header {
        len: 0,
        flags: FLAG_PAD | FLAG_ABORT,
        remaining: 0,
    };
    // SAFETY: as above.
    unsafe { ring.write(0, &bad.encode(0)) };
    assert!(matches!(
        rx.read_message(&mut [0; 8]),
        Err(Error::Corrupt(_))
    ));
}

#[test]
fn corrupt_head_is_detected_by_the_producer() {
    let (mut tx, _rx) = HeapRing::new(256).unwrap().split();
    let ring = std::sync::Arc::clone(tx.storage());
    for _ in 0..4 {
        assert!(tx.try_push(&[0; 40], 0).unwrap());
    }
    // Full: the producer reloads head and must reject nonsense.
    ring.control().consumer.0.head.store(u64::MAX - 63, Release);
    assert!(matches!(tx.try_push(&[0; 40], 0), Err(Error::Corrupt(_))));
}

/// Two threads on a heap ring: under miri this checks the ring for data
/// races with the production orderings (loom checks them exhaustively on
/// small cases; this runs the real `Native` atomics).
#[test]
fn two_threads_stream_intact() {
    let n: u32 = if cfg!(miri) { 200 } else { 20_000 };
    let (mut tx, mut rx) = HeapRing::new(512).unwrap().split();
    let producer = {
        std::thread::spawn(move || {
            for i in 0..n {
                let len = (i % 97) as usize;
                let data = pattern(u64::from(i), len);
                while !tx.try_push(&data, 0).unwrap() {
                    std::thread::yield_now();
                }
            }
        })
    };
    let mut buf = [0u8; 128];
    for i in 0..n {
        let m = loop {
            if let Some(m) = rx.read_message(&mut buf).unwrap() {
                break m;
            }
            std::thread::yield_now();
        };
        assert!(m.end);
        assert_eq!(&buf[..m.len], &pattern(u64::from(i), (i % 97) as usize)[..]);
    }
    producer.join().unwrap();
}

/// Regression: with the tail near the buffer end, a stale cached head that
/// covered a full-size record but not "padding + a minimal record" was never
/// refreshed, so `try_reserve_up_to` kept failing on an empty ring while a
/// waiting writer saw free space: a livelock.
#[test]
fn reserve_up_to_refreshes_the_head_when_padding_is_needed() {
    let (mut p, mut c) = HeapRing::new(1024).unwrap().split();
    assert!(p.try_push(&[1; 40], 0).unwrap());
    assert!(p.try_push(&[2; 384], 0).unwrap());
    assert!(p.try_push(&[3; 384], 0).unwrap()); // tail at 960
    let mut buf = [0u8; 1024];
    c.read_message(&mut buf).unwrap();
    assert!(p.try_reserve_up_to(64).unwrap().is_none()); // full; caches head
    while c.read_message(&mut buf).unwrap().is_some() {}
    assert!(p.free_hint() >= p.space_needed(64, false));
    assert!(p.try_reserve_up_to(64).unwrap().is_some());
}
