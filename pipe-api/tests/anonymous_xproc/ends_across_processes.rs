//! Anonymous pipes across real processes: inheritance (SEM-026, SEM-022),
//! end of data on process exit and SIGKILL (SEM-021), hand-off to an
//! unrelated process over a Unix socket, atomic writes from two processes
//! (SEM-067) and no SIGPIPE (SEM-023). Redirected child stdio is in
//! the `redirect` module beside this one.
//!
//! Children are this test binary run again as one of the `child_*`
//! functions listed in `common::tests!` at the end (see `common`). A child reports
//! success with exit status [`CHILD_OK`], so a child that failed or was not
//! found cannot pass for one that worked.

use crate::common;

use common::{
    assert_child_ok, child_command, child_done, pattern, wait_child, within, Pending, HANG,
    TOKEN_ENV,
};
use shmpipe::{CommandExt as _, Error, ErrorKind, PipeBuilder, PipeReader, PipeWriter};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

fn token() -> String {
    std::env::var(TOKEN_ENV).expect("token passed by the parent")
}

/// Reads until the end of the pipe, on a guarded thread.
fn read_all(r: PipeReader) -> Vec<u8> {
    within("read to the end of the pipe", move || {
        let mut r = r;
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    })
    .unwrap()
}

// ------------------------------------------------------ SEM-026 inheritance

const GREETING: &[u8] = b"written by the child through an inherited end";

fn child_write_inherited() {
    let t = token();
    let mut w = PipeWriter::from_inherited(&t).unwrap();
    // A token names its descriptor once: no second owner.
    let e = PipeWriter::from_inherited(&t).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidHandle));
    // And it names a write end, not a read end.
    let e = PipeReader::from_inherited(&t).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));
    w.write_all(GREETING).unwrap();
    drop(w);
    child_done();
}

fn sem_026_child_writes_through_an_inherited_write_end() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_write_inherited");
    let t = cmd.inherit_end(&w).unwrap();
    let proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    // The command keeps its duplicate until dropped.
    drop(cmd);
    drop(w);
    assert_eq!(read_all(r), GREETING);
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

fn child_read_inherited() {
    let mut r = PipeReader::from_inherited(&token()).unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).unwrap();
    assert!(got == pattern(100_000, 20), "child read the wrong bytes");
    child_done();
}

fn sem_026_child_reads_through_an_inherited_read_end() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_read_inherited");
    let t = cmd.inherit_end(&r).unwrap();
    let proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    drop(cmd);
    drop(r);
    within("write to the child", move || {
        let mut w = w;
        w.write_all(&pattern(100_000, 20))
    })
    .unwrap();
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

const FORGED_WRITE: &str = "SHMPIPE_TEST_FORGED_WRITE";
const FORGED_READ: &str = "SHMPIPE_TEST_FORGED_READ";
/// `dev:ino` pairs, space-separated, of the ends the parent refused to pass.
const REFUSED_IDS: &str = "SHMPIPE_TEST_REFUSED_IDS";
/// `dev:ino` of the end the parent did pass.
const PASSED_ID: &str = "SHMPIPE_TEST_PASSED_ID";

/// The identity of the file a descriptor refers to: the pipe's shared
/// memory, for a pipe end.
fn file_id(fd: impl AsFd) -> String {
    let st = rustix::fs::fstat(fd).unwrap();
    format!("{}:{}", st.st_dev, st.st_ino)
}

/// Every descriptor open in this process, with the identity of its file.
/// `stat` through `/proc/self/fd/N` follows the link to the open file
/// itself, as `fstat(N)` would, without borrowing a descriptor number this
/// code does not own.
fn open_descriptors() -> Vec<(i32, String)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let fd: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        match std::fs::metadata(entry.path()) {
            Ok(meta) => fds.push((fd, format!("{}:{}", meta.dev(), meta.ino()))),
            // Closed since it was listed (by another test's thread, say): a
            // descriptor that is gone cannot be a leaked end.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => panic!("fd {fd}: {e}"),
        }
    }
    fds
}

fn child_forged_tokens() {
    // What crossed exec, checked before anything is taken over: none of
    // the refused pipe's descriptors, and the passed end under the number
    // its token names.
    let open = open_descriptors();
    let refused = std::env::var(REFUSED_IDS).unwrap();
    for id in refused.split(' ') {
        let leaked: Vec<i32> = open.iter().filter(|(_, o)| o == id).map(|p| p.0).collect();
        assert!(
            leaked.is_empty(),
            "descriptors {leaked:?} refer to the non-inheritable pipe ({id}); open: {open:?}"
        );
    }
    let t = token();
    let passed_fd: i32 = t.rsplit(':').next().unwrap().parse().unwrap();
    let passed = std::env::var(PASSED_ID).unwrap();
    assert!(
        open.contains(&(passed_fd, passed.clone())),
        "descriptor {passed_fd} is not the inherited end ({passed}); open: {open:?}"
    );
    // Tokens naming the refused ends' numbers in the parent are refused
    // too (whatever those numbers are open as here).
    for (var, is_writer) in [(FORGED_WRITE, true), (FORGED_READ, false)] {
        let forged = std::env::var(var).unwrap();
        let e = if is_writer {
            PipeWriter::from_inherited(&forged).unwrap_err()
        } else {
            PipeReader::from_inherited(&forged).unwrap_err()
        };
        assert_eq!(kind(&e), Some(ErrorKind::InvalidHandle), "{forged}: {e}");
    }
    // Stay alive, holding whatever we inherited, until the parent says so.
    let mut control = PipeReader::from_inherited(&t).unwrap();
    let mut rest = Vec::new();
    control.read_to_end(&mut rest).unwrap();
    child_done();
}

/// A non-inheritable end reaches no child: `inherit_end` refuses it, and
/// the child, looking at its own descriptors, finds none of that pipe
/// while it does find the end that was passed.
fn sem_026_non_inheritable_end_cannot_reach_a_child() {
    let (r, w) = shmpipe::pipe().unwrap(); // not inheritable
    let mut cmd = child_command("child_forged_tokens");
    let e = cmd.inherit_end(&w).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));
    let e = cmd.inherit_end(&r).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));

    // A duplicate may be made inheritable (spec 1.6): the control pipe.
    let (control_r, control_w) = shmpipe::pipe().unwrap();
    let mut passed = control_r.try_clone().unwrap();
    passed.set_inheritable(true);
    assert!(!control_r.is_inheritable());
    let t = cmd.inherit_end(&passed).unwrap();
    let mut refused = vec![file_id(&w), file_id(&r)];
    refused.dedup();
    assert!(!refused.contains(&file_id(&passed)), "two pipes, one file");
    // Tokens a child could guess: the real numbers of the ends we refused.
    cmd.env(TOKEN_ENV, t)
        .env(REFUSED_IDS, refused.join(" "))
        .env(PASSED_ID, file_id(&passed))
        .env(
            FORGED_WRITE,
            format!("shmpipe:anon-write:{}", w.as_fd().as_raw_fd()),
        )
        .env(
            FORGED_READ,
            format!("shmpipe:anon-read:{}", r.as_fd().as_raw_fd()),
        );
    let proc = cmd.spawn().unwrap();
    drop(cmd);
    drop((passed, control_r));

    // The child is alive (waiting on the control pipe) and holds no copy of
    // our write end: closing ours ends the data at once.
    drop(w);
    let e = within("read after the only write handle closed", move || {
        let r = r;
        r.read_pipe(&mut [0u8; 8]).unwrap_err()
    });
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
    drop(control_w);
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

// ------------------------------------------- SEM-022 across processes

fn child_hold_write_end() {
    let w = PipeWriter::from_inherited(&token()).unwrap();
    // Hold it until the parent closes our stdin.
    let mut s = Vec::new();
    io::stdin().read_to_end(&mut s).unwrap();
    drop(w);
    child_done();
}

fn sem_022_inherited_write_end_in_child_keeps_reader_waiting() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_hold_write_end");
    let t = cmd.inherit_end(&w).unwrap();
    let mut proc = cmd.env(TOKEN_ENV, t).stdin(Stdio::piped()).spawn().unwrap();
    drop(cmd);
    drop(w);
    let read = Pending::start("read", move || r.read_pipe(&mut [0u8; 8]));
    read.assert_pending("the child holds a copy of the write end");
    drop(proc.stdin.take()); // let the child exit
    let e = read.finish().unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

// ------------------------------------------- process exit and SIGKILL

fn child_write_and_exit() {
    let mut w = PipeWriter::from_inherited(&token()).unwrap();
    w.write_all(b"last words").unwrap();
    // Exit without closing: the kernel closes the end.
    std::mem::forget(w);
    child_done();
}

fn sem_021_writer_process_exit_ends_the_data() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_write_and_exit");
    let t = cmd.inherit_end(&w).unwrap();
    let proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    drop(cmd);
    drop(w);
    assert_eq!(read_all(r), b"last words");
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

/// Sleeps until killed, but not forever if the parent died first.
fn linger() -> ! {
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(1)
}

fn child_write_then_linger() {
    let mut w = PipeWriter::from_inherited(&token()).unwrap();
    w.write_all(&pattern(1000, 40)).unwrap();
    linger();
}

/// Spec 1.5 and 6: a killed process's handles close as if it had closed
/// them. The kill-to-EOF latency is printed (spec target: 10 ms); only a
/// hang fails the test.
fn killed_writer_process_gives_data_then_end_of_pipe() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_write_then_linger");
    let t = cmd.inherit_end(&w).unwrap();
    let mut proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    drop(cmd);
    drop(w);
    let (got_tx, got_rx) = mpsc::channel();
    let end = Pending::start("reader", move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < 1000 {
            let n = r.read_pipe(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        got_tx.send(got).unwrap();
        let res = r.read_pipe(&mut buf);
        (res, Instant::now())
    });
    let got = got_rx.recv_timeout(HANG).expect("the child's data");
    assert!(got == pattern(1000, 40));
    // The reader blocks again before the kill.
    end.assert_pending("the child still holds the write end");
    let killed = Instant::now();
    proc.kill().unwrap();
    let (res, returned) = end.finish();
    let latency = returned.saturating_duration_since(killed);
    println!("SIGKILL of the writer -> reader saw end of pipe after {latency:?}");
    assert_eq!(kind(&res.unwrap_err()), Some(ErrorKind::BrokenPipe));
    assert!(latency < Duration::from_secs(2), "took {latency:?}");
    let status = proc.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

/// What the child of the next test writes before it reports.
const UNREAD_BEFORE_KILL: usize = 300_000;
/// Precedes the count in the child's report.
const READY: &str = "ready to be killed, wrote ";

fn child_write_report_linger() {
    let mut w = PipeWriter::from_inherited(&token()).unwrap();
    let data = pattern(UNREAD_BEFORE_KILL, 70);
    // Many writes, all within the quota: none waits for the reader.
    for chunk in data.chunks(7_000) {
        w.write_all(chunk).unwrap();
    }
    // Every write above returned: all of it is in the pipe.
    println!("{READY}{}", data.len());
    io::stdout().flush().unwrap();
    linger();
}

/// Spec 1.5 and 6: data a killed writer wrote completely stays readable.
/// Nothing is read before the kill; then the reader gets every byte and
/// end-of-pipe (`Ok(0)` from `Read::read`).
fn sem_021_killed_writer_process_leaves_its_unread_data_then_end_of_pipe() {
    let (mut r, w) = PipeBuilder::new()
        .buffer_size(1 << 20)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child_command("child_write_report_linger");
    let t = cmd.inherit_end(&w).unwrap();
    let mut proc = cmd
        .env(TOKEN_ENV, t)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(cmd);
    drop(w); // the child holds the only write end
    let out = proc.stdout.take().unwrap();
    let (report_tx, report) = mpsc::channel();
    std::thread::spawn(move || {
        let found = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                let (_, n) = l.split_once(READY)?;
                Some(n.parse::<usize>().unwrap())
            });
        let _ = report_tx.send(found);
    });
    let reported = report.recv_timeout(HANG).unwrap_or_else(|_| {
        let _ = proc.kill(); // a hang: stop the child, show its stderr below
        None
    });
    let Some(reported) = reported else {
        let (status, err) = wait_child(proc);
        panic!(
            "the child did not report ({status}); its stderr:\n{}",
            String::from_utf8_lossy(&err)
        );
    };
    assert_eq!(reported, UNREAD_BEFORE_KILL);
    assert_eq!(r.available(), UNREAD_BEFORE_KILL as u64, "unread so far");
    proc.kill().unwrap();
    let status = proc.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let (got, again) = within("read what the killed child wrote", move || {
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap(); // stops at the first Ok(0)
        (got, r.read(&mut [0u8; 16]).unwrap())
    });
    assert!(
        got == pattern(UNREAD_BEFORE_KILL, 70),
        "{} bytes, differing",
        got.len()
    );
    assert_eq!(again, 0, "end of pipe stays the end");
}

fn child_hold_read_end() {
    let _r = PipeReader::from_inherited(&token()).unwrap();
    linger();
}

/// Spec 1.5 and 6 ("process exit or kill: as for close"): once the process
/// holding the only read end is killed, writes fail with NoData. A killed
/// process runs no code, so it leaves no hang-up hint; a write that need not
/// wait asks the kernel when a tick of the coarse clock passed since it last
/// asked (see `pipe-api/src/datapath/`), so single writes
/// spaced 20 ms apart each ask. Other tests of this binary fork children
/// concurrently, and a child between fork and exec briefly holds copies of
/// every descriptor of this process (the read end included, while it was
/// still open here): so NoData must come within a few spaced writes, not
/// necessarily the first.
fn killed_reader_process_makes_writes_fail_with_no_data() {
    let (r, mut w) = PipeBuilder::new()
        .buffer_size(1 << 20)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child_command("child_hold_read_end");
    let t = cmd.inherit_end(&r).unwrap();
    let mut proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    drop(cmd);
    drop(r);
    w.write_all(b"the child holds the read end").unwrap();
    proc.kill().unwrap();
    proc.wait().unwrap();
    // Fewer spaced writes than the 64-write bound: only the time rule can
    // make one of them fail.
    let mut failed = None;
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(20));
        if let Err(e) = w.write(b"x") {
            failed = Some((i, e));
            break;
        }
    }
    let (i, e) = failed.expect("no NoData within 20 writes spaced 20 ms apart after the kill");
    println!("NoData at spaced write {i} after the kill");
    assert_eq!(kind(&e), Some(ErrorKind::NoData), "{e}");
    // And it stays that way, also for writes in quick succession.
    for _ in 0..3 {
        assert_eq!(kind(&w.write(b"x").unwrap_err()), Some(ErrorKind::NoData));
    }
}

// ------------------------------------------- SEM-023: no SIGPIPE

unsafe extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}
const SIGPIPE: i32 = 13;
const SIG_DFL: usize = 0;
const SIG_ERR: usize = usize::MAX;

fn child_sigpipe_default() {
    assert!(
        common::sigpipe_ignored(),
        "Rust programs start with SIGPIPE ignored"
    );
    // SAFETY: `signal` is the C library's; SIGPIPE and SIG_DFL are its
    // Linux values, and restoring the default disposition installs no
    // handler code.
    let prev = unsafe { signal(SIGPIPE, SIG_DFL) };
    assert_ne!(prev, SIG_ERR);
    assert!(!common::sigpipe_ignored(), "SIGPIPE now kills this process");
    let (r, mut w) = shmpipe::pipe().unwrap();
    drop(r);
    for _ in 0..3 {
        let e = w.write(b"nobody reads this").unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::NoData));
    }
    child_done();
}

fn sem_023_no_sigpipe_for_a_write_after_the_reader_closed() {
    let proc = child_command("child_sigpipe_default").spawn().unwrap();
    let (status, err) = wait_child(proc);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        None,
        "the child was killed by a signal"
    );
    assert_child_ok(status, &err);
}

// ------------------------------------------- hand-off over a Unix socket

fn child_recv_writer() {
    let sock = UnixStream::from(io::stdin().as_fd().try_clone_to_owned().unwrap());
    let mut w = PipeWriter::recv_from(&sock).unwrap();
    w.write_all(&pattern(50_000, 50)).unwrap();
    drop(w);
    child_done();
}

/// Spec 1.6: a handle passed to a process that inherited nothing from the
/// pipe (the pipe is not inheritable; only a socket is shared).
fn write_end_sent_over_unix_socket_works_in_another_process() {
    let (r, w) = shmpipe::pipe().unwrap();
    let (mine, theirs) = UnixStream::pair().unwrap();
    let mut cmd = child_command("child_recv_writer");
    cmd.stdin(Stdio::from(OwnedFd::from(theirs)));
    let proc = cmd.spawn().unwrap();
    drop(cmd);
    w.send_to(&mine).unwrap();
    drop(w);
    let got = read_all(r);
    assert!(got == pattern(50_000, 50), "{} bytes", got.len());
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

// ------------------------------------------- SEM-067: atomic writes

const BLOCK: usize = 100_000;
const BLOCKS: u8 = 20;
const BASE_ENV: &str = "SHMPIPE_TEST_BLOCK_BASE";

fn child_write_blocks() {
    let base: u8 = std::env::var(BASE_ENV).unwrap().parse().unwrap();
    let w = PipeWriter::from_inherited(&token()).unwrap();
    for i in 0..BLOCKS {
        assert_eq!(w.try_write(&[base + i; BLOCK]).unwrap(), BLOCK);
    }
    drop(w);
    child_done();
}

fn sem_067_blocks_from_two_processes_stay_contiguous() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut procs = Vec::new();
    for base in [1u8, 101] {
        let mut cmd = child_command("child_write_blocks");
        let t = cmd.inherit_end(&w).unwrap();
        procs.push(
            cmd.env(TOKEN_ENV, t)
                .env(BASE_ENV, base.to_string())
                .spawn()
                .unwrap(),
        );
    }
    drop(w);
    let got = read_all(r);
    assert_eq!(got.len(), 2 * BLOCKS as usize * BLOCK);
    let mut seen = Vec::new();
    for (i, block) in got.chunks(BLOCK).enumerate() {
        let v = block[0];
        assert!(
            block.iter().all(|&b| b == v),
            "block {i} (value {v}) is interleaved with another write"
        );
        seen.push(v);
    }
    let switches = seen
        .windows(2)
        .filter(|p| (p[0] < 101) != (p[1] < 101))
        .count();
    println!("SEM-067: the two writers alternated {switches} times");
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    let expected: Vec<u8> = (0..BLOCKS)
        .map(|i| 1 + i)
        .chain((0..BLOCKS).map(|i| 101 + i))
        .collect();
    assert_eq!(sorted, expected, "every block exactly once");
    // Each writer's blocks keep their order.
    let a: Vec<u8> = seen.iter().copied().filter(|&v| v < 101).collect();
    assert!(a.windows(2).all(|p| p[0] < p[1]));
    for p in procs {
        let (status, err) = wait_child(p);
        assert_child_ok(status, &err);
    }
}

common::tests! {
    tests: [
        sem_026_child_writes_through_an_inherited_write_end,
        sem_026_child_reads_through_an_inherited_read_end,
        sem_026_non_inheritable_end_cannot_reach_a_child,
        sem_022_inherited_write_end_in_child_keeps_reader_waiting,
        sem_021_writer_process_exit_ends_the_data,
        killed_writer_process_gives_data_then_end_of_pipe,
        sem_021_killed_writer_process_leaves_its_unread_data_then_end_of_pipe,
        killed_reader_process_makes_writes_fail_with_no_data,
        sem_023_no_sigpipe_for_a_write_after_the_reader_closed,
        write_end_sent_over_unix_socket_works_in_another_process,
        sem_067_blocks_from_two_processes_stay_contiguous,
    ],
    children: [
        child_write_inherited,
        child_read_inherited,
        child_forged_tokens,
        child_hold_write_end,
        child_write_and_exit,
        child_write_then_linger,
        child_write_report_linger,
        child_hold_read_end,
        child_sigpipe_default,
        child_recv_writer,
        child_write_blocks,
    ],
}
