//! The latency floor: one 8-byte word each way through shared memory, both
//! sides spinning. No framing, no wake-ups, no checks beyond the sequence
//! number: what is left is the cost of moving a cache line between the two
//! CPUs and back, which no shared-memory transport can beat.
//!
//! The memory is the data area of a one-ring engine [`Segment`] (a sealed
//! memfd, mapped in both processes). No ring protocol ever runs on that ring:
//! its control block is untouched, and the data area holds just two
//! `AtomicU64`s, 128 bytes apart so that each sits alone on its cache line
//! (and its adjacent-line-prefetch pair).
//!
//! Liveness, off the hot path: each side holds an OFD role lock on the memfd
//! ([`EndLock`], as channel ends do) and, every 2^16 spins, asks whether the
//! peer's is still held, so a dead peer is noticed in about a millisecond.

use crate::link::{take, Link, Setup};
use rustix::fd::{AsFd, OwnedFd};
use shmpipe_engine::liveness::EndLock;
use shmpipe_engine::{RingStorage, Segment, SegmentRing};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Byte offsets of the two words in the data area.
const WORD_A: usize = 0;
const WORD_B: usize = 128;
const DATA_SIZE: usize = 4096;

/// Liveness roles of the two sides.
const ROLE_PARENT: u32 = 0;
const ROLE_CHILD: u32 = 1;

/// How long a side spins without a word from a live peer before giving up
/// (a wedged peer must not hang the benchmark either).
const NO_PROGRESS: Duration = Duration::from_secs(10);

/// One side of the floor: writes one word, spins on the other.
pub struct Floor {
    end: EndLock,
    peer_role: u32,
    ring: SegmentRing,
    out: usize,
    inp: usize,
    last_in: u64,
}

impl Floor {
    fn new(end: EndLock, peer_role: u32, out: usize, inp: usize) -> io::Result<Floor> {
        let ring = Segment::attach(end.fd())?.ring(0)?;
        let ptr = ring
            .data_ptr()
            .ok_or_else(|| io::Error::other("segment ring without a data pointer"))?;
        if ring.capacity() < DATA_SIZE || ptr.as_ptr().addr() % 128 != 0 {
            return Err(io::Error::other("floor: unexpected segment data area"));
        }
        Ok(Floor {
            end,
            peer_role,
            ring,
            out,
            inp,
            last_in: 0,
        })
    }

    #[inline]
    fn word(&self, offset: usize) -> &AtomicU64 {
        let base = self.ring.data_ptr().expect("checked in Floor::new");
        // SAFETY: `offset` is WORD_A or WORD_B, so the word lies inside the
        // data area (`new` checked it holds DATA_SIZE bytes) and is 8-byte
        // aligned (the area is 128-byte aligned, checked in `new`). The
        // mapping lives as long as `self.ring`, which outlives the returned
        // borrow. Every access to these bytes, in either process, is atomic:
        // nothing else reads or writes this ring's data area (no Producer or
        // Consumer is ever made for it). Any bit pattern is a valid u64.
        unsafe { AtomicU64::from_ptr(base.as_ptr().add(offset).cast::<u64>()) }
    }
}

impl Link for Floor {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let w = crate::payload::first_word(msg);
        self.word(self.out).store(w, Ordering::Release);
        Ok(())
    }

    #[inline]
    fn recv(&mut self, msg: &mut [u8]) -> io::Result<()> {
        let word = self.word(self.inp);
        let mut spins = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            let v = word.load(Ordering::Acquire);
            if v != self.last_in {
                self.last_in = v;
                msg[..8].copy_from_slice(&v.to_le_bytes());
                return Ok(());
            }
            core::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % (1 << 16) == 0 {
                if !self.end.peer_alive(self.peer_role)? {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the peer closed the segment",
                    ));
                }
                let start = *since.get_or_insert_with(Instant::now);
                if start.elapsed() > NO_PROGRESS {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no word from the peer for 10 s",
                    ));
                }
            }
        }
    }
}

/// Makes the segment; the parent writes word A and reads word B.
pub fn open() -> io::Result<Setup> {
    let (_segment, fd) = Segment::create(&[DATA_SIZE], 0, [0; 8])?;
    let mine = EndLock::acquire(fd.as_fd(), ROLE_PARENT)?;
    let theirs = EndLock::acquire(fd.as_fd(), ROLE_CHILD)?;
    let link = Floor::new(mine, ROLE_CHILD, WORD_A, WORD_B)?;
    Ok(Setup {
        link: Box::new(link),
        child_fds: vec![theirs.into_fd()],
        child_arg: None,
        buffers: "one 8-byte word each way".into(),
    })
}

/// The child writes word B and reads word A.
pub fn adopt(fds: Vec<OwnedFd>) -> io::Result<Box<dyn Link>> {
    let [fd] = take::<1>(fds)?;
    Ok(Box::new(Floor::new(
        EndLock::from_fd(fd),
        ROLE_PARENT,
        WORD_B,
        WORD_A,
    )?))
}
