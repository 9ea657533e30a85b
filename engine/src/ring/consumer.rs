//! The consuming side of a ring: [`Consumer`] reads records at the head
//! (copying, in byte-stream or message mode, or in place through a
//! [`ReadGrant`]), peeks, and frees what it read.
//!
//! The consumer owns `head`, `head_offset` (bytes of the head record already
//! read), `consumed` and `continues` (the last consumed record said more of
//! its write was coming). It finds records by their commit words, never
//! reading the producer's `tail` on the way. Every record is checked
//! against the ring invariants before its payload is touched (`record_at`);
//! progress is published by `head` (Release) after the counters, then the
//! producer is woken. A write cut short ends in an
//! `ABORT` marker, which a message read reports as [`Error::MessageCut`].

use super::{
    check_lagging_span, checked_capacity, committed_header, is_committed, DirectStorage,
    RingStorage,
};
use crate::layout::ConsumerState;
use crate::record::{payload_offset, record_size, Header, FLAG_ABORT, FLAG_PAD};
use crate::sync::Atomic64;
use crate::{Error, Result};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

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
    /// shared state (validated). See [`Producer::new`](super::Producer::new)
    /// for an example; a heap ring's consumer comes from
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
    /// [`Producer::new_unsynced`](super::Producer::new_unsynced); consumers
    /// sharing the role resync under the reader lock).
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
        // `tail` lags the commit words: a reader may have consumed past it.
        let tail = self.storage.control().producer.0.tail.load(Acquire);
        check_lagging_span(head, tail, self.cap)?;
        if offset > u64::from(u32::MAX) || continues > 1 {
            return Err(Error::Corrupt("consumer state out of range"));
        }
        self.head = head;
        self.offset = offset;
        self.consumed = consumed;
        self.continues = continues == 1;
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
    /// the commit word at the head only (see [`is_committed`]).
    #[inline]
    pub fn has_records(&self) -> bool {
        is_committed(&self.storage, self.head)
    }

    /// Whether the head is an empty message (a zero-length record that
    /// starts and ends its write; not an abort marker) and no message is
    /// under way: the next read returns it as a message of 0 bytes. It has
    /// the payload position of the write after it, which the pipe layer
    /// must not mistake it for.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.write(&[])?;
    /// tx.write(b"x")?;
    /// assert!(rx.batch(|c| c.head_is_empty_message())?);
    /// rx.batch(|c| c.read_message(&mut [0u8; 1]))?;
    /// assert!(!rx.batch(|c| c.head_is_empty_message())?);
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn head_is_empty_message(&mut self) -> Result<bool> {
        if self.continues {
            return Ok(false);
        }
        Ok(self
            .head_record()?
            .is_some_and(|r| r.h.len == 0 && r.h.remaining == 0 && r.h.flags & FLAG_ABORT == 0))
    }

    /// The record at `pos` (the head, or a record boundary after it), or
    /// `None` if nothing is committed there. Checks it against the ring
    /// invariants.
    fn record_at(&mut self, pos: u64) -> Result<Option<Rec>> {
        let Some(h) = committed_header(&self.storage, self.cap, pos)? else {
            return Ok(None);
        };
        let idx = (pos & (self.cap - 1)) as usize;
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
        // The producer cannot have written past what the consumer freed:
        // `head + capacity`. (`pos >= head`: callers walk forward from it.)
        if (pos - self.head) + size as u64 > self.cap {
            return Err(Error::Corrupt("record extends past the free space"));
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
        // SAFETY: the record lies inside the buffer (checked by `record_at`;
        // `at` and `len` are validated locals), the mapping outlives the
        // borrow of the consumer, every byte is initialised and any value
        // is a valid `u8`, and no handle of this process writes a
        // published, unfreed record (the reader lock keeps other consumers
        // from freeing it). A correct producer does not write it either; a
        // hostile process can, outside this process's view: that changes
        // the values read through the slice, never its extent (documented
        // above, and in `docs/guide/zero-copy.md` for the pipes).
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
