//! Shared helpers of the cross-process tests (`xproc`, `killed_and_stopped`,
//! `channel_waits`).
//!
//! # How to write a cross-process test
//!
//! A child is a plain function named `child_*`, not a test, that the parent test
//! starts with [`spawn_child`]`("child_x:arg0:arg1", fds)`; the child reads
//! its arguments with [`role_arg`] and its descriptors with [`take_fd`], and
//! reports success by returning (exit status [`CHILD_OK`], checked by
//! [`reap_ok`]); a panic fails it. The test file declares itself
//! `harness = false` in `engine/Cargo.toml` (`[[test]] name = "file"
//! harness = false`) and ends with
//!
//! ```ignore
//! common::main! {
//!     tests: [some_test, another_test],
//!     children: [child_x],
//! }
//! ```
//!
//! listing every test (they keep their doc comments but lose `#[test]`) and
//! every child; one left out is dead code, which clippy rejects. Children
//! are not tests, so they are not counted. Details in [`harness`] (shared
//! with pipe-api's tests). A test that needs root, a namespace or a tool
//! starts with `if !require(cond, "test_name", "why") { return; }`: it
//! skips outside CI and fails under `CI=true`. To act once another thread
//! waits, wait until it is seen waiting ([`wait_until_blocked`] with a tid
//! from [`gettid`], [`wait_until_spinning`] under a spin-only policy), never
//! a sleep. Converting an old-style file: each `"role"` of the old
//! `child_process` dispatch becomes a `fn child_role()` that reads its
//! arguments with `role_arg(i)`, spawned as `"child_role:arg0:.."`.
//!
//! * Child processes: descriptors reach the child at fixed numbers,
//!   `dup2`ed in the child only (the parent's copies stay close-on-exec).
//! * Record contents are a pure function of a 64-bit key (the first 8 bytes
//!   are the key itself, the rest a hash stream), and record sizes a pure
//!   function of (seed, key), so a reader regenerates what it must get and
//!   compares every byte: loss, duplication, reordering, interleaving and
//!   corruption all show up as a mismatch, and a truncated message can be
//!   checked to be a prefix of the right content (which a checksum cannot).
//! * A progress watchdog turns a hang into an abort with a message, instead
//!   of a CI job that sits until its global timeout.
#![allow(dead_code)] // Each test binary uses its own subset.

pub mod harness;

#[allow(unused_imports)] // Each binary uses its own subset.
pub use harness::{
    blocked_unless, gettid, is_root, process_state, require, role_arg, stop_process,
    wait_until_blocked, wait_until_process_blocked, wait_until_spinning, wait_until_threads_asleep,
    Task, CHILD_OK, ROLE_ENV,
};
#[allow(unused_imports)] // Binaries without children have no `main!`.
pub(crate) use harness::{main, tests};

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Ring capacity of the tests that follow the engine issue (64 KiB).
pub const RING: usize = 64 * 1024;

/// The splitmix64 finaliser: a bijective 64-bit hash.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A tiny xorshift64* generator (no dev-dependency needed).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// A seed for a test run: `SHMPIPE_SEED` if set (to replay a failure),
/// otherwise fresh. Printed so a failing run can be replayed.
pub fn seed(test: &str) -> u64 {
    let s = match std::env::var("SHMPIPE_SEED") {
        Ok(v) => v.parse().expect("SHMPIPE_SEED is a u64"),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            mix(t.as_nanos() as u64 ^ u64::from(std::process::id()))
        }
    };
    eprintln!("{test}: seed {s} (replay with SHMPIPE_SEED={s})");
    s
}

/// An environment variable parsed as a count, or `default`.
pub fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number")),
        Err(_) => default,
    }
}

/// Word `j` of the content of the record with key `key`.
#[inline]
fn word(key: u64, j: u64) -> u64 {
    if j == 0 {
        key
    } else {
        mix(key.rotate_left(17) ^ j.wrapping_mul(0xd6e8_feb8_6659_fd93))
    }
}

/// Writes bytes `offset..offset + out.len()` of the content of record `key`.
pub fn fill(key: u64, offset: usize, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    // Head up to a word boundary, then whole words, then the tail.
    if pos % 8 != 0 && !out.is_empty() {
        let w = word(key, (pos / 8) as u64).to_le_bytes();
        let n = (8 - pos % 8).min(out.len());
        out[..n].copy_from_slice(&w[pos % 8..pos % 8 + n]);
        i = n;
        pos += n;
    }
    let mut j = (pos / 8) as u64;
    let mut chunks = out[i..].chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&word(key, j).to_le_bytes());
        j += 1;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let n = rest.len();
        rest.copy_from_slice(&word(key, j).to_le_bytes()[..n]);
    }
}

/// The whole content of record `key` of `len` bytes.
pub fn content(key: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill(key, 0, &mut v);
    v
}

/// Checks that `got` is bytes `offset..` of the content of record `key`.
pub fn verify(key: u64, offset: usize, got: &[u8]) -> Result<(), String> {
    let mut scratch = [0u8; 4096];
    let mut done = 0;
    while done < got.len() {
        let n = (got.len() - done).min(scratch.len());
        fill(key, offset + done, &mut scratch[..n]);
        if scratch[..n] != got[done..done + n] {
            let bad = (0..n).find(|&i| scratch[i] != got[done + i]).unwrap();
            let at = offset + done + bad;
            let found_key = (offset == 0 && got.len() >= 8)
                .then(|| u64::from_le_bytes(got[..8].try_into().unwrap()));
            return Err(format!(
                "record key {key:#x}: byte {at} is {:#04x}, expected {:#04x} \
                 (the data starts with key {found_key:#x?})",
                got[done + bad],
                scratch[bad]
            ));
        }
        done += n;
    }
    Ok(())
}

/// A size distribution: `(weight, lo, hi)` classes, sizes uniform in
/// `lo..=hi` within a class.
pub type Dist = &'static [(u64, usize, usize)];

/// The size of record `key` of a run with `seed`.
pub fn size_of(dist: Dist, seed: u64, key: u64) -> usize {
    let h = mix(seed ^ mix(key));
    let total: u64 = dist.iter().map(|c| c.0).sum();
    let mut x = h % total;
    let r = mix(h);
    for &(w, lo, hi) in dist {
        if x < w {
            return lo + (r % (hi - lo + 1) as u64) as usize;
        }
        x -= w;
    }
    unreachable!("x < total")
}

/// Takes ownership of descriptor `n`, placed by [`spawn_child`].
pub fn take_fd(n: RawFd) -> OwnedFd {
    // SAFETY: the parent's pre_exec hook dup2'ed a descriptor to `n` for this
    // child, and nothing else in this process owns or closes descriptor `n`
    // (it was open before the process started, so no open() here returned it).
    unsafe { OwnedFd::from_raw_fd(n) }
}

/// Spawns this test binary as the child `role` (`child_x:arg:..`, see
/// [`harness`]), with each `(fd, n)` of `fds` available as descriptor `n`
/// (3 and up). Standard output is discarded; standard error is
/// inherited, so a child's panic message shows. The child is SIGKILLed when
/// the calling thread ends (PR_SET_PDEATHSIG): spawn from the test's own
/// thread, which outlives the child.
pub fn spawn_child(role: &str, fds: &[(BorrowedFd<'_>, RawFd)]) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let pairs: Vec<(RawFd, RawFd)> = fds.iter().map(|(f, n)| (f.as_raw_fd(), *n)).collect();
    assert!(pairs.len() <= 8 && pairs.iter().all(|&(_, n)| (3..64).contains(&n)));
    let mut cmd = Command::new(exe);
    cmd.env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let hook = move || -> std::io::Result<()> {
        // Runs between fork and exec: only async-signal-safe calls, no
        // allocation. The child dies with the thread that spawned it, so a
        // failed (panicking) test leaves no process behind.
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Every source moves above the targets first (a close-on-exec copy),
        // so that placing one descriptor cannot clobber the source of
        // another; dup2 then makes inheritable copies.
        let mut tmp = [-1 as RawFd; 8];
        for (i, &(src, _)) in pairs.iter().enumerate() {
            // SAFETY: plain fcntl on a descriptor that is open in this
            // (forked) process; no memory is passed.
            let t = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 64) };
            if t < 0 {
                return Err(std::io::Error::last_os_error());
            }
            tmp[i] = t;
        }
        for (i, &(_, dst)) in pairs.iter().enumerate() {
            // SAFETY: dup2 of open descriptors; `tmp[i] >= 64 > dst`, so the
            // new descriptor is a distinct one without FD_CLOEXEC.
            if unsafe { libc::dup2(tmp[i], dst) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the hook only calls fcntl and dup2 (async-signal-safe) on a
    // pre-built array, and allocates nothing, as required after fork in a
    // multi-threaded process.
    unsafe { cmd.pre_exec(hook) };
    cmd.spawn().expect("spawn child test process")
}

/// Waits for a child and asserts that it ran its role to the end (exit
/// status [`CHILD_OK`]).
pub fn reap_ok(mut child: Child, what: &str) {
    let st = child.wait().expect("wait for child");
    assert_eq!(st.code(), Some(CHILD_OK), "{what} child failed: {st}");
}

/// Kills (SIGKILL) and reaps a child that may already have exited.
pub fn kill_and_reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> (File, File) {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    (File::from(r), File::from(w))
}

/// Writes one byte to a control pipe.
pub fn signal(w: &mut File) {
    w.write_all(&[1]).expect("signal pipe");
}

/// Reads one byte from a control pipe; `false` at end of file.
pub fn wait_signal(r: &mut File) -> bool {
    let mut b = [0u8];
    loop {
        match r.read(&mut b) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("control pipe: {e}"),
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes (unlike
/// `Instant`, which cannot be sent to another process).
pub fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Aborts the process (with a message) when `beat` has not been called for
/// `limit`: a hang fails fast instead of stalling CI. Stops when dropped.
pub struct Watchdog {
    beats: Arc<AtomicU64>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// `SHMPIPE_WATCHDOG_SECS` overrides `limit` (to attach a debugger to a
    /// hang).
    pub fn new(what: &str, limit: Duration) -> Watchdog {
        let limit = std::env::var("SHMPIPE_WATCHDOG_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(limit, Duration::from_secs);
        let beats = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = mpsc::channel::<()>();
        let what = what.to_string();
        let b = Arc::clone(&beats);
        let thread = std::thread::spawn(move || {
            let mut last = 0;
            let mut since = Instant::now();
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(100))
            {
                let now = b.load(Relaxed);
                if now != last {
                    last = now;
                    since = Instant::now();
                } else if since.elapsed() > limit {
                    eprintln!("watchdog: {what}: no progress for {limit:?}, aborting (hang)");
                    std::process::abort();
                }
            }
        });
        Watchdog {
            beats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Reports progress.
    pub fn beat(&self) {
        self.beats.fetch_add(1, Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Prints a latency distribution (milliseconds): measured, not asserted.
pub fn report_latency(what: &str, mut ns: Vec<u64>) {
    if ns.is_empty() {
        eprintln!("{what}: no samples");
        return;
    }
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() - 1) as f64 * p).round() as usize] as f64 / 1e6;
    eprintln!(
        "{what}: n={} min={:.2}ms p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        ns.len(),
        q(0.0),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
}
