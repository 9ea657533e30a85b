//! `wait::Event` under loom: the sleepers-flag handshake never loses a
//! wake-up, and skips the futex wake when nobody parked.
#![cfg(loom)]

use loom::sync::atomic::AtomicBool;
use loom::thread;
use shmpipe_engine::sync::Platform;
use shmpipe_engine::wait::Event;
use shmpipe_loom_tests::broken::RelaxedAtomics;
use shmpipe_loom_tests::{futex, model, model_exhaustive, model_min_bound, Loom};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;

/// A waiter parks until a flag is set; the notifier sets it and notifies.
/// Loom finds no deadlock (a lost wake-up would leave the waiter asleep
/// forever: the model futex ignores timeouts). Across the explored
/// executions, the notifier both skips the wake (waiter not parked yet or
/// already satisfied) and wakes a waiter that really slept, and it never
/// calls the futex when the waiter never announced itself.
#[test]
fn notify_wakes_a_parked_waiter() {
    static SKIPPED: AtomicUsize = AtomicUsize::new(0);
    static WOKE_SLEEPER: AtomicUsize = AtomicUsize::new(0);
    model_exhaustive("notify_wakes_a_parked_waiter", || {
        let shared = Arc::new((Event::<Loom>::new(), AtomicBool::new(false)));
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (event, flag) = &*shared;
                let mut parked = false;
                while !flag.load(Acquire) {
                    parked = true;
                    event.park(None, || flag.load(Acquire));
                }
                parked
            })
        };
        let (event, flag) = &*shared;
        flag.store(true, Release);
        event.notify();
        let parked = waiter.join().unwrap();
        let stats = futex::stats();
        if !parked {
            assert_eq!(stats.wakes, 0, "futex woken although nobody parked");
        }
        assert!(stats.sleeps <= stats.wakes, "a sleeper was not woken");
        if stats.wakes == 0 {
            SKIPPED.fetch_add(1, Relaxed);
        }
        if stats.sleeps > 0 {
            WOKE_SLEEPER.fetch_add(1, Relaxed);
        }
    });
    assert!(
        SKIPPED.load(Relaxed) > 0,
        "the no-syscall path was never explored"
    );
    assert!(WOKE_SLEEPER.load(Relaxed) > 0, "no execution slept");
}

/// The no-sleeper fast path in both orders, single-threaded: a notify
/// before anyone parks makes no futex call; a park whose condition is
/// already true returns without sleeping, and its stale `sleepers` flag
/// costs the next notify one wake, which clears it.
#[test]
fn nobody_parked_skips_the_wake() {
    model_exhaustive("nobody_parked_skips_the_wake", || {
        let event = Event::<Loom>::new();
        event.notify();
        assert_eq!(futex::stats().wakes, 0);
        event.park(None, || true);
        assert_eq!(futex::stats().sleeps, 0);
        event.notify();
        assert_eq!(futex::stats().wakes, 1);
        event.notify();
        assert_eq!(futex::stats().wakes, 1);
    });
}

/// Two waiters on one event, one notify: both wake (the flag is not a count,
/// and the wake is a broadcast).
#[test]
fn one_notify_wakes_every_waiter() {
    model("one_notify_wakes_every_waiter", || {
        let shared = Arc::new((Event::<Loom>::new(), AtomicBool::new(false)));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || {
                    let (event, flag) = &*shared;
                    while !flag.load(Acquire) {
                        event.park(None, || flag.load(Acquire));
                    }
                })
            })
            .collect();
        let (event, flag) = &*shared;
        flag.store(true, Release);
        event.notify();
        for w in waiters {
            w.join().unwrap();
        }
    });
}

/// Two park/notify rounds on one event: the waiter waits for round 1, then
/// for round 2; the notifier publishes and notifies each round. A waiter
/// that leaves round 1 without sleeping through the futex (its condition
/// was already true, or the futex found `seq` changed) is not ordered after
/// the notifier's `sleepers.store(0)` of round 1, except through `seq`: it
/// reads the round-1 increment (`Release`) with `Acquire` before it sets
/// `sleepers` again. Without that edge the stale clear can win over the
/// round-2 `sleepers = 1`, the round-2 notify skips the wake and the waiter
/// sleeps for good. One round cannot show it (`wait.rs`: "n rounds").
/// The interleaving needs three preemptions, so the model runs with a bound
/// of at least 3 whatever `LOOM_MAX_PREEMPTIONS` says (about 900
/// executions; exhaustively it takes 1.3 million, a minute).
fn two_rounds<P: Platform>(name: &str) {
    model_min_bound(name, 3, || {
        let shared = Arc::new((Event::<P>::new(), loom::sync::atomic::AtomicUsize::new(0)));
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (event, round) = &*shared;
                for r in 1..=2 {
                    while round.load(Acquire) < r {
                        event.park(None, || round.load(Acquire) >= r);
                    }
                }
            })
        };
        let (event, round) = &*shared;
        for r in 1..=2 {
            round.store(r, Release);
            event.notify();
        }
        waiter.join().unwrap();
    });
}

#[test]
fn two_rounds_never_lose_a_wakeup() {
    two_rounds::<Loom>("two_rounds_never_lose_a_wakeup");
}

/// The same two rounds with `seq` accessed `Relaxed` (the broken platform
/// ignores the orderings `Event` asks for; `sleepers` is `Relaxed` anyway,
/// and the fences stay): loom finds the lost wake-up of round 2.
#[test]
#[should_panic(expected = "deadlock")]
fn two_rounds_with_relaxed_seq_lose_a_wakeup() {
    two_rounds::<RelaxedAtomics>("two_rounds_with_relaxed_seq_lose_a_wakeup");
}

/// Control: one round on the same broken platform loses nothing (the
/// one-round argument needs only the fences and coherence of `seq`), which
/// is why only a model with two rounds shows what `seq`'s orderings are for.
#[test]
fn one_round_with_relaxed_seq_passes() {
    model_exhaustive("one_round_with_relaxed_seq_passes", || {
        let shared = Arc::new((Event::<RelaxedAtomics>::new(), AtomicBool::new(false)));
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (event, flag) = &*shared;
                while !flag.load(Acquire) {
                    event.park(None, || flag.load(Acquire));
                }
            })
        };
        let (event, flag) = &*shared;
        flag.store(true, Release);
        event.notify();
        waiter.join().unwrap();
    });
}
