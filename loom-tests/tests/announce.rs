//! `wait::Event::announce` under loom: the mixed protocol of a blocking
//! parker and an announcer whose wait for `seq != s` runs elsewhere (in a
//! second thread standing for the readiness bridge, as
//! `shmpipe_engine::readiness` does with `futex_waitv`). No wake-up is
//! lost for either kind, and a notifier with nobody announced makes no
//! futex call.
#![cfg(loom)]

use loom::sync::atomic::AtomicBool;
use loom::thread;
use shmpipe_engine::wait::Event;
use shmpipe_loom_tests::{futex, model, model_exhaustive, Loom};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;

type Shared = Arc<(Event<Loom>, AtomicBool)>;

/// The future's side: try, announce, re-check, hand the ticket to a
/// "bridge" thread that waits for `seq != s` and then "signals" (ends, so
/// the join returns), then try again. Returns whether it ever announced.
fn announcer(shared: Shared) -> bool {
    let (event, flag) = &*shared;
    let mut announced = false;
    let mut bridges = 0;
    while !flag.load(Acquire) {
        announced = true;
        let ticket = event.announce();
        if flag.load(Acquire) {
            break;
        }
        bridges += 1;
        // One notify changes `seq` once: a second bridge would mean the
        // first one was signalled without the flag being visible.
        assert!(bridges <= 1, "signalled, but the re-check saw nothing");
        let bridge = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (event, _) = &*shared;
                while !event.changed_since(ticket) {
                    event.wait_changed(ticket, None);
                }
            })
        };
        bridge.join().unwrap();
    }
    announced
}

/// One blocking parker, one announcer (with its bridge thread) and one
/// notifier on one event. A lost wake-up of either kind is a loom deadlock
/// (the model futex ignores timeouts). When neither waiter announced
/// itself, the notifier made no futex call; across the executions both the
/// skipped wake and a real sleep occur.
#[test]
fn mixed_parker_and_announcer_never_lose_a_wakeup() {
    static SKIPPED: AtomicUsize = AtomicUsize::new(0);
    static SLEPT: AtomicUsize = AtomicUsize::new(0);
    model("mixed_parker_and_announcer_never_lose_a_wakeup", || {
        let shared: Shared = Arc::new((Event::<Loom>::new(), AtomicBool::new(false)));
        let parker = {
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
        let async_side = {
            let shared = shared.clone();
            thread::spawn(move || announcer(shared))
        };
        let (event, flag) = &*shared;
        flag.store(true, Release);
        event.notify();
        let parked = parker.join().unwrap();
        let announced = async_side.join().unwrap();
        let stats = futex::stats();
        if !parked && !announced {
            assert_eq!(stats.wakes, 0, "futex woken although nobody waited");
        }
        // Two sleepers (the parker, the bridge) share one broadcast wake.
        assert!(
            stats.sleeps == 0 || stats.wakes > 0,
            "a sleeper was not woken"
        );
        if stats.wakes == 0 {
            SKIPPED.fetch_add(1, Relaxed);
        }
        if stats.sleeps > 0 {
            SLEPT.fetch_add(1, Relaxed);
        }
    });
    assert!(
        SKIPPED.load(Relaxed) > 0,
        "the no-syscall path was never explored"
    );
    assert!(SLEPT.load(Relaxed) > 0, "no execution slept");
}

/// The announcer alone against the notifier, explored exhaustively: its
/// bridge is never left waiting on a word that will not change.
#[test]
fn announcer_alone_never_loses_a_wakeup() {
    model_exhaustive("announcer_alone_never_loses_a_wakeup", || {
        let shared: Shared = Arc::new((Event::<Loom>::new(), AtomicBool::new(false)));
        let async_side = {
            let shared = shared.clone();
            thread::spawn(move || announcer(shared))
        };
        let (event, flag) = &*shared;
        flag.store(true, Release);
        event.notify();
        async_side.join().unwrap();
    });
}

/// Single-threaded: a notify with nobody announced makes no futex call; an
/// announcement whose re-check succeeds (so nothing is armed) leaves the
/// flag set, which costs the next notify one wake that clears it, exactly
/// as a park that found its condition true does.
#[test]
fn notify_without_announcement_makes_no_wake_call() {
    model_exhaustive("notify_without_announcement_makes_no_wake_call", || {
        let event = Event::<Loom>::new();
        event.notify();
        assert_eq!(futex::stats().wakes, 0);
        let ticket = event.announce();
        assert!(!event.changed_since(ticket));
        event.notify();
        assert_eq!(futex::stats().wakes, 1);
        assert!(event.changed_since(ticket));
        event.notify();
        assert_eq!(futex::stats().wakes, 1);
    });
}

/// Teeth: an announcer that hands its ticket to the bridge without the
/// re-check (step 3 of the readiness protocol) sleeps for good when the
/// notify came between its first try and its announcement.
#[test]
#[should_panic(expected = "deadlock")]
fn arming_without_the_recheck_loses_a_wakeup() {
    model_exhaustive("arming_without_the_recheck_loses_a_wakeup", || {
        let shared: Shared = Arc::new((Event::<Loom>::new(), AtomicBool::new(false)));
        let async_side = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (event, flag) = &*shared;
                if !flag.load(Acquire) {
                    let ticket = event.announce();
                    while !event.changed_since(ticket) {
                        event.wait_changed(ticket, None);
                    }
                }
            })
        };
        let (event, flag) = &*shared;
        flag.store(true, Release);
        event.notify();
        async_side.join().unwrap();
    });
}
