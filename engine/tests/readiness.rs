//! The readiness bridge (`shmpipe_engine::readiness`): an armed eventfd is
//! signalled by a notify from another thread, at once if the word already
//! moved on, after the fallback slice if nothing happens, and for more
//! armed entries than one bridge thread can wait on.
//!
//! Every test of a word's wake-up watches the peer (the pipe layer does so
//! before announcing), which stretches the fallback slice to
//! `WATCHED_SLICE`, and asserts that its readiness got no fallback signal:
//! a wake-up that came by the fallback rather than by the bridge's wait on
//! the word (a word left out of the wait list) fails it.

mod common;

use rustix::event::{poll, PollFd, PollFlags};
use shmpipe_engine::readiness::Readiness;
use shmpipe_engine::{channel, Receiver, Sender};
use std::time::Duration;

/// A generous hang guard, not a timing assertion.
const HANG: Duration = Duration::from_secs(30);

/// The tests run one at a time: another test's arming kicks the bridge,
/// whose rebuild would then find a changed word even if the bridge did not
/// wait on it, and hide exactly what `no_fallback` looks for.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits (at most `HANG`) until every bridge thread of this process sleeps
/// in a futex wait. Called after arming returned: the arming's kick woke
/// the thread, so a sleeping thread has rebuilt its wait list since, and
/// a notify now reaches the bridge only through that list's words.
fn bridge_asleep() {
    common::wait_until_threads_asleep("shmpipe-readine", "futex");
}

/// Waits (at most `HANG`) for the descriptor to be readable; consumes it.
fn signalled(ready: &Readiness) -> bool {
    let mut fds = [PollFd::new(ready, PollFlags::IN)];
    let ts = rustix::time::Timespec {
        tv_sec: HANG.as_secs() as i64,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&ts)) {
        Ok(n) if n > 0 => ready.clear().unwrap(),
        _ => false,
    }
}

/// Watches `rx`'s peer as the pipe layer does before announcing; under
/// `CI=true` a system without inotify fails here rather than passing with
/// the short slice.
fn watch(end: &shmpipe_engine::channel::End) {
    end.watch_peer();
    assert!(
        end.is_peer_watched() || std::env::var_os("CI").is_none(),
        "no inotify watch"
    );
}

/// Asserts that `ready` was only ever signalled by a word's change.
fn no_fallback(ready: &Readiness) {
    assert_eq!(
        ready.fallback_signals(),
        0,
        "signalled by the fallback slice, not by the word"
    );
}

/// The protocol of the module doc: try, announce, re-check, arm.
fn arm_read(rx: &mut Receiver, ready: &Readiness) -> bool {
    watch(rx.end());
    let mut buf = [0u8; 64];
    if rx.try_read(&mut buf).unwrap().is_some() {
        return false;
    }
    let tickets = rx.announce_read();
    if rx.try_read(&mut buf).unwrap().is_some() {
        return false;
    }
    ready.arm(tickets).unwrap();
    bridge_asleep();
    true
}

/// The whole protocol of the module doc for a read: try, announce,
/// re-check, arm, wait for the descriptor, clear, loop. A signal may come
/// without data (the fallback slice, on a loaded machine): the loop
/// re-checks, as every user must.
fn read_when_ready(rx: &mut Receiver, ready: &Readiness, buf: &mut [u8]) -> usize {
    loop {
        if let Some(n) = rx.try_read(buf).unwrap() {
            return n;
        }
        let tickets = rx.announce_read();
        if let Some(n) = rx.try_read(buf).unwrap() {
            return n;
        }
        ready.arm(tickets).unwrap();
        bridge_asleep();
        assert!(signalled(ready), "not signalled within the hang guard");
    }
}

#[test]
fn a_write_from_another_thread_signals_an_armed_read() {
    let _serial = serial();
    let (mut tx, mut rx) = channel(4096).unwrap();
    let ready = Readiness::new().unwrap();
    assert!(arm_read(&mut rx, &ready));
    let writer = std::thread::spawn(move || tx.write(b"hello").map(|()| tx));
    assert!(signalled(&ready));
    let mut buf = [0u8; 8];
    assert_eq!(read_when_ready(&mut rx, &ready, &mut buf), 5);
    drop(writer.join().unwrap().unwrap());
    no_fallback(&ready);
}

/// The re-check of the protocol does not wake its own announcement: it
/// takes and releases the reader lock, whose release notifies the lock's
/// event, which was announced before the fix (every arming then signalled
/// at once, and a pending future spun instead of sleeping).
#[test]
fn the_recheck_does_not_wake_its_own_announcement() {
    let _serial = serial();
    let (_tx, mut rx) = channel(4096).unwrap();
    let tickets = rx.announce_read();
    assert_eq!(rx.try_read(&mut [0; 8]).unwrap(), None);
    assert!(
        !tickets.changed(),
        "the re-check notified its own announcement"
    );
    let (mut tx, _rx) = channel(256).unwrap();
    while tx.try_write(&[0; 64]).unwrap() {}
    let tickets = tx.announce_write();
    assert!(!tx.try_write(&[0; 64]).unwrap());
    assert!(
        !tickets.changed(),
        "the re-check notified its own announcement"
    );
}

#[test]
fn a_notify_before_arming_signals_at_once() {
    let _serial = serial();
    let (mut tx, rx) = channel(4096).unwrap();
    let ready = Readiness::new().unwrap();
    let tickets = rx.announce_read();
    tx.write(b"x").unwrap(); // notifies: the word moves on before arming
    ready.arm(tickets).unwrap();
    assert!(ready.clear().unwrap(), "not signalled at arming");
}

#[test]
fn an_idle_armed_entry_is_signalled_after_the_fallback_slice() {
    let _serial = serial();
    let (_tx, rx) = channel(4096).unwrap();
    let ready = Readiness::new().unwrap();
    let before = shmpipe_engine::readiness::fallback_signals();
    ready.arm(rx.announce_read()).unwrap();
    // Nobody notifies: only the fallback slice can signal.
    assert!(signalled(&ready));
    assert_eq!(ready.fallback_signals(), 1);
    assert!(shmpipe_engine::readiness::fallback_signals() > before);
}

#[test]
fn a_full_ring_write_is_signalled_when_the_reader_frees_space() {
    let _serial = serial();
    let (mut tx, mut rx): (Sender, Receiver) = channel(256).unwrap();
    while tx.try_write(&[1; 64]).unwrap() {}
    watch(tx.end());
    let ready = Readiness::new().unwrap();
    let tickets = tx.announce_write();
    assert!(!tx.try_write(&[1; 64]).unwrap());
    ready.arm(tickets).unwrap();
    bridge_asleep();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while rx.read(&mut buf)? < 128 {}
        Ok::<_, shmpipe_engine::Error>(rx)
    });
    assert!(signalled(&ready));
    // The protocol's loop: a signal may come before the room does.
    loop {
        if tx.try_write(&[1; 64]).unwrap() {
            break;
        }
        let tickets = tx.announce_write();
        if tx.try_write(&[1; 64]).unwrap() {
            break;
        }
        ready.arm(tickets).unwrap();
        bridge_asleep();
        assert!(signalled(&ready));
    }
    drop(reader.join().unwrap().unwrap());
    no_fallback(&ready);
}

/// 300 entries of 2 words: more than one bridge thread (127 words each)
/// holds, so three shards run; every one is signalled by its own write.
#[test]
fn more_entries_than_one_bridge_thread_holds_are_all_signalled() {
    let _serial = serial();
    let mut ends = Vec::new();
    for _ in 0..300 {
        let (tx, mut rx) = channel(256).unwrap();
        let ready = Readiness::new().unwrap();
        assert!(arm_read(&mut rx, &ready));
        ends.push((tx, rx, ready));
    }
    bridge_asleep();
    for (tx, _, ready) in &mut ends {
        tx.write(b"x").unwrap();
        assert!(signalled(ready));
    }
    for (_, rx, ready) in &mut ends {
        assert_eq!(read_when_ready(rx, ready, &mut [0; 8]), 1);
        no_fallback(ready);
    }
}

/// A disarmed (dropped) readiness leaves the bridge working for others:
/// entries come and go while another stays armed and is signalled.
#[test]
fn disarming_others_does_not_disturb_an_armed_entry() {
    let _serial = serial();
    let (mut tx, mut rx) = channel(4096).unwrap();
    let ready = Readiness::new().unwrap();
    assert!(arm_read(&mut rx, &ready));
    for _ in 0..50 {
        let (_t, mut r) = channel(256).unwrap();
        let other = Readiness::new().unwrap();
        assert!(arm_read(&mut r, &other));
        drop(other);
    }
    bridge_asleep();
    tx.write(b"y").unwrap();
    assert!(signalled(&ready));
    assert_eq!(read_when_ready(&mut rx, &ready, &mut [0; 8]), 1);
    no_fallback(&ready);
}

/// A forked child does not use its parent's bridge threads (they do not
/// exist in the child): its own arming starts a bridge of its own, which
/// signals. The parent's bridge is running (and may hold its locks) at the
/// fork.
#[test]
fn a_forked_child_arms_a_bridge_of_its_own() {
    let _serial = serial();
    let (_ptx, mut prx) = channel(4096).unwrap();
    let parent_ready = Readiness::new().unwrap();
    assert!(arm_read(&mut prx, &parent_ready));
    // SAFETY: the child only runs this test's code and leaves with `_exit`
    // (no destructors, no libtest machinery).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(|| {
            let (mut tx, mut rx) = channel(4096).unwrap();
            let ready = Readiness::new().unwrap();
            assert!(arm_read(&mut rx, &ready));
            // Armed before the write: only a bridge thread (its wait or its
            // fallback slice) can signal now.
            let writer = std::thread::spawn(move || tx.write(b"child").map(|()| tx));
            let woke = signalled(&ready);
            drop(writer.join().unwrap().unwrap());
            woke && read_when_ready(&mut rx, &ready, &mut [0; 8]) == 5
                && ready.fallback_signals() == 0
        });
        // SAFETY: ends the child at once, as intended.
        unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
}
