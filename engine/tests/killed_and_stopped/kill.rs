//! SIGKILL at random points: a dead writer, a dead reader and a writer that
//! dies holding the writer lock in the middle of a fragmented write. The
//! survivors never hang, get `PeerClosed` (or take the lock over), and every
//! record committed before the kill arrives intact; only the message being
//! written at the moment of death may be cut short, and then it is a prefix
//! of what was being written. "Committed" is not taken from the engine's
//! own counters: the killed writer reports, after every write that returned
//! `Ok`, how many it completed, through a memfd of its own (a side channel
//! the engine does not touch), and the reader must have got all of those
//! whole.
//!
//! `SHMPIPE_KILL_ROUNDS` (default 200) sets the rounds of each scenario. The
//! time from `kill()` to the survivor's return is printed, not asserted
//! (run with `--nocapture` to see it).

use crate::common;

use common::*;
use shmpipe_engine::{channel, Error, Receiver, Sender};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A small ring, so that many writes are fragmented and a writer is often
/// blocked mid-write when it dies.
const KRING: usize = 16 * 1024;

/// Sizes of the killed writers' records: empty to 4× the ring, 40% of them
/// above the largest single record (fragmented).
const KILL_SIZES: Dist = &[
    (5, 0, 0),
    (25, 1, 48),
    (15, 49, 4096),
    (15, 4097, KRING / 2 - 64),
    (40, KRING / 2 - 63, 4 * KRING),
];

/// The lock victim's write: ten rings' worth, so it is blocked holding the
/// writer lock with fragments published when it dies.
const VICTIM_LEN: usize = 10 * KRING;
const VICTIM_KEY: u64 = 0xdead << 40;

/// Sizes of the lock survivor's messages (one of them larger than the ring).
const SURVIVOR_SIZES: &[usize] = &[1000, 0, 3 * KRING, 17, KRING / 2];

fn survivor_key(i: usize) -> u64 {
    (1 << 40) | i as u64
}

/// A hang is any 20 s without progress.
const STALL: Duration = Duration::from_secs(20);

fn rounds() -> u64 {
    env_count("SHMPIPE_KILL_ROUNDS", 200)
}

/// Child `child_endless_writer:seed`.
fn child_endless_writer() {
    endless_writer(role_arg(0));
}

/// Child `child_stalling_reader:seed:n`.
fn child_stalling_reader() {
    stalling_reader(role_arg(0), role_arg(1));
}

/// Writes records `0, 1, ..` until the reader goes away (or it is killed).
/// After each write that returned `Ok`, stores the number of records
/// written so far at offset 0 of the progress file (descriptor 4).
fn endless_writer(seed: u64) {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let progress = File::from(take_fd(4));
    let mut buf = vec![0u8; 4 * KRING];
    for seq in 0.. {
        let len = size_of(KILL_SIZES, seed, seq);
        fill(seq, 0, &mut buf[..len]);
        match tx.write(&buf[..len]) {
            Ok(()) => report_written(&progress, seq + 1),
            Err(Error::PeerClosed) => return,
            Err(e) => panic!("endless writer, record {seq}: {e}"),
        }
    }
}

/// The progress file of a killed writer: an 8-byte memfd holding the number
/// of writes that returned `Ok`. One `pwrite` per write: cheap next to the
/// writes (which wake the reader), and it survives the writer's SIGKILL.
fn progress_file() -> File {
    let fd = rustix::fs::memfd_create("shmpipe-kill-progress", rustix::fs::MemfdFlags::CLOEXEC)
        .expect("memfd_create");
    let f = File::from(fd);
    report_written(&f, 0);
    f
}

fn report_written(progress: &File, n: u64) {
    progress
        .write_all_at(&n.to_le_bytes(), 0)
        .expect("progress pwrite");
}

fn written_reported(progress: &File) -> u64 {
    let mut b = [0u8; 8];
    progress.read_exact_at(&mut b, 0).expect("progress pread");
    u64::from_le_bytes(b)
}

fn assert_killed(mut child: Child, what: &str) {
    let st = child.wait().expect("wait for child");
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "{what} child ended otherwise than by our SIGKILL: {st}"
    );
}

struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// What the reader of one killed-writer round saw.
#[derive(Default)]
struct Seen {
    complete: u64,
    truncated: bool,
}

/// Reads the killed writer's stream until `PeerClosed`, checking it.
fn read_until_closed(rx: &mut Receiver, seed: u64, round: u64, count: &AtomicU64) -> Seen {
    let mut buf = vec![0u8; 4 * KRING + 64];
    let mut seen = Seen::default();
    let mut delivered = 0u64;
    loop {
        match rx.read_message(&mut buf) {
            Ok(m) => {
                let seq = seen.complete;
                assert!(
                    !seen.truncated,
                    "round {round}: record {seq} after a truncated message"
                );
                let len = size_of(KILL_SIZES, seed, seq);
                delivered += m.len as u64;
                assert!(
                    m.len <= len && m.end == (m.len == len),
                    "round {round}: record {seq}: {m:?}, {len} bytes written (a cut \
                     message must never be reported complete)"
                );
                verify(seq, 0, &buf[..m.len])
                    .unwrap_or_else(|e| panic!("round {round}: record {seq}: {e}"));
                if m.len == len {
                    seen.complete += 1;
                    count.store(seen.complete, Relaxed);
                } else {
                    // Cut short by the writer's death: allowed once, last.
                    seen.truncated = true;
                }
            }
            Err(Error::PeerClosed) => break,
            Err(e) => panic!("round {round}: reader: {e}"),
        }
    }
    assert!(
        matches!(rx.read_message(&mut buf), Err(Error::PeerClosed)),
        "round {round}: the end of the stream is not sticky"
    );
    // Everything the writer published was consumed, and every consumed
    // byte was handed to the caller: nothing committed before the kill was
    // lost.
    let consumed = rx.batch(|c| Ok(c.consumed())).unwrap();
    assert_eq!(
        rx.available(),
        0,
        "round {round}: published bytes left unread"
    );
    assert_eq!(
        consumed,
        delivered,
        "round {round}: the reader consumed {consumed} bytes but returned {delivered} \
         (after {} complete records{})",
        seen.complete,
        if seen.truncated {
            " and a truncated one"
        } else {
            ""
        }
    );
    seen
}

fn writer_killed_at_random_points() {
    let rounds = rounds();
    let seed0 = seed("writer_killed_at_random_points");
    let mut latency = Vec::new();
    let (mut records, mut truncated, mut unreported) = (0, 0, 0);
    for round in 0..rounds {
        let seed = mix(seed0 ^ round);
        let mut rng = Rng::new(seed);
        let dog = Watchdog::new(
            &format!("writer_killed_at_random_points round {round}"),
            STALL,
        );
        let (tx, mut rx) = channel(KRING).unwrap();
        let progress = progress_file();
        let mut child = spawn_child(
            &format!("child_endless_writer:{seed}"),
            &[(tx.as_fd(), 3), (progress.as_fd(), 4)],
        );
        drop(tx);
        // Kill after a random number of records and a random delay; every
        // tenth round right away (possibly before the child even attached).
        let after = if round % 10 == 0 {
            0
        } else {
            rng.range(1, 100)
        };
        let delay = Duration::from_micros(rng.range(0, 3000));
        let count = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        let (seen, closed_at, killed_at) = std::thread::scope(|s| {
            let killer = s.spawn(|| {
                while count.load(Relaxed) < after && !done.load(Relaxed) {
                    std::thread::sleep(Duration::from_micros(200));
                }
                std::thread::sleep(delay);
                let t = Instant::now();
                let _ = child.kill();
                t
            });
            // Releases the killer even if a check fails (the scope waits).
            let _release = SetOnDrop(&done);
            let seen = read_until_closed(&mut rx, seed, round, &count);
            let closed_at = Instant::now();
            done.store(true, Relaxed);
            (seen, closed_at, killer.join().unwrap())
        });
        assert_killed(child, "endless writer");
        // The writer is gone, so its count is final. Every write that
        // returned Ok must have been read whole (the reader already checked
        // that what it got is in order, intact, and at most one cut-short
        // message after the last whole one).
        let reported = written_reported(&progress);
        assert!(
            seen.complete >= reported,
            "round {round}: the writer's writes of records 0..{reported} returned Ok, but the \
             reader got only {} whole records{}",
            seen.complete,
            if seen.truncated {
                " and a truncated one"
            } else {
                ""
            }
        );
        latency.push(closed_at.saturating_duration_since(killed_at).as_nanos() as u64);
        records += seen.complete;
        truncated += u64::from(seen.truncated);
        // Killed after its write was published but before it returned (or
        // reported): allowed, counted for the summary.
        unreported += seen.complete - reported;
        drop(dog);
    }
    eprintln!(
        "writer_killed_at_random_points: {rounds} rounds, {records} complete records \
         ({unreported} of them published but not yet reported at the kill), \
         {truncated} rounds ended in a truncated message"
    );
    report_latency("kill(writer) -> reader's PeerClosed", latency);
}

/// Reads and checks `n` records, tells the parent it stopped reading, then
/// holds the read end without reading until the parent goes away.
fn stalling_reader(seed: u64, n: u64) {
    let mut rx = Receiver::from_fd(take_fd(3)).unwrap();
    let mut status = File::from(take_fd(4));
    let mut hold = File::from(take_fd(5));
    let mut buf = vec![0u8; 4 * KRING + 64];
    for seq in 0..n {
        let m = rx.read_message(&mut buf).unwrap();
        let len = size_of(KILL_SIZES, seed, seq);
        assert!(
            m.end && m.len == len,
            "record {seq}: {m:?}, expected {len} bytes"
        );
        verify(seq, 0, &buf[..len]).unwrap();
    }
    signal(&mut status);
    wait_signal(&mut hold);
}

fn reader_killed_while_writer_blocked() {
    let rounds = rounds();
    let seed0 = seed("reader_killed_while_writer_blocked");
    let mut latency = Vec::new();
    for round in 0..rounds {
        let seed = mix(seed0 ^ round);
        let mut rng = Rng::new(seed);
        let dog = Watchdog::new(
            &format!("reader_killed_while_writer_blocked round {round}"),
            STALL,
        );
        let (mut tx, rx) = channel(KRING).unwrap();
        let (mut status_r, status_w) = pipe();
        let (hold_r, hold_w) = pipe();
        let n = rng.range(0, 30);
        let mut child = spawn_child(
            &format!("child_stalling_reader:{seed}:{n}"),
            &[(rx.as_fd(), 3), (status_w.as_fd(), 4), (hold_r.as_fd(), 5)],
        );
        drop((rx, status_w, hold_r));
        let (tid_tx, tid) = std::sync::mpsc::channel();
        let (stopped, result, killed_at) = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                tid_tx.send(gettid()).unwrap();
                let mut buf = vec![0u8; 4 * KRING];
                for seq in 0.. {
                    let len = size_of(KILL_SIZES, seed, seq);
                    fill(seq, 0, &mut buf[..len]);
                    if let Err(e) = tx.write(&buf[..len]) {
                        let at = Instant::now();
                        // Closed stays closed.
                        let again = tx.write(b"x");
                        return (e, at, again);
                    }
                }
                unreachable!()
            });
            // Kill (unconditionally: a failed check must not leave the
            // writer blocked) once the reader stopped and, in most rounds,
            // the writer is stuck on the full ring (asleep in its wait).
            let writer_tid = tid.recv().unwrap();
            let stopped = wait_signal(&mut status_r);
            if stopped && rng.next_u64() % 4 != 0 {
                wait_until_blocked(writer_tid);
            }
            std::thread::sleep(Duration::from_micros(rng.range(0, 1000)));
            let t = Instant::now();
            let _ = child.kill();
            (stopped, writer.join().unwrap(), t)
        });
        drop(hold_w);
        assert!(
            stopped,
            "round {round}: the reader child failed before it stopped reading"
        );
        assert_killed(child, "stalling reader");
        let (err, returned_at, again) = result;
        assert!(
            matches!(err, Error::PeerClosed),
            "round {round}: writer got {err:?}, expected PeerClosed"
        );
        assert!(
            matches!(again, Err(Error::PeerClosed)),
            "round {round}: a write after PeerClosed gave {again:?}"
        );
        latency.push(returned_at.saturating_duration_since(killed_at).as_nanos() as u64);
        drop(dog);
    }
    report_latency("kill(reader) -> blocked writer's PeerClosed", latency);
}

/// Tells the parent it starts, then writes [`VICTIM_LEN`] bytes, which
/// blocks (nobody reads) while holding the writer lock.
fn child_lock_victim() {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut status = File::from(take_fd(4));
    let data = content(VICTIM_KEY, VICTIM_LEN);
    signal(&mut status);
    // Returns only if the parent is gone (then the reader is too).
    let _ = tx.write(&data);
}

/// Waits for the parent's go, writes [`SURVIVOR_SIZES`] (queueing behind the
/// victim's lock), and reports when its first write returned
/// (CLOCK_MONOTONIC, comparable with the parent's).
fn child_lock_survivor() {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut status = File::from(take_fd(4));
    let mut go = File::from(take_fd(5));
    assert!(wait_signal(&mut go), "parent went away");
    let mut first = 0;
    for (i, &len) in SURVIVOR_SIZES.iter().enumerate() {
        tx.write(&content(survivor_key(i), len)).unwrap();
        if i == 0 {
            first = mono_ns();
        }
    }
    status.write_all(&first.to_le_bytes()).unwrap();
}

fn lock_holder_killed_mid_write() {
    let rounds = rounds();
    let seed0 = seed("lock_holder_killed_mid_write");
    let (mut to_abort, mut to_survivor_return) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; VICTIM_LEN + 64];
    for round in 0..rounds {
        let mut rng = Rng::new(mix(seed0 ^ round));
        let dog = Watchdog::new(
            &format!("lock_holder_killed_mid_write round {round}"),
            STALL,
        );
        let (tx, mut rx) = channel(KRING).unwrap();
        let (mut victim_r, victim_w) = pipe();
        let (mut survivor_r, survivor_w) = pipe();
        let (go_r, mut go_w) = pipe();
        let mut victim = spawn_child(
            "child_lock_victim",
            &[(tx.as_fd(), 3), (victim_w.as_fd(), 4)],
        );
        let survivor = spawn_child(
            "child_lock_survivor",
            &[(tx.as_fd(), 3), (survivor_w.as_fd(), 4), (go_r.as_fd(), 5)],
        );
        drop((tx, victim_w, survivor_w, go_r));

        assert!(
            wait_signal(&mut victim_r),
            "round {round}: victim failed to start"
        );
        // Once its first fragment is published, the victim holds the writer
        // lock until its write ends, which cannot happen: nobody reads.
        while rx.available() == 0 {
            if let Some(st) = victim.try_wait().unwrap() {
                panic!("round {round}: victim exited before writing: {st}");
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        signal(&mut go_w);
        std::thread::sleep(Duration::from_micros(rng.range(0, 3000)));
        let (killed_mono, killed_at) = (mono_ns(), Instant::now());
        victim.kill().unwrap();

        // The victim's message, cut short by the abort marker the survivor
        // writes when it takes the lock over.
        let m = rx.read_message(&mut buf).unwrap();
        to_abort.push(killed_at.elapsed().as_nanos() as u64);
        assert!(
            !m.end && m.len > 0 && m.len < VICTIM_LEN,
            "round {round}: victim's message {m:?}, expected an unfinished part"
        );
        verify(VICTIM_KEY, 0, &buf[..m.len]).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            matches!(rx.read_message(&mut buf), Err(Error::MessageCut)),
            "round {round}: the cut of the victim's message is not reported"
        );
        for (i, &len) in SURVIVOR_SIZES.iter().enumerate() {
            let m = rx.read_message(&mut buf).unwrap();
            assert!(
                m.end && m.len == len,
                "round {round}: survivor message {i}: {m:?}, expected {len} bytes"
            );
            verify(survivor_key(i), 0, &buf[..len])
                .unwrap_or_else(|e| panic!("round {round}: survivor message {i}: {e}"));
        }
        let mut first = [0u8; 8];
        survivor_r.read_exact(&mut first).unwrap();
        let first = u64::from_le_bytes(first);
        to_survivor_return.push(first.saturating_sub(killed_mono));
        assert!(matches!(rx.read_message(&mut buf), Err(Error::PeerClosed)));
        assert_killed(victim, "lock victim");
        reap_ok(survivor, "lock survivor");
        drop(dog);
    }
    report_latency("kill(lock holder) -> reader sees the abort", to_abort);
    report_latency(
        "kill(lock holder) -> survivor's first write returns",
        to_survivor_return,
    );
}

common::tests! {
    tests: [
        writer_killed_at_random_points,
        reader_killed_while_writer_blocked,
        lock_holder_killed_mid_write,
    ],
    children: [child_endless_writer, child_stalling_reader, child_lock_victim, child_lock_survivor],
}
