//! The ring: a single-producer single-consumer queue of variable-length
//! records in a power-of-two byte buffer.
//!
//! # Positions
//!
//! `tail` (producer) and `head` (consumer) are byte positions that only grow;
//! the index of a position is `pos & (capacity - 1)`. The ring is empty when
//! `head == tail` and holds `tail - head <= capacity` bytes of records. Every
//! record starts on a 64-byte boundary and never wraps (a `PAD` record fills
//! the end of the buffer instead), so a reservation is one contiguous slice.
//!
//! # Memory ordering
//!
//! * The producer writes a record's payload and header with plain stores, then
//!   publishes it with `tail.store(Release)`. The consumer loads `tail` with
//!   `Acquire`, so everything written before the publication is visible
//!   before it reads the record.
//! * The consumer reads a record, then frees it with `head.store(Release)`.
//!   The producer loads `head` with `Acquire` before it overwrites the freed
//!   bytes, so the consumer's reads happen before the producer's new writes.
//! * Each side caches the other's index and reloads it only when the cached
//!   value says "full" or "empty": on the fast path a side touches only its
//!   own cache line, and there is no read-modify-write at all.
//! * Wake-ups go through [`Event`](crate::wait::Event)s after publication.
//!
//! # Hostile memory
//!
//! The peer can write anything anywhere in the segment. Each side therefore
//! keeps its own position in process memory and treats the shared copy as an
//! output (except when it deliberately takes over the shared state, in
//! [`Producer::resync`] / [`Consumer::resync`], which validate it). Every value
//! read from the other side (`head`, `tail`, a record header) is checked
//! against the invariants above before it is used to compute an index; a
//! violation is [`Error::Corrupt`]. Indices are always masked and lengths
//! checked against the buffer end, so no access can leave the data area. The
//! payload bytes themselves are opaque: garbage in, garbage out.

use crate::layout::{ConsumerState, ProducerState, RingControl, MAX_CAPACITY, MIN_CAPACITY};
use crate::record::{
    max_payload_in, payload_offset, record_size, Header, ALIGN, FLAG_ABORT, FLAG_PAD, HEADER_LEN,
};
use crate::sync::{Atomic64, Platform};
use crate::{Error, Result};
use core::ptr::NonNull;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// The memory a ring runs on: its control block and its data area.
///
/// # Safety
///
/// Implementors guarantee that `capacity()` is a constant power of two in
/// `MIN_CAPACITY..=MAX_CAPACITY`, that `write` and `read` access exactly the
/// bytes `at..at + len` of a data area of `capacity()` bytes that stays valid
/// as long as `self`, and that `data_ptr`, when it returns `Some`, points to
/// that data area.
pub unsafe trait RingStorage {
    /// The atomics and futex the ring uses.
    type P: Platform;

    /// The ring's control block.
    fn control(&self) -> &RingControl<Self::P>;

    /// Size of the data area.
    fn capacity(&self) -> usize;

    /// Copies `src` to `at..at + src.len()` of the data area.
    ///
    /// # Safety
    ///
    /// `at + src.len() <= capacity()`, and by the ring protocol no other
    /// thread of this process accesses those bytes meanwhile.
    unsafe fn write(&self, at: usize, src: &[u8]);

    /// Copies `at..at + dst.len()` of the data area into `dst`.
    ///
    /// # Safety
    ///
    /// `at + dst.len() <= capacity()`, and by the ring protocol no other
    /// thread of this process writes those bytes meanwhile.
    unsafe fn read(&self, at: usize, dst: &mut [u8]);

    /// Direct access to the data area, for zero-copy reservations and reads.
    /// `None` where the storage tracks every access (loom).
    fn data_ptr(&self) -> Option<NonNull<u8>> {
        None
    }
}

/// A storage whose [`RingStorage::data_ptr`] always returns `Some`: zero-copy
/// access is available.
///
/// # Safety
///
/// `data_ptr()` must never return `None`.
pub unsafe trait DirectStorage: RingStorage {}

// SAFETY: forwards every method to `T`, which upholds the contract.
unsafe impl<T: RingStorage + ?Sized> RingStorage for &T {
    type P = T::P;
    fn control(&self) -> &RingControl<T::P> {
        (**self).control()
    }
    fn capacity(&self) -> usize {
        (**self).capacity()
    }
    unsafe fn write(&self, at: usize, src: &[u8]) {
        // SAFETY: the caller upholds `T::write`'s contract.
        unsafe { (**self).write(at, src) }
    }
    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        // SAFETY: the caller upholds `T::read`'s contract.
        unsafe { (**self).read(at, dst) }
    }
    fn data_ptr(&self) -> Option<NonNull<u8>> {
        (**self).data_ptr()
    }
}
// SAFETY: forwards to `T`.
unsafe impl<T: DirectStorage + ?Sized> DirectStorage for &T {}

// SAFETY: forwards every method to `T`, which upholds the contract.
unsafe impl<T: RingStorage + ?Sized> RingStorage for std::sync::Arc<T> {
    type P = T::P;
    fn control(&self) -> &RingControl<T::P> {
        (**self).control()
    }
    fn capacity(&self) -> usize {
        (**self).capacity()
    }
    unsafe fn write(&self, at: usize, src: &[u8]) {
        // SAFETY: the caller upholds `T::write`'s contract.
        unsafe { (**self).write(at, src) }
    }
    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        // SAFETY: the caller upholds `T::read`'s contract.
        unsafe { (**self).read(at, dst) }
    }
    fn data_ptr(&self) -> Option<NonNull<u8>> {
        (**self).data_ptr()
    }
}
// SAFETY: forwards to `T`.
unsafe impl<T: DirectStorage + ?Sized> DirectStorage for std::sync::Arc<T> {}

fn checked_capacity<S: RingStorage>(s: &S) -> Result<u64> {
    let cap = s.capacity();
    if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
        return Err(Error::InvalidArgument("ring capacity out of range"));
    }
    Ok(cap as u64)
}

/// The ring invariant between a consumer position and a producer position.
#[inline]
fn check_span(head: u64, tail: u64, cap: u64) -> Result<()> {
    if head % ALIGN as u64 != 0 || tail % ALIGN as u64 != 0 {
        return Err(Error::Corrupt("ring position not 64-byte aligned"));
    }
    // Positions must also leave room to grow by a whole ring: a peer that
    // plants a position near u64::MAX must not make our additions overflow.
    match (tail.checked_sub(head), tail.checked_add(2 * cap)) {
        (Some(used), Some(_)) if used <= cap => Ok(()),
        _ => Err(Error::Corrupt("ring positions out of range")),
    }
}

fn read_header<S: RingStorage>(s: &S, at: usize) -> Result<Header> {
    let mut b = [0u8; HEADER_LEN];
    // SAFETY: `at` is a masked, 64-aligned index and capacity >= 256, so
    // `at + 16 <= capacity`. The header belongs to a published record, which
    // the producer does not write again until the consumer frees it.
    unsafe { s.read(at, &mut b) };
    Header::decode(&b).ok_or(Error::Corrupt("unknown record flags"))
}

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
    pub fn resync(&mut self) -> Result<()> {
        let st = self.state();
        let tail = st.tail.load(Acquire);
        let written = st.written.load(Relaxed);
        let open = st.open.load(Relaxed);
        let head = self.storage.control().consumer.0.head.load(Acquire);
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
        if pad > 0 {
            let pad = Header {
                len: 0,
                flags: FLAG_PAD,
                remaining: 0,
            };
            let pad_at = (p.tail & (p.cap - 1)) as usize;
            // SAFETY: the pad header sits at a 64-aligned index inside the
            // reserved span.
            unsafe { s.write(pad_at, &pad.encode()) };
        }
        let h = Header {
            len: len as u32,
            flags,
            remaining,
        };
        // SAFETY: `at` is the 64-aligned start of the reserved record.
        unsafe { s.write(at, &h.encode()) };
        p.tail += pad + record_size(len) as u64;
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

/// The result of [`Consumer::read_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRead {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The message is complete: its last byte was copied (or it was empty).
    /// When `false` and `len == buf.len()`, the buffer was too small
    /// (Windows' MoreData); when `false` and `len < buf.len()`, the rest of
    /// the message has not been published yet, or it never will be (its
    /// writer died or gave up): the next read then fails with
    /// [`Error::MessageCut`].
    ///
    /// A message that was cut is never reported with `end == true`.
    pub end: bool,
}

/// A decoded record at the consumer's head.
#[derive(Debug, Clone, Copy)]
struct Rec {
    h: Header,
    /// Index of the payload's first byte.
    payload: usize,
}

/// The consuming half of a ring.
///
/// Exactly one `Consumer` may consume from a ring at a time: the safe way to
/// get one is [`HeapRing::split`](crate::HeapRing::split);
/// [`Consumer::new`] is `unsafe`, with the contract stated there. Several
/// consumers of one ring take turns under the reader lock
/// ([`Receiver`](crate::Receiver)).
///
/// ```compile_fail,E0133
/// use shmpipe_engine::{Consumer, HeapRing};
/// let (_tx, rx) = HeapRing::new(4096)?.split();
/// // A second consumer could free a record under the first one's
/// // `ReadGrant::as_slice` while the producer overwrites it.
/// let rx2 = Consumer::new(std::sync::Arc::clone(rx.storage()))?;
/// # Ok::<(), shmpipe_engine::Error>(())
/// ```
pub struct Consumer<S: RingStorage> {
    storage: S,
    cap: u64,
    head: u64,
    offset: u64,
    consumed: u64,
    continues: bool,
    tail_cache: u64,
    dirty: bool,
}

impl<S: RingStorage> core::fmt::Debug for Consumer<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.cap)
            .field("head", &self.head)
            .field("consumed", &self.consumed)
            .finish_non_exhaustive()
    }
}

impl<S: RingStorage> Consumer<S> {
    /// Takes the consumer role of the ring in `storage`, continuing from the
    /// shared state (validated). See [`Producer::new`] for an example; a
    /// heap ring's consumer comes from
    /// [`HeapRing::split`](crate::HeapRing::split), safely.
    ///
    /// # Safety
    ///
    /// While the returned consumer lives, no other `Consumer` of the same
    /// ring in this process may be used at the same time as it: every call
    /// on one, and every [`ReadGrant`] one hands out, must be over before
    /// the other is used (serialised by the reader lock, as
    /// [`Receiver`](crate::Receiver) does, or one at a time on one thread).
    /// A second consumer used meanwhile could free the record under a
    /// [`ReadGrant::as_slice`], and the producer would overwrite bytes that
    /// slice still shows.
    pub unsafe fn new(storage: S) -> Result<Self> {
        // SAFETY: forwarded to our caller.
        let mut c = unsafe { Self::new_unsynced(storage)? };
        c.resync()?;
        Ok(c)
    }

    /// Takes the consumer role without reading the shared state yet (see
    /// [`Producer::new_unsynced`]; consumers sharing the role resync under
    /// the reader lock).
    ///
    /// # Safety
    ///
    /// As for [`Consumer::new`].
    pub unsafe fn new_unsynced(storage: S) -> Result<Self> {
        let cap = checked_capacity(&storage)?;
        Ok(Consumer {
            storage,
            cap,
            head: 0,
            offset: 0,
            consumed: 0,
            continues: false,
            tail_cache: 0,
            dirty: false,
        })
    }

    fn state(&self) -> &ConsumerState<S::P> {
        &self.storage.control().consumer.0
    }

    /// Reloads the consumer state from shared memory (after another consumer
    /// of the same end may have read: see the reader lock) and checks it.
    pub fn resync(&mut self) -> Result<()> {
        let st = self.state();
        let head = st.head.load(Acquire);
        let offset = st.head_offset.load(Relaxed);
        let consumed = st.consumed.load(Relaxed);
        let continues = st.continues.load(Relaxed);
        let tail = self.storage.control().producer.0.tail.load(Acquire);
        check_span(head, tail, self.cap)?;
        if offset > u64::from(u32::MAX) || continues > 1 {
            return Err(Error::Corrupt("consumer state out of range"));
        }
        self.head = head;
        self.offset = offset;
        self.consumed = consumed;
        self.continues = continues == 1;
        self.tail_cache = tail;
        self.dirty = false;
        Ok(())
    }

    /// The storage this consumer reads from.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Payload bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Payload bytes published and not yet consumed: every unread byte,
    /// including the published part of a write still in progress.
    pub fn available(&self) -> u64 {
        let written = self.storage.control().producer.0.written.load(Acquire);
        written.saturating_sub(self.consumed)
    }

    /// `true` when a published record (of any kind) is waiting. Cheap: reads
    /// the producer's tail only.
    #[inline]
    pub fn has_records(&self) -> bool {
        self.storage.control().producer.0.tail.load(Acquire) != self.head
    }

    /// The record at `pos`, or `None` if nothing is published there. Checks
    /// it against the ring invariants.
    fn record_at(&mut self, pos: u64) -> Result<Option<Rec>> {
        if pos == self.tail_cache {
            let tail = self.storage.control().producer.0.tail.load(Acquire);
            if tail < self.tail_cache {
                return Err(Error::Corrupt("producer tail moved backwards"));
            }
            check_span(self.head, tail, self.cap)?;
            self.tail_cache = tail;
            if pos == tail {
                return Ok(None);
            }
        }
        let idx = (pos & (self.cap - 1)) as usize;
        let h = read_header(&self.storage, idx)?;
        let size = if h.flags & FLAG_PAD != 0 {
            if idx == 0 {
                return Err(Error::Corrupt("padding record at the buffer start"));
            }
            self.cap as usize - idx
        } else {
            if h.flags & FLAG_ABORT != 0 && h.len != 0 {
                return Err(Error::Corrupt("abort record with a payload"));
            }
            let size = record_size(h.len as usize);
            if idx + size > self.cap as usize {
                return Err(Error::Corrupt("record crosses the buffer end"));
            }
            size
        };
        if pos + size as u64 > self.tail_cache {
            return Err(Error::Corrupt("record extends past the tail"));
        }
        Ok(Some(Rec {
            h,
            payload: idx + payload_offset(h.len as usize),
        }))
    }

    /// The record at the head, skipping (and freeing) padding.
    #[inline]
    fn head_record(&mut self) -> Result<Option<Rec>> {
        loop {
            let Some(r) = self.record_at(self.head)? else {
                return Ok(None);
            };
            if r.h.flags & FLAG_PAD != 0 {
                self.head += self.cap - (self.head & (self.cap - 1));
                self.offset = 0;
                self.dirty = true;
                continue;
            }
            if self.offset > u64::from(r.h.len) {
                return Err(Error::Corrupt("read offset past the record end"));
            }
            return Ok(Some(r));
        }
    }

    /// Frees the head record.
    #[inline]
    fn pop(&mut self, r: &Rec) {
        self.head += record_size(r.h.len as usize) as u64;
        self.offset = 0;
        self.continues = r.h.remaining > 0 && r.h.flags & FLAG_ABORT == 0;
        self.dirty = true;
    }

    #[inline]
    fn copy_out(&mut self, r: &Rec, dst: &mut [u8]) {
        let at = r.payload + self.offset as usize;
        // SAFETY: `record_at` checked `payload + len <= capacity` (the record
        // lies inside the buffer) and `offset + dst.len() <= len` holds at
        // every call site; the record is published and not yet freed, so the
        // producer does not write it.
        unsafe { self.storage.read(at, dst) };
        self.offset += dst.len() as u64;
        self.consumed = self.consumed.wrapping_add(dst.len() as u64);
        self.dirty = true;
    }

    /// Publishes the consumer's progress to the producer and wakes it if it
    /// sleeps. The read methods do this themselves.
    #[inline]
    pub fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let st = &self.storage.control().consumer.0;
        st.head_offset.store(self.offset, Relaxed);
        st.consumed.store(self.consumed, Relaxed);
        st.continues.store(u64::from(self.continues), Relaxed);
        st.head.store(self.head, Release);
        self.storage.control().events.0.writable.notify();
    }

    /// Reads in byte-stream mode: copies from the head across record and
    /// write boundaries, up to `buf.len()` bytes.
    ///
    /// * `Ok(None)`: nothing is queued.
    /// * A zero-length record (an empty message) at the head, with nothing
    ///   copied yet, is consumed and reported as `Ok(Some(0))`; after copied
    ///   bytes the copy stops before it, so each empty message yields its own
    ///   0-byte read.
    /// * An empty `buf` returns `Ok(Some(0))` when data is queued and consumes
    ///   nothing (except an empty message at the head).
    /// * `ABORT` markers are skipped.
    pub fn read_stream(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        let mut copied = 0;
        let mut found = false;
        while let Some(r) = self.head_record()? {
            if r.h.flags & FLAG_ABORT != 0 {
                self.pop(&r);
                continue;
            }
            found = true;
            if r.h.len == 0 {
                if copied == 0 {
                    self.pop(&r);
                }
                break;
            }
            let n = (u64::from(r.h.len) - self.offset).min((buf.len() - copied) as u64) as usize;
            if n == 0 {
                break;
            }
            self.copy_out(&r, &mut buf[copied..copied + n]);
            copied += n;
            if self.offset == u64::from(r.h.len) {
                self.pop(&r);
            }
        }
        self.publish();
        Ok(found.then_some(copied))
    }

    /// Reads in message mode: copies from the head message only (across its
    /// fragments), up to `buf.len()` bytes. `Ok(None)`: nothing is queued.
    /// See [`MessageRead`] for how to tell a complete message, a message too
    /// large for `buf`, and a message whose rest is still being written.
    ///
    /// A message whose writer died or gave up part-way (an `ABORT` marker
    /// follows its last published fragment) is never reported complete: the
    /// read that copies its last bytes returns them with `end == false` and
    /// leaves the marker, and the next read consumes the marker and fails
    /// with [`Error::MessageCut`]. So a caller that reads on while
    /// `end == false` gets the error, never the next message.
    pub fn read_message(&mut self, buf: &mut [u8]) -> Result<Option<MessageRead>> {
        self.read_message_part(buf, false)
    }

    /// [`Consumer::read_message`] for a caller that already holds bytes of
    /// the head message from earlier calls of the same operation (a
    /// blocking read waiting for the rest): a cut is reported as
    /// [`Error::MessageCut`] but its marker is left in place, so that the
    /// caller can return what it has and the *next* read reports the cut.
    ///
    /// ```
    /// use shmpipe_engine::Error;
    /// use std::time::Instant;
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// // A write larger than the ring gives up: part of it was published.
    /// let big = vec![7u8; 3 * 4096];
    /// assert!(matches!(tx.write_until(&big, Some(Instant::now())), Err(Error::TimedOut)));
    /// let mut buf = vec![0u8; big.len()];
    /// let part = rx.batch(|c| c.read_message(&mut buf))?.unwrap();
    /// assert!(!part.end && part.len > 0);
    /// tx.write(b"next")?; // ends the cut message with an abort marker first
    /// // The rest never comes; the marker stays for the next read...
    /// let more = rx.batch(|c| c.read_message_continued(&mut buf[part.len..]));
    /// assert!(matches!(more, Err(Error::MessageCut)));
    /// // ...which reports the cut, and the read after it the next message.
    /// assert!(matches!(rx.batch(|c| c.read_message(&mut buf)), Err(Error::MessageCut)));
    /// let m = rx.batch(|c| c.read_message(&mut buf))?.unwrap();
    /// assert_eq!((&buf[..m.len], m.end), (&b"next"[..], true));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn read_message_continued(&mut self, buf: &mut [u8]) -> Result<Option<MessageRead>> {
        self.read_message_part(buf, true)
    }

    fn read_message_part(
        &mut self,
        buf: &mut [u8],
        continued: bool,
    ) -> Result<Option<MessageRead>> {
        let mut copied = 0;
        let mut found = false;
        let result = loop {
            let Some(r) = self.head_record()? else {
                break found.then_some(MessageRead {
                    len: copied,
                    end: false,
                });
            };
            if r.h.flags & FLAG_ABORT != 0 {
                if !self.continues {
                    // Ends a write that had no bytes published: nothing
                    // was cut for the reader.
                    self.pop(&r);
                    continue;
                }
                // The writer of the head message died or gave up: its rest
                // never comes. The bytes copied now are returned as an
                // unfinished message, and the marker stays for the next
                // read to report the cut.
                if copied > 0 {
                    break Some(MessageRead {
                        len: copied,
                        end: false,
                    });
                }
                if !continued {
                    self.pop(&r);
                }
                self.publish();
                return Err(Error::MessageCut);
            }
            found = true;
            let left = u64::from(r.h.len) - self.offset;
            let n = left.min((buf.len() - copied) as u64) as usize;
            if n > 0 {
                self.copy_out(&r, &mut buf[copied..copied + n]);
                copied += n;
            }
            if self.offset == u64::from(r.h.len) {
                self.pop(&r);
                if r.h.remaining == 0 {
                    break Some(MessageRead {
                        len: copied,
                        end: true,
                    });
                }
            }
            if copied == buf.len() {
                break Some(MessageRead {
                    len: copied,
                    end: false,
                });
            }
        };
        self.publish();
        Ok(result)
    }

    /// Copies queued bytes into `buf` without consuming them, in byte-stream
    /// order (across records, stopping before an empty message that follows
    /// copied bytes). Returns the bytes copied; 0 when nothing is queued.
    pub fn peek_stream(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.peek(buf, false).map(|(n, _)| n)
    }

    /// Copies the head message (or as much of it as is published and fits)
    /// into `buf` without consuming it. Returns `(copied, left_in_message)`,
    /// where `left_in_message` counts the message's unread bytes after the
    /// copied ones, including fragments not yet published. `(0, 0)` when
    /// nothing is queued.
    pub fn peek_message(&mut self, buf: &mut [u8]) -> Result<(usize, u64)> {
        self.peek(buf, true)
    }

    fn peek(&mut self, buf: &mut [u8], one_message: bool) -> Result<(usize, u64)> {
        // Padding at the head is freed first, so the walk below starts at a
        // real record (this changes nothing the producer can observe but
        // space).
        let Some(first) = self.head_record()? else {
            self.publish();
            return Ok((0, 0));
        };
        // `remaining` is the peer's word: never let it overflow.
        let left_in_message = (u64::from(first.h.len) - self.offset)
            .saturating_add(if one_message { first.h.remaining } else { 0 });
        let mut pos = self.head;
        let mut offset = self.offset;
        let mut copied = 0usize;
        // Mid-message (the last consumed record said more was coming), an
        // ABORT at the head ends the head message.
        let mut in_message = self.continues;
        while copied < buf.len() {
            let Some(r) = self.record_at(pos)? else { break };
            let size = if r.h.flags & FLAG_PAD != 0 {
                self.cap - (pos & (self.cap - 1))
            } else {
                record_size(r.h.len as usize) as u64
            };
            if r.h.flags == 0 {
                if r.h.len == 0 {
                    break;
                }
                // The header was read again here: a peer may have changed it
                // since `head_record` checked the offset against it.
                let left = u64::from(r.h.len)
                    .checked_sub(offset)
                    .ok_or(Error::Corrupt("read offset past the record end"))?;
                let n = left.min((buf.len() - copied) as u64) as usize;
                // SAFETY: as in `copy_out`: the record lies inside the buffer
                // and `offset + n <= len`; published records are not written.
                unsafe {
                    self.storage
                        .read(r.payload + offset as usize, &mut buf[copied..copied + n])
                };
                copied += n;
                in_message = r.h.remaining > 0;
                if one_message && !in_message {
                    break;
                }
            } else if r.h.flags & FLAG_ABORT != 0 && one_message && in_message {
                break;
            }
            pos += size;
            offset = 0;
        }
        self.publish();
        let left = if one_message {
            left_in_message.saturating_sub(copied as u64)
        } else {
            0
        };
        Ok((copied, left))
    }

    /// Discards everything queued (the pipe layer's `disconnect`).
    pub fn discard_all(&mut self) -> Result<()> {
        while let Some(r) = self.head_record()? {
            let rest = u64::from(r.h.len) - self.offset;
            self.consumed = self.consumed.wrapping_add(rest);
            self.pop(&r);
        }
        self.publish();
        Ok(())
    }
}

/// A zero-copy view of the unconsumed payload of the head record.
pub struct ReadGrant<'a, S: DirectStorage> {
    consumer: &'a mut Consumer<S>,
    rec: Rec,
}

impl<S: DirectStorage> Consumer<S> {
    /// Borrows the unconsumed payload of the head record in place (zero
    /// copy), skipping markers. `Ok(None)`: nothing is queued. Release what
    /// you used with [`ReadGrant::release`].
    pub fn read_record(&mut self) -> Result<Option<ReadGrant<'_, S>>> {
        loop {
            let Some(r) = self.head_record()? else {
                self.publish();
                return Ok(None);
            };
            if r.h.flags & FLAG_ABORT != 0 {
                self.pop(&r);
                continue;
            }
            return Ok(Some(ReadGrant {
                consumer: self,
                rec: r,
            }));
        }
    }
}

impl<S: DirectStorage> ReadGrant<'_, S> {
    /// The unconsumed payload bytes of the record.
    ///
    /// The slice is memory the peer process can also write: a correct
    /// producer never touches a published record until it is released, but
    /// a hostile one can change the bytes while the slice lives. Every
    /// length and index the engine uses was validated before the slice was
    /// made, so that can change the payload's *values*, never what memory
    /// is accessed; treat the payload as untrusted input, and copy it first
    /// (or use the copying reads) if it must not change while you look.
    pub fn as_slice(&self) -> &[u8] {
        let c = &*self.consumer;
        let at = self.rec.payload + c.offset as usize;
        let len = (u64::from(self.rec.h.len) - c.offset) as usize;
        let base = c
            .storage
            .data_ptr()
            .expect("DirectStorage has a data pointer");
        // SAFETY: the record lies inside the buffer (checked by `record_at`)
        // and is published and unfreed, so the producer does not write it
        // while this shared borrow lives.
        unsafe { core::slice::from_raw_parts(base.as_ptr().add(at), len) }
    }

    /// Bytes of the same write still to come in later records.
    pub fn remaining_in_write(&self) -> u64 {
        self.rec.h.remaining
    }

    /// Consumes the first `n` bytes of [`ReadGrant::as_slice`] (all of them
    /// frees the record) and publishes the progress.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the slice length.
    pub fn release(self, n: usize) {
        let c = self.consumer;
        let left = u64::from(self.rec.h.len) - c.offset;
        assert!(n as u64 <= left, "ReadGrant::release: past the record end");
        c.offset += n as u64;
        c.consumed = c.consumed.wrapping_add(n as u64);
        c.dirty = true;
        if c.offset == u64::from(self.rec.h.len) {
            c.pop(&self.rec);
        }
        c.publish();
    }
}

#[cfg(test)]
mod tests;
