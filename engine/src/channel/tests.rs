//! Unit tests of the channel's admission: a handle's first acquisition and
//! a panic under a lock.

use super::end::handle_id;
use super::*;
use crate::ring::RingStorage;
use crate::Result;
use std::time::Instant;

/// A regression fails within seconds instead of hanging the suite.
fn soon() -> Option<Instant> {
    Some(Instant::now() + std::time::Duration::from_secs(5))
}

fn read_all(rx: &mut Receiver, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let mut got = 0;
    while got < n {
        got += rx.read_until(&mut v[got..], soon()).unwrap();
    }
    v
}

/// A handle that finds its own id as the lock's last holder before it
/// ever synced (a new process drew a dead one's slot, and with it its
/// handle ids) must still reload the shared state, or it writes at its
/// stale tail over data the reader has not read.
#[test]
fn first_acquisition_resyncs_even_when_the_id_matches() {
    let (mut tx, mut rx) = channel(4096).unwrap();
    let mut tx2 = tx.try_clone().unwrap();
    tx.write(b"first").unwrap();
    let lock = &tx2.cx.ring.control().locks.0.writer;
    lock.mark_holder(handle_id(tx2.cx.end.holder_token().unwrap(), tx2.cx.seq));
    tx2.write_until(b"second", soon()).unwrap();
    assert_eq!(read_all(&mut rx, 11), b"firstsecond");
}

/// A panic inside a batch releases the writer lock (another handle of
/// the end can write at once) and leaves the ring consistent.
#[test]
fn panic_in_a_batch_releases_the_lock() {
    let (mut tx, mut rx) = channel(4096).unwrap();
    let mut tx2 = tx.try_clone().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tx.batch(|p| {
            assert!(p.try_push(b"kept", 0).unwrap());
            panic!("a user closure panics while holding the lock");
        })
    }));
    assert!(r.is_err());
    tx2.write_until(b"-after", soon()).unwrap();
    tx.write(b"-again").unwrap();
    assert_eq!(read_all(&mut rx, 16), b"kept-after-again");
    // Same for the reader lock.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rx.batch(|_| -> Result<()> { panic!("a reader's closure panics") })
    }));
    assert!(r.is_err());
    let mut rx2 = rx.try_clone().unwrap();
    tx.write(b"x").unwrap();
    assert_eq!(rx2.try_read(&mut [0u8; 4]).unwrap(), Some(1));
}
