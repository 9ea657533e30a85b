//! The watcher's re-check schedule (`shmpipe_engine::liveness::watch`):
//! a close event on an end's segment is followed by the whole series of
//! timed re-checks (`RECHECKS`, the last 100 ms after the event), even while another segment's descriptors keep
//! closing (a steady stream of events on one watch must not postpone
//! another's re-checks: before the fix every iteration with events reset a
//! shared schedule, and pending re-checks ran only in a quiet one).

use shmpipe_engine::channel;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A generous hang guard, not a timing assertion.
const HANG: Duration = Duration::from_secs(20);

/// Opens and closes a new open file description of `fd`'s file: the
/// close is an `IN_CLOSE` event on its inode's watch.
fn close_event(fd: i32) {
    drop(std::fs::File::open(format!("/proc/self/fd/{fd}")).expect("reopen the segment"));
}

#[test]
fn a_busy_watch_does_not_postpone_another_watchs_rechecks() {
    let (_busy_tx, busy_rx) = channel(4096).unwrap();
    let (_tx, rx) = channel(4096).unwrap();
    busy_rx.end().watch_peer();
    rx.end().watch_peer();
    assert!(rx.end().is_peer_watched() && busy_rx.end().is_peer_watched());
    let busy_fd = busy_rx.end().fd().as_raw_fd();
    let stop = Arc::new(AtomicBool::new(false));
    let spam = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                close_event(busy_fd);
            }
        })
    };
    // The watcher sees the busy watch's events without pause from here on.
    let before = rx.end().peer_rechecks();
    close_event(rx.end().fd().as_raw_fd());
    let start = Instant::now();
    let done = loop {
        // The series ran to its last re-check (RECHECKS' last step).
        if rx.end().peer_rechecks() > before {
            break true;
        }
        if start.elapsed() > HANG {
            break false;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    stop.store(true, Relaxed);
    spam.join().unwrap();
    drop(busy_rx);
    assert!(
        done,
        "the re-checks were postponed by the other watch's events"
    );
}
