//! `Segment::attach` against descriptors no correct creator would hand over:
//! every check of the attach path and of `SegmentHeader::validate`, each
//! reached through the public API with exactly one thing wrong, and each
//! answered by its own error variant and a message that names the problem.
//!
//! Broken segments are made the way a hostile or foreign peer would make
//! them: a real segment is created, then its header bytes are overwritten
//! through a duplicate of its descriptor (the seals forbid resizing, not
//! writing), or a valid header is copied into a file of our own making
//! (unsealed memfd, regular file, wrong size). Each crafting helper is also
//! shown to produce an attachable segment when nothing is wrong, so a
//! rejection is caused by the one defect, not by the helper.

use rustix::fs::{MemfdFlags, SealFlags};
use shmpipe_engine::layout::{
    RingDesc, SegmentHeader, HEADER_SIZE, LAYOUT_VERSION, MAGIC, MAX_CAPACITY, MAX_RINGS,
    MIN_CAPACITY, PAGE,
};
use shmpipe_engine::{channel, Error, Receiver, Segment, Sender};
use std::fs::File;
use std::io::Write;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

const MAGIC_AT: u64 = offset_of!(SegmentHeader, magic) as u64;
const VERSION_AT: u64 = offset_of!(SegmentHeader, version) as u64;
const HEADER_SIZE_AT: u64 = offset_of!(SegmentHeader, header_size) as u64;
const TOTAL_SIZE_AT: u64 = offset_of!(SegmentHeader, total_size) as u64;
const RING_COUNT_AT: u64 = offset_of!(SegmentHeader, ring_count) as u64;

/// Which field of a ring descriptor to overwrite.
#[derive(Clone, Copy)]
enum RingField {
    Control,
    Data,
    Capacity,
}

fn ring_field_at(ring: usize, field: RingField) -> u64 {
    let within = match field {
        RingField::Control => offset_of!(RingDesc, control_offset),
        RingField::Data => offset_of!(RingDesc, data_offset),
        RingField::Capacity => offset_of!(RingDesc, capacity),
    };
    (offset_of!(SegmentHeader, rings) + ring * size_of::<RingDesc>() + within) as u64
}

/// A real segment with rings of `caps`, and a writable `File` on a
/// duplicate of its descriptor.
fn real(caps: &[usize]) -> (Arc<Segment>, OwnedFd, File) {
    let (seg, fd) = Segment::create(caps, 0, [0; 8]).expect("create segment");
    let file = File::from(fd.try_clone().expect("dup segment fd"));
    (seg, fd, file)
}

fn patch(file: &File, at: u64, bytes: &[u8]) {
    file.write_all_at(bytes, at)
        .expect("write into a sealed memfd (only resizing is sealed)");
}

fn patch_u32(file: &File, at: u64, v: u32) {
    patch(file, at, &v.to_ne_bytes());
}

fn patch_u64(file: &File, at: u64, v: u64) {
    patch(file, at, &v.to_ne_bytes());
}

/// The first `HEADER_SIZE` bytes of a real one-ring segment of 4 KiB, and
/// the segment's total size.
fn valid_header() -> (Vec<u8>, u64) {
    let (seg, _fd, file) = real(&[4096]);
    let mut bytes = vec![0u8; HEADER_SIZE];
    file.read_exact_at(&mut bytes, 0).expect("read header");
    (bytes, seg.header().total_size)
}

/// A memfd of `len` bytes starting with `prefix`, with `seals` added (an
/// empty set adds none; the memfd allows sealing only when `seals` is not
/// empty, like one made without `MFD_ALLOW_SEALING`).
fn memfd_with(prefix: &[u8], len: u64, seals: SealFlags) -> OwnedFd {
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
fn regular_file_with(dir: &std::path::Path, prefix: &[u8], len: u64) -> OwnedFd {
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

const SHRINK_GROW: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// The error `Segment::attach` gives for `fd`; panics if it attaches.
fn attach_err(fd: &OwnedFd, what: &str) -> Error {
    match Segment::attach(fd.as_fd()) {
        Ok(seg) => panic!("{what}: attached ({seg:?}) instead of failing"),
        Err(e) => e,
    }
}

/// Asserts `Error::Corrupt` whose message (and Display) contains `needle`.
#[track_caller]
fn assert_corrupt(e: Error, needle: &str, what: &str) {
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
fn assert_incompatible(e: Error, needle: &str, what: &str) {
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
fn corrupted(two: bool, f: impl FnOnce(&File, &SegmentHeader)) -> Error {
    let caps: &[usize] = if two { &[4096, 8192] } else { &[4096] };
    let (seg, fd, file) = real(caps);
    f(&file, seg.header());
    attach_err(&fd, "corrupted header")
}

#[test]
fn untouched_segments_attach_with_the_creators_header() {
    let user = [1, 2, 3, 4, 5, 6, 7, u64::MAX];
    let (seg, fd) = Segment::create(&[4096, 1 << 16], 0xabcd, user).unwrap();
    let again = Segment::attach(fd.as_fd()).unwrap();
    let (a, b) = (seg.header(), again.header());
    assert_eq!(again.ring_count(), 2);
    assert_eq!((b.magic, b.version), (MAGIC, LAYOUT_VERSION));
    assert_eq!(b.header_size as usize, HEADER_SIZE);
    assert_eq!(b.total_size, a.total_size);
    assert_eq!((b.user_flags, b.user), (0xabcd, user));
    assert_eq!(b.rings, a.rings);
    assert_eq!(b.rings[0].capacity, 4096);
    assert_eq!(b.rings[1].capacity, 1 << 16);
    // Both rings are usable through the attached copy.
    assert_eq!(again.ring(1).unwrap().segment().ring_count(), 2);
    assert!(matches!(again.ring(2), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_copied_header_in_a_sealed_memfd_of_the_right_size_attaches() {
    // The crafting helpers produce attachable segments when nothing is
    // wrong: the rejections below come from the one defect each introduces.
    let (header, total) = valid_header();
    for seals in [SHRINK_GROW, SHRINK_GROW | SealFlags::SEAL] {
        let fd = memfd_with(&header, total, seals);
        let seg = Segment::attach(fd.as_fd()).expect("crafted segment attaches");
        assert_eq!(seg.header().rings[0].capacity, 4096);
    }
}

#[test]
fn a_patch_that_rewrites_the_same_value_still_attaches() {
    // Writing through a duplicate descriptor reaches the mapping that attach
    // reads (same page cache), and is allowed by the seals.
    let (seg, fd, file) = real(&[4096]);
    patch_u64(&file, MAGIC_AT, MAGIC);
    patch_u64(&file, TOTAL_SIZE_AT, seg.header().total_size);
    Segment::attach(fd.as_fd()).unwrap();
}

#[test]
fn wrong_magic_is_corrupt() {
    for magic in [0, MAGIC ^ 1, u64::from_le_bytes(*b"SHMPIPE1"), u64::MAX] {
        let e = corrupted(false, |f, _| patch_u64(f, MAGIC_AT, magic));
        assert_corrupt(e, "magic", &format!("magic {magic:#x}"));
    }
}

#[test]
fn wrong_magic_is_reported_before_anything_else() {
    // An all-garbage header is "not a shmpipe segment", not a version skew.
    let e = corrupted(false, |f, _| patch(f, 0, &[0xa5; HEADER_SIZE]));
    assert_corrupt(e, "magic", "garbage header");
}

#[test]
fn other_layout_versions_are_incompatible() {
    for version in [0, LAYOUT_VERSION - 1, LAYOUT_VERSION + 1, u32::MAX] {
        let e = corrupted(false, |f, _| patch_u32(f, VERSION_AT, version));
        assert_incompatible(e, "version", &format!("version {version}"));
    }
}

#[test]
fn other_header_sizes_are_incompatible() {
    let sizes = [
        0,
        128,
        HEADER_SIZE as u32 - 1,
        HEADER_SIZE as u32 * 2,
        u32::MAX,
    ];
    for size in sizes {
        let e = corrupted(false, |f, _| patch_u32(f, HEADER_SIZE_AT, size));
        assert_incompatible(e, "header size", &format!("header size {size}"));
    }
}

#[test]
fn a_header_size_that_disagrees_with_the_file_is_corrupt() {
    for delta in [-(PAGE as i64), -1, 1, PAGE as i64] {
        let e = corrupted(false, |f, h| {
            patch_u64(f, TOTAL_SIZE_AT, h.total_size.wrapping_add_signed(delta))
        });
        assert_corrupt(e, "size does not match", &format!("total_size {delta:+}"));
    }
    let e = corrupted(false, |f, _| patch_u64(f, TOTAL_SIZE_AT, u64::MAX));
    assert_corrupt(e, "size does not match", "total_size u64::MAX");
}

#[test]
fn a_file_larger_than_its_header_says_is_corrupt() {
    // The header is intact, but the memfd holding it is a page longer.
    let (header, total) = valid_header();
    let fd = memfd_with(&header, total + PAGE as u64, SHRINK_GROW);
    assert_corrupt(
        attach_err(&fd, "file a page too long"),
        "size does not match",
        "file a page too long",
    );
    // A file shorter than the header says, but still holding the header.
    let fd = memfd_with(&header, total - PAGE as u64, SHRINK_GROW);
    assert_corrupt(
        attach_err(&fd, "file a page too short"),
        "size does not match",
        "file a page too short",
    );
}

#[test]
fn ring_counts_out_of_range_are_corrupt() {
    for count in [0, MAX_RINGS as u32 + 1, u32::MAX] {
        let e = corrupted(false, |f, _| patch_u32(f, RING_COUNT_AT, count));
        assert_corrupt(e, "ring count", &format!("ring count {count}"));
    }
}

#[test]
fn claiming_a_second_ring_that_was_never_laid_out_is_corrupt() {
    // A one-ring segment whose count says two: the second descriptor is
    // all zeros.
    let e = corrupted(false, |f, _| patch_u32(f, RING_COUNT_AT, 2));
    assert_corrupt(e, "ring capacity", "phantom second ring");
}

#[test]
fn ring_capacities_out_of_range_are_corrupt() {
    let caps = [
        0,
        1,
        MIN_CAPACITY as u64 / 2,
        MIN_CAPACITY as u64 - 1,
        4095,
        4097,
        MAX_CAPACITY as u64 * 2,
        1 << 63,
        u64::MAX,
    ];
    for cap in caps {
        for ring in 0..2 {
            let e = corrupted(true, |f, _| {
                patch_u64(f, ring_field_at(ring, RingField::Capacity), cap)
            });
            assert_corrupt(
                e,
                "ring capacity",
                &format!("ring {ring} capacity {cap:#x}"),
            );
        }
    }
}

#[test]
fn a_valid_capacity_running_past_the_end_of_the_segment_is_corrupt() {
    // A power of two in range, but larger than what follows the data offset.
    let e = corrupted(false, |f, _| {
        patch_u64(f, ring_field_at(0, RingField::Capacity), 1 << 20)
    });
    assert_corrupt(
        e,
        "out of bounds",
        "ring 0 capacity 1 MiB in an 8 KiB segment",
    );
    let e = corrupted(true, |f, _| {
        patch_u64(
            f,
            ring_field_at(1, RingField::Capacity),
            MAX_CAPACITY as u64,
        )
    });
    assert_corrupt(e, "out of bounds", "ring 1 capacity 1 GiB");
}

#[test]
fn misplaced_control_blocks_are_corrupt() {
    let cases: &[(usize, u64, &str, &str)] = &[
        // Inside the header.
        (0, 0, "misplaced", "control block over the header"),
        (0, 128, "misplaced", "control block over the header's tail"),
        // Not 128-byte aligned.
        (
            0,
            HEADER_SIZE as u64 + 8,
            "misplaced",
            "unaligned control block",
        ),
        // So far out that its end overflows.
        (
            0,
            !127, // the last 128-aligned offset
            "out of bounds",
            "control block end overflows",
        ),
        // The second ring's control block over the first ring's data.
        (
            1,
            PAGE as u64,
            "misplaced",
            "ring 1 control over ring 0 data",
        ),
        (1, 0, "misplaced", "ring 1 control over the header"),
    ];
    for &(ring, at, needle, what) in cases {
        let e = corrupted(true, |f, _| {
            patch_u64(f, ring_field_at(ring, RingField::Control), at)
        });
        assert_corrupt(e, needle, what);
    }
}

/// A data offset to write, computed from the segment's real header.
type DataAt = fn(&SegmentHeader) -> u64;

#[test]
fn misplaced_or_out_of_bounds_data_areas_are_corrupt() {
    let cases: &[(usize, DataAt, &str, &str)] = &[
        (0, |_| 0, "misplaced", "data over the header"),
        (
            0,
            |h| h.rings[0].control_offset,
            "misplaced",
            "data over its control block",
        ),
        (
            0,
            |h| h.rings[0].data_offset + 64,
            "misplaced",
            "data not page aligned",
        ),
        (
            0,
            |h| h.total_size,
            "out of bounds",
            "data starts at the end of the segment",
        ),
        (
            0,
            |_| !(PAGE as u64 - 1), // the last page-aligned offset
            "out of bounds",
            "data end overflows",
        ),
        (
            1,
            |h| h.rings[0].data_offset,
            "misplaced",
            "ring 1 data before its control",
        ),
        (
            1,
            |h| h.total_size,
            "out of bounds",
            "ring 1 data past the end",
        ),
    ];
    for &(ring, at, needle, what) in cases {
        let e = corrupted(true, |f, h| {
            patch_u64(f, ring_field_at(ring, RingField::Data), at(h))
        });
        assert_corrupt(e, needle, what);
    }
}

#[test]
fn overlapping_rings_are_corrupt() {
    // The second ring laid out over the first: same control and data offsets.
    let e = corrupted(true, |f, h| {
        let r0 = h.rings[0];
        patch_u64(f, ring_field_at(1, RingField::Control), r0.control_offset);
        patch_u64(f, ring_field_at(1, RingField::Data), r0.data_offset);
        patch_u64(f, ring_field_at(1, RingField::Capacity), r0.capacity);
    });
    assert_corrupt(e, "misplaced", "ring 1 over ring 0");
}

#[test]
fn an_unsealed_memfd_is_refused_even_with_a_valid_header() {
    let (header, total) = valid_header();
    // Made without MFD_ALLOW_SEALING (its seal set is just F_SEAL_SEAL).
    let fd = memfd_with(&header, total, SealFlags::empty());
    assert_corrupt(
        attach_err(&fd, "unsealed memfd"),
        "not sealed against resizing",
        "unsealed memfd",
    );
    // Sealing allowed, but only one of the two required seals (or a seal
    // that is not about the size) applied.
    for seals in [SealFlags::SHRINK, SealFlags::GROW, SealFlags::SEAL] {
        let fd = memfd_with(&header, total, seals);
        assert_corrupt(
            attach_err(&fd, "half-sealed memfd"),
            "not sealed against resizing",
            &format!("memfd sealed with {seals:?} only"),
        );
    }
}

#[test]
fn a_regular_file_is_refused_even_with_a_valid_header() {
    let (header, total) = valid_header();
    // On a disk filesystem F_GET_SEALS fails ("not a sealed memfd"); on tmpfs
    // (a /tmp or /dev/shm file) it reports only F_SEAL_SEAL ("not sealed
    // against resizing"). Either way it is refused as corrupt, by its seals.
    let mut dirs = vec![std::env::temp_dir()];
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        dirs.push(shm.to_path_buf());
    }
    for dir in dirs {
        let fd = regular_file_with(&dir, &header, total);
        let what = format!("regular file in {}", dir.display());
        assert_corrupt(attach_err(&fd, &what), "seal", &what);
    }
}

#[test]
fn a_descriptor_of_something_else_is_not_a_sealed_memfd() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    for fd in [r, w] {
        assert_corrupt(attach_err(&fd, "pipe"), "not a sealed memfd", "pipe");
    }
}

#[test]
fn files_too_small_for_a_header_are_corrupt() {
    let (header, _) = valid_header();
    // Sealed memfds holding no header, part of one, and all but its last
    // byte; the prefix is a real header's, so only the size is wrong.
    for len in [0, 1, 8, HEADER_SIZE as u64 / 2, HEADER_SIZE as u64 - 1] {
        let fd = memfd_with(&header, len, SHRINK_GROW);
        assert_corrupt(
            attach_err(&fd, "short memfd"),
            "size out of range",
            &format!("sealed memfd of {len} bytes"),
        );
    }
}

#[test]
fn a_file_of_just_a_header_is_corrupt() {
    // Big enough to read a header from, but the header describes a larger
    // segment.
    let (header, _) = valid_header();
    let fd = memfd_with(&header, HEADER_SIZE as u64, SHRINK_GROW);
    assert_corrupt(
        attach_err(&fd, "header-only memfd"),
        "size does not match",
        "header-only memfd",
    );
}

#[test]
fn files_larger_than_any_segment_are_corrupt() {
    // Sparse: ftruncate allocates nothing, and attach must refuse before it
    // maps anything.
    let (header, _) = valid_header();
    let largest = (HEADER_SIZE + MAX_RINGS * 2 * MAX_CAPACITY) as u64;
    for len in [largest + 1, 8 * largest] {
        let fd = memfd_with(&header, len, SHRINK_GROW);
        assert_corrupt(
            attach_err(&fd, "huge memfd"),
            "size out of range",
            &format!("sealed memfd of {len} bytes"),
        );
    }
}

#[test]
fn channel_ends_refuse_corrupted_segments_with_the_same_errors() {
    // `from_fd` validates through `Segment::attach` before looking at roles.
    let (tx, rx) = channel(4096).unwrap();
    let tx_fd = tx.into_fd();
    let file = File::from(tx_fd.try_clone().unwrap());
    patch_u32(&file, VERSION_AT, LAYOUT_VERSION + 1);
    match Sender::from_fd(tx_fd) {
        Err(e) => assert_incompatible(e, "version", "Sender::from_fd"),
        Ok(_) => panic!("Sender::from_fd accepted a segment of another layout version"),
    }
    patch_u32(&file, VERSION_AT, LAYOUT_VERSION);
    patch_u64(&file, MAGIC_AT, 0);
    match Receiver::from_fd(rx.into_fd()) {
        Err(e) => assert_corrupt(e, "magic", "Receiver::from_fd"),
        Ok(_) => panic!("Receiver::from_fd accepted a segment without magic"),
    }
}

#[test]
fn a_header_corrupted_after_attach_is_never_read_again() {
    // Attached processes keep their validated copy: a peer scribbling over
    // the shared header later changes nothing for them.
    let (mut tx, mut rx) = channel(4096).unwrap();
    let file = File::from(rustix::io::dup(tx.as_fd()).unwrap());
    let seg = Segment::attach(tx.as_fd()).unwrap();
    let before = *seg.header();
    patch(&file, 0, &[0xff; HEADER_SIZE]);
    let after = seg.header();
    assert_eq!(after.magic, MAGIC);
    assert_eq!(after.total_size, before.total_size);
    assert_eq!(after.rings, before.rings);
    assert_eq!(seg.ring(0).unwrap().segment().ring_count(), 1);
    tx.write(b"still flowing").unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(rx.read(&mut buf).unwrap(), 13);
    assert_eq!(&buf[..13], b"still flowing");
    // A new attach sees the damage.
    assert_corrupt(
        Segment::attach(tx.as_fd()).unwrap_err(),
        "magic",
        "attach after scribbling",
    );
}

#[test]
fn create_rejects_impossible_layouts_as_invalid_arguments() {
    let bad: &[&[usize]] = &[
        &[],
        &[4096, 4096, 4096],
        &[0],
        &[MIN_CAPACITY / 2],
        &[4095],
        &[MAX_CAPACITY * 2],
        &[4096, 1000],
    ];
    for caps in bad {
        match Segment::create(caps, 0, [0; 8]) {
            Err(Error::InvalidArgument(msg)) => assert!(
                msg.contains("ring"),
                "capacities {caps:?}: message {msg:?} does not say what is wrong"
            ),
            other => panic!("capacities {caps:?}: expected InvalidArgument, got {other:?}"),
        }
    }
}

#[test]
fn attach_errors_convert_to_invalid_data() {
    let e = corrupted(false, |f, _| patch_u64(f, MAGIC_AT, 0));
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
    assert!(io.to_string().contains("magic"), "{io}");
    let e = corrupted(false, |f, _| patch_u32(f, VERSION_AT, 0));
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
    assert!(io.to_string().contains("version"), "{io}");
}

#[test]
fn a_write_sealed_memfd_is_refused() {
    // Sealed against writing, nobody could use the rings (every end writes
    // its control words): refused with an error that names the seal.
    let (header, total) = valid_header();
    for seals in [
        SHRINK_GROW | SealFlags::WRITE,
        SHRINK_GROW | SealFlags::FUTURE_WRITE,
    ] {
        let fd = memfd_with(&header, total, seals);
        match Segment::attach(fd.as_fd()) {
            Err(Error::Corrupt(msg)) => {
                assert!(msg.contains("sealed against writing"), "{seals:?}: {msg}")
            }
            other => panic!("{seals:?}: expected a refusal, got {other:?}"),
        }
    }
}
