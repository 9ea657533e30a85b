//! Cross-process streaming through a shared segment, between real processes:
//! every record arrives exactly once, in order, whole and uncorrupted; writes
//! of several writer processes never interleave; the reader sees the end of
//! the stream only when the last writer handle, in any process, is gone.
//!
//! Children are this test binary re-executed (see `common`). The number of
//! records of the streaming tests is `SHMPIPE_XPROC_RECORDS` (default: 10
//! million in release builds, fewer in debug builds, where the same run would
//! take many minutes); CI runs this file in release for the full count. The
//! three-writer test makes `SHMPIPE_XPROC_MULTI_RECORDS` writes per writer
//! (default: 3,333,334 in release builds, so 10 million in all; fewer in
//! debug builds).
//!
//! Several writers' empty messages cannot carry a key. Each writer follows
//! its keyed record `n` with `e(n)` empty messages, `e` a pure function of
//! (seed, key), and the reader ([`Merged`]) decides whether the empty
//! messages it saw can be shared out so that each keyed record is followed,
//! before its writer's next record, by exactly its own `e(n)`: a lost,
//! duplicated or misplaced empty message fails unless the delivered stream
//! is one that correct, atomic writes could also have produced.

mod common;

use common::*;
use shmpipe_engine::{
    channel, Consumer, Error, Producer, RingStorage, Segment, SegmentRing, Sender,
};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering::Acquire;
use std::time::Duration;

/// Sizes of the streaming tests: mostly small, with every size class up to
/// 4× the ring present (fragmented writes, records of exactly the largest
/// single-record size and around it, empty records). Relative weights; the
/// mean is about 570 B, so 10 million records move about 5.7 GB.
const STREAM: Dist = &[
    (200, 0, 0),
    (4800, 1, 48),
    (4000, 49, 512),
    (800, 513, 4096),
    (40, 4097, 65536),
    (6, 32703, 32705),
    (4, 65537, 4 * RING),
    (1, 4 * RING, 4 * RING),
];

/// Sizes of the multi-writer test's keyed records (relative weights): at
/// least 1 byte (the writer id; the empty messages come from
/// [`empties_after`]), mostly small, sizes around the largest single record,
/// and about 1% of writes larger than it (fragmented: they must not
/// interleave with other writers' writes) or than the ring. The mean is
/// about 1.9 KB, so 10 million messages move about 14 GB.
const MULTI: Dist = &[
    (500, 1, 7),
    (5500, 8, 64),
    (2500, 65, 2048),
    (400, 2049, 32702),
    (20, 32703, 32705),
    (60, 32706, 65536),
    (20, 65537, 4 * RING),
];

/// Keys of writer `w`'s records: the writer id in the low byte, which is
/// the first byte of the content, so even a 1-byte record names its writer.
fn writer_key(w: u64, seq: u64) -> u64 {
    (seq << 8) | w
}

/// The number of empty messages a writer writes right after its keyed
/// record `key`: mostly none, sometimes a run of up to 5 (about 0.34 per
/// keyed record, a quarter of all messages).
fn empties_after(seed: u64, key: u64) -> u64 {
    let h = mix(seed.rotate_left(29) ^ mix(key ^ 0x0e3b_7e55_a9e5_0000));
    match h % 16 {
        0..=12 => 0,
        13 | 14 => 1,
        _ => 2 + (h >> 32) % 4,
    }
}

/// What writer `w` of a merged stream writes, in order: `count` messages,
/// keyed records (`Some(key)`) each followed by its [`empties_after`] empty
/// messages (`None`), the last run cut short to make `count`.
struct Plan {
    seed: u64,
    w: u64,
    left: u64,
    seq: u64,
    empties: u64,
}

impl Plan {
    fn new(seed: u64, w: u64, count: u64) -> Plan {
        Plan {
            seed,
            w,
            left: count,
            seq: 0,
            empties: 0,
        }
    }
}

impl Iterator for Plan {
    type Item = Option<u64>;

    fn next(&mut self) -> Option<Option<u64>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.empties > 0 {
            self.empties -= 1;
            return Some(None);
        }
        let key = writer_key(self.w, self.seq);
        self.seq += 1;
        self.empties = empties_after(self.seed, key).min(self.left);
        Some(Some(key))
    }
}

/// The empty messages a keyed record still owes: writer's record `seq`,
/// read as message `from`, must be followed by `demand` empty messages
/// before the writer's next record.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: u64,
    seq: u64,
    demand: u64,
}

/// Checks the messages of `writers` [`Plan`]s of `count` messages each, as
/// one reader gets them merged. Keyed records are checked by writer, order,
/// length and content. Empty messages cannot be told apart, so each keyed
/// record opens a window that must receive its `e(n)` empty messages before
/// its writer's next record (or the end); a window that closes takes the
/// earliest unattributed empty messages inside it. Windows close in the
/// order of their ends, so this greedy choice finds a sharing-out whenever
/// one exists (an earlier point can always be swapped in): the check fails
/// exactly when no interleaving of correct, atomic writes could have
/// produced what was read.
struct Merged {
    dist: Dist,
    seed: u64,
    count: u64,
    /// Next keyed sequence number, per writer.
    next: Vec<u64>,
    /// Messages accounted for, per writer, through its open window.
    planned: Vec<u64>,
    open: Vec<Option<Window>>,
    /// Positions of the empty messages no closed window took, ascending.
    free: Vec<u64>,
    /// Messages read.
    pos: u64,
    empties: u64,
    /// Keyed records larger than a ring of [`RING`] takes whole.
    fragmented: u64,
    bytes: usize,
}

impl Merged {
    fn new(dist: Dist, seed: u64, writers: usize, count: u64) -> Merged {
        Merged {
            dist,
            seed,
            count,
            next: vec![0; writers],
            planned: vec![0; writers],
            open: vec![None; writers],
            free: Vec::new(),
            pos: 0,
            empties: 0,
            fragmented: 0,
            bytes: 0,
        }
    }

    /// Checks the next complete message.
    fn message(&mut self, data: &[u8]) -> Result<(), String> {
        let at = self.pos;
        self.pos += 1;
        if data.is_empty() {
            self.empties += 1;
            self.free.push(at);
            // Every unattributed empty message must go to an open window,
            // and those have not taken any yet.
            let owed: u64 = self.open.iter().flatten().map(|o| o.demand).sum();
            if self.free.len() as u64 > owed {
                return Err(format!(
                    "message {at}: an empty message that no writer owes \
                     ({} unattributed, {owed} owed): duplicated or out of order",
                    self.free.len()
                ));
            }
            return Ok(());
        }
        let w = usize::from(data[0]);
        if w >= self.next.len() {
            return Err(format!("message {at}: from unknown writer {w}"));
        }
        self.close(w)?;
        let seq = self.next[w];
        if self.planned[w] >= self.count {
            return Err(format!(
                "message {at}: writer {w} wrote more than {} messages",
                self.count
            ));
        }
        let key = writer_key(w as u64, seq);
        let len = size_of(self.dist, self.seed, key);
        if data.len() != len {
            return Err(format!(
                "message {at}: writer {w} record {seq}: {} bytes, expected {len}",
                data.len()
            ));
        }
        verify(key, 0, data).map_err(|e| format!("message {at}: writer {w} record {seq}: {e}"))?;
        let demand = empties_after(self.seed, key).min(self.count - self.planned[w] - 1);
        self.planned[w] += 1 + demand;
        self.next[w] += 1;
        self.bytes += len;
        self.fragmented += u64::from(len > RING / 2 - 64);
        self.open[w] = Some(Window {
            from: at,
            seq,
            demand,
        });
        Ok(())
    }

    /// Closes writer `w`'s window: it takes the earliest unattributed empty
    /// messages read after its record.
    fn close(&mut self, w: usize) -> Result<(), String> {
        let Some(win) = self.open[w].take() else {
            return Ok(());
        };
        let first = self.free.partition_point(|&p| p < win.from);
        let avail = self.free.len() - first;
        if (avail as u64) < win.demand {
            return Err(format!(
                "writer {w}: record {} (message {}) must be followed by {} empty \
                 messages before the writer's next message, but only {avail} \
                 unattributed ones came after it: lost or out of order",
                win.seq, win.from, win.demand
            ));
        }
        self.free.drain(first..first + win.demand as usize);
        Ok(())
    }

    /// Checks, at the end of the writers' streams, that every message of
    /// every writer arrived and nothing else did.
    fn finish(&mut self) -> Result<(), String> {
        for w in 0..self.open.len() {
            self.close(w)?;
        }
        if !self.free.is_empty() {
            return Err(format!(
                "empty messages that no writer owes, at {:?}",
                self.free
            ));
        }
        for (w, &n) in self.planned.iter().enumerate() {
            if n != self.count {
                return Err(format!(
                    "writer {w}: {n} of its {} messages arrived",
                    self.count
                ));
            }
        }
        Ok(())
    }
}

fn stream_records() -> u64 {
    let default = if cfg!(debug_assertions) {
        200_000
    } else {
        10_000_000
    };
    env_count("SHMPIPE_XPROC_RECORDS", default)
}

fn multi_records() -> u64 {
    let default = if cfg!(debug_assertions) {
        20_000
    } else {
        3_333_334
    };
    env_count("SHMPIPE_XPROC_MULTI_RECORDS", default)
}

/// Prints (does not assert) how long a streaming test took.
fn report_rate(test: &str, count: u64, bytes: usize, start: std::time::Instant) {
    let t = start.elapsed();
    eprintln!(
        "{test}: {count} records, {:.1} MB in {t:.2?} ({:.2} M records/s)",
        bytes as f64 / 1e6,
        count as f64 / t.as_secs_f64() / 1e6
    );
}

/// A hang is any 20 s without progress.
const STALL: Duration = Duration::from_secs(20);

/// Child `child_stream_writer:seed:count`.
fn child_stream_writer() {
    stream_writer(role_arg(0), role_arg(1));
}

/// Child `child_raw_writer:seed:count`.
fn child_raw_writer() {
    raw_writer(role_arg(0), role_arg(1));
}

/// Child `child_multi_writer:seed:w:count`.
fn child_multi_writer() {
    multi_writer(role_arg(0), role_arg(1), role_arg(2));
}

fn stream_writer(seed: u64, count: u64) {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut buf = vec![0u8; 4 * RING];
    for seq in 0..count {
        let len = size_of(STREAM, seed, seq);
        fill(seq, 0, &mut buf[..len]);
        tx.write(&buf[..len]).unwrap();
    }
}

fn stream_random_sizes_between_processes() {
    let count = stream_records();
    let seed = seed("stream_random_sizes_between_processes");
    let (tx, mut rx) = channel(RING).unwrap();
    let child = spawn_child(
        &format!("child_stream_writer:{seed}:{count}"),
        &[(tx.as_fd(), 3)],
    );
    // The child's copy is the only writer: its exit must end the stream.
    drop(tx);
    let dog = Watchdog::new("stream_random_sizes_between_processes", STALL);
    let start = std::time::Instant::now();
    let mut bytes = 0;
    let mut buf = vec![0u8; 4 * RING + 64];
    for seq in 0..count {
        let len = size_of(STREAM, seed, seq);
        bytes += len;
        let m = rx
            .read_message(&mut buf)
            .unwrap_or_else(|e| panic!("record {seq} of {count}: {e}"));
        assert!(
            m.end && m.len == len,
            "record {seq}: got {m:?}, expected a complete message of {len} bytes"
        );
        verify(seq, 0, &buf[..len]).unwrap_or_else(|e| panic!("record {seq}: {e}"));
        if seq % 4096 == 0 {
            dog.beat();
        }
    }
    assert!(matches!(rx.read_message(&mut buf), Err(Error::PeerClosed)));
    reap_ok(child, "stream writer");
    report_rate("stream_random_sizes_between_processes", count, bytes, start);
}

fn consumer_head(p: &Producer<SegmentRing>) -> u64 {
    p.storage().control().consumer.0.head.load(Acquire)
}

/// Parks until the consumer's head moves from `head0` (or 2 ms pass).
fn wait_space(p: &Producer<SegmentRing>, head0: u64) {
    let c = p.storage().control();
    let moved = || c.consumer.0.head.load(Acquire) != head0;
    c.events
        .0
        .writable
        .park(Some(Duration::from_millis(2)), moved);
}

/// Single-producer writer on the raw ring: zero-copy reservations filled in
/// place, fragments for writes above the largest record.
fn raw_writer(seed: u64, count: u64) {
    let fd = take_fd(3);
    let seg = Segment::attach(fd.as_fd()).unwrap();
    // SAFETY: this child process's only producer of the ring.
    let mut p = unsafe { Producer::new(seg.ring(0).unwrap()) }.unwrap();
    let max = p.max_record();
    for seq in 0..count {
        let len = size_of(STREAM, seed, seq);
        if len <= max {
            loop {
                let h0 = consumer_head(&p);
                if let Some(mut g) = p.try_reserve(len).unwrap() {
                    assert_eq!(g.len(), len);
                    fill(seq, 0, g.as_mut_slice());
                    g.commit(0);
                    break;
                }
                wait_space(&p, h0);
            }
        } else {
            let mut off = 0;
            while off < len {
                let h0 = consumer_head(&p);
                match p.try_reserve_up_to(len - off).unwrap() {
                    Some(mut g) => {
                        let n = g.len();
                        assert!(n > 0 && n <= len - off);
                        fill(seq, off, g.as_mut_slice());
                        off += n;
                        g.commit((len - off) as u64);
                    }
                    None => wait_space(&p, h0),
                }
            }
        }
    }
}

fn stream_raw_zero_copy_between_processes() {
    let count = stream_records();
    let seed = seed("stream_raw_zero_copy_between_processes");
    let (seg, fd) = Segment::create(&[RING], 0, [0; 8]).unwrap();
    let mut child = spawn_child(
        &format!("child_raw_writer:{seed}:{count}"),
        &[(fd.as_fd(), 3)],
    );
    drop(fd);
    // SAFETY: this process's only consumer of the ring (the producer is the
    // child).
    let mut c = unsafe { Consumer::new(seg.ring(0).unwrap()) }.unwrap();
    let dog = Watchdog::new("stream_raw_zero_copy_between_processes", STALL);
    let start = std::time::Instant::now();
    let mut bytes = 0;
    let mut rng = Rng::new(seed);
    for seq in 0..count {
        let len = size_of(STREAM, seed, seq);
        bytes += len;
        let mut got = 0usize;
        loop {
            match c.read_record().unwrap() {
                Some(g) => {
                    let s = g.as_slice();
                    let rest = g.remaining_in_write();
                    assert_eq!(
                        (got + s.len()) as u64 + rest,
                        len as u64,
                        "record {seq}: {got} bytes read, {} here, {rest} to come; expected {len}",
                        s.len()
                    );
                    verify(seq, got, s).unwrap_or_else(|e| panic!("record {seq}: {e}"));
                    // Sometimes consume only part of the record: the rest
                    // must come back at the right offset.
                    let n = if s.len() > 1 && rng.next_u64() % 8 == 0 {
                        rng.range(0, s.len() as u64 - 1) as usize
                    } else {
                        s.len()
                    };
                    let done = n == s.len() && rest == 0;
                    got += n;
                    g.release(n);
                    if done {
                        break;
                    }
                }
                None => {
                    let ev = &c.storage().control().events.0.readable;
                    ev.park(Some(Duration::from_millis(2)), || c.has_records());
                    if !c.has_records() {
                        if let Some(st) = child.try_wait().unwrap() {
                            assert!(
                                c.has_records(),
                                "writer exited ({st}) before record {seq} of {count}"
                            );
                        }
                    }
                }
            }
        }
        if seq % 4096 == 0 {
            dog.beat();
        }
    }
    reap_ok(child, "raw writer");
    assert!(!c.has_records(), "records beyond the last one");
    report_rate(
        "stream_raw_zero_copy_between_processes",
        count,
        bytes,
        start,
    );
}

fn multi_writer(seed: u64, w: u64, count: u64) {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut buf = vec![0u8; 4 * RING];
    for item in Plan::new(seed, w, count) {
        let len = item.map_or(0, |key| {
            let len = size_of(MULTI, seed, key);
            fill(key, 0, &mut buf[..len]);
            len
        });
        tx.write(&buf[..len]).unwrap();
    }
}

/// Reads one complete message into `check`.
fn read_merged(rx: &mut shmpipe_engine::Receiver, buf: &mut [u8], check: &mut Merged) {
    let m = rx.read_message(buf).unwrap();
    assert!(m.end, "incomplete message {m:?}");
    check
        .message(&buf[..m.len])
        .unwrap_or_else(|e| panic!("{e}"));
}

fn three_writer_processes_never_interleave() {
    let count = multi_records();
    let seed = seed("three_writer_processes_never_interleave");
    let (tx, mut rx) = channel(RING).unwrap();
    let children: Vec<_> = (0..3)
        .map(|w| {
            spawn_child(
                &format!("child_multi_writer:{seed}:{w}:{count}"),
                &[(tx.as_fd(), 3)],
            )
        })
        .collect();
    drop(tx);
    let dog = Watchdog::new("three_writer_processes_never_interleave", STALL);
    let start = std::time::Instant::now();
    let mut buf = vec![0u8; 4 * RING + 64];
    let mut check = Merged::new(MULTI, seed, 3, count);
    // Up to the end of the stream, not just 3 × count messages: a lost
    // message then fails with what is missing instead of hanging.
    loop {
        match rx.read_message(&mut buf) {
            Ok(m) => {
                assert!(m.end, "incomplete message {m:?}");
                check
                    .message(&buf[..m.len])
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            Err(Error::PeerClosed) => break,
            Err(e) => panic!("after {} messages: {e}", check.pos),
        }
        if check.pos % 256 == 0 {
            dog.beat();
        }
    }
    check.finish().unwrap_or_else(|e| panic!("{e}"));
    for c in children {
        reap_ok(c, "multi writer");
    }
    eprintln!(
        "three_writer_processes_never_interleave: {} empty messages, {} fragmented writes",
        check.empties, check.fragmented
    );
    report_rate(
        "three_writer_processes_never_interleave",
        check.pos,
        check.bytes,
        start,
    );
}

/// Sizes of the merged-stream check's own test: at least 8 bytes, so that
/// two records never look alike (as two 1-byte records of a writer do).
const TINY: Dist = &[(1, 8, 24)];

/// Feeds `msgs` (keyed records of [`TINY`] sizes, or empty) to a [`Merged`].
fn run_merged(seed: u64, writers: usize, count: u64, msgs: &[Option<u64>]) -> Result<(), String> {
    let mut check = Merged::new(TINY, seed, writers, count);
    for m in msgs {
        check.message(&m.map_or(Vec::new(), |key| content(key, size_of(TINY, seed, key))))?;
    }
    check.finish()
}

/// `writers` plans of `count` messages, merged in a random order.
fn random_merge(seed: u64, writers: u64, count: u64, rng: &mut Rng) -> Vec<Option<u64>> {
    let mut plans: Vec<_> = (0..writers)
        .map(|w| Plan::new(seed, w, count).peekable())
        .collect();
    let mut out = Vec::new();
    loop {
        let live: Vec<usize> = (0..plans.len())
            .filter(|&i| plans[i].peek().is_some())
            .collect();
        if live.is_empty() {
            return out;
        }
        let i = live[rng.range(0, live.len() as u64 - 1) as usize];
        // Sometimes a burst from one writer, as a lock holder gets.
        for _ in 0..rng.range(1, 4) {
            out.extend(plans[i].next());
        }
    }
}

/// The merged-stream check accepts every interleaving of whole writes and
/// rejects a lost, duplicated or misplaced empty message (or keyed record):
/// the three-writer test is only as good as this check.
fn merged_stream_check_catches_lost_duplicated_or_misplaced_messages() {
    let seed0 = seed("merged_stream_check_catches_lost_duplicated_or_misplaced_messages");
    for round in 0..10 {
        let seed = mix(seed0 ^ round);
        let mut rng = Rng::new(seed);
        let count = rng.range(1, 150);
        let msgs = random_merge(seed, 3, count, &mut rng);
        run_merged(seed, 3, count, &msgs).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let empties: Vec<usize> = (0..msgs.len()).filter(|&i| msgs[i].is_none()).collect();
        for &i in &empties {
            let mut lost = msgs.clone();
            lost.remove(i);
            assert!(
                run_merged(seed, 3, count, &lost).is_err(),
                "round {round}: lost {i}"
            );
            let mut dup = msgs.clone();
            dup.insert(i, None);
            assert!(
                run_merged(seed, 3, count, &dup).is_err(),
                "round {round}: dup {i}"
            );
        }
        // An empty message before any keyed record belongs to nobody.
        let mut early = msgs.clone();
        if let Some(&i) = empties.first() {
            early.remove(i);
            early.insert(0, None);
            assert!(run_merged(seed, 3, count, &early).is_err(), "round {round}");
        }
        // A keyed record lost, or two of one writer swapped.
        for i in (0..msgs.len()).filter(|&i| msgs[i].is_some()).take(20) {
            let mut lost = msgs.clone();
            lost.remove(i);
            assert!(
                run_merged(seed, 3, count, &lost).is_err(),
                "round {round}: lost {i}"
            );
            let w = msgs[i].unwrap() & 0xff;
            if let Some(j) = (i + 1..msgs.len()).find(|&j| msgs[j].is_some_and(|k| k & 0xff == w)) {
                let mut swapped = msgs.clone();
                swapped.swap(i, j);
                assert!(
                    run_merged(seed, 3, count, &swapped).is_err(),
                    "round {round}: swap {i} {j}"
                );
            }
        }
        // One writer alone: an empty message moved across a keyed record
        // changes the count of two windows.
        let count = rng.range(1, 40);
        let solo: Vec<_> = Plan::new(seed, 0, count).collect();
        run_merged(seed, 1, count, &solo).unwrap_or_else(|e| panic!("round {round}: {e}"));
        for i in (0..solo.len()).filter(|&i| solo[i].is_none()) {
            for j in 0..solo.len() {
                let mut moved = solo.clone();
                moved.remove(i);
                moved.insert(j, None);
                let crosses = solo[i.min(j)..=i.max(j)].iter().any(Option::is_some);
                assert_eq!(
                    run_merged(seed, 1, count, &moved).is_err(),
                    crosses,
                    "round {round}: empty {i} moved to {j}"
                );
            }
        }
    }
}

/// Sizes of the last writer's messages in the end-of-stream test (all fit
/// in the ring together, so they stay queued after it exits).
const LAST_WORDS: &[usize] = &[0, 1, 100, 3000, 0, 5000, 48, 49, 20_000];

/// Holds a duplicate of the write end, idle, until the parent signals; then
/// writes [`LAST_WORDS`] and exits.
fn child_eof_holder() {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut go = std::fs::File::from(take_fd(4));
    assert!(wait_signal(&mut go), "parent went away");
    for (seq, &len) in LAST_WORDS.iter().enumerate() {
        tx.write(&content(writer_key(2, seq as u64), len)).unwrap();
    }
}

fn end_of_stream_only_after_every_writer_process_exits() {
    let count = 100;
    let seed = seed("end_of_stream_only_after_every_writer_process_exits");
    let (tx, mut rx) = channel(RING).unwrap();
    let (go_r, mut go_w) = pipe();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            spawn_child(
                &format!("child_multi_writer:{seed}:{w}:{count}"),
                &[(tx.as_fd(), 3)],
            )
        })
        .collect();
    let holder = spawn_child("child_eof_holder", &[(tx.as_fd(), 3), (go_r.as_fd(), 4)]);
    drop((tx, go_r));
    let _dog = Watchdog::new("end_of_stream_only_after_every_writer_process_exits", STALL);

    // Two writers stream (larger than the ring: the reader must keep up),
    // then exit.
    let mut buf = vec![0u8; 4 * RING + 64];
    let mut check = Merged::new(MULTI, seed, 2, count);
    for _ in 0..2 * count {
        read_merged(&mut rx, &mut buf, &mut check);
    }
    check.finish().unwrap_or_else(|e| panic!("{e}"));
    for w in writers {
        reap_ok(w, "writer");
    }

    std::thread::scope(|s| {
        // Both writers are gone, but the holder's duplicate keeps the end
        // open: the reader must keep waiting.
        let (tid_tx, tid) = std::sync::mpsc::channel();
        let (rx, buf) = (&mut rx, &mut buf);
        let reader = s.spawn(move || {
            tid_tx.send(gettid()).unwrap();
            let m = rx.read_message(buf);
            (m, buf[..8].to_vec())
        });
        // Once the reader sleeps in its wait (after its spin), it has seen
        // an empty ring with a write end open.
        wait_until_blocked(tid.recv().unwrap());
        assert!(
            !reader.is_finished(),
            "the reader returned while a duplicate of the write end was open"
        );
        signal(&mut go_w);
        let (m, _) = reader.join().unwrap();
        let m = m.unwrap();
        assert!(m.end && m.len == LAST_WORDS[0]);
    });
    // The holder exits with the rest of its messages still queued: the
    // reader gets all of them, then the end of the stream.
    reap_ok(holder, "holder");
    for (seq, &len) in LAST_WORDS.iter().enumerate().skip(1) {
        let m = rx.read_message(&mut buf).unwrap();
        assert!(
            m.end && m.len == len,
            "last words {seq}: {m:?}, expected {len} bytes"
        );
        verify(writer_key(2, seq as u64), 0, &buf[..len]).unwrap();
    }
    assert!(matches!(rx.read_message(&mut buf), Err(Error::PeerClosed)));
    assert!(matches!(rx.read(&mut buf), Err(Error::PeerClosed)));
}

common::main! {
    tests: [
        stream_random_sizes_between_processes,
        stream_raw_zero_copy_between_processes,
        three_writer_processes_never_interleave,
        merged_stream_check_catches_lost_duplicated_or_misplaced_messages,
        end_of_stream_only_after_every_writer_process_exits,
    ],
    children: [
        child_stream_writer,
        child_raw_writer,
        child_multi_writer,
        child_eof_holder,
    ],
}
