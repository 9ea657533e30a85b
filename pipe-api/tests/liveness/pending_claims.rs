//! Spec 7.5 (SEM-117) with several pending writes on one ring, across real
//! processes: each write whose process dies vanishes (its unread rest),
//! whichever of the ring's claims it holds; claims of dead writes that were
//! read through never hold up a later write; and a dead writer's claim
//! never costs a later write any of its bytes.
//!
//! Children are this test binary run again; `common::tests!` at the end
//! lists the tests and the children. Tests act on observed state (bytes
//! queued, a process stopped, a thread asleep in the kernel), never after a
//! sleep.

use crate::common;

use common::{child_command, pattern, within, Pending, HANG, TOKEN_ENV};
use shmpipe::{CommandExt as _, PipeBuilder, PipeReader, PipeWriter};
use std::io::{Read, Write};
use std::process::Child;
use std::time::Instant;

/// Far below the ring (64 KiB for this quota): writes of a few KiB are
/// published whole and then pend.
const QUOTA: u32 = 1024;
const NEXT: &[u8] = b"the parent's next write";
/// `len:seed` of the child's one write.
const WRITE_ENV: &str = "SHMPIPE_TEST_WRITE";

/// Waits until `r` holds at least `n` unread bytes.
fn wait_queued(r: &PipeReader, n: u64) {
    let start = Instant::now();
    while r.peek(None).unwrap().total_available < n {
        assert!(start.elapsed() < HANG, "the writes never arrived");
        std::thread::yield_now();
    }
}

/// Child: one write of `pattern(len, seed)` (from [`WRITE_ENV`]); it pends
/// or blocks until the parent kills us.
fn child_write_until_killed() {
    let token = std::env::var(TOKEN_ENV).unwrap();
    let spec = std::env::var(WRITE_ENV).unwrap();
    let (len, seed) = spec.split_once(':').unwrap();
    let mut w = PipeWriter::from_inherited(&token).unwrap();
    let _ = w.write(&pattern(len.parse().unwrap(), seed.parse().unwrap()));
    std::process::exit(3); // never reached: the parent kills us first
}

/// Starts a child writing `pattern(len, seed)` through a copy of `w`.
fn spawn_writer(w: &PipeWriter, len: usize, seed: u8) -> Child {
    let mut cmd = child_command("child_write_until_killed");
    let token = cmd.inherit_end(w).unwrap();
    cmd.env(TOKEN_ENV, token)
        .env(WRITE_ENV, format!("{len}:{seed}"))
        .spawn()
        .unwrap()
}

fn stop(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    // Stopped for sure (the signal lands asynchronously): then it
    // publishes nothing more.
    let start = Instant::now();
    while common::process_state(child.id()) != Some('T') {
        assert!(start.elapsed() < HANG, "the writer never stopped");
        std::thread::yield_now();
    }
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Reads everything queued now.
fn drain(r: &mut PipeReader) -> Vec<u8> {
    let n = r.peek(None).unwrap().total_available as usize;
    let mut v = vec![0u8; n];
    r.read_exact(&mut v).unwrap();
    v
}

/// The parent's first write pends (its claim is the first); a child's
/// write pends behind it, and the child is killed: its write vanishes
/// whole, while the parent's first and next writes are delivered whole.
fn sem_117_the_second_of_two_pending_writes_vanishes_when_its_process_dies() {
    let (mut r, w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let mut w2 = w.try_clone().unwrap();
    let first = Pending::start("first write", move || w2.write_all(&pattern(2000, 7)));
    wait_queued(&r, 2000);
    let child = spawn_writer(&w, 1500, 9);
    wait_queued(&r, 3500); // both published, both pend
    kill(child);
    let mut got = vec![0u8; 2000];
    r.read_exact(&mut got).unwrap();
    assert!(got == pattern(2000, 7), "the first write arrived corrupted");
    first.finish().unwrap();
    // The dead rest still fills the quota until the reader passes it: the
    // next write pends meanwhile.
    let next = Pending::start("the next write", move || {
        let mut w = w;
        w.write_all(NEXT)
    });
    let rest = within("reading to the end", move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    });
    next.finish().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rest),
        String::from_utf8_lossy(NEXT),
        "the dead second write must vanish whole"
    );
}

/// Four writers (as many as a ring has claims) pend, are stopped, read
/// through, and killed: four dead claims with nothing unread. The reader
/// then sleeps on the empty ring and never passes them, so the next write
/// that may pend finds no free claim: it must clear the spent ones itself
/// rather than wait for a claim forever, and is read whole.
fn claims_of_dead_writes_read_through_do_not_hold_up_the_next_pending_write() {
    const WRITERS: usize = 4;
    let (mut r, mut w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let mut children = Vec::new();
    for i in 0..WRITERS {
        children.push(spawn_writer(&w, 2000, i as u8));
        wait_queued(&r, 2000 * (i as u64 + 1));
    }
    for child in &children {
        stop(child);
    }
    let got = drain(&mut r);
    assert_eq!(got.len(), 2000 * WRITERS);
    let read = Pending::start("read on the empty ring", move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    });
    read.assert_pending("nothing is unread");
    for child in children {
        kill(child);
    }
    let after = pattern(2000, 5); // more than the quota: it may pend
    w.write_all(&after).unwrap();
    drop(w);
    let rest = read.finish().unwrap();
    assert_eq!(rest.len(), after.len(), "the next write arrived whole");
    assert!(rest == after, "the next write arrived corrupted");
}

/// A writer killed while publishing a write larger than the ring leaves a
/// claim whose end lies past what it published. Once later writes carry
/// the ring's position past that end, the reader must still drop nothing
/// of them: the dead write ends where its writer stopped (the abort marker
/// the next writer publishes), not at the end it claimed.
fn a_writer_killed_mid_publish_never_costs_a_later_write_its_bytes() {
    const BIG: usize = 100_000; // more than the 64 KiB ring
    let (mut r, mut w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let child = spawn_writer(&w, BIG, 2);
    wait_queued(&r, 32 * 1024);
    stop(&child);
    let got = drain(&mut r);
    assert!(
        got.len() < BIG,
        "the writer finished publishing before its stop"
    );
    assert!(
        got[..] == pattern(BIG, 2)[..got.len()],
        "the dead write's part"
    );
    kill(child);
    // Published whole at once (the ring is empty), past the dead claim's
    // end: its claim now covers bytes of this write.
    let after = pattern(BIG - got.len() + 4096, 5);
    let expected = after.clone();
    let writer = Pending::start("the next write", move || w.write_all(&after).map(|()| w));
    wait_queued(&r, expected.len() as u64);
    let rest = within("reading the next write", move || {
        let mut v = vec![0u8; expected.len()];
        r.read_exact(&mut v).map(|()| (v, r))
    });
    let (rest, r) = rest.unwrap();
    drop(writer.finish().unwrap());
    assert!(
        rest == pattern(BIG - got.len() + 4096, 5),
        "the next write lost or changed bytes"
    );
    let mut r = r;
    assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0, "nothing after it");
}

common::tests! {
    tests: [
        sem_117_the_second_of_two_pending_writes_vanishes_when_its_process_dies,
        claims_of_dead_writes_read_through_do_not_hold_up_the_next_pending_write,
        a_writer_killed_mid_publish_never_costs_a_later_write_its_bytes,
    ],
    children: [child_write_until_killed],
}
