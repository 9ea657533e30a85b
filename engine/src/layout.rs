//! The explicit shared layout: the control block of a ring and the segment
//! header.
//!
//! Everything here is `#[repr(C)]` with explicit 128-byte alignment (two
//! cache lines: x86 prefetches lines in pairs), so two processes built from
//! the same layout version agree on every offset; the compile-time
//! assertions at the bottom pin the offsets of the production layout. An
//! all-zero control block is the valid initial state, which is what a fresh
//! memfd holds.

use crate::sync::{Atomic32, Atomic64, Native, Platform};
use crate::wait::Event;
use core::sync::atomic::Ordering::{Acquire, Relaxed};

pub mod user_words;
pub use user_words::{UserWord, PENDING_CLAIMS};

/// Wraps a value so it starts on its own 128-byte boundary.
#[repr(C, align(128))]
#[derive(Default)]
pub struct Line<T>(pub T);

/// State written by the producer (read by the consumer).
#[repr(C)]
pub struct ProducerState<P: Platform> {
    /// Ring position (a byte count that only grows) just past the last
    /// published record.
    pub tail: P::U64,
    /// Payload bytes published so far.
    pub written: P::U64,
    /// `remaining` of the last published record: non-zero while a write is
    /// half published (its next fragments are still to come). A writer that
    /// takes over the writer lock from a dead one uses it to end that write
    /// with an `ABORT` record.
    pub open: P::U64,
}

/// State written by the consumer (read by the producer). It lives in shared
/// memory, not in the consumer, so that any process holding the read end can
/// continue a partly read record (a message read with `MoreData`).
#[repr(C)]
pub struct ConsumerState<P: Platform> {
    /// Ring position of the first record not yet fully consumed.
    pub head: P::U64,
    /// Payload bytes of the head record already consumed.
    pub head_offset: P::U64,
    /// Payload bytes consumed so far.
    pub consumed: P::U64,
    /// 1 while the last fully consumed record was followed by more fragments
    /// of its write (`remaining > 0`): the next record continues a message.
    pub continues: P::U64,
}

/// The two events of a ring.
#[repr(C)]
pub struct Events<P: Platform> {
    /// Notified by the producer when it publishes records.
    pub readable: Event<P>,
    /// Notified by the consumer when it consumes bytes or frees space.
    pub writable: Event<P>,
    /// Hang-up hints: a handle that closes sets its role's bit
    /// ([`HANGUP_READER`], [`HANGUP_WRITER`]) so the peer checks liveness at
    /// its next operation instead of at its next idle park slice. Only a
    /// hint: the kernel's answer (see `liveness`) decides.
    pub hangup: P::U32,
}

/// `hangup` bit: a reader handle closed.
pub const HANGUP_READER: u32 = 1;
/// `hangup` bit: a writer handle closed.
pub const HANGUP_WRITER: u32 = 2;
/// `hangup` bit, sticky: the connection was cut ([`End::disconnect`]);
/// every operation on the segment fails with `Error::Disconnected`.
///
/// [`End::disconnect`]: crate::channel::End::disconnect
pub const HANGUP_DISCONNECTED: u32 = 4;

/// Words of the writer and reader admission locks (see `lock.rs`), each on
/// its own line: writers and readers live in different processes, and
/// sharing a line would bounce it between them on every operation.
#[repr(C)]
pub struct Locks<P: Platform> {
    /// Admission lock for several writers (the MPSC ring).
    pub writer: crate::lock::LockWord<P>,
    /// Admission lock for several readers of one end.
    pub reader: Line<crate::lock::LockWord<P>>,
}

/// The control block of one ring: one line per writer, so the producer and
/// the consumer never write the same cache line on the fast path.
#[repr(C)]
pub struct RingControl<P: Platform> {
    /// Written by the producer.
    pub producer: Line<ProducerState<P>>,
    /// Written by the consumer.
    pub consumer: Line<ConsumerState<P>>,
    /// Futex words.
    pub events: Line<Events<P>>,
    /// Admission locks.
    pub locks: Line<Locks<P>>,
    /// Words for the layer above (per-end modes of a pipe and the like), on
    /// two lines: `user[0]` for words the writing side uses on its fast
    /// path, `user[1]` for the reading side's (a reader's stores on every
    /// blocking read must not pull the writer's mode word away from it). The
    /// engine never reads them; whoever does must treat them as hostile
    /// input like everything else in the segment. Which slot holds what:
    /// the table in [`user_words`] (name a slot with [`UserWord`]).
    pub user: [Line<[P::U64; 8]>; 2],
}

impl<P: Platform> RingControl<P> {
    /// A control block in its initial state (for heap-backed rings; a shared
    /// segment starts zeroed, which is the same state).
    pub fn new() -> Self {
        RingControl {
            producer: Line(ProducerState {
                tail: P::U64::new(0),
                written: P::U64::new(0),
                open: P::U64::new(0),
            }),
            consumer: Line(ConsumerState {
                head: P::U64::new(0),
                head_offset: P::U64::new(0),
                consumed: P::U64::new(0),
                continues: P::U64::new(0),
            }),
            events: Line(Events {
                readable: Event::new(),
                writable: Event::new(),
                hangup: crate::sync::Atomic32::new(0),
            }),
            locks: Line(Locks {
                writer: crate::lock::LockWord::new(),
                reader: Line(crate::lock::LockWord::new()),
            }),
            user: core::array::from_fn(|_| Line(core::array::from_fn(|_| P::U64::new(0)))),
        }
    }
}

/// Reads of the control block for the layer above, each with the ordering
/// its users rely on, so that no caller outside the engine loads a field by
/// hand. Every value was written by another process: hostile input.
impl<P: Platform> RingControl<P> {
    /// Payload bytes published so far (`producer.written`, Acquire: the
    /// bytes are visible once the count is).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!((c.written(), c.consumed()), (0, 0));
    /// ```
    pub fn written(&self) -> u64 {
        self.producer.0.written.load(Acquire)
    }

    /// Payload bytes consumed so far (`consumer.consumed`, Acquire).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!(c.written().saturating_sub(c.consumed()), 0);
    /// ```
    pub fn consumed(&self) -> u64 {
        self.consumer.0.consumed.load(Acquire)
    }

    /// Ring position just past the last published record: `producer.tail`
    /// (Acquire), or `consumer.head` (Acquire) where that is further. A
    /// record is published by its commit word and counted in `tail` just
    /// after: a reader may already have consumed it, and a head ahead of
    /// `tail` proves everything before it was published. So `tail() !=
    /// head()` means "unread records", never "the reader ran ahead".
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!(c.tail(), c.head());
    /// ```
    pub fn tail(&self) -> u64 {
        let tail = self.producer.0.tail.load(Acquire);
        tail.max(self.consumer.0.head.load(Acquire))
    }

    /// Ring position of the first record not yet fully consumed
    /// (`consumer.head`, Acquire).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert_eq!(c.head(), 0);
    /// ```
    pub fn head(&self) -> u64 {
        self.consumer.0.head.load(Acquire)
    }

    /// Whether the connection was cut ([`HANGUP_DISCONNECTED`], Acquire):
    /// sticky, set on every ring of the segment.
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert!(!c.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.events.0.hangup.load(Acquire) & HANGUP_DISCONNECTED != 0
    }

    /// Whether any hang-up bit is set (Relaxed: only a hint that makes the
    /// caller ask the kernel, which decides).
    ///
    /// ```
    /// use shmpipe_engine::layout::RingControl;
    /// let c = RingControl::<shmpipe_engine::sync::Native>::new();
    /// assert!(!c.hangup_hinted());
    /// ```
    pub fn hangup_hinted(&self) -> bool {
        self.events.0.hangup.load(Relaxed) != 0
    }
}

impl<P: Platform> Default for RingControl<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes of one ring's control block in a segment.
pub const CONTROL_SIZE: usize = core::mem::size_of::<RingControl<Native>>();

/// `"SHMPIPE\0"` as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMPIPE\0");
/// Bumped on every incompatible change of anything in this file, in the
/// record format, or in what a shared word means (3: admission lock words
/// hold process-slot tokens, no longer pid and start time; 4: records are
/// published by a commit word in their header, see [`crate::record`]; the
/// reader's user words on a line of their own; 5: four pending-write
/// claims in the user words instead of one, and a writer that finds none
/// free publishes nothing until one is).
pub const LAYOUT_VERSION: u32 = 5;
/// A segment holds at most this many rings (a duplex pipe needs two).
pub const MAX_RINGS: usize = 2;
/// Smallest ring data area.
pub const MIN_CAPACITY: usize = 256;
/// Largest ring data area.
pub const MAX_CAPACITY: usize = 1 << 30;
// Every capacity the layout allows is one whose laps a commit word tells
// apart (see `record::MAX_RING_CAPACITY`).
const _: () = assert!(MAX_CAPACITY <= crate::record::MAX_RING_CAPACITY);
/// Alignment of ring data areas in a segment.
pub const PAGE: usize = 4096;

/// Where one ring lives in a segment.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingDesc {
    /// Offset of the ring's [`RingControl`].
    pub control_offset: u64,
    /// Offset of the ring's data area.
    pub data_offset: u64,
    /// Size of the data area: a power of two.
    pub capacity: u64,
}

/// The first bytes of every segment. Written once by the creator before the
/// segment is shared; validated by every process that attaches, which then
/// keeps its own validated copy and never reads the shared one again.
#[repr(C, align(128))]
#[derive(Debug, Clone, Copy)]
pub struct SegmentHeader {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// `size_of::<SegmentHeader>()` of the creator.
    pub header_size: u32,
    /// Total size of the segment in bytes.
    pub total_size: u64,
    /// Number of rings in use (1..=[`MAX_RINGS`]).
    pub ring_count: u32,
    /// Reserved for the pipe layer (pipe type, flags); 0 in the engine.
    pub user_flags: u32,
    /// The rings.
    pub rings: [RingDesc; MAX_RINGS],
    /// Reserved for the pipe layer (quotas and the like).
    pub user: [u64; 8],
}

/// Size of the segment header.
pub const HEADER_SIZE: usize = core::mem::size_of::<SegmentHeader>();

// The production layout is an ABI between processes: pin it.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ProducerState<Native>>() == 24);
    assert!(size_of::<ConsumerState<Native>>() == 32);
    assert!(size_of::<Event<Native>>() == 8);
    assert!(offset_of!(RingControl<Native>, producer) == 0);
    assert!(offset_of!(RingControl<Native>, consumer) == 128);
    assert!(offset_of!(RingControl<Native>, events) == 256);
    assert!(offset_of!(RingControl<Native>, locks) == 384);
    assert!(offset_of!(Locks<Native>, reader) == 128);
    assert!(offset_of!(RingControl<Native>, user) == 640);
    assert!(size_of::<Line<[<Native as Platform>::U64; 8]>>() == 128);
    assert!(CONTROL_SIZE == 896);
    assert!(align_of::<RingControl<Native>>() == 128);
    assert!(offset_of!(SegmentHeader, rings) == 32);
    assert!(HEADER_SIZE == 256);
    assert!(MIN_CAPACITY.is_power_of_two() && MIN_CAPACITY >= 4 * crate::record::ALIGN);
};

impl SegmentHeader {
    /// Computes the layout of a segment with rings of the given capacities.
    pub fn plan(capacities: &[usize]) -> crate::Result<SegmentHeader> {
        use crate::Error::InvalidArgument;
        if capacities.is_empty() || capacities.len() > MAX_RINGS {
            return Err(InvalidArgument("a segment holds one or two rings"));
        }
        let mut rings = [RingDesc {
            control_offset: 0,
            data_offset: 0,
            capacity: 0,
        }; MAX_RINGS];
        let mut at = HEADER_SIZE;
        for (i, &cap) in capacities.iter().enumerate() {
            if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
                return Err(InvalidArgument(
                    "ring capacity must be a power of two between 256 B and 1 GiB",
                ));
            }
            let control = at;
            let data = (control + CONTROL_SIZE).next_multiple_of(PAGE);
            rings[i] = RingDesc {
                control_offset: control as u64,
                data_offset: data as u64,
                capacity: cap as u64,
            };
            at = data + cap;
        }
        Ok(SegmentHeader {
            magic: MAGIC,
            version: LAYOUT_VERSION,
            header_size: HEADER_SIZE as u32,
            total_size: at.next_multiple_of(PAGE) as u64,
            ring_count: capacities.len() as u32,
            user_flags: 0,
            rings,
            user: [0; 8],
        })
    }

    /// Checks a header read from a segment of `mapped_len` bytes. Every field
    /// a later access depends on is checked here, so code that holds a
    /// validated header can index the mapping without further checks.
    pub fn validate(&self, mapped_len: usize) -> crate::Result<()> {
        use crate::Error::{Corrupt, Incompatible};
        if self.magic != MAGIC {
            return Err(Corrupt("bad magic number (not a shmpipe segment)"));
        }
        if self.version != LAYOUT_VERSION {
            return Err(Incompatible("layout version differs"));
        }
        if self.header_size as usize != HEADER_SIZE {
            return Err(Incompatible("header size differs"));
        }
        if self.total_size != mapped_len as u64 {
            return Err(Corrupt("segment size does not match the header"));
        }
        let n = self.ring_count as usize;
        if n == 0 || n > MAX_RINGS {
            return Err(Corrupt("ring count out of range"));
        }
        let mut prev_end = HEADER_SIZE as u64;
        for r in &self.rings[..n] {
            let cap = r.capacity;
            if !cap.is_power_of_two() || !(MIN_CAPACITY as u64..=MAX_CAPACITY as u64).contains(&cap)
            {
                return Err(Corrupt("ring capacity out of range"));
            }
            if r.control_offset < prev_end || r.control_offset % 128 != 0 {
                return Err(Corrupt("ring control block misplaced"));
            }
            let control_end = r
                .control_offset
                .checked_add(CONTROL_SIZE as u64)
                .ok_or(Corrupt("ring control block out of bounds"))?;
            if r.data_offset < control_end || r.data_offset % PAGE as u64 != 0 {
                return Err(Corrupt("ring data area misplaced"));
            }
            let end = r
                .data_offset
                .checked_add(cap)
                .ok_or(Corrupt("ring data out of bounds"))?;
            if end > self.total_size {
                return Err(Corrupt("ring data out of bounds"));
            }
            prev_end = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_validates() {
        let h = SegmentHeader::plan(&[4096, 1 << 20]).unwrap();
        h.validate(h.total_size as usize).unwrap();
        assert_eq!(h.rings[0].data_offset % PAGE as u64, 0);
        assert!(h.rings[1].control_offset >= h.rings[0].data_offset + 4096);
    }

    #[test]
    fn rejects_nonsense() {
        assert!(SegmentHeader::plan(&[1000]).is_err());
        assert!(SegmentHeader::plan(&[128]).is_err());
        assert!(SegmentHeader::plan(&[]).is_err());
        let good = SegmentHeader::plan(&[4096]).unwrap();
        let len = good.total_size as usize;
        let mut h = good;
        h.magic ^= 1;
        assert!(h.validate(len).is_err());
        let mut h = good;
        h.rings[0].capacity = 1 << 40;
        assert!(h.validate(len).is_err());
        let mut h = good;
        h.rings[0].data_offset = u64::MAX - 10;
        assert!(h.validate(len).is_err());
        let mut h = good;
        h.ring_count = 3;
        assert!(h.validate(len).is_err());
        assert!(good.validate(len + 4096).is_err());
    }
}
