//! The zero-copy accessors across two threads on a heap ring, for miri
//! (run by the CI's miri step, filter `zero_copy_tests::`): a producer
//! thread fills reservations in place through `Grant::as_mut_slice`, a
//! consumer thread reads them in place through `ReadGrant::as_slice` and
//! releases them piecewise, with records padded at the buffer end and the
//! ring wrapping many times. Miri checks that every slice stays inside the
//! allocation, that no slice outlives what it borrows, and that the
//! producer's writes and the consumer's reads of the same bytes never race
//! (the ring's `Release`/`Acquire` pairs order them). The loom models cannot
//! check these accessors: loom's ring storage tracks every access through
//! its cells and has no raw data pointer.

use crate::HeapRing;

/// Payload byte `i` of record `k`: distinct per record and position.
fn byte(k: usize, i: usize) -> u8 {
    (k.wrapping_mul(31) + i * 7) as u8
}

/// Record lengths cycling through inline (up to 48 bytes), one-line and
/// multi-line payloads, so records get padded at the buffer end.
fn len_of(k: usize) -> usize {
    [0, 5, 48, 49, 100, 30, 64][k % 7]
}

#[test]
fn zero_copy_slices_across_threads() {
    let records = if cfg!(miri) { 300 } else { 10_000 };
    let (mut tx, mut rx) = HeapRing::new(512).unwrap().split();
    let producer = std::thread::spawn(move || {
        for k in 0..records {
            let len = len_of(k);
            let mut grant = loop {
                if let Some(g) = tx.try_reserve(len).unwrap() {
                    break g;
                }
                std::thread::yield_now();
            };
            for (i, b) in grant.as_mut_slice().iter_mut().enumerate() {
                *b = byte(k, i);
            }
            grant.commit(0);
        }
    });
    for k in 0..records {
        let len = len_of(k);
        let mut seen = 0;
        // Read each record in up to two pieces: a partial release keeps the
        // rest of the record for the next grant.
        loop {
            let Some(grant) = rx.read_record().unwrap() else {
                std::thread::yield_now();
                continue;
            };
            let slice = grant.as_slice();
            assert_eq!(slice.len(), len - seen, "record {k}");
            for (i, &b) in slice.iter().enumerate() {
                assert_eq!(b, byte(k, seen + i), "record {k} byte {}", seen + i);
            }
            let take = if seen == 0 && slice.len() > 1 {
                slice.len() / 2
            } else {
                slice.len()
            };
            grant.release(take);
            seen += take;
            if seen == len {
                break;
            }
        }
    }
    producer.join().unwrap();
    assert!(rx.read_record().unwrap().is_none());
}
