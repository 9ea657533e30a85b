//! Spec 9.4 and 9.5: client `open` (SEM-044..050) and `wait_available`
//! (SEM-051..058).

use crate::common;

use super::support::*;
use common::named::{assert_kind, default_opts, unique_name, Pending, HANG};
use shmpipe::named::{wait_available, Access, ClientOptions, Connected, Direction, WaitTimeout};
use shmpipe::{EndKind, ErrorKind, PipeType, ReadMode, WaitMode};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

// ------------------------------------------------------------ 9.4 open

#[test]
fn sem_044_open_without_instance_is_file_not_found() {
    let name = unique_name("s044");
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::FileNotFound,
        "no such pipe",
    );
    // A pipe with a longer name is a different pipe.
    let _other = default_opts().create(&format!("{name}-other")).unwrap();
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::FileNotFound,
        "a prefix of an existing name",
    );
}

#[test]
fn sem_045_open_with_no_listening_instance_is_pipe_busy() {
    let name = unique_name("s045");
    let a = default_opts().max_instances(2).create(&name).unwrap();
    let b = default_opts().max_instances(2).create(&name).unwrap();
    let _ca = open(&name); // A Connected
    let _cb = open(&name);
    b.disconnect().unwrap(); // B Disconnected
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "one Connected, one Disconnected instance",
    );
    assert_eq!(a.connect().unwrap(), Connected::Already);
}

#[test]
fn sem_046_new_client_end_is_byte_read_and_blocking() {
    let name = unique_name("s046");
    let server = default_opts()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .wait_mode(WaitMode::Nonblocking)
        .create(&name)
        .unwrap();
    let st = server.state().unwrap();
    assert!(st.message_read && st.nonblocking, "server end as created");
    let client = open(&name);
    let st = client.state().unwrap();
    assert!(!st.message_read, "client end starts byte-read");
    assert!(!st.nonblocking, "client end starts blocking");
}

#[test]
fn sem_047_data_access_against_the_direction_is_access_denied() {
    let name = unique_name("s047in");
    let inbound = default_opts()
        .access(Direction::Inbound)
        .create(&name)
        .unwrap();
    assert_kind(
        ClientOptions::new().read(true).write(false).open(&name),
        ErrorKind::AccessDenied,
        "read-data on an inbound pipe",
    );
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::AccessDenied,
        "READ_WRITE on an inbound pipe",
    );
    let w = ClientOptions::new().read(false).open(&name).unwrap();
    (&w).write_all(b"ok").unwrap();
    let mut buf = [0u8; 2];
    (&inbound).read_exact(&mut buf).unwrap();

    let name = unique_name("s047out");
    let outbound = default_opts()
        .access(Direction::Outbound)
        .create(&name)
        .unwrap();
    assert_kind(
        ClientOptions::new().read(false).write(true).open(&name),
        ErrorKind::AccessDenied,
        "write-data on an outbound pipe",
    );
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::AccessDenied,
        "READ_WRITE on an outbound pipe",
    );
    let r = ClientOptions::new().write(false).open(&name).unwrap();
    (&outbound).write_all(b"ok").unwrap();
    (&r).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ok");
}

#[test]
fn sem_048_missing_data_rights_are_access_denied() {
    let name = unique_name("s048");
    let server = default_opts().create(&name).unwrap();
    let reader = ClientOptions::new().write(false).open(&name).unwrap();
    assert_kind(
        reader.send_msg(b"x"),
        ErrorKind::AccessDenied,
        "write, READ only",
    );
    assert_kind(
        (&reader).write(b"x"),
        ErrorKind::AccessDenied,
        "io::Write, READ only",
    );
    assert_kind(
        reader.flush_buffers(),
        ErrorKind::AccessDenied,
        "flush, READ only",
    );
    // Its reading right works.
    (&server).write_all(b"r").unwrap();
    let mut one = [0u8; 1];
    (&reader).read_exact(&mut one).unwrap();
    drop(reader);
    server.disconnect().unwrap();
    rearm(&server);

    let writer = ClientOptions::new().read(false).open(&name).unwrap();
    let mut buf = [0u8; 4];
    assert_kind(
        writer.recv_msg(&mut buf),
        ErrorKind::AccessDenied,
        "read, WRITE only",
    );
    assert_kind(
        (&writer).read(&mut buf),
        ErrorKind::AccessDenied,
        "io::Read, WRITE only",
    );
    assert_kind(
        writer.peek(Some(&mut buf)),
        ErrorKind::AccessDenied,
        "peek, WRITE only",
    );
    assert_kind(
        writer.peek(None),
        ErrorKind::AccessDenied,
        "peek without buffer",
    );
    (&writer).write_all(b"w").unwrap();
    (&server).read_exact(&mut one).unwrap();
    assert_eq!(&one, b"w");
}

#[test]
fn sem_049_open_without_data_access_takes_the_instance() {
    let name = unique_name("s049");
    let server = default_opts().create(&name).unwrap();
    let none = ClientOptions::new()
        .access(Access::NONE)
        .open(&name)
        .expect("open with no data access");
    assert_eq!(server.connect().unwrap(), Connected::Already, "Connected");
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "second client",
    );
    let info = none
        .info()
        .expect("get_info through a no-access handle (it carries read-attributes)");
    assert_eq!(info.end, EndKind::Client);
    assert_eq!((info.out_size, info.in_size), (1024, 1024));
    let mut buf = [0u8; 1];
    assert_kind(none.recv_msg(&mut buf), ErrorKind::AccessDenied, "read");
    assert_kind(none.send_msg(b"x"), ErrorKind::AccessDenied, "write");
}

#[test]
fn sem_050_server_end_rights_follow_the_direction() {
    let name = unique_name("s050in");
    let inbound = default_opts()
        .access(Direction::Inbound)
        .create(&name)
        .unwrap();
    let _w = ClientOptions::new().read(false).open(&name).unwrap();
    assert_kind(
        inbound.send_msg(b"x"),
        ErrorKind::AccessDenied,
        "write on an inbound server end",
    );
    assert_kind(
        (&inbound).write(b"x"),
        ErrorKind::AccessDenied,
        "io::Write on an inbound server end",
    );
    assert_kind(
        inbound.flush_buffers(),
        ErrorKind::AccessDenied,
        "flush on an inbound server end",
    );

    let name = unique_name("s050out");
    let outbound = default_opts()
        .access(Direction::Outbound)
        .create(&name)
        .unwrap();
    let _r = ClientOptions::new().write(false).open(&name).unwrap();
    let mut buf = [0u8; 4];
    assert_kind(
        outbound.recv_msg(&mut buf),
        ErrorKind::AccessDenied,
        "read on an outbound server end",
    );
    assert_kind(
        (&outbound).read(&mut buf),
        ErrorKind::AccessDenied,
        "io::Read on an outbound server end",
    );
    assert_kind(
        outbound.peek(None),
        ErrorKind::AccessDenied,
        "peek on an outbound server end",
    );
}

// ----------------------------------------------------- 9.5 wait_available

#[test]
fn sem_051_wait_on_missing_name_fails_at_once() {
    let name = unique_name("s051");
    let t = Instant::now();
    let r = wait_available(&name, WaitTimeout::Duration(Duration::from_secs(2)));
    let took = t.elapsed();
    println!("wait_available on a missing name took {took:?}");
    assert_kind(r, ErrorKind::FileNotFound, "no such pipe");
    assert!(took < Duration::from_secs(1), "not at once: {took:?}");
    for t in [WaitTimeout::Default, WaitTimeout::Forever] {
        let r = Pending::start("wait on a missing name", {
            let name = name.clone();
            move || wait_available(&name, t)
        })
        .finish();
        assert_kind(r, ErrorKind::FileNotFound, &format!("{t:?}"));
    }
}

#[test]
fn sem_052_wait_succeeds_at_once_when_an_instance_listens() {
    let name = unique_name("s052");
    let a = default_opts()
        .max_instances(2)
        .default_timeout(Duration::from_millis(100))
        .create(&name)
        .unwrap();
    // A fresh instance on which connect was never called: the Default wait
    // (100 ms) would time out if it were not counted.
    wait_available(&name, WaitTimeout::Default).expect("fresh instance listens");
    let _c = open(&name);
    let _b = default_opts().max_instances(2).create(&name).unwrap();
    // One instance busy, the other listening.
    wait_available(&name, WaitTimeout::Default).expect("second instance listens");
    assert_eq!(a.connect().unwrap(), Connected::Already);
}

#[test]
fn sem_053_wait_on_busy_pipe_times_out_after_the_requested_time() {
    let name = unique_name("s053");
    let _server = default_opts().create(&name).unwrap();
    let _busy = open(&name);
    let want = Duration::from_millis(250);
    let t = Instant::now();
    let r = wait_available(&name, WaitTimeout::Duration(want));
    let took = t.elapsed();
    println!("wait_available({want:?}) on a busy pipe took {took:?}");
    assert_kind(r, ErrorKind::Timeout, "only instance Connected");
    assert!(took >= want, "returned before the timeout: {took:?}");
    assert!(took < HANG, "took {took:?}");
}

#[test]
fn sem_054_new_instance_wakes_a_pending_wait() {
    let name = unique_name("s054");
    let _a = default_opts().max_instances(2).create(&name).unwrap();
    let _ca = open(&name);
    let n = name.clone();
    let wait = Pending::start("wait_available", move || {
        wait_available(&n, WaitTimeout::Duration(HANG))
    });
    wait.assert_pending("the only instance is Connected");
    let b = default_opts().max_instances(2).create(&name).unwrap();
    wait.finish().expect("woken by the new instance");
    let cb = open(&name);
    assert_data_flows(&b, &cb, "s054");
}

#[test]
fn sem_055_connect_after_disconnect_wakes_a_pending_wait() {
    let name = unique_name("s055");
    let server = default_opts().create(&name).unwrap();
    let _first = open(&name);
    server.disconnect().unwrap();
    let n = name.clone();
    let wait = Pending::start("wait_available", move || {
        wait_available(&n, WaitTimeout::Duration(HANG))
    });
    wait.assert_pending("the only instance is Disconnected");
    rearm(&server);
    wait.finish().expect("woken by connect");
    let second = open(&name);
    assert_data_flows(&server, &second, "s055");
}

#[test]
fn sem_056_default_wait_uses_the_pipe_default_timeout() {
    let name = unique_name("s056");
    let _server = default_opts()
        .default_timeout(Duration::from_millis(300))
        .create(&name)
        .unwrap();
    let _busy = open(&name);
    let t = Instant::now();
    let r = wait_available(&name, WaitTimeout::Default);
    let took = t.elapsed();
    println!("wait_available(Default) with a 300 ms default took {took:?}");
    assert_kind(r, ErrorKind::Timeout, "busy pipe");
    assert!(
        took >= Duration::from_millis(300),
        "returned before the pipe's 300 ms: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn sem_057_wait_success_reserves_nothing() {
    let name = unique_name("s057");
    let server = default_opts().create(&name).unwrap();
    wait_available(&name, WaitTimeout::Default).unwrap();
    let faster = open(&name);
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "open after a successful wait, instance taken meanwhile",
    );
    assert_data_flows(&server, &faster, "s057");
}

#[test]
fn sem_058_last_instance_closing_ends_a_pending_wait_with_file_not_found() {
    let name = unique_name("s058");
    let server = default_opts().create(&name).unwrap();
    let client = open(&name);
    server.disconnect().unwrap();
    drop(client);
    let n = name.clone();
    let wait = Pending::start("wait_available", move || {
        wait_available(&n, WaitTimeout::Duration(Duration::from_secs(5)))
    });
    wait.assert_pending("the only instance is Disconnected");
    drop(server); // the last instance: the name vanishes
    assert_kind(wait.finish(), ErrorKind::FileNotFound, "pending wait");
}

#[test]
fn sem_058_server_gone_instance_closing_ends_a_pending_wait() {
    // The last instance is a ServerGone one: it vanishes when its client
    // closes.
    let name = unique_name("s058b");
    let server = default_opts().create(&name).unwrap();
    let client = open(&name);
    let n = name.clone();
    let wait = Pending::start("wait_available", move || {
        wait_available(&n, WaitTimeout::Duration(Duration::from_secs(5)))
    });
    wait.assert_pending("the only instance is Connected");
    drop(server);
    wait.assert_pending("the client still holds the instance");
    drop(client);
    assert_kind(wait.finish(), ErrorKind::FileNotFound, "pending wait");
}
