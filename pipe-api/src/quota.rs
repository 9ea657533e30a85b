//! How a pipe's write quota (spec 2.4) becomes the capacity of the ring
//! that carries it: one rule for anonymous pipes and named-pipe instances.

/// Ring size for a quota: room for the quota's worth of unread bytes plus a
/// write of the same size in flight, and never so small that streaming
/// wakes the reader every few kilobytes.
///
/// The result is a power of two from 64 KiB to 1 GiB: within the engine's
/// ring limits (`layout::MIN_CAPACITY..=MAX_CAPACITY`) for every quota.
pub(crate) fn ring_capacity(quota: u32) -> usize {
    let want = 2 * quota as usize + 16 * 1024;
    want.next_power_of_two().clamp(64 * 1024, 1 << 30)
}
