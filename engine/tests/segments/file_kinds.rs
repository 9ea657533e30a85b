//! `Segment::attach` of files no creator makes (unsealed, regular, too small
//! or too large, something else), channel ends on corrupted segments, a
//! header corrupted after attach, and the errors of `create`.

use super::crafting::*;
use rustix::fs::SealFlags;
use shmpipe_engine::layout::{
    HEADER_SIZE, LAYOUT_VERSION, MAGIC, MAX_CAPACITY, MAX_RINGS, MIN_CAPACITY,
};
use shmpipe_engine::{channel, Error, Receiver, Segment, Sender};
use std::fs::File;
use std::os::fd::AsFd;

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
