//! A cursor over fuzz input, shared by the harnesses (a crate includes it once,
//! as `mod input` at its root). Reads never fail: once the input is used up
//! they yield zeros, so the harnesses need no error paths for short inputs and
//! the fuzzer can shorten any input without it becoming "invalid".

// Each fuzz target uses only part of it.
#![allow(dead_code)]

use std::cell::Cell;

/// Fuzz bytes, consumed front to back. Shared (`&self`) so that a storage
/// wrapper can draw from it in the middle of an engine call.
pub struct Input<'a> {
    data: &'a [u8],
    pos: Cell<usize>,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input {
            data,
            pos: Cell::new(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos.get() >= self.data.len()
    }

    pub fn u8(&self) -> u8 {
        let pos = self.pos.get();
        self.pos.set(pos.saturating_add(1));
        self.data.get(pos).copied().unwrap_or(0)
    }

    pub fn u16(&self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&self, n: usize) -> &'a [u8] {
        let pos = self.pos.get().min(self.data.len());
        let end = pos.saturating_add(n).min(self.data.len());
        self.pos.set(end);
        &self.data[pos..end]
    }

    /// A size in `0..=max`, biased towards the edges (0, 1, `max`, near
    /// `max`), where framing bugs live.
    pub fn size(&self, max: usize) -> usize {
        match self.u8() % 8 {
            0 => 0,
            1 => max.min(1),
            2 => max,
            3 => max.saturating_sub(usize::from(self.u8())),
            4 => usize::from(self.u8()).min(max),
            _ => self.u32() as usize % (max + 1),
        }
    }
}
