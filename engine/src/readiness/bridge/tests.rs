//! Tests of the bridge threads: toggled words, failed shards.

use super::*;

/// A word toggled away from its ticket and back, with wakes, makes the
/// bridge back off (instead of one round per toggle), and a real
/// change afterwards still signals the entry.
#[test]
fn a_toggled_word_makes_the_bridge_back_off() {
    use std::sync::atomic::AtomicBool;
    // A word of our own (the ring's words are read-only in the
    // announcing end's mapping); the segment only fills the field.
    static WORD: AtomicU32 = AtomicU32::new(7);
    let (_tx, rx) = crate::channel(4096).unwrap();
    let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::NONBLOCK).unwrap();
    let target = Arc::new(Target::new(fd));
    let mut tickets = Tickets::new(Arc::clone(rx.end().segment()));
    let (addr, value) = (&WORD as *const AtomicU32 as usize, 7);
    tickets.words[0] = (addr, value);
    tickets.len = 1;
    let shard = arm(u64::MAX - 3, Arc::clone(&target), tickets).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let word = &WORD;
            let _ = addr;
            while !stop.load(Relaxed) {
                word.store(value.wrapping_add(1), Release);
                crate::sync::futex::wake_all(word);
                word.store(value, Release);
                crate::sync::futex::wake_all(word);
            }
        })
    };
    let before = toggle_backoffs();
    let start = Instant::now();
    let mut shard = shard;
    let mut buf = [0u8; 8];
    while toggle_backoffs() == before {
        assert!(start.elapsed() < Duration::from_secs(20), "no back-off");
        // As an owner would: a signal (the rebuild caught the word
        // away from its ticket) re-arms with the word's current value.
        if rustix::io::read(&target.fd, &mut buf).is_ok() {
            disarm(shard, u64::MAX - 3);
            let mut t = Tickets::new(Arc::clone(rx.end().segment()));
            t.words[0] = (addr, WORD.load(Acquire));
            t.len = 1;
            shard = arm(u64::MAX - 3, Arc::clone(&target), t).unwrap();
        }
        std::thread::yield_now();
    }
    stop.store(true, Relaxed);
    toggler.join().unwrap();
    // A toggle the rebuild caught mid-way signalled the entry: drain it.
    let _ = rustix::io::read(&target.fd, &mut buf);
    let still_armed = locked(&shard.state)
        .entries
        .iter()
        .any(|e| e.id == u64::MAX - 3);
    if still_armed {
        WORD.fetch_add(2, Release);
        crate::sync::futex::wake_all(&WORD);
        let start = Instant::now();
        while rustix::io::read(&target.fd, &mut buf).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "not signalled");
            std::thread::yield_now();
        }
    }
    disarm(shard, u64::MAX - 3);
}

/// A failed shard signals its entries and takes no more: the next
/// arming goes to another shard.
#[test]
fn a_failed_shard_signals_its_entries_and_refuses_armings() {
    let (_tx, rx) = crate::channel(4096).unwrap();
    let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::NONBLOCK).unwrap();
    let target = Arc::new(Target::new(fd));
    let shard = arm(u64::MAX - 1, Arc::clone(&target), rx.announce_read()).unwrap();
    shard.fail();
    let mut buf = [0u8; 8];
    assert!(
        rustix::io::read(&target.fd, &mut buf).is_ok(),
        "not signalled"
    );
    let other = arm(u64::MAX - 2, Arc::clone(&target), rx.announce_read()).unwrap();
    assert!(!Arc::ptr_eq(&shard, &other));
    assert!(!disarm(shard, u64::MAX - 1));
    disarm(other, u64::MAX - 2);
}
