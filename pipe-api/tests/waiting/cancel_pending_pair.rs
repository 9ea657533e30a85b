//! Several writes pending on one ring at once, from different handles (spec
//! 5.2, 7.4): each is withdrawn when cancelled, whichever of them pends
//! first. (Their processes dying: `liveness/pending_claims.rs`.)
//!
//! An earlier version marked only the first pending write: a second one,
//! cancelled, left its unread rest readable. Now a ring has four
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

/// One write more than the ring has claims (`PENDING_CLAIMS`, 4): the
/// last publishes nothing while all four claims are taken, so cancelling it
/// leaves nothing behind; the four are read whole, in issue order.
fn a_write_beyond_the_claims_publishes_nothing_until_one_is_free() {
    beyond_the_claims(false);
}

/// The same with a zero-copy write (`write_with`) beyond the claims: its
/// fill closure never runs.
fn a_zero_copy_write_beyond_the_claims_publishes_nothing_until_one_is_free() {
    beyond_the_claims(true);
}

fn beyond_the_claims(zero_copy_last: bool) {
    const CLAIMS: usize = 4;
    let (mut r, w) = PipeBuilder::new().buffer_size(QUOTA).build().unwrap();
    let mut writes = Vec::new();
    for i in 0..=CLAIMS {
        let mut h = w.try_clone().unwrap();
        let c = h.canceller();
        let data = pattern(FIRST, i as u8);
        let write = if zero_copy_last && i == CLAIMS {
            Pending::start("zero-copy write", move || {
                h.write_with(FIRST, |buf| buf.copy_from_slice(&data))
                    .map(|()| FIRST)
            })
        } else {
            Pending::start("write", move || h.write(&data))
        };
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
        a_write_beyond_the_claims_publishes_nothing_until_one_is_free,
        a_zero_copy_write_beyond_the_claims_publishes_nothing_until_one_is_free,
    ],
    children: [child_two_pending_writes],
}
