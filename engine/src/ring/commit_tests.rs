//! Tests of the commit-word protocol: what a reader may take for a
//! committed record, and what a producer taking over the role finds when
//! the last one died between its commit word and its `tail`.

use crate::record::{commit_word, record_size, Header};
use crate::{Consumer, Error, HeapRing, Producer, RingStorage};
use core::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Arc;

fn read_all(rx: &mut Consumer<Arc<HeapRing>>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while let Some(m) = rx.read_message(&mut buf).unwrap() {
        assert!(m.end);
        out.push(buf[..m.len].to_vec());
    }
    out
}

/// Payload bytes of an earlier lap can hold anything, the commit word of a
/// later position included: the producer zeroes the slot after each record
/// before committing it, so the reader never takes them for a record.
/// (Fails with the zeroing in `Grant::publish` removed: the reader then
/// reads a 5-byte record nobody wrote.)
#[test]
fn stale_payload_never_passes_for_a_commit_word() {
    let (mut tx, mut rx) = HeapRing::new(1024).unwrap().split();
    // Record A at 0: header slot 0, payload in slots 1..8. Its first
    // payload bytes, at index 64, forge the header of a 5-byte record at
    // position 1024 + 64, one lap later.
    let forged = Header {
        len: 5,
        flags: 0,
        remaining: 0,
    }
    .encode(1024 + 64);
    let mut a = vec![0x5a; 448];
    a[..16].copy_from_slice(&forged);
    assert!(tx.try_push(&a, 0).unwrap());
    assert!(tx.try_push(&[1; 448], 0).unwrap()); // 512..1024
    assert_eq!(read_all(&mut rx).len(), 2);
    // One lap later a record ends exactly at 1088, on the forged bytes.
    assert!(tx.try_push(&[2; 10], 0).unwrap());
    assert_eq!(read_all(&mut rx), vec![vec![2; 10]]);
    assert!(!rx.has_records());
    assert_eq!(rx.consumed(), 448 + 448 + 10);
}

/// The consumer finds records by their commit words alone: it reads a
/// record whose producer has not stored `tail` yet (here: never will), and
/// a consumer taking the role over accepts its head ahead of `tail`.
#[test]
fn a_reader_reads_ahead_of_the_tail_and_resyncs_there() {
    let (mut tx, mut rx) = HeapRing::new(1024).unwrap().split();
    let ring = Arc::clone(tx.storage());
    assert!(tx.try_push(b"one", 0).unwrap());
    // The producer "dies" between the commit word and `tail`.
    let st = &ring.control().producer.0;
    st.tail.store(0, Release);
    st.written.store(0, Release);
    assert!(rx.has_records());
    assert_eq!(read_all(&mut rx), vec![b"one".to_vec()]);
    assert_eq!(ring.control().consumer.0.head.load(Relaxed), 64);
    rx.resync().unwrap();
    // SAFETY: the ring's only consumer now; `rx` is not used again.
    let mut rx2 = unsafe { Consumer::new(Arc::clone(&ring)) }.unwrap();
    assert!(!rx2.has_records());
    assert_eq!(rx2.read_stream(&mut [0; 8]).unwrap(), None);
}

/// Publishes `msgs`, then rolls the producer's shared words back to what
/// they were before the last `publications` (as if it died after their
/// commit words), and returns a producer that takes the role over.
fn die_after_commit(
    ring: &Arc<HeapRing>,
    tx: Producer<Arc<HeapRing>>,
    before: (u64, u64, u64),
) -> Producer<Arc<HeapRing>> {
    drop(tx);
    let st = &ring.control().producer.0;
    st.tail.store(before.0, Release);
    st.written.store(before.1, Release);
    st.open.store(before.2, Release);
    // SAFETY: the ring's only producer now: the dead one was dropped.
    unsafe { Producer::new(Arc::clone(ring)) }.unwrap()
}

fn shared(ring: &HeapRing) -> (u64, u64, u64) {
    let st = &ring.control().producer.0;
    (
        st.tail.load(Relaxed),
        st.written.load(Relaxed),
        st.open.load(Relaxed),
    )
}

/// A producer taking over after one that died between its commit word and
/// its `tail` counts the committed record (instead of overwriting it, or
/// refusing a head that the reader moved past `tail`), its padding
/// included, and sees the write it left open.
#[test]
fn a_takeover_counts_records_committed_past_the_tail() {
    for read_first in [false, true] {
        let (mut tx, mut rx) = HeapRing::new(1024).unwrap().split();
        let ring = Arc::clone(tx.storage());
        assert!(tx.try_push(&[1; 400], 0).unwrap()); // 0..512
        assert!(tx.try_push(&[2; 300], 0).unwrap()); // 512..896
        assert_eq!(read_all(&mut rx).len(), 2);
        let before = shared(&ring);
        // Needs padding at 896 and goes to 1024; the first fragment of a
        // write with 7 bytes to come.
        assert!(tx.try_push(&[3; 200], 7).unwrap());
        let after = shared(&ring);
        assert_eq!(after.0, 1024 + record_size(200) as u64);
        if read_first {
            let mut buf = [0u8; 300];
            let m = rx.read_message(&mut buf).unwrap().unwrap();
            assert_eq!((m.len, m.end), (200, false));
        }
        let mut tx = die_after_commit(&ring, tx, before);
        assert_eq!(shared(&ring), before);
        assert_eq!(
            (tx.written(), tx.open_write()),
            (after.1, 7),
            "the takeover counts the dead producer's last record"
        );
        // The new producer ends the open write and goes on after it.
        assert!(tx.try_abort_open_write().unwrap());
        assert!(tx.try_push(b"next", 0).unwrap());
        let mut buf = [0u8; 300];
        if !read_first {
            let m = rx.read_message(&mut buf).unwrap().unwrap();
            assert_eq!((m.len, m.end), (200, false));
            assert_eq!(&buf[..200], &[3; 200][..]);
        }
        assert!(matches!(rx.read_message(&mut buf), Err(Error::MessageCut)));
        assert_eq!(read_all(&mut rx), vec![b"next".to_vec()]);
    }
}

/// A commit word can name its position and still lie about the length: a
/// record reaching past what the reader freed is corruption, not a read of
/// bytes the producer may be writing.
#[test]
fn a_record_past_the_free_space_is_corrupt() {
    let (tx, mut rx) = HeapRing::new(1024).unwrap().split();
    let ring = tx.storage();
    // At position 0 a 1000-byte record ends at 1064 > head + 1024.
    // SAFETY: the commit word of slot 0; single thread.
    unsafe { ring.commit_word(0) }.store(commit_word(0, 1000, 0), Release);
    assert!(rx.has_records());
    assert!(matches!(
        rx.read_stream(&mut [0; 8]),
        Err(Error::Corrupt(_))
    ));
    // Walking ahead of the head (a peek), a record at 1024 that fits the
    // buffer still may not reach past head + capacity (512 + 1024).
    let (mut tx, mut rx) = HeapRing::new(1024).unwrap().split();
    let ring = Arc::clone(tx.storage());
    assert!(tx.try_push(&[1; 400], 0).unwrap()); // 0..512
    assert_eq!(read_all(&mut rx).len(), 1);
    assert!(tx.try_push(&[2; 448], 0).unwrap()); // 512..1024
                                                 // SAFETY: slot 0 is free (consumed); single thread.
    unsafe { ring.commit_word(0) }.store(commit_word(1024, 536, 0), Release);
    assert!(matches!(
        rx.peek_stream(&mut [0; 2048]),
        Err(Error::Corrupt(_))
    ));
}
