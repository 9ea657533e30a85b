//! `Segment::attach` with one header field wrong: magic, version, sizes,
//! ring counts, capacities, control blocks, data areas, overlaps.

use super::crafting::*;
use rustix::fs::SealFlags;
use shmpipe_engine::layout::{
    SegmentHeader, HEADER_SIZE, LAYOUT_VERSION, MAGIC, MAX_CAPACITY, MAX_RINGS, MIN_CAPACITY, PAGE,
};
use shmpipe_engine::{Error, Segment};
use std::os::fd::AsFd;

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
