//! No hand-off waits a full park slice: long ping-pongs between two threads
//! must leave `wait::full_slice_waits()` at 0. A lost wake-up (say, a
//! weakened `sync::fence_seq_cst`) costs a whole park slice and is counted;
//! on x86 it breaks no other test, since the sleeper only loses latency.
//! The assertions are on that count, never on a time.
//!
//! Only a park that the futex ends by its timeout, with the condition true
//! on waking, counts: a waiter woken but scheduled late does not, nor does a
//! peer that is merely slow (the condition is still false when the slice
//! ends). The park slice is long (200 ms) so that the one other way to
//! count, a peer stalled between publishing and notifying for a whole
//! slice, does not happen on a loaded machine either. The count is checked
//! after every round trip, so a regression fails at its first lost wake-up
//! instead of paying a slice for each.
//!
//! The counter is process-wide; both tests expect it to stay 0, so they may
//! run in parallel, and no other test may share this binary.
//!
//! Checked by breaking the engine (and restoring it): with
//! `sync::fence_seq_cst` weakened to an `AcqRel` fence (no fence
//! instruction on x86), the `Event` test failed within the first 200 to
//! 3 500 round trips in each of several runs, while the channel test, whose
//! hand-offs also take the admission locks (a locked instruction on each
//! side, a full barrier on x86), passed; with `Grant::commit`'s notify
//! removed, the channel test failed at its first round trip.
//!
//! Shape of the round trips: one side waits with the engine's `Waiter`,
//! parking at once whenever its condition is false; the other answers,
//! then spins on the reply and waits a random 0 to 63 spin hints before the
//! next message. The parking side, having just answered, is on its way to
//! park at about that time, so its announcement (`sleepers = 1`, then the
//! check of the condition) often overlaps the publication (the store, then
//! the check of `sleepers`): the window in which a handshake without its
//! fence loses the wake-up. (When both sides park, each answers only after
//! a futex wake-up latency, the other is long asleep by then, and the window
//! is almost never hit.)

use shmpipe_engine::sync::Native;
use shmpipe_engine::wait::{full_slice_waits, Event, Waiter};
use shmpipe_engine::{channel, WaitPolicy};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;
use std::time::Duration;

const ROUND_TRIPS: u64 = 100_000;
const SLICE: Duration = Duration::from_millis(200);

/// Park at once, in long slices.
const PARK: WaitPolicy = WaitPolicy {
    spin: Some(Duration::ZERO),
    park_slice: SLICE,
};

/// A xorshift step (no dev-dependency needed).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn jitter(state: &mut u64) {
    for _ in 0..next(state) % 64 {
        std::hint::spin_loop();
    }
}

fn assert_no_full_slice_wait(before: u64, round_trip: u64) {
    assert_eq!(
        full_slice_waits() - before,
        0,
        "a hand-off waited a full park slice (a lost wake-up) by round trip {round_trip}"
    );
}

/// The `Event` handshake alone: a counter published and notified, a waiter
/// parking on it (the engine's `Waiter::wait`, as every blocking operation
/// uses it), an acknowledgement spun on.
#[test]
fn event_ping_pong_never_waits_a_full_slice() {
    let before = full_slice_waits();
    let shared = Arc::new((Event::<Native>::new(), AtomicU64::new(0), AtomicU64::new(0)));
    let waiter = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let (event, ping, pong) = &*shared;
            for i in 1..=ROUND_TRIPS {
                let mut waiter = Waiter::new(PARK, None);
                while ping.load(Acquire) < i {
                    waiter.wait(event, || ping.load(Acquire) >= i);
                }
                pong.store(i, Release);
            }
        })
    };
    let (event, ping, pong) = &*shared;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for i in 1..=ROUND_TRIPS {
        ping.store(i, Release);
        event.notify();
        while pong.load(Acquire) < i {
            std::hint::spin_loop();
        }
        assert_no_full_slice_wait(before, i);
        jitter(&mut rng);
    }
    waiter.join().unwrap();
}

/// The same through channels: `Sender::write` publishes and notifies,
/// `Receiver::read_message` parks on the ring's readable event.
#[test]
fn channel_ping_pong_never_waits_a_full_slice() {
    let before = full_slice_waits();
    let (mut ping_tx, mut ping_rx) = channel(4096).unwrap();
    let (mut pong_tx, mut pong_rx) = channel(4096).unwrap();
    let spin = WaitPolicy {
        spin: None,
        park_slice: SLICE,
    };
    ping_rx.set_wait_policy(PARK);
    pong_tx.set_wait_policy(PARK);
    ping_tx.set_wait_policy(spin);
    pong_rx.set_wait_policy(spin);
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        for _ in 0..ROUND_TRIPS {
            let m = ping_rx.read_message(&mut buf).unwrap();
            assert!(m.end && m.len == 8);
            pong_tx.write(&buf).unwrap();
        }
    });
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut buf = [0u8; 8];
    for i in 0..ROUND_TRIPS {
        ping_tx.write(&i.to_le_bytes()).unwrap();
        let m = pong_rx.read_message(&mut buf).unwrap();
        assert!(m.end && m.len == 8);
        assert_eq!(u64::from_le_bytes(buf), i, "echo out of order");
        assert_no_full_slice_wait(before, i);
        jitter(&mut rng);
    }
    echo.join().unwrap();
}
