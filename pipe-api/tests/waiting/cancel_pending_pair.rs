//! Several writes pending on one ring at once, from different handles (spec
//! 5.2, 7.4): each is withdrawn when cancelled, whichever of them pends
//! first. (Their processes dying: `liveness/pending_claims.rs`.)
//!
//! An earlier version marked only the first pending write: a second one,
//! cancelled, left its unread rest readable. Now a ring has four
//! claims, and a write that finds none free publishes nothing until one is. Tests act on observed state
//! (a canceller's count, a thread asleep in the kernel, bytes queued), never
//! after a sleep.

use crate::cancel::{hear, message_pipe, say, wait_pending};
use crate::common;

use common::{child_command, pattern, within, Pending, HANG, TOKEN_ENV};
use shmpipe::{CommandExt as _, ErrorKind, PipeBuilder, PipeReader, PipeWriter};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Instant;

/// Small next to the ring (at least a page): a write of [`FIRST`] bytes is
/// published whole and then pends on the quota.
const QUOTA: u32 = 1024;
const FIRST: usize = 2000;
const SECOND: usize = 1500;
const NEXT: &[u8] = b"the write after the cancelled one";

/// Waits until `r` holds at least `n` unread bytes.
fn wait_queued(r: &PipeReader, n: u64) {
    let start = Instant::now();
    while r.peek(None).unwrap().total_available < n {
        assert!(start.elapsed() < HANG, "the child's writes never arrived");
        std::thread::yield_now();
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

/// Spec 5.2: a write completes once `ahead(e) <= Q`, `ahead` counting its
/// own unread bytes and those of the entries *before* it. A write
/// cancelled behind a pending write does not shrink that write's `ahead`:
/// the first write stays pending until the reader reads.
fn a_write_withdrawn_behind_a_pending_one_does_not_complete_it() {
    let (mut r, w) = PipeBuilder::new().buffer_size(QUOTA).build().unwrap();
    let mut first = w.try_clone().unwrap();
    let mut second = w.try_clone().unwrap();
    let (c1, c2) = (first.canceller(), second.canceller());
    let a = Pending::start("first write", move || first.write(&pattern(FIRST, 7)));
    wait_pending(&c1, 1);
    wait_queued(&r, FIRST as u64);
    let b = Pending::start("second write", move || second.write(&pattern(SECOND, 9)));
    wait_pending(&c2, 1);
    wait_queued(&r, (FIRST + SECOND) as u64);
    c2.cancel().unwrap();
    assert_eq!(
        shmpipe::Error::kind_of(&b.finish().unwrap_err()),
        Some(ErrorKind::OperationAborted)
    );
    a.assert_pending("a write withdrawn behind it completed the first write");
    let mut v = vec![0u8; FIRST];
    r.read_exact(&mut v).unwrap();
    assert!(v == pattern(FIRST, 7));
    assert_eq!(a.finish().unwrap(), FIRST);
    drop(w);
}

/// Spec 5.4 and 7.4: an empty message queued just before a pending write
/// has that write's payload position. When the write is cancelled, the
/// reader must neither take the empty message for part of it (and eat it)
/// nor leave the cancelled bytes readable.
fn an_empty_message_before_a_withdrawn_write_is_read_and_the_write_is_not() {
    let (server, client) = message_pipe("empty-then-withdrawn");
    assert_eq!((&client).write(&[]).unwrap(), 0);
    let c = client.canceller();
    let h = client.try_clone().unwrap();
    let w = Pending::start("write", move || (&h).write(&pattern(FIRST, 3)));
    wait_pending(&c, 1);
    c.cancel().unwrap();
    assert_eq!(
        shmpipe::Error::kind_of(&w.finish().unwrap_err()),
        Some(ErrorKind::OperationAborted)
    );
    assert_eq!((&client).write(NEXT).unwrap(), NEXT.len());
    let mut buf = vec![0u8; 4096];
    let n = (&server).read(&mut buf).unwrap();
    assert_eq!(n, 0, "the empty message was not read first");
    let n = (&server).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], NEXT, "the cancelled write's bytes were read");
}

/// Spec 5.2 and 5.5: an empty message and a nonblocking write complete at
/// once, also while another write of the same end (a duplicate sharing its
/// handle state) waits for a pending-write claim.
fn a_write_waiting_for_a_claim_holds_up_no_other_write_of_its_end() {
    let (_server, client) = message_pipe("claim-wait-blocks-nothing");
    let mut writes = Vec::new();
    for i in 0..5u8 {
        let h = client.try_clone().unwrap();
        let c = h.canceller();
        writes.push(Pending::start("write", move || {
            (&h).write(&pattern(FIRST, i))
        }));
        // The named client's duplicates share one canceller.
        wait_pending(&c, i as usize + 1);
    }
    writes[4].assert_pending("the fifth write waits for a claim");
    let h = client.try_clone().unwrap();
    let empty = within("an empty message", move || (&h).write(&[]).map(|n| (n, h)));
    let (n, h) = empty.unwrap();
    assert_eq!(n, 0);
    h.set_nonblocking(true).unwrap();
    let nb = within("a nonblocking write", move || (&h).write(b"x"));
    // Nothing fits: a nonblocking message write writes nothing (spec 5.5),
    // which `io::Write` reports as WouldBlock.
    match nb {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a nonblocking write that cannot fit returned {other:?}"),
    }
    client.canceller().cancel().unwrap();
}

common::tests! {
    tests: [
        sem_145_the_second_of_two_pending_writes_is_withdrawn_when_cancelled,
        a_write_beyond_the_claims_publishes_nothing_until_one_is_free,
        a_zero_copy_write_beyond_the_claims_publishes_nothing_until_one_is_free,
        a_write_withdrawn_behind_a_pending_one_does_not_complete_it,
        an_empty_message_before_a_withdrawn_write_is_read_and_the_write_is_not,
        a_write_waiting_for_a_claim_holds_up_no_other_write_of_its_end,
    ],
    children: [child_two_pending_writes],
}
