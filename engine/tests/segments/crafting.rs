//! Crafting broken segments: patching a real segment's header through its
//! descriptor, or copying a valid header into a file of our own making.

use rustix::fs::{MemfdFlags, SealFlags};
use shmpipe_engine::layout::{RingDesc, SegmentHeader, HEADER_SIZE};
use shmpipe_engine::{Error, Segment};
use std::fs::File;
use std::io::Write;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

pub(super) const MAGIC_AT: u64 = offset_of!(SegmentHeader, magic) as u64;
pub(super) const VERSION_AT: u64 = offset_of!(SegmentHeader, version) as u64;
pub(super) const HEADER_SIZE_AT: u64 = offset_of!(SegmentHeader, header_size) as u64;
pub(super) const TOTAL_SIZE_AT: u64 = offset_of!(SegmentHeader, total_size) as u64;
pub(super) const RING_COUNT_AT: u64 = offset_of!(SegmentHeader, ring_count) as u64;

/// Which field of a ring descriptor to overwrite.
#[derive(Clone, Copy)]
pub(super) enum RingField {
    Control,
    Data,
    Capacity,
}

pub(super) fn ring_field_at(ring: usize, field: RingField) -> u64 {
    let within = match field {
        RingField::Control => offset_of!(RingDesc, control_offset),
        RingField::Data => offset_of!(RingDesc, data_offset),
        RingField::Capacity => offset_of!(RingDesc, capacity),
    };
    (offset_of!(SegmentHeader, rings) + ring * size_of::<RingDesc>() + within) as u64
}

/// A real segment with rings of `caps`, and a writable `File` on a
/// duplicate of its descriptor.
pub(super) fn real(caps: &[usize]) -> (Arc<Segment>, OwnedFd, File) {
    let (seg, fd) = Segment::create(caps, 0, [0; 8]).expect("create segment");
    let file = File::from(fd.try_clone().expect("dup segment fd"));
    (seg, fd, file)
}

pub(super) fn patch(file: &File, at: u64, bytes: &[u8]) {
    file.write_all_at(bytes, at)
        .expect("write into a sealed memfd (only resizing is sealed)");
}

pub(super) fn patch_u32(file: &File, at: u64, v: u32) {
    patch(file, at, &v.to_ne_bytes());
}

pub(super) fn patch_u64(file: &File, at: u64, v: u64) {
    patch(file, at, &v.to_ne_bytes());
}

/// The first `HEADER_SIZE` bytes of a real one-ring segment of 4 KiB, and
/// the segment's total size.
pub(super) fn valid_header() -> (Vec<u8>, u64) {
    let (seg, _fd, file) = real(&[4096]);
    let mut bytes = vec![0u8; HEADER_SIZE];
    file.read_exact_at(&mut bytes, 0).expect("read header");
    (bytes, seg.header().total_size)
}

/// A memfd of `len` bytes starting with `prefix`, with `seals` added (an
/// empty set adds none; the memfd allows sealing only when `seals` is not
/// empty, like one made without `MFD_ALLOW_SEALING`).
pub(super) fn memfd_with(prefix: &[u8], len: u64, seals: SealFlags) -> OwnedFd {
    let flags = if seals.is_empty() {
        MemfdFlags::CLOEXEC
    } else {
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING
    };
    let fd = rustix::fs::memfd_create("segment-attach-test", flags).expect("memfd_create");
    rustix::fs::ftruncate(&fd, len).expect("ftruncate");
    let n = prefix.len().min(len as usize);
    let file = File::from(fd.try_clone().expect("dup memfd"));
    file.write_all_at(&prefix[..n], 0).expect("write header");
    if !seals.is_empty() {
        rustix::fs::fcntl_add_seals(&fd, seals).expect("add seals");
    }
    fd
}

/// A regular file in `dir`, `len` bytes long, starting with `prefix`; its
/// name is unlinked at once (the descriptor keeps it), so nothing is left
/// behind even if the test fails.
pub(super) fn regular_file_with(dir: &std::path::Path, prefix: &[u8], len: u64) -> OwnedFd {
    let path = dir.join(format!(
        "shmpipe-segment-attach-{}-{}",
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-")
    ));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("create regular file");
    std::fs::remove_file(&path).expect("unlink regular file");
    file.write_all(prefix).expect("write header");
    file.set_len(len).expect("set_len");
    file.into()
}

pub(super) const SHRINK_GROW: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// The error `Segment::attach` gives for `fd`; panics if it attaches.
pub(super) fn attach_err(fd: &OwnedFd, what: &str) -> Error {
    match Segment::attach(fd.as_fd()) {
        Ok(seg) => panic!("{what}: attached ({seg:?}) instead of failing"),
        Err(e) => e,
    }
}

/// Asserts `Error::Corrupt` whose message (and Display) contains `needle`.
#[track_caller]
pub(super) fn assert_corrupt(e: Error, needle: &str, what: &str) {
    let shown = e.to_string();
    match e {
        Error::Corrupt(msg) => assert!(
            msg.contains(needle) && shown.contains(needle) && shown.contains("corrupt"),
            "{what}: Corrupt({msg:?}) / {shown:?} does not mention {needle:?}"
        ),
        other => panic!("{what}: expected Corrupt(..{needle}..), got {other:?}"),
    }
}

/// Asserts `Error::Incompatible` whose message (and Display) contains
/// `needle`.
#[track_caller]
pub(super) fn assert_incompatible(e: Error, needle: &str, what: &str) {
    let shown = e.to_string();
    match e {
        Error::Incompatible(msg) => assert!(
            msg.contains(needle) && shown.contains(needle) && shown.contains("incompatible"),
            "{what}: Incompatible({msg:?}) / {shown:?} does not mention {needle:?}"
        ),
        other => panic!("{what}: expected Incompatible(..{needle}..), got {other:?}"),
    }
}

/// Creates a one-ring (or, with `two`, two-ring) segment, applies `f` to its
/// header through the descriptor, and returns the attach error.
pub(super) fn corrupted(two: bool, f: impl FnOnce(&File, &SegmentHeader)) -> Error {
    let caps: &[usize] = if two { &[4096, 8192] } else { &[4096] };
    let (seg, fd, file) = real(caps);
    f(&file, seg.header());
    attach_err(&fd, "corrupted header")
}
