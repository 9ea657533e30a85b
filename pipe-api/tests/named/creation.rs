//! Spec 9.1: names, creation options and instance limits (SEM-007..017).

use crate::common;

use super::support::*;
use common::named::{assert_kind, default_opts, unique_name};
use shmpipe::named::{
    wait_available, ClientOptions, Connected, Direction, NamedPipeServer, ServerOptions,
    WaitTimeout, UNLIMITED_INSTANCES,
};
use shmpipe::{EndKind, ErrorKind, PipeType, ReadMode};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

// ------------------------------------------------------ 9.1 names, creation

#[test]
fn sem_007_byte_type_with_message_read_mode_is_invalid_parameter() {
    let name = unique_name("s007");
    let r = default_opts()
        .pipe_type(PipeType::Byte)
        .read_mode(ReadMode::Message)
        .create(&name);
    assert_kind(r, ErrorKind::InvalidParameter, "byte type, message read");
    // Nothing was created.
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::FileNotFound,
        "open after the refused create",
    );
    // The same read mode is fine on a message pipe.
    let s = default_opts()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .create(&name)
        .unwrap();
    assert!(s.state().unwrap().message_read);
}

#[test]
fn sem_008_max_instances_out_of_range_is_invalid_parameter() {
    let name = unique_name("s008");
    for bad in [0, 256, 1000] {
        let r = default_opts().max_instances(bad).create(&name);
        assert_kind(r, ErrorKind::InvalidParameter, &format!("max {bad}"));
    }
    // The limits themselves are valid.
    for good in [1, 254, UNLIMITED_INSTANCES] {
        let n = unique_name("s008ok");
        let s = default_opts().max_instances(good).create(&n).unwrap();
        assert_eq!(s.info().unwrap().max_instances, good);
    }
}

#[test]
fn sem_009_second_instance_beyond_max_one_is_pipe_busy() {
    let name = unique_name("s009");
    let first = default_opts().create(&name).unwrap();
    assert_kind(
        default_opts().create(&name),
        ErrorKind::PipeBusy,
        "second instance with max 1",
    );
    // Also when the second asks for more: the first instance's max rules.
    assert_kind(
        default_opts().max_instances(5).create(&name),
        ErrorKind::PipeBusy,
        "second instance asking for max 5",
    );
    // The first instance is unharmed.
    let client = open(&name);
    assert_data_flows(&first, &client, "s009");
}

#[test]
fn sem_010_unlimited_allows_300_instances() {
    let name = unique_name("s010");
    let servers: Vec<NamedPipeServer> = (0..300)
        .map(|i| {
            default_opts()
                .max_instances(UNLIMITED_INSTANCES)
                .create(&name)
                .unwrap_or_else(|e| panic!("instance {i}: {e:?}"))
        })
        .collect();
    assert_eq!(servers[0].state().unwrap().current_instances, 300);
    assert_eq!(servers[299].info().unwrap().max_instances, 255);
    // And they are real instances: a client attaches to the first one.
    let client = open(&name);
    assert_data_flows(&servers[0], &client, "s010");
}

#[test]
fn sem_011_other_direction_for_a_further_instance_is_access_denied() {
    let name = unique_name("s011");
    let _first = default_opts().max_instances(3).create(&name).unwrap();
    for d in [Direction::Inbound, Direction::Outbound] {
        let r = default_opts().max_instances(3).access(d).create(&name);
        assert_kind(r, ErrorKind::AccessDenied, &format!("{d:?} after Duplex"));
    }
    // Room was left: the same direction is accepted.
    let _second = default_opts().max_instances(3).create(&name).unwrap();
}

#[test]
fn sem_012_further_instance_with_other_attributes_gets_the_first_ones() {
    let name = unique_name("s012");
    let first = default_opts()
        .pipe_type(PipeType::Byte)
        .max_instances(3)
        .quotas(1024, 1024)
        .default_timeout(Duration::ZERO)
        .create(&name)
        .unwrap();
    let second = ServerOptions::new()
        .access(Direction::Duplex)
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .max_instances(10)
        .quotas(0, 61440)
        .default_timeout(Duration::from_millis(300))
        .create(&name)
        .expect("different type, max, sizes and timeout are accepted");
    let info = second.info().unwrap();
    assert_eq!(info.pipe_type, PipeType::Byte, "the first instance's type");
    assert_eq!(info.max_instances, 3, "the first instance's max");
    assert_eq!((info.out_size, info.in_size), (0, 61440), "its own sizes");
    // A byte pipe has no message-read ends.
    assert!(!second.state().unwrap().message_read);
    assert_eq!(first.info().unwrap().pipe_type, PipeType::Byte);
    // Max 3 is in force, not 10.
    let _third = default_opts().max_instances(10).create(&name).unwrap();
    assert_kind(
        default_opts().max_instances(10).create(&name),
        ErrorKind::PipeBusy,
        "fourth instance of a max-3 pipe",
    );
}

#[test]
fn sem_013_first_instance_only() {
    let name = unique_name("s013");
    let first = default_opts()
        .max_instances(UNLIMITED_INSTANCES)
        .first_instance(true)
        .create(&name)
        .expect("first-instance-only on a new name");
    let r = default_opts()
        .max_instances(UNLIMITED_INSTANCES)
        .first_instance(true)
        .create(&name);
    assert_kind(
        r,
        ErrorKind::AccessDenied,
        "first-instance-only, name exists",
    );
    // Without the flag the same instance would have been allowed.
    let _second = default_opts()
        .max_instances(UNLIMITED_INSTANCES)
        .create(&name)
        .unwrap();
    drop(first);
}

#[test]
fn sem_014_name_vanishes_with_its_last_instance() {
    let name = unique_name("s014");
    let server = default_opts().create(&name).unwrap();
    let client = open(&name);
    assert_data_flows(&server, &client, "s014");
    drop(client);
    drop(server);
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::FileNotFound,
        "open after the last instance closed",
    );
    let inbound = default_opts()
        .access(Direction::Inbound)
        .create(&name)
        .expect("re-create the vanished name with another direction");
    // It really is inbound now: a client may only write.
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::AccessDenied,
        "READ_WRITE on the new inbound pipe",
    );
    let client = ClientOptions::new().read(false).open(&name).unwrap();
    (&client).write_all(b"in").unwrap();
    let mut buf = [0u8; 2];
    (&inbound).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"in");
}

#[test]
fn sem_014_name_vanishes_without_a_lookup_in_between() {
    // The same as above, but the re-creation follows the close directly,
    // with no `open` that could notice the empty name first.
    for round in 0..5 {
        let name = unique_name("s014b");
        drop(default_opts().create(&name).unwrap());
        let r = default_opts().access(Direction::Outbound).create(&name);
        assert!(
            r.is_ok(),
            "round {round}: re-creating a name whose only instance closed: {:?}",
            r.err()
        );
    }
}

#[test]
fn sem_015_info_reports_requested_sizes_exactly() {
    let cases = [
        (PipeType::Byte, 0, 0, 1),
        (PipeType::Message, 61440, 61440, UNLIMITED_INSTANCES),
        (PipeType::Byte, 5000, 6000, 7),
        (PipeType::Message, 1, 4097, 254),
    ];
    for (ty, out, inb, max) in cases {
        let name = unique_name("s015");
        let s = default_opts()
            .pipe_type(ty)
            .quotas(out, inb)
            .max_instances(max)
            .create(&name)
            .unwrap();
        let i = s.info().unwrap();
        assert_eq!(i.end, EndKind::Server);
        assert_eq!(i.pipe_type, ty);
        assert_eq!((i.out_size, i.in_size), (out, inb), "sizes unrounded");
        assert_eq!(i.max_instances, max);
    }
}

#[test]
fn sem_016_closed_server_end_counts_until_its_client_closes() {
    let name = unique_name("s016");
    let server = default_opts().create(&name).unwrap();
    let client = open(&name);
    assert_eq!(server.connect().unwrap(), Connected::Already);
    drop(server); // ServerGone: the instance lives on with the client
    assert_kind(
        default_opts().create(&name),
        ErrorKind::PipeBusy,
        "new instance while the old client holds its end",
    );
    assert_kind(
        default_opts().create(&name),
        ErrorKind::PipeBusy,
        "asking again changes nothing",
    );
    drop(client);
    let again = default_opts()
        .create(&name)
        .expect("a new instance once the old client closed");
    let client = open(&name);
    assert_data_flows(&again, &client, "s016");
}

#[test]
fn sem_017_default_timeout_zero_means_50ms() {
    let name = unique_name("s017");
    let _server = default_opts()
        .default_timeout(Duration::ZERO)
        .create(&name)
        .unwrap();
    let _busy = open(&name);
    let t = Instant::now();
    let r = wait_available(&name, WaitTimeout::Default);
    let took = t.elapsed();
    println!("wait_available(Default) with timeout 0 took {took:?}");
    assert_kind(r, ErrorKind::Timeout, "wait on a busy pipe");
    assert!(
        took >= Duration::from_millis(40) && took <= Duration::from_secs(1),
        "took {took:?}, expected about 50 ms"
    );
}
