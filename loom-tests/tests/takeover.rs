//! Taking the writer lock over from a dead holder, under loom: the holder
//! dies after publishing the first fragment of a write; of two rescuers
//! exactly one takes the lock over (compare-exchange against the dead
//! token), ends the dead write with an `ABORT` record, and the consumer sees
//! the dead message's part as unfinished, then the cut, then each rescuer's
//! message whole.
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::lock::Acquired;
use shmpipe_engine::wait::Waiter;
use shmpipe_engine::{Consumer, Error, Producer, RingStorage};
use shmpipe_loom_tests::{check_every_step_policy, model, payload, LoomRing};
use std::sync::Arc;

const DEAD: u64 = 99;
const RESCUERS: [u64; 2] = [11, 22];
const HALF: usize = 48;

#[test]
fn exactly_one_rescuer_takes_over_a_dead_holder() {
    model("exactly_one_rescuer_takes_over_a_dead_holder", || {
        let ring = Arc::new(LoomRing::new(256));
        {
            // The holder: locks, publishes half of a write, dies (never
            // unlocks, never writes the rest).
            assert!(ring.control().locks.0.writer.try_lock(DEAD));
            // SAFETY: LoomRing hands out no slices and loom tracks each access;
            // the model's halves of one role take turns (or there is one).
            let mut p = unsafe { Producer::new(ring.clone()) }.unwrap();
            assert!(p.try_push(&payload(9, HALF), HALF as u64).unwrap());
        }
        let rescuers: Vec<_> = (0..2)
            .map(|i| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let lock = &ring.control().locks.0.writer;
                    let mut waiter = Waiter::new(check_every_step_policy(), None);
                    let how = lock.lock(RESCUERS[i], &mut waiter, |t| t != DEAD).unwrap();
                    assert_eq!(lock.owner(), RESCUERS[i]);
                    // SAFETY: LoomRing hands out no slices and loom tracks each access;
                    // the model's halves of one role take turns (or there is one).
                    let mut p = unsafe { Producer::new(ring.clone()) }.unwrap();
                    // Only the taker-over finds the dead write open; the
                    // other finds it already ended.
                    let open = if how == Acquired::FromDead { HALF } else { 0 };
                    assert_eq!(p.open_write(), open as u64);
                    assert!(p.try_abort_open_write().unwrap());
                    assert!(p.try_push(&payload(i as u8, 20), 0).unwrap());
                    lock.unlock();
                    how
                })
            })
            .collect();
        let hows: Vec<_> = rescuers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(
            hows.iter().filter(|&&h| h == Acquired::FromDead).count(),
            1,
            "{hows:?}"
        );
        assert_eq!(ring.control().locks.0.writer.owner(), 0);

        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
        let mut buf = [0u8; 2 * HALF];
        let m = c.read_message(&mut buf).unwrap().unwrap();
        assert!(!m.end, "a cut message is never reported complete");
        assert_eq!(&buf[..m.len], &payload(9, HALF)[..]);
        assert!(
            matches!(c.read_message(&mut buf), Err(Error::MessageCut)),
            "the abort record reports the cut"
        );
        let mut seen = Vec::new();
        for _ in 0..2 {
            let m = c.read_message(&mut buf).unwrap().unwrap();
            assert!(m.end);
            let writer = (0..2)
                .find(|&i| buf[..m.len] == payload(i as u8, 20)[..])
                .expect("a rescuer's message, whole");
            seen.push(writer);
        }
        seen.sort_unstable();
        assert_eq!(seen, [0, 1]);
        assert_eq!(c.read_message(&mut buf).unwrap(), None);
    });
}
