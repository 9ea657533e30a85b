//! The hostile writes of the `hostile_segment` fuzz body: what a peer may
//! store anywhere in the data area or the control block, parsed from the
//! fuzz input, and applied through the ring's storage so it stays inside
//! the mapping.

use crate::input::Input;
use core::sync::atomic::Ordering::Relaxed;
use shmpipe_engine::layout::RingControl;
use shmpipe_engine::record::Header;
use shmpipe_engine::sync::Native;
use shmpipe_engine::RingStorage;
use std::time::Duration;

/// A hostile write, applied through the storage so that it stays inside the
/// data area.
#[derive(Debug, Clone)]
pub(super) enum Hostile {
    /// Arbitrary bytes at an arbitrary index.
    Data { at: usize, bytes: Vec<u8> },
    /// A crafted record header at a 64-byte aligned index: a commit word
    /// naming a position near the slot's (this lap, the next, the last, or
    /// any), with a crafted length and flags, and a `remaining`.
    Header {
        at: usize,
        lap: u8,
        len: u32,
        flags: u32,
        remaining: u64,
    },
    /// A raw commit word (any 8 bytes) stored atomically at a slot, as a
    /// peer publishing concurrently would.
    Commit { at: usize, word: u64 },
    /// A store into a shared word of the control block.
    Control { field: u8, how: u8, operand: u64 },
}

impl Hostile {
    pub(super) fn parse(input: &Input, cap: usize) -> Hostile {
        match input.u8() % 4 {
            0 => Hostile::Data {
                at: usize::from(input.u16()) % cap,
                bytes: input.bytes(1 + usize::from(input.u8() % 64)).to_vec(),
            },
            1 => Hostile::Header {
                at: (usize::from(input.u16()) % cap) & !63,
                lap: input.u8(),
                len: match input.u8() % 4 {
                    0 => input.u32(),
                    1 => u32::from(input.u8()),
                    2 => (cap as u32).wrapping_sub(u32::from(input.u8())),
                    _ => u32::from(input.u16()),
                },
                flags: match input.u8() % 5 {
                    0 => 1,
                    1 => 2,
                    2 => 3,
                    _ => 0,
                },
                remaining: match input.u8() % 3 {
                    0 => 0,
                    1 => u64::from(input.u16()),
                    _ => input.u64(),
                },
            },
            2 => Hostile::Commit {
                at: (usize::from(input.u16()) % cap) & !63,
                word: input.u64(),
            },
            _ => Hostile::Control {
                field: input.u8(),
                how: input.u8(),
                operand: input.u64(),
            },
        }
    }

    pub(super) fn apply<R: RingStorage<P = Native>>(&self, ring: &R) {
        let cap = ring.capacity();
        match self {
            Hostile::Data { at, bytes } => {
                let at = at % cap;
                let n = bytes.len().min(cap - at);
                // SAFETY: `at + n <= cap`. The harness is single-threaded and
                // holds no slice into the data area across engine calls.
                unsafe { ring.write(at, &bytes[..n]) };
            }
            Hostile::Header {
                at,
                lap,
                len,
                flags,
                remaining,
            } => {
                let at = (at % cap) & !63;
                // The position the slot holds in the consumer's current lap
                // (its head's), or one lap either side, or anywhere.
                let head = ring.control().consumer.0.head.load(Relaxed);
                let lap_start = head & !(cap as u64 - 1);
                let pos = match lap % 4 {
                    0 => lap_start,
                    1 => lap_start.wrapping_add(cap as u64),
                    2 => lap_start.wrapping_sub(cap as u64),
                    _ => u64::from(*lap) << 30,
                }
                .wrapping_add(at as u64);
                let header = Header {
                    len: *len,
                    flags: *flags,
                    remaining: *remaining,
                };
                // SAFETY: a 64-aligned index below `cap` (>= 256) leaves room
                // for 16 bytes; the harness is single-threaded and holds no
                // slice into the data area across engine calls.
                unsafe { ring.write(at, &header.encode(pos)) };
            }
            Hostile::Commit { at, word } => {
                // SAFETY: a 64-aligned index below `cap`.
                unsafe { ring.commit_word((at % cap) & !63) }.store(*word, Relaxed);
            }
            Hostile::Control {
                field,
                how,
                operand,
            } => control_store(ring.control(), *field, *how, *operand, cap),
        }
    }
}

/// A value derived from the current one: far-off values are rejected by the
/// simplest checks, so most choices stay close to plausible.
pub(super) fn hostile_value(input: &Input, cur: u64, cap: usize) -> u64 {
    derive(input.u8(), input.u64(), cur, cap)
}

fn derive(how: u8, operand: u64, cur: u64, cap: usize) -> u64 {
    let cap = cap as u64;
    let small = operand % 64;
    match how % 10 {
        0 => operand,
        1 => cur.wrapping_add(64 * small),
        2 => cur.wrapping_sub(64 * small),
        3 => (!63u64).wrapping_sub(64 * small),
        4 => cur ^ (1 << (operand % 64)),
        5 => small,
        6 => cur.wrapping_add(cap),
        7 => cur.wrapping_sub(cap),
        8 => cur.wrapping_add(small),
        _ => 0,
    }
}

fn control_store(ctl: &RingControl<Native>, field: u8, how: u8, operand: u64, cap: usize) {
    let p = &ctl.producer.0;
    let c = &ctl.consumer.0;
    let word = match field % 10 {
        0 => &p.tail,
        1 => &p.written,
        2 => &p.open,
        3 => &c.head,
        4 => &c.head_offset,
        5 => &c.consumed,
        6 => &c.continues,
        7 => {
            ctl.events.0.hangup.store(operand as u32, Relaxed);
            return;
        }
        // A fake sleeper: the next notify takes the futex path.
        8 => {
            ctl.events.0.readable.park(Some(Duration::ZERO), || true);
            return;
        }
        _ => {
            ctl.events.0.writable.park(Some(Duration::ZERO), || true);
            return;
        }
    };
    let cur = word.load(Relaxed);
    word.store(derive(how, operand, cur, cap), Relaxed);
}
