//! Several writes pending on one ring at once, from different handles (spec
//! 5.2, 7.4, 7.5): each is withdrawn when cancelled and dropped when its
//! process dies, whichever of them pends first; and a dead write that left
//! nothing unread never holds up the next pending write.
//!
//! An earlier version marked only the first pending write: a second one,
//! cancelled or killed, left its unread rest readable. Now a ring has four
//! claims, and a write that finds none free publishes nothing until one is. Tests act on observed state
//! (a canceller's count, a thread asleep in the kernel, bytes queued), never
//! after a sleep.

use crate::common;

use common::{child_command, pattern, within, Pending, HANG, TOKEN_ENV};
use shmpipe::{Canceller, CommandExt as _, ErrorKind, PipeBuilder, PipeReader, PipeWriter};
use std::io::{BufRead, Read, Write};
use std::process::Stdio;
use std::time::Instant;

/// Small next to the ring (at least a page): a write of [`FIRST`] bytes is
/// published whole and then pends on the quota.
const QUOTA: u32 = 1024;
const FIRST: usize = 2000;
const SECOND: usize = 1500;
const NEXT: &[u8] = b"the write after the cancelled one";
const MARK: &str = "@@pair:";

#[track_caller]
fn wait_pending(c: &Canceller, n: usize) {
    let start = Instant::now();
    while c.pending() < n {
        assert!(start.elapsed() < HANG, "never {n} pending operations");
        std::thread::yield_now();
    }
}

/// Waits until `r` holds at least `n` unread bytes.
fn wait_queued(r: &PipeReader, n: u64) {
    let start = Instant::now();
    while r.peek(None).unwrap().total_available < n {
        assert!(start.elapsed() < HANG, "the child's writes never arrived");
        std::thread::yield_now();
    }
}

fn say(line: &str) {
    println!("{MARK}{line}");
    std::io::stdout().flush().unwrap();
}

fn hear(lines: &mut impl BufRead, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "child hung up before {want:?}"
        );
        if let Some(at) = line.find(MARK) {
            assert_eq!(line[at + MARK.len()..].trim_end(), want);
            return;
        }
    }
}

/// Child: two handles of one write end; the first pends on the quota with
/// [`FIRST`] bytes, then the second with [`SECOND`] bytes. On the parent's
/// word the second is cancelled (it must end with OperationAborted); the
/// second handle then writes [`NEXT`], and both writes complete as the
/// parent reads.
fn child_two_pending_writes() {
    let token = std::env::var(TOKEN_ENV).unwrap();
    let mut first = PipeWriter::from_inherited(&token).unwrap();
    let mut second = first.try_clone().unwrap();
    let (c1, c2) = (first.canceller(), second.canceller());
    let a = std::thread::spawn(move || first.write_all(&pattern(FIRST, 7)));
    wait_pending(&c1, 1);
    let b = std::thread::spawn(move || {
        let r = second.write(&pattern(SECOND, 9));
        (r, second)
    });
    wait_pending(&c2, 1);
    say("pending");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    c2.cancel().unwrap();
    let (r, mut second) = b.join().unwrap();
    assert_eq!(
        shmpipe::Error::kind_of(&r.unwrap_err()),
        Some(ErrorKind::OperationAborted)
    );
    say("cancelled");
    second.write_all(NEXT).unwrap();
    a.join().unwrap().unwrap();
}

/// SEM-145 with two pending writes: cancelling the second (another handle's
/// write, pending behind the first) withdraws all of it; the reader gets the
/// first write whole and then the write that followed the cancel, nothing
/// of the cancelled one.
fn sem_145_the_second_of_two_pending_writes_is_withdrawn_when_cancelled() {
    let (mut r, w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child_command("child_two_pending_writes");
    let token = cmd.inherit_end(&w).unwrap();
    cmd.env(TOKEN_ENV, token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop((cmd, w));
    let mut go = child.stdin.take().unwrap();
    let mut said = std::io::BufReader::new(child.stdout.take().unwrap());
    hear(&mut said, "pending");
    wait_queued(&r, FIRST as u64);
    go.write_all(b"cancel\n").unwrap();
    let said = within("the child's cancel", move || {
        hear(&mut said, "cancelled");
        said
    });
    let got = within("reading to the end", move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    });
    drop((go, said));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(common::CHILD_OK), "child failed");
    let mut want = pattern(FIRST, 7);
    want.extend_from_slice(NEXT);
    assert_eq!(
        got.len(),
        want.len(),
        "the cancelled write's bytes were read"
    );
    assert!(
        got == want,
        "the stream is not the first write, then the next"
    );
}

/// Child: one write far larger than the ring, still publishing when the
/// parent kills it.
fn child_publish_big() {
    let token = std::env::var(TOKEN_ENV).unwrap();
    let mut w = PipeWriter::from_inherited(&token).unwrap();
    let _ = w.write(&pattern(50_000, 2));
    std::process::exit(3); // never reached: the parent kills us first
}

/// A writer killed while publishing a write larger than the ring leaves
/// its claim on the mark; once the reader has read everything it published
/// and sleeps on the empty ring, nobody reads past the claim to clear it.
/// The next write that may pend (here the parent's, through its own copy
/// of the end) must clear it itself, not wait for the mark forever, and is
/// read whole after the dead write's published part.
fn a_killed_writer_that_left_nothing_unread_does_not_hold_up_the_next_pending_write() {
    let (mut r, mut w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child_command("child_publish_big");
    let token = cmd.inherit_end(&w).unwrap();
    let mut child = cmd.env(TOKEN_ENV, token).spawn().unwrap();
    drop(cmd);
    // Read some of the big write, then stop the writer and drain what it
    // published: the reader then sleeps on an empty ring.
    let mut got = vec![0u8; 3000];
    r.read_exact(&mut got).unwrap();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    // Stopped for sure (the signal lands asynchronously): then nothing more
    // is published, and what was is drained below.
    let start = Instant::now();
    while common::process_state(child.id()) != Some('T') {
        assert!(start.elapsed() < HANG, "the writer never stopped");
        std::thread::yield_now();
    }
    loop {
        let left = r.peek(None).unwrap().total_available as usize;
        if left == 0 {
            break;
        }
        let at = got.len();
        got.resize(at + left, 0);
        r.read_exact(&mut got[at..]).unwrap();
    }
    let read = Pending::start("read on the empty ring", move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    });
    read.assert_pending("nothing is unread");
    child.kill().unwrap();
    child.wait().unwrap();
    let after = pattern(2000, 5); // more than the quota: it may pend
    w.write_all(&after).unwrap();
    drop(w);
    let rest = read.finish().unwrap();
    assert!(
        got[..] == pattern(50_000, 2)[..got.len()],
        "the dead write's part"
    );
    assert_eq!(rest.len(), after.len(), "the next write arrived whole");
    assert!(rest == after, "the next write arrived corrupted");
}

/// Child: a write of [`SECOND`] bytes that pends behind the parent's
/// pending write until the parent kills us.
fn child_second_pending_write() {
    let token = std::env::var(TOKEN_ENV).unwrap();
    let mut w = PipeWriter::from_inherited(&token).unwrap();
    let _ = w.write(&pattern(SECOND, 9));
    std::process::exit(3); // never reached: the parent kills us first
}

/// SEM-117 with two pending writes: the second, whose process is killed,
/// vanishes whole, while the first (the parent's, alive) is delivered
/// whole, and so is the parent's next write.
fn sem_117_the_second_of_two_pending_writes_vanishes_when_its_process_dies() {
    let (mut r, w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let mut w2 = w.try_clone().unwrap();
    let c = w2.canceller();
    let first = Pending::start("first write", move || w2.write_all(&pattern(FIRST, 7)));
    wait_pending(&c, 1);
    let mut cmd = child_command("child_second_pending_write");
    let token = cmd.inherit_end(&w).unwrap();
    let mut child = cmd.env(TOKEN_ENV, token).spawn().unwrap();
    drop(cmd);
    wait_queued(&r, (FIRST + SECOND) as u64); // both published, both pend
    child.kill().unwrap();
    child.wait().unwrap();
    let mut got = vec![0u8; FIRST];
    r.read_exact(&mut got).unwrap();
    assert!(
        got == pattern(FIRST, 7),
        "the first write arrived corrupted"
    );
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

/// One write more than the ring has claims (`PENDING_CLAIMS`, 4): the
/// last publishes nothing while all four claims are taken, so cancelling it
/// leaves nothing behind; the four are read whole, in issue order.
fn a_write_beyond_the_claims_publishes_nothing_until_one_is_free() {
    const CLAIMS: usize = 4;
    let (mut r, w) = PipeBuilder::new().buffer_size(QUOTA).build().unwrap();
    let mut writes = Vec::new();
    for i in 0..=CLAIMS {
        let mut h = w.try_clone().unwrap();
        let c = h.canceller();
        let data = pattern(FIRST, i as u8);
        let write = Pending::start("write", move || h.write(&data));
        wait_pending(&c, 1);
        writes.push((write, c));
    }
    // The four claimed writes are published (the ring holds them all); the
    // fifth waits for a claim without publishing.
    wait_queued(&r, (CLAIMS * FIRST) as u64);
    let (last, c) = writes.pop().unwrap();
    last.assert_pending("every claim is taken");
    assert_eq!(
        r.peek(None).unwrap().total_available,
        (CLAIMS * FIRST) as u64,
        "the fifth write published bytes without a claim"
    );
    c.cancel().unwrap();
    assert_eq!(
        shmpipe::Error::kind_of(&last.finish().unwrap_err()),
        Some(ErrorKind::OperationAborted)
    );
    let reader = Pending::start("reading the four", move || {
        let mut v = vec![0u8; CLAIMS * FIRST];
        r.read_exact(&mut v).map(|()| (v, r))
    });
    for (write, _) in writes {
        assert_eq!(write.finish().unwrap(), FIRST);
    }
    let (got, r) = reader.finish().unwrap();
    for (i, chunk) in got.chunks(FIRST).enumerate() {
        assert!(
            chunk == pattern(FIRST, i as u8),
            "write {i} is not whole and in order"
        );
    }
    drop(w);
    let rest = within("nothing more", move || {
        let mut r = r;
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    });
    assert!(
        rest.unwrap().is_empty(),
        "the cancelled fifth write left bytes"
    );
}

common::tests! {
    tests: [
        sem_145_the_second_of_two_pending_writes_is_withdrawn_when_cancelled,
        a_killed_writer_that_left_nothing_unread_does_not_hold_up_the_next_pending_write,
        sem_117_the_second_of_two_pending_writes_vanishes_when_its_process_dies,
        a_write_beyond_the_claims_publishes_nothing_until_one_is_free,
    ],
    children: [
        child_two_pending_writes,
        child_publish_big,
        child_second_pending_write,
    ],
}
