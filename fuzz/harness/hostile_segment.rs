//! Fuzz body: the ring under hostile shared memory.
//!
//! The peer of a ring can write anything anywhere in the segment, at any
//! moment. The input is a sequence of producer and consumer operations mixed
//! with hostile writes into the data area and the control block, applied
//! either between engine calls or *during* one: a storage wrapper
//! ([`Meddled`]) fires armed writes at the n-th access the engine makes to
//! shared memory, which replays, deterministically and on one thread, what a
//! concurrent peer could do between two loads of the same value.
//!
//! Three variants share the operation loop: a [`HeapRing`]; a real memfd
//! [`Segment`] with the producer and the consumer on two separate mappings
//! (as across processes); and a segment whose header bytes were overwritten
//! before [`Segment::attach`].
//!
//! Property: no panic, no out-of-bounds access, no read reporting or touching
//! more bytes than requested. Errors are fine once memory was tampered with;
//! before that, every call must behave as on a healthy ring (no `Corrupt`).

// Both includers (the fuzz target and the stable replay) load this file by
// `#[path]`, so the sibling is named by path too.
#[path = "hostile_write.rs"]
mod hostile_write;

use crate::input::Input;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;
use hostile_write::{hostile_value, Hostile};
use shmpipe_engine::layout::{RingControl, RingDesc, SegmentHeader, HEADER_SIZE};
use shmpipe_engine::sync::Native;
use shmpipe_engine::{Consumer, DirectStorage, Error, HeapRing, Producer, RingStorage, Segment};
use std::cell::RefCell;
use std::os::fd::AsFd;

/// Upper bound on operations per input, so every input runs in bounded time.
const MAX_OPS: usize = 2000;
/// Armed hostile writes pending at once.
const MAX_ARMED: usize = 8;
/// What the harness writes into read buffers before a call, to see which
/// bytes the engine touched.
const SENTINEL: u8 = 0xA5;

/// Runs one fuzz input.
pub fn check(data: &[u8]) {
    let input = Input::new(data);
    match input.u8() % 3 {
        0 => heap(&input),
        1 => segment(&input),
        _ => header(&input),
    }
}

fn heap(input: &Input) {
    let cap = 256 << (input.u8() % 3);
    let ring = HeapRing::new(cap).expect("valid capacity");
    run(input, &ring, &ring, false);
}

fn segment(input: &Input) {
    let cap = if input.u8() & 1 == 0 { 256 } else { 1024 };
    let (seg, fd) = Segment::create(&[cap], 0, [0; 8]).expect("create a segment");
    // The second mapping plays the peer process.
    let peer = Segment::attach(fd.as_fd()).expect("attach a fresh segment");
    let a = seg.ring(0).expect("ring 0");
    let b = peer.ring(0).expect("ring 0");
    run(input, &a, &b, false);
}

/// Overwrites the header of a real segment with fuzz bytes, then attaches a
/// second mapping: `attach` must refuse the segment or hand out rings that
/// stay inside the mapping.
fn header(input: &Input) {
    let caps: &[usize] = match input.u8() % 4 {
        0 => &[256],
        1 => &[1024],
        2 => &[256, 4096],
        _ => &[4096, 256],
    };
    let (seg, fd) = Segment::create(caps, 0, [0; 8]).expect("create a segment");
    let mut bytes = encode(seg.header());
    if input.u8() & 1 == 0 {
        // Raw: the input is the header.
        let raw = input.bytes(HEADER_SIZE);
        bytes[..raw.len()].copy_from_slice(raw);
    } else {
        // Patches over the valid header, to get past the magic number and
        // the version and reach the layout checks.
        for _ in 0..input.u8() % 8 {
            let at = usize::from(input.u8()) % HEADER_SIZE;
            let value = hostile_value(input, 0, 4096).to_le_bytes();
            let n = (1 + usize::from(input.u8() % 8)).min(HEADER_SIZE - at);
            bytes[at..at + n].copy_from_slice(&value[..n]);
        }
    }
    let ring0 = seg.ring(0).expect("ring 0");
    let data = ring0.data_ptr().expect("segment rings have a data pointer");
    let data_offset = seg.header().rings[0].data_offset as usize;
    // SAFETY: ring 0's data area starts `data_offset` bytes into the mapping,
    // so stepping back lands on the mapping's first byte, inside the same
    // mapping; the header is written through raw pointers only (no reference
    // to the shared bytes exists) and nothing else runs meanwhile.
    unsafe {
        let base = data.as_ptr().sub(data_offset);
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), base, HEADER_SIZE);
    }
    let Ok(attached) = Segment::attach(fd.as_fd()) else {
        return;
    };
    let len = seg.header().total_size as usize;
    attached
        .header()
        .validate(len)
        .expect("attach returned a segment whose header does not validate");
    for i in 0..attached.ring_count() {
        let ring = attached.ring(i).expect("a ring the header declares");
        // The data area must lie inside the `len`-byte mapping.
        let cap = ring.capacity() as u64;
        let desc = attached.header().rings[i];
        assert!(
            desc.data_offset + cap <= len as u64,
            "ring {i} past the mapping"
        );
        // Whatever the control block holds now (header bytes moved it onto
        // arbitrary data), the ring must fail cleanly or work.
        run(input, &ring, &ring, true);
    }
}

/// The header's shared bytes (padding zeroed), field by field: copying the
/// struct's bytes would read its uninitialised padding.
fn encode(h: &SegmentHeader) -> [u8; HEADER_SIZE] {
    use core::mem::{offset_of, size_of};
    let mut b = [0u8; HEADER_SIZE];
    let mut put = |at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
    put(offset_of!(SegmentHeader, magic), &h.magic.to_le_bytes());
    put(offset_of!(SegmentHeader, version), &h.version.to_le_bytes());
    put(
        offset_of!(SegmentHeader, header_size),
        &h.header_size.to_le_bytes(),
    );
    put(
        offset_of!(SegmentHeader, total_size),
        &h.total_size.to_le_bytes(),
    );
    put(
        offset_of!(SegmentHeader, ring_count),
        &h.ring_count.to_le_bytes(),
    );
    put(
        offset_of!(SegmentHeader, user_flags),
        &h.user_flags.to_le_bytes(),
    );
    for (i, r) in h.rings.iter().enumerate() {
        let at = offset_of!(SegmentHeader, rings) + i * size_of::<RingDesc>();
        put(
            at + offset_of!(RingDesc, control_offset),
            &r.control_offset.to_le_bytes(),
        );
        put(
            at + offset_of!(RingDesc, data_offset),
            &r.data_offset.to_le_bytes(),
        );
        put(
            at + offset_of!(RingDesc, capacity),
            &r.capacity.to_le_bytes(),
        );
    }
    for (i, u) in h.user.iter().enumerate() {
        put(offset_of!(SegmentHeader, user) + 8 * i, &u.to_le_bytes());
    }
    b
}

/// Hostile writes waiting for the n-th shared-memory access of the engine.
#[derive(Default)]
struct Plan {
    armed: RefCell<Vec<(u32, Hostile)>>,
}

impl Plan {
    fn tick<R: RingStorage<P = Native>>(&self, ring: &R) {
        let fired: Vec<Hostile> = {
            let mut armed = self.armed.borrow_mut();
            if armed.is_empty() {
                return;
            }
            for (countdown, _) in armed.iter_mut() {
                *countdown -= 1;
            }
            let (now, later) = armed.drain(..).partition(|(c, _)| *c == 0);
            *armed = later;
            now.into_iter().map(|(_, h)| h).collect::<Vec<_>>()
        };
        for h in &fired {
            h.apply(ring);
        }
    }
}

/// A storage that lets armed hostile writes land in the middle of an engine
/// call, just before one of its accesses to shared memory.
struct Meddled<'a, R> {
    inner: &'a R,
    plan: &'a Plan,
}

// SAFETY: every method forwards to `inner`, which upholds the contract; the
// hostile writes `tick` adds stay inside the data area (they go through
// `inner.write` with clamped bounds) and model a peer, which the contract
// does not exclude.
unsafe impl<R: RingStorage<P = Native>> RingStorage for Meddled<'_, R> {
    type P = Native;

    fn control(&self) -> &RingControl<Native> {
        self.plan.tick(self.inner);
        self.inner.control()
    }

    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    unsafe fn write(&self, at: usize, src: &[u8]) {
        // The contract the engine must keep whatever memory holds, checked
        // here rather than trusting the storages' debug assertions.
        assert!(
            at.checked_add(src.len())
                .is_some_and(|end| end <= self.capacity()),
            "engine writes {} bytes at {at}, past the {}-byte data area",
            src.len(),
            self.capacity()
        );
        self.plan.tick(self.inner);
        // SAFETY: in bounds (checked above); the caller upholds the rest of
        // the contract.
        unsafe { self.inner.write(at, src) }
    }

    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        // The contract the engine must keep whatever memory holds, checked
        // here rather than trusting the storages' debug assertions.
        assert!(
            at.checked_add(dst.len())
                .is_some_and(|end| end <= self.capacity()),
            "engine reads {} bytes at {at}, past the {}-byte data area",
            dst.len(),
            self.capacity()
        );
        self.plan.tick(self.inner);
        // SAFETY: in bounds (checked above); the caller upholds the rest of
        // the contract.
        unsafe { self.inner.read(at, dst) }
    }

    unsafe fn commit_word(&self, at: usize) -> &AtomicU64 {
        // The contract the engine must keep whatever memory holds.
        assert!(
            at % 64 == 0 && at < self.capacity(),
            "engine asks for a commit word at {at} of the {}-byte data area",
            self.capacity()
        );
        self.plan.tick(self.inner);
        // SAFETY: checked above.
        unsafe { self.inner.commit_word(at) }
    }

    fn data_ptr(&self) -> Option<NonNull<u8>> {
        self.inner.data_ptr()
    }
}

// SAFETY: `data_ptr` forwards to a `DirectStorage`, which always returns `Some`.
unsafe impl<R: DirectStorage<P = Native>> DirectStorage for Meddled<'_, R> {}

/// The outcome of an engine call: before any tampering only `allowed` errors
/// are acceptable; afterwards every error is.
fn outcome<T>(
    r: Result<T, Error>,
    tainted: bool,
    allowed: fn(&Error) -> bool,
    what: &str,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if tainted || allowed(&e) => None,
        Err(e) => panic!("{what} failed on an untouched ring: {e}"),
    }
}

fn none(_: &Error) -> bool {
    false
}

/// A message whose write was aborted half-way is reported as cut.
fn cut(e: &Error) -> bool {
    matches!(e, Error::MessageCut)
}

fn too_large(e: &Error) -> bool {
    matches!(e, Error::TooLarge { .. })
}

/// Checks that a read reported at most `buf.len()` bytes and left the bytes
/// after those untouched.
fn check_read(buf: &[u8], n: usize, what: &str) {
    assert!(
        n <= buf.len(),
        "{what} reported {n} bytes for a {}-byte buffer",
        buf.len()
    );
    assert!(
        buf[n..].iter().all(|&b| b == SENTINEL),
        "{what} wrote past the {n} bytes it reported"
    );
}

/// The operation loop. `a` is the producer's view of the ring, `b` the
/// consumer's (the same ring, possibly through another mapping).
fn run<R: DirectStorage<P = Native>>(input: &Input, a: &R, b: &R, mut tainted: bool) {
    let cap = a.capacity();
    let plan = Plan::default();
    let tx_side = Meddled {
        inner: a,
        plan: &plan,
    };
    let rx_side = Meddled {
        inner: b,
        plan: &plan,
    };
    // SAFETY: one thread, and (here and below) a new half replaces the old
    // one with no grant alive, so two halves of one role are never used at
    // once.
    let tx = unsafe { Producer::new(&tx_side) };
    let Some(mut tx) = outcome(tx, tainted, none, "Producer::new") else {
        return;
    };
    // SAFETY: as above.
    let rx = unsafe { Consumer::new(&rx_side) };
    let Some(mut rx) = outcome(rx, tainted, none, "Consumer::new") else {
        return;
    };
    let payload: Vec<u8> = (0..4 * cap).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut buf = vec![SENTINEL; 4 * cap];
    let data_start = b.data_ptr().expect("direct storage").as_ptr() as usize;

    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 24 {
            0..=2 => {
                let len = input.size(2 * cap);
                let remaining = if input.u8() % 4 == 0 {
                    u64::from(input.u16())
                } else {
                    0
                };
                let r = tx.try_push(&payload[..len], remaining);
                outcome(r, tainted, too_large, "try_push");
            }
            3 => {
                let len = input.size(cap);
                let how = input.u8();
                if let Some(Some(mut g)) =
                    outcome(tx.try_reserve(len), tainted, too_large, "try_reserve")
                {
                    let n = g.len();
                    assert_eq!(n, len, "try_reserve granted a different length");
                    g.as_mut_slice().copy_from_slice(&payload[..n]);
                    match how % 3 {
                        0 => g.commit(0),
                        1 => g.commit_quiet(u64::from(how)),
                        // Dropped: publishes nothing.
                        _ => {}
                    }
                }
            }
            4 | 5 => {
                let max = input.size(4 * cap);
                let remaining = u64::from(input.u16());
                let r = tx.try_reserve_up_to(max);
                if let Some(Some(mut g)) = outcome(r, tainted, none, "try_reserve_up_to") {
                    let n = g.len();
                    assert!(n <= max, "try_reserve_up_to({max}) granted {n} bytes");
                    g.fill(&payload[..n]);
                    g.commit(remaining);
                }
            }
            6 => {
                outcome(
                    tx.try_abort_open_write(),
                    tainted,
                    none,
                    "try_abort_open_write",
                );
            }
            7 => {
                outcome(tx.resync(), tainted, none, "Producer::resync");
            }
            8 => {
                // SAFETY: see the first `Producer::new`.
                let p = unsafe { Producer::new(&tx_side) };
                if let Some(p) = outcome(p, tainted, none, "Producer::new") {
                    tx = p;
                }
            }
            9 | 10 => {
                let len = input.size(buf.len());
                buf.fill(SENTINEL);
                let r = rx.read_stream(&mut buf[..len]);
                if let Some(Some(n)) = outcome(r, tainted, none, "read_stream") {
                    check_read(&buf[..len], n, "read_stream");
                }
            }
            11 => {
                let len = input.size(buf.len());
                buf.fill(SENTINEL);
                let r = rx.read_message(&mut buf[..len]);
                if let Some(Some(m)) = outcome(r, tainted, cut, "read_message") {
                    check_read(&buf[..len], m.len, "read_message");
                }
            }
            12 => {
                let len = input.size(buf.len());
                buf.fill(SENTINEL);
                let r = rx.peek_stream(&mut buf[..len]);
                if let Some(n) = outcome(r, tainted, none, "peek_stream") {
                    check_read(&buf[..len], n, "peek_stream");
                }
            }
            13 => {
                let len = input.size(buf.len());
                buf.fill(SENTINEL);
                let r = rx.peek_message(&mut buf[..len]);
                if let Some((n, _left)) = outcome(r, tainted, none, "peek_message") {
                    check_read(&buf[..len], n, "peek_message");
                }
            }
            14 => {
                let take = input.u16();
                if let Some(Some(g)) = outcome(rx.read_record(), tainted, none, "read_record") {
                    let s = g.as_slice();
                    let start = s.as_ptr() as usize;
                    assert!(
                        start >= data_start && start + s.len() <= data_start + cap,
                        "read_record slice outside the data area"
                    );
                    // Touch every byte, so a sanitizer sees any stray access.
                    let sum = s.iter().fold(0u8, |acc, &x| acc ^ x);
                    std::hint::black_box(sum);
                    let n = usize::from(take) % (s.len() + 1);
                    g.release(n);
                }
            }
            15 => {
                outcome(rx.discard_all(), tainted, none, "discard_all");
            }
            16 => {
                if input.u8() & 1 == 0 {
                    outcome(rx.resync(), tainted, none, "Consumer::resync");
                } else if let Some(c) = outcome(
                    // SAFETY: see above.
                    unsafe { Consumer::new(&rx_side) },
                    tainted,
                    none,
                    "Consumer::new",
                ) {
                    rx = c;
                }
            }
            17 => {
                std::hint::black_box((
                    rx.available(),
                    rx.has_records(),
                    rx.consumed(),
                    tx.written(),
                    tx.consumed(),
                    tx.open_write(),
                    tx.free_hint(),
                    tx.space_needed(usize::from(input.u16()), input.u8() & 1 == 0),
                ));
                tx.notify();
                rx.publish();
            }
            18..=20 => {
                tainted = true;
                let h = Hostile::parse(input, cap);
                // Either mapping: in the segment variant both alias the same
                // memory, as a peer's mapping does.
                if input.u8() & 1 == 0 {
                    h.apply(a);
                } else {
                    h.apply(b);
                }
            }
            _ => {
                tainted = true;
                let countdown = 1 + u32::from(input.u8() % 32);
                let h = Hostile::parse(input, cap);
                let mut armed = plan.armed.borrow_mut();
                if armed.len() < MAX_ARMED {
                    armed.push((countdown, h));
                }
            }
        }
    }
}
