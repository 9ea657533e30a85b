//! The producing side of a ring: [`Producer`] reserves a record at the
//! tail, and its [`Grant`] fills and publishes it.
//!
//! The producer owns `tail`, `written` and `open` (the `remaining` of the
//! last published record) and caches the consumer's `head`, reloading it
//! (and checking it against the ring invariant) only when the cache says
//! there is too little space. A record never wraps: when it does not fit
//! before the buffer end, a `PAD` record fills the end and the record goes
//! at index 0. A record is published by its commit word (after zeroing the
//! next slot's), then its padding's, then `open`, `tail` (Release) and
//! `written`; see the [ring](super) documentation for the orderings.

use super::{
    check_lagging_span, check_span, checked_capacity, committed_header, DirectStorage, RingStorage,
};
use crate::layout::ProducerState;
use crate::record::{
    commit_word, max_payload_in, payload_offset, record_size, ALIGN, FLAG_ABORT, FLAG_PAD,
};
use crate::sync::Atomic64;
use crate::{Error, Result};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// The producing half of a ring.
///
/// Exactly one `Producer` may publish into a ring at a time, and the type
/// system holds safe code to that: the safe way to get one is
/// [`HeapRing::split`](crate::HeapRing::split), which hands out the ring's
/// only producer and consumer; [`Producer::new`] (for a ring in shared
/// memory, or one whose producer is handed over) is `unsafe`, with the
/// contract stated there. Several producers of one ring take turns under the
/// writer lock ([`Sender`](crate::Sender)).
///
/// Two producers of one ring cannot be made from safe code:
///
/// ```compile_fail,E0133
/// use shmpipe_engine::{HeapRing, Producer};
/// let (tx, _rx) = HeapRing::new(4096)?.split();
/// // Two producers would reserve the same bytes: aliased `&mut [u8]`s.
/// let tx2 = Producer::new(std::sync::Arc::clone(tx.storage()))?;
/// # Ok::<(), shmpipe_engine::Error>(())
/// ```
///
/// and the ring is split once:
///
/// ```compile_fail,E0382
/// use shmpipe_engine::HeapRing;
/// let ring = HeapRing::new(4096)?;
/// let (tx, rx) = ring.split();
/// let (tx2, rx2) = ring.split();
/// # Ok::<(), shmpipe_engine::Error>(())
/// ```
pub struct Producer<S: RingStorage> {
    storage: S,
    cap: u64,
    tail: u64,
    written: u64,
    open: u64,
    head_cache: u64,
}

impl<S: RingStorage> core::fmt::Debug for Producer<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.cap)
            .field("tail", &self.tail)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<S: RingStorage> Producer<S> {
    /// Takes the producer role of the ring in `storage`, continuing from the
    /// shared state (validated). For the ring's only producer, or under the
    /// writer lock: read while another producer publishes and the consumer
    /// consumes, the two positions can be torn and refused as `Corrupt`
    /// (shared producers use [`Producer::new_unsynced`]). A heap ring's
    /// producer comes from [`HeapRing::split`](crate::HeapRing::split),
    /// safely.
    ///
    /// ```
    /// use shmpipe_engine::{Consumer, Producer, Segment};
    /// let (seg, _fd) = Segment::create(&[4096], 0, [0; 8])?;
    /// // SAFETY: the only producer and the only consumer of this ring in
    /// // this process.
    /// let mut tx = unsafe { Producer::new(seg.ring(0)?)? };
    /// let mut rx = unsafe { Consumer::new(seg.ring(0)?)? };
    /// assert!(tx.try_push(b"hi", 0)?);
    /// assert_eq!(rx.read_stream(&mut [0u8; 8])?, Some(2));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    ///
    /// # Safety
    ///
    /// While the returned producer lives, no other `Producer` of the same
    /// ring in this process may be used at the same time as it: every call
    /// on one, and every [`Grant`] one hands out, must be over before the
    /// other is used (serialised by the writer lock, as
    /// [`Sender`](crate::Sender) does, or one at a time on one thread).
    /// Producers know nothing of each other's reservations: two used at
    /// once reserve the same bytes, so their [`Grant::as_mut_slice`]s alias
    /// and their copies race. (A producer in another process is outside
    /// this process's memory model; the ring treats what it writes as
    /// hostile, see the module documentation.)
    pub unsafe fn new(storage: S) -> Result<Self> {
        // SAFETY: forwarded to our caller.
        let mut p = unsafe { Self::new_unsynced(storage)? };
        p.resync()?;
        Ok(p)
    }

    /// Takes the producer role without reading the shared state yet: for
    /// producers that share the role and always [`Producer::resync`] under
    /// the writer lock before use (reading it unlocked while another
    /// producer publishes and the consumer consumes can see a torn pair of
    /// positions).
    ///
    /// # Safety
    ///
    /// As for [`Producer::new`].
    pub unsafe fn new_unsynced(storage: S) -> Result<Self> {
        let cap = checked_capacity(&storage)?;
        Ok(Producer {
            storage,
            cap,
            tail: 0,
            written: 0,
            open: 0,
            head_cache: 0,
        })
    }

    fn state(&self) -> &ProducerState<S::P> {
        &self.storage.control().producer.0
    }

    /// Reloads the producer state from shared memory (after another producer
    /// may have published: see the writer lock) and checks it.
    ///
    /// A producer that died between committing a record and storing `tail`
    /// left the record committed past `tail` (with the padding before it,
    /// at most two records: one publication): they are counted here as
    /// that producer would have counted them, so they are neither
    /// overwritten nor lost.
    pub fn resync(&mut self) -> Result<()> {
        let st = self.state();
        let mut tail = st.tail.load(Acquire);
        let mut written = st.written.load(Relaxed);
        let mut open = st.open.load(Relaxed);
        let head = self.storage.control().consumer.0.head.load(Acquire);
        check_lagging_span(head, tail, self.cap)?;
        for _ in 0..2 {
            let Some(h) = committed_header(&self.storage, self.cap, tail)? else {
                break;
            };
            let idx = tail & (self.cap - 1);
            let size = if h.flags & FLAG_PAD != 0 {
                if idx == 0 {
                    return Err(Error::Corrupt("padding record at the buffer start"));
                }
                self.cap - idx
            } else {
                let size = record_size(h.len as usize) as u64;
                if idx + size > self.cap {
                    return Err(Error::Corrupt("record crosses the buffer end"));
                }
                written = written.wrapping_add(u64::from(h.len));
                open = if h.flags & FLAG_ABORT != 0 {
                    0
                } else {
                    h.remaining
                };
                size
            };
            tail += size;
            check_span(head.min(tail), tail, self.cap)?;
        }
        check_span(head, tail, self.cap)?;
        self.tail = tail;
        self.written = written;
        self.open = open;
        self.head_cache = head;
        Ok(())
    }

    /// The storage this producer writes to.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Size of the data area.
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// The largest payload [`Producer::try_reserve`] can ever satisfy: a
    /// record of at most half the ring always fits once the ring drains,
    /// wherever the tail stands.
    pub fn max_record(&self) -> usize {
        max_payload_in(self.cap as usize / 2)
    }

    /// Payload bytes published by this ring's producers so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Payload bytes the consumer has consumed so far (shared; may lag).
    pub fn consumed(&self) -> u64 {
        self.storage.control().consumer.0.consumed.load(Acquire)
    }

    /// `remaining` of the last published record: non-zero while a write is
    /// half published.
    pub fn open_write(&self) -> u64 {
        self.open
    }

    /// Free bytes, reloading the consumer's head if the cached one says less
    /// than `need`.
    #[inline]
    fn free(&mut self, need: u64) -> Result<u64> {
        let used = self.tail - self.head_cache;
        if self.cap - used >= need {
            return Ok(self.cap - used);
        }
        let head = self.storage.control().consumer.0.head.load(Acquire);
        if head < self.head_cache {
            return Err(Error::Corrupt("consumer head moved backwards"));
        }
        check_span(head, self.tail, self.cap)?;
        self.head_cache = head;
        Ok(self.cap - (self.tail - head))
    }

    /// Reserves a record of exactly `len` payload bytes. `Ok(None)`: not
    /// enough free space now (the consumer frees it by reading).
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<Option<Grant<'_, S>>> {
        if len > self.max_record() {
            return Err(Error::TooLarge {
                len,
                max: self.max_record(),
            });
        }
        let size = record_size(len) as u64;
        let idx = self.tail & (self.cap - 1);
        let contiguous = self.cap - idx;
        let pad = if size <= contiguous { 0 } else { contiguous };
        if self.free(pad + size)? < pad + size {
            return Ok(None);
        }
        Ok(Some(Grant {
            producer: self,
            pad,
            len,
        }))
    }

    /// Reserves a record of between 1 and `max` payload bytes (0 when `max` is
    /// 0), as large as the free space allows, for streaming a write in
    /// fragments. Returns `Ok(None)` when less than `min(max, capacity / 8)`
    /// bytes fit, so that a slow reader does not make a writer cut its data
    /// into tiny fragments.
    pub fn try_reserve_up_to(&mut self, max: usize) -> Result<Option<Grant<'_, S>>> {
        let max = max.min(self.max_record());
        let want = (record_size(max) as u64)
            .min(self.cap / 8)
            .max(ALIGN as u64);
        let idx = self.tail & (self.cap - 1);
        let contiguous = self.cap - idx;
        // Enough to refresh the cached head whenever it could change the
        // answer: a full-size record here, or the padding plus a minimal one.
        let free = self.free((record_size(max) as u64).max(self.space_needed(max, false)))?;
        // Either the record goes at the tail (limited by the buffer end), or
        // after padding, at index 0.
        let here = free.min(contiguous);
        let after_pad = free.saturating_sub(contiguous);
        let (pad, space) = if here >= want || here >= after_pad {
            (0, here)
        } else {
            (contiguous, after_pad)
        };
        if space < want {
            return Ok(None);
        }
        let len = max_payload_in(space as usize).min(max);
        Ok(Some(Grant {
            producer: self,
            pad,
            len,
        }))
    }

    /// The free space (in ring bytes) that [`Producer::try_reserve`]`(len)`
    /// (`exact`) or [`Producer::try_reserve_up_to`]`(len)` needs to succeed
    /// at the current tail: what a blocked writer waits for.
    pub fn space_needed(&self, len: usize, exact: bool) -> u64 {
        let idx = self.tail & (self.cap - 1);
        let contiguous = self.cap - idx;
        let want = if exact {
            record_size(len) as u64
        } else {
            let max = len.min(self.max_record());
            (record_size(max) as u64)
                .min(self.cap / 8)
                .max(ALIGN as u64)
        };
        if want <= contiguous {
            want
        } else {
            contiguous + want
        }
    }

    /// Free space according to the consumer's shared head, without touching
    /// the producer's cache: a read-only readiness check for waiting.
    pub fn free_hint(&self) -> u64 {
        let head = self.storage.control().consumer.0.head.load(Acquire);
        self.cap.saturating_sub(self.tail.saturating_sub(head))
    }

    /// Publishes an `ABORT` record: ends a write whose earlier fragments were
    /// published with `remaining > 0` but whose rest will never come.
    pub fn try_abort_open_write(&mut self) -> Result<bool> {
        if self.open == 0 {
            return Ok(true);
        }
        match self.try_reserve(0)? {
            Some(g) => {
                g.publish(0, FLAG_ABORT);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Wakes a consumer parked on this ring. [`Grant::commit`] does it; call
    /// this after a batch of [`Grant::commit_quiet`]s.
    #[inline]
    pub fn notify(&self) {
        self.storage.control().events.0.readable.notify();
    }

    /// Copies `data` into the ring as one record (`remaining` as in
    /// [`Grant::commit`]). `Ok(false)`: no space now.
    #[inline]
    pub fn try_push(&mut self, data: &[u8], remaining: u64) -> Result<bool> {
        match self.try_reserve(data.len())? {
            Some(mut g) => {
                g.fill(data);
                g.commit(remaining);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// A reserved, not yet published record. Dropping it publishes nothing.
pub struct Grant<'a, S: RingStorage> {
    producer: &'a mut Producer<S>,
    pad: u64,
    len: usize,
}

impl<'a, S: RingStorage> Grant<'a, S> {
    /// Payload length of the reserved record.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a zero-length record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn record_index(&self) -> usize {
        let p = &*self.producer;
        ((p.tail + self.pad) & (p.cap - 1)) as usize
    }

    /// Copies `src` (exactly [`Grant::len`] bytes) into the payload.
    ///
    /// # Panics
    ///
    /// If `src.len() != self.len()`.
    #[inline]
    pub fn fill(&mut self, src: &[u8]) {
        assert_eq!(src.len(), self.len, "Grant::fill: length mismatch");
        let at = self.record_index() + payload_offset(self.len);
        // SAFETY: the record was reserved contiguous: `record_index() +
        // record_size(len) <= capacity`, and payload_offset + len <=
        // record_size. The consumer does not read unpublished bytes.
        unsafe { self.producer.storage.write(at, src) };
    }

    /// Publishes the record and wakes a parked consumer. `remaining` is the
    /// number of payload bytes of the same write that later records will
    /// carry (0: this record completes the write).
    #[inline]
    pub fn commit(self, remaining: u64) {
        self.publish(remaining, 0).notify();
    }

    /// Publishes the record without waking the consumer: call
    /// [`Producer::notify`] after the batch, or the consumer may sleep a park
    /// slice (a few milliseconds) before it sees the records.
    #[inline]
    pub fn commit_quiet(self, remaining: u64) {
        self.publish(remaining, 0);
    }

    #[inline]
    fn publish(self, remaining: u64, flags: u32) -> &'a mut Producer<S> {
        let at = self.record_index();
        let Grant {
            producer: p,
            pad,
            len,
        } = self;
        let s = &p.storage;
        let mask = p.cap - 1;
        let pos = p.tail + pad;
        let end = pos + record_size(len) as u64;
        // SAFETY: `at` is the 64-aligned start of the reserved record, whose
        // 16-byte header lies inside the reserved span.
        unsafe { s.write(at + 8, &remaining.to_le_bytes()) };
        // The consumer looks for the next record at `end`; what the slot
        // holds now may be payload bytes of an earlier lap, which can look
        // like anything, a commit word for `end` included. Zero it before
        // the commit below publishes the way there. Unless the ring is full
        // by the cached head: then the slot holds the header of the oldest
        // unconsumed record (committed one lap back, so never taken for
        // `end`'s), which must not be touched.
        if end - p.head_cache < p.cap {
            // SAFETY: a masked multiple of 64 below the capacity.
            unsafe { s.commit_word((end & mask) as usize) }.store(0, Relaxed);
        }
        // SAFETY: as above.
        unsafe { s.commit_word(at) }.store(commit_word(pos, len as u32, flags), Release);
        if pad > 0 {
            // After the record, so that the padding never leads a reader to
            // an uncommitted record. Release, so that the reader that
            // acquires the padding sees this record's commit word, not an
            // older one for the same position: a producer that died between
            // a record's commit and its padding's leaves one there, and a
            // producer taking over may put a different record at the same
            // place.
            // SAFETY: the pad header sits at a 64-aligned index inside the
            // reserved span.
            unsafe { s.commit_word((p.tail & mask) as usize) }
                .store(commit_word(p.tail, 0, FLAG_PAD), Release);
        }
        p.tail = end;
        // Counters are shared state a peer may have set to anything at
        // resync: wrap rather than overflow.
        p.written = p.written.wrapping_add(len as u64);
        p.open = remaining;
        let st = &s.control().producer.0;
        st.open.store(remaining, Relaxed);
        st.tail.store(p.tail, Release);
        // After `tail`: a writer that dies between the two stores leaves
        // `written` short, never ahead of what is readable, so nobody waits
        // for bytes that will never come.
        st.written.store(p.written, Release);
        p
    }
}

/// Grants over storage with a direct pointer expose the payload as a slice.
impl<S: DirectStorage> Grant<'_, S> {
    /// The payload to fill in place (zero-copy).
    ///
    /// The slice is memory the peer process can also write. A correct peer
    /// never touches an unpublished reservation; a hostile one can change
    /// the bytes under the slice, which cannot make this process access
    /// anything outside the mapping, but means what is read back from the
    /// slice is not necessarily what was written. Use the copying
    /// [`Producer::try_push`] where that matters.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let at = self.record_index() + payload_offset(self.len);
        let base = self
            .producer
            .storage
            .data_ptr()
            .expect("DirectStorage has a data pointer");
        // SAFETY: `at + len <= capacity` (the record was reserved contiguous),
        // the bytes are unpublished so the consumer does not read them, and
        // the grant holds the producer mutably, so no other slice of this
        // producer exists.
        unsafe { core::slice::from_raw_parts_mut(base.as_ptr().add(at), self.len) }
    }
}
