//! Unit tests of the reader's walk through the pending-write claims, in
//! one process: a claim planted in the ring with the token of a process
//! slot nobody holds stands for a write whose writer died.

use crate::PipeBuilder;
use shmpipe_engine::liveness::{SLOTS, SLOT_BASE};
use shmpipe_engine::RingStorage;
use std::cell::Cell;
use std::io::{Read, Write};

thread_local! {
    /// How many times this thread asked the kernel whether a claimant lives.
    pub(super) static ASKED: Cell<usize> = const { Cell::new(0) };
}

fn asked() -> usize {
    ASKED.with(Cell::get)
}

#[test]
fn a_claim_beyond_the_reads_reach_is_not_judged_and_one_within_it_is() {
    let (reader, writer) = PipeBuilder::new().build().unwrap();
    (&writer).write_all(b"abcdefgh").unwrap();
    // Bytes 4..8 were a write whose process died holding its claim.
    let control = writer.0.conn.words.control();
    let dead = u64::from(SLOT_BASE + SLOTS - 1);
    control.claim_pending_write(dead, 4, 8).unwrap();

    let before = asked();
    let mut buf = [0u8; 2];
    assert_eq!((&reader).read(&mut buf).unwrap(), 2);
    assert_eq!(&buf, b"ab");
    // 2 bytes from position 0 never reach position 4: no system call.
    assert_eq!(asked(), before, "a claim out of reach was judged");

    let mut buf = [0u8; 8];
    // Within reach: judged dead, the read stops at its start.
    assert_eq!((&reader).read(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"cd");
    assert!(asked() > before, "a claim within reach was not judged");
}
