//! Policies, the fork lock and helpers of the wait tests.

use crate::common;

use common::*;
use shmpipe_engine::{channel, Error, Receiver, Sender, WaitPolicy};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The hang guard of every test.
pub(super) const HANG: Duration = Duration::from_secs(10);

/// A deadline near enough for a test to wait it out.
pub(super) const NEAR: Duration = Duration::from_millis(20);

/// Parks at once and only wakes when notified (or at a deadline).
pub(super) const PARK_UNTIL_NOTIFIED: WaitPolicy = WaitPolicy {
    spin: Some(Duration::ZERO),
    park_slice: Duration::from_secs(60),
};

pub(super) fn policies() -> Vec<(&'static str, WaitPolicy)> {
    vec![
        ("spin", WaitPolicy::spin()),
        ("park", WaitPolicy::park()),
        (
            "spin_then_park(50us)",
            WaitPolicy::spin_then_park(Duration::from_micros(50)),
        ),
        (
            "spin_then_park(5ms)",
            WaitPolicy::spin_then_park(Duration::from_millis(5)),
        ),
        ("default", WaitPolicy::default()),
        ("park, 60 s slice", PARK_UNTIL_NOTIFIED),
    ]
}

/// Policies whose waiters notice a dead peer by themselves (a peer check at
/// least every few milliseconds): the SIGKILL tests, where no hang-up hint
/// is left.
pub(super) fn checking_policies() -> Vec<(&'static str, WaitPolicy)> {
    policies()
        .into_iter()
        .filter(|(_, p)| *p != PARK_UNTIL_NOTIFIED)
        .collect()
}

/// Waits until thread `tid`, which is starting a wait under `policy`, waits:
/// parked in its futex, or spinning under a policy that never parks. The
/// outcome of the tests that use this does not depend on it; it makes them
/// test a waiter that waits, rather than one that has not started yet.
pub(super) fn settled(tid: i32, policy: WaitPolicy) {
    if policy.spin.is_none() {
        wait_until_spinning(tid);
    } else {
        wait_until_blocked(tid);
    }
}

/// The hang guard of one policy's run of a test.
pub(super) fn guard(test: &str, policy: &str) -> Watchdog {
    Watchdog::new(&format!("{test} [{policy}]"), HANG)
}

/// Between `fork` and `exec`, a child holds a copy of every descriptor of
/// this process, the channel ends of concurrently running tests included
/// (close-on-exec closes them only at the `exec`). An end whose last handle
/// closes in that window stays open until the `exec`: its peer, woken by the
/// hang-up hint, finds it still open, and learns of the close only at its
/// next park slice, which under [`PARK_UNTIL_NOTIFIED`] is a minute away. So
/// the tests that spawn children run alone ([`forking`]) and the others
/// together ([`not_forking`]).
pub(super) static FORKS: RwLock<()> = RwLock::new(());

pub(super) fn not_forking() -> RwLockReadGuard<'static, ()> {
    FORKS.read().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn forking() -> RwLockWriteGuard<'static, ()> {
    FORKS.write().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn channel_with_policy(cap: usize, policy: WaitPolicy) -> (Sender, Receiver) {
    let (mut tx, mut rx) = channel(cap).expect("channel");
    tx.set_wait_policy(policy);
    rx.set_wait_policy(policy);
    (tx, rx)
}

/// Fills the ring with 100-byte records (keys `0..`); returns how many fit.
pub(super) fn fill_ring(tx: &mut Sender) -> u64 {
    let mut n = 0;
    while tx.try_write(&content(n, 100)).unwrap() {
        n += 1;
    }
    assert!(n > 0, "not even one record fit in an empty ring");
    n
}

/// Reads and checks `n` 100-byte records with keys `0..n`.
pub(super) fn drain_filled(rx: &mut Receiver, n: u64, what: &str) {
    let mut buf = [0u8; 200];
    for key in 0..n {
        let m = rx.read_message(&mut buf).unwrap();
        assert!(
            m.end && m.len == 100,
            "{what}: filler record {key}: {m:?}, expected 100 bytes"
        );
        verify(key, 0, &buf[..100]).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

/// `Err(TimedOut)`, returned no earlier than `deadline`.
#[track_caller]
pub(super) fn assert_timed_out<T: std::fmt::Debug>(
    r: Result<T, Error>,
    deadline: Instant,
    what: &str,
) {
    let now = Instant::now();
    assert!(
        matches!(r, Err(Error::TimedOut)),
        "{what}: expected TimedOut, got {r:?}"
    );
    assert!(now >= deadline, "{what}: TimedOut before the deadline");
}
