//! Zero-copy operations against a peer process that dies or misbehaves:
//! a writer SIGKILLed inside its fill closure (it holds the writer lock
//! and a reservation: nothing of its write may appear, and the next
//! writer's bytes must not be taken for its), and a hostile writer that
//! keeps changing the bytes under the reader's slice, then scribbles over
//! the whole ring (the reader sees changing values or errors, never a
//! crash, a panic or a wrong length).
//!
//! Children report through their stdout (a line per event) and take
//! orders on their stdin; every wait is on such a line or on the pipe's
//! own counts, never a sleep.

use crate::common;

use common::{child_command, pattern, within, HANG, TOKEN_ENV};
use shmpipe::{CommandExt as _, Error, ErrorKind, PipeBuilder, PipeWriter};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::process::{Child, Stdio};
use std::time::Instant;

fn token() -> String {
    std::env::var(TOKEN_ENV).expect("token passed by the parent")
}

/// In a child: one line to the parent.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Starts `role` with the inherited write end `w`, its stdin and stdout
/// piped to the test.
fn spawn(role: &str, w: &PipeWriter) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut cmd = child_command(role);
    let t = cmd.inherit_end(w).unwrap();
    let mut child = cmd
        .env(TOKEN_ENV, t)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn expect_line(out: &mut BufReader<std::process::ChildStdout>, want: &str) {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), want);
}

fn kill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

// ------------------------------------------------ killed inside the closure

const FILL: usize = 6000; // over the quota (4096): a write that may pend

fn child_zc_killed_in_fill() {
    let w = PipeWriter::from_inherited(&token()).unwrap();
    let _ = w.write_with(FILL, |buf| {
        buf.fill(0xEE);
        say("filling");
        loop {
            std::thread::park(); // until SIGKILL
        }
    });
    unreachable!("the fill never returns");
}

fn zero_copy_writer_killed_in_its_fill_publishes_nothing() {
    let (r, w) = PipeBuilder::new()
        .buffer_size(4096)
        .inheritable(true)
        .build()
        .unwrap();
    let (mut child, mut out) = spawn("child_zc_killed_in_fill", &w);
    expect_line(&mut out, "filling");
    kill(&mut child);
    assert_eq!(r.available(), 0, "a reservation is never visible");
    // The next writer takes the dead holder's writer lock over, and its
    // write, at the positions the dead one had reserved, is not mistaken
    // for the dead write (a claim made before the fill would have named
    // those positions, and the reader would drop them).
    let want = pattern(FILL, 3);
    let writer = {
        let want = want.clone();
        std::thread::spawn(move || w.write_with(FILL, |b| b.copy_from_slice(&want)).map(|()| w))
    };
    let start = Instant::now();
    while r.available() < FILL as u64 {
        assert!(start.elapsed() < HANG, "the live writer's bytes never came");
        std::thread::yield_now();
    }
    let got = within("read the live write", move || {
        let mut got = Vec::new();
        while got.len() < FILL {
            r.read_with(|b| {
                got.extend_from_slice(b);
                b.len()
            })
            .unwrap();
        }
        got
    });
    assert_eq!(got, want);
    writer.join().unwrap().unwrap();
}

// ------------------------------------------------------ a hostile writer

const HOSTILE_LEN: usize = 4096;

/// The data area of the ring `w` writes, mapped by this (hostile) process
/// on its own.
fn ring_bytes(w: &PipeWriter) -> (shmpipe_engine::SegmentRing, *mut u8, usize) {
    use shmpipe_engine::RingStorage;
    let seg = shmpipe_engine::Segment::attach(w.as_fd()).unwrap();
    let ring = seg.ring(0).unwrap();
    let base = ring.data_ptr().unwrap().as_ptr();
    let cap = ring.capacity();
    (ring, base, cap)
}

fn child_zc_hostile_writer() {
    let mut w = PipeWriter::from_inherited(&token()).unwrap();
    // The first write of the pipe: one record at ring position 0, its
    // payload at byte 64 (past the header line).
    w.write_all(&[0u8; HOSTILE_LEN]).unwrap();
    let (_ring, base, cap) = ring_bytes(&w);
    let orders = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let orders = std::sync::Arc::clone(&orders);
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            orders.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    say("scribbling");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut everywhere = false;
    loop {
        if !everywhere && orders.load(std::sync::atomic::Ordering::Relaxed) {
            everywhere = true;
            // More records to read while everything is scribbled over.
            let _ = w.try_write(&[1u8; 512]);
            say("everywhere");
        }
        let (from, to) = if everywhere {
            (0, cap)
        } else {
            (64, 64 + HOSTILE_LEN)
        };
        for i in from..to {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // SAFETY: `i < cap`, inside this process's own mapping of the
            // ring's data area; a volatile store, because the point is
            // that the reader's process sees it.
            unsafe { base.add(i).write_volatile(x as u8) };
        }
    }
}

fn zero_copy_reader_survives_a_writer_changing_bytes_under_its_slice() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let (mut child, mut out) = spawn("child_zc_hostile_writer", &w);
    drop(w);
    expect_line(&mut out, "scribbling");
    // Phase 1: the payload changes under the slice; its length does not.
    let r = within("watch the slice change", move || {
        let n = r
            .read_with(|s| {
                assert_eq!(s.len(), HOSTILE_LEN, "the length comes from checked copies");
                // Volatile loads: a plain load of a `&[u8]` may be assumed
                // stable and hoisted out of the loop (see the guide).
                // SAFETY: in bounds of the slice, which lives meanwhile.
                let first = unsafe { std::ptr::read_volatile(&s[100]) };
                let start = Instant::now();
                // SAFETY: in bounds of the slice.
                while unsafe { std::ptr::read_volatile(&s[100]) } == first {
                    assert!(start.elapsed() < HANG, "the hostile writer changed nothing");
                    std::hint::spin_loop();
                }
                s.len()
            })
            .unwrap();
        assert_eq!(n, HOSTILE_LEN);
        r
    });
    // Phase 2: everything is scribbled over, record headers included. Reads
    // give values or errors; none crashes, panics or reports a length past
    // what it showed.
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    expect_line(&mut out, "everywhere");
    r.set_nonblocking(true).unwrap();
    let outcomes = within("read while everything changes", move || {
        let (mut ok, mut errors) = (0, Vec::new());
        for _ in 0..2000 {
            let mut shown = 0;
            match r.read_with(|s| {
                shown = s.len();
                s.len()
            }) {
                Ok(n) => {
                    assert!(n <= shown);
                    ok += 1;
                }
                Err(e) => errors.push((e.kind(), Error::kind_of(&e))),
            }
        }
        (ok, errors)
    });
    kill(&mut child);
    // What the reader met is documented in docs/guide.md ("Zero copy"):
    // would-block (nothing valid at the head) or a corrupt segment
    // (NoSystemResources), besides data.
    let (ok, errors) = outcomes;
    // "Nothing readable now" (the head's commit word is garbage, so no
    // record is published there) or a segment found corrupt; never
    // anything else.
    for (io_kind, pipe_kind) in &errors {
        let expected = *io_kind == std::io::ErrorKind::WouldBlock
            || *pipe_kind == Some(ErrorKind::NoSystemResources);
        assert!(
            expected,
            "unexpected {io_kind:?} / {pipe_kind:?} ({ok} reads gave data)"
        );
    }
}

common::tests! {
    tests: [
        zero_copy_writer_killed_in_its_fill_publishes_nothing,
        zero_copy_reader_survives_a_writer_changing_bytes_under_its_slice,
    ],
    children: [child_zc_killed_in_fill, child_zc_hostile_writer],
}
