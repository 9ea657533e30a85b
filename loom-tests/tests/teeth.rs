//! The models have teeth: on deliberately broken platforms, or without the
//! writer lock, loom must report the bug the engine's real orderings and
//! locks prevent. Each test is the corresponding correct model with exactly
//! one thing removed.
#![cfg(loom)]

use loom::sync::atomic::AtomicBool;
use loom::thread;
use shmpipe_engine::sync::Platform;
use shmpipe_engine::wait::Event;
use shmpipe_engine::{Consumer, Producer};
use shmpipe_loom_tests::broken::{NoFence, RelaxedAtomics};
use shmpipe_loom_tests::{model_exhaustive, payload, Loom, LoomRing};
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;

fn park_and_notify<P: Platform>() {
    model_exhaustive("park_and_notify", || {
        let shared = Arc::new((Event::<P>::new(), AtomicBool::new(false)));
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

/// Without the two SeqCst fences, the waiter's `sleepers` store and the
/// notifier's flag store can both stay unseen (store buffering): the waiter
/// sleeps, the notifier skips the wake, and loom reports the deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn event_without_fences_loses_wakeups() {
    park_and_notify::<NoFence>();
}

/// Control for the test above: the same model on the real platform passes.
#[test]
fn event_with_fences_passes() {
    park_and_notify::<Loom>();
}

fn push_and_read<P: Platform>() {
    model_exhaustive("push_and_read", || {
        let ring = Arc::new(LoomRing::<P>::with_platform(256));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                // SAFETY: LoomRing hands out no slices and loom tracks each access;
                // the model's halves of one role take turns (or there is one).
                let mut p = unsafe { Producer::new(ring) }.unwrap();
                assert!(p.try_push(&payload(1, 20), 0).unwrap());
            })
        };
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring) }.unwrap();
        let mut buf = [0u8; 64];
        let n = loop {
            match c.read_stream(&mut buf).unwrap() {
                Some(n) => break n,
                None => thread::yield_now(),
            }
        };
        assert_eq!(&buf[..n], &payload(1, 20)[..]);
        producer.join().unwrap();
    });
}

/// With every atomic access `Relaxed`, publishing `tail` no longer orders
/// the record's bytes before the consumer's reads of them.
#[test]
#[should_panic(expected = "Causality violation")]
fn relaxed_publication_is_a_data_race() {
    push_and_read::<RelaxedAtomics>();
}

/// Control for the test above.
#[test]
fn release_acquire_publication_passes() {
    push_and_read::<Loom>();
}

/// Two producers without the writer lock both reserve slot 0.
#[test]
#[should_panic(expected = "Causality violation")]
fn producers_without_the_lock_race() {
    model_exhaustive("producers_without_the_lock_race", || {
        let ring = Arc::new(LoomRing::new(256));
        let writers: Vec<_> = (0..2u8)
            .map(|i| {
                let ring = ring.clone();
                thread::spawn(move || {
                    // SAFETY: deliberately broken: LoomRing tracks every access in a
                    // loom cell (no slices), so the race is a reported model failure,
                    // which is what this test expects.
                    let mut p = unsafe { Producer::new(ring) }.unwrap();
                    assert!(p.try_push(&payload(i, 20), 0).unwrap());
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
    });
}
