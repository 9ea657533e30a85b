//! The records the streaming tests send: sizes, keys, the plan of one
//! writer and the check of several writers' merged stream.

use crate::common;

use common::*;
use std::time::Duration;

/// Sizes of the streaming tests: mostly small, with every size class up to
/// 4× the ring present (fragmented writes, records of exactly the largest
/// single-record size and around it, empty records). Relative weights; the
/// mean is about 570 B, so 10 million records move about 5.7 GB.
pub(super) const STREAM: Dist = &[
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
pub(super) const MULTI: Dist = &[
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
pub(super) fn writer_key(w: u64, seq: u64) -> u64 {
    (seq << 8) | w
}

/// The number of empty messages a writer writes right after its keyed
/// record `key`: mostly none, sometimes a run of up to 5 (about 0.34 per
/// keyed record, a quarter of all messages).
pub(super) fn empties_after(seed: u64, key: u64) -> u64 {
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
pub(super) struct Plan {
    pub(super) seed: u64,
    pub(super) w: u64,
    pub(super) left: u64,
    pub(super) seq: u64,
    pub(super) empties: u64,
}

impl Plan {
    pub(super) fn new(seed: u64, w: u64, count: u64) -> Plan {
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
pub(super) struct Window {
    pub(super) from: u64,
    pub(super) seq: u64,
    pub(super) demand: u64,
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
pub(super) struct Merged {
    pub(super) dist: Dist,
    pub(super) seed: u64,
    pub(super) count: u64,
    /// Next keyed sequence number, per writer.
    pub(super) next: Vec<u64>,
    /// Messages accounted for, per writer, through its open window.
    pub(super) planned: Vec<u64>,
    pub(super) open: Vec<Option<Window>>,
    /// Positions of the empty messages no closed window took, ascending.
    pub(super) free: Vec<u64>,
    /// Messages read.
    pub(super) pos: u64,
    pub(super) empties: u64,
    /// Keyed records larger than a ring of [`RING`] takes whole.
    pub(super) fragmented: u64,
    pub(super) bytes: usize,
}

impl Merged {
    pub(super) fn new(dist: Dist, seed: u64, writers: usize, count: u64) -> Merged {
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
    pub(super) fn message(&mut self, data: &[u8]) -> Result<(), String> {
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
    pub(super) fn close(&mut self, w: usize) -> Result<(), String> {
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
    pub(super) fn finish(&mut self) -> Result<(), String> {
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

pub(super) fn stream_records() -> u64 {
    let default = if cfg!(debug_assertions) {
        200_000
    } else {
        10_000_000
    };
    env_count("SHMPIPE_XPROC_RECORDS", default)
}

pub(super) fn multi_records() -> u64 {
    let default = if cfg!(debug_assertions) {
        20_000
    } else {
        3_333_334
    };
    env_count("SHMPIPE_XPROC_MULTI_RECORDS", default)
}

/// Prints (does not assert) how long a streaming test took.
pub(super) fn report_rate(test: &str, count: u64, bytes: usize, start: std::time::Instant) {
    let t = start.elapsed();
    eprintln!(
        "{test}: {count} records, {:.1} MB in {t:.2?} ({:.2} M records/s)",
        bytes as f64 / 1e6,
        count as f64 / t.as_secs_f64() / 1e6
    );
}

/// A hang is any 20 s without progress.
pub(super) const STALL: Duration = Duration::from_secs(20);
