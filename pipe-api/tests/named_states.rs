//! Named pipes within one process: creation options and instance limits
//! (SEM-007..017), instance states and `connect` (SEM-029..042), client
//! `open` (SEM-044..050), `wait_available` (SEM-051..058), state and
//! identity queries (SEM-136, SEM-139..141), and hostile input on the
//! rendezvous socket.
//!
//! "Pipe" means the spec's default (section 9): Duplex, max instances 1,
//! quota 1024 each way, client opened READ_WRITE ([`default_opts`]). Every
//! test uses its own pipe name: tests run in parallel.

mod common;

use common::named::{assert_kind, default_opts, unique_name, Pending, HANG};
use shmpipe::named::{
    wait_available, Access, ClientOptions, Connected, Direction, NamedPipeClient, NamedPipeServer,
    ServerOptions, WaitTimeout, UNLIMITED_INSTANCES,
};
use shmpipe::{EndKind, ErrorKind, PipeType, ReadMode, WaitMode};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open(name: &str) -> NamedPipeClient {
    ClientOptions::new().open(name).expect("open a client end")
}

/// Client → server and server → client, one short write each way.
#[track_caller]
fn assert_data_flows(server: &NamedPipeServer, client: &NamedPipeClient, tag: &str) {
    let up = format!("up:{tag}");
    (&*client).write_all(up.as_bytes()).unwrap();
    let mut buf = vec![0u8; up.len()];
    (&*server).read_exact(&mut buf).unwrap();
    assert_eq!(buf, up.as_bytes());
    let down = format!("down:{tag}");
    (&*server).write_all(down.as_bytes()).unwrap();
    let mut buf = vec![0u8; down.len()];
    (&*client).read_exact(&mut buf).unwrap();
    assert_eq!(buf, down.as_bytes());
}

/// Re-arms a disconnected instance without waiting: a nonblocking
/// `connect` puts it back to Listening and reports PipeListening (SEM-035).
#[track_caller]
fn rearm(server: &NamedPipeServer) {
    server.set_nonblocking(true).unwrap();
    assert_kind(
        server.connect(),
        ErrorKind::PipeListening,
        "re-arming connect",
    );
    server.set_nonblocking(false).unwrap();
}

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

// -------------------------------------------- 9.3 instance states, connect

#[test]
fn sem_029_client_opens_before_connect() {
    let name = unique_name("s029");
    let server = default_opts().create(&name).unwrap();
    // No connect call yet: the fresh instance is Listening.
    let client = ClientOptions::new()
        .open(&name)
        .expect("open a fresh instance before connect");
    (&client).write_all(b"early").unwrap();
    let mut buf = [0u8; 5];
    (&server).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"early");
}

#[test]
fn sem_030_connect_after_client_reports_pipe_connected() {
    let name = unique_name("s030");
    let server = default_opts().create(&name).unwrap();
    let client = open(&name);
    assert_eq!(server.connect().unwrap(), Connected::Already);
    assert_data_flows(&server, &client, "s030");
    // Asking again still says the connection is good.
    assert_eq!(server.connect().unwrap(), Connected::Already);
}

#[test]
fn sem_031_blocking_connect_waits_for_a_client() {
    let name = unique_name("s031");
    let server = Arc::new(default_opts().create(&name).unwrap());
    let s = Arc::clone(&server);
    let connect = Pending::start("blocking connect", move || s.connect());
    connect.assert_pending("no client has opened");
    let client = open(&name);
    assert_eq!(connect.finish().unwrap(), Connected::New);
    assert_data_flows(&server, &client, "s031");
}

#[test]
fn sem_033_connect_after_client_left_is_no_data() {
    // Several rounds: a client that closes right after opening is the case
    // most likely to be mistaken for one still connected.
    for round in 0..40 {
        let name = unique_name("s033");
        let server = Arc::new(default_opts().create(&name).unwrap());
        let client = open(&name);
        drop(client); // ClientGone
        let s = Arc::clone(&server);
        let blocking =
            Pending::start("blocking connect on ClientGone", move || s.connect()).finish();
        assert_kind(
            blocking,
            ErrorKind::NoData,
            &format!("round {round}: blocking connect"),
        );
        server.set_nonblocking(true).unwrap();
        assert_kind(
            server.connect(),
            ErrorKind::NoData,
            &format!("round {round}: nonblocking connect"),
        );
        // disconnect + connect is the way out.
        server.disconnect().unwrap();
        assert_kind(server.connect(), ErrorKind::PipeListening, "re-arm");
        let client = open(&name);
        assert_eq!(server.connect().unwrap(), Connected::Already);
        server.set_nonblocking(false).unwrap();
        assert_data_flows(&server, &client, "s033");
    }
}

#[test]
fn sem_034_nonblocking_connect_without_client_is_pipe_listening() {
    let name = unique_name("s034");
    let server = default_opts()
        .wait_mode(WaitMode::Nonblocking)
        .create(&name)
        .unwrap();
    let t = Instant::now();
    assert_kind(server.connect(), ErrorKind::PipeListening, "first connect");
    assert_kind(server.connect(), ErrorKind::PipeListening, "second connect");
    assert!(t.elapsed() < HANG);
    // Still Listening: a client can attach, and connect then says so.
    let client = open(&name);
    assert_eq!(server.connect().unwrap(), Connected::Already);
    server.set_nonblocking(false).unwrap();
    assert_data_flows(&server, &client, "s034");
}

#[test]
fn sem_035_nonblocking_connect_after_disconnect_rearms() {
    let name = unique_name("s035");
    let server = default_opts().create(&name).unwrap();
    let first = open(&name);
    server.disconnect().unwrap();
    server.set_nonblocking(true).unwrap();
    assert_kind(
        server.connect(),
        ErrorKind::PipeListening,
        "after disconnect",
    );
    let second = ClientOptions::new()
        .open(&name)
        .expect("a client opens the re-armed instance");
    assert_eq!(server.connect().unwrap(), Connected::Already);
    server.set_nonblocking(false).unwrap();
    assert_data_flows(&server, &second, "s035");
    drop(first);
}

#[test]
fn sem_039_open_is_pipe_busy_while_connected_and_client_gone() {
    let name = unique_name("s039");
    let server = default_opts().create(&name).unwrap();
    let first = open(&name);
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "open while Connected",
    );
    drop(first); // ClientGone
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "open while ClientGone",
    );
    server.disconnect().unwrap();
    rearm(&server);
    let second = open(&name);
    assert_data_flows(&server, &second, "s039");
}

#[test]
fn sem_040_open_is_pipe_busy_between_disconnect_and_connect() {
    let name = unique_name("s040");
    let server = default_opts().create(&name).unwrap();
    let first = open(&name);
    server.disconnect().unwrap();
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "open after disconnect",
    );
    drop(first);
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "open after disconnect, orphan closed",
    );
    rearm(&server);
    let second = open(&name);
    assert_data_flows(&server, &second, "s040");
}

#[test]
fn sem_041_one_instance_serves_eight_clients_in_turn() {
    let name = unique_name("s041");
    let server = default_opts().create(&name).unwrap();
    let serve = Pending::start("server loop", move || -> Result<(), String> {
        for i in 0..8 {
            let at = |step: &'static str| move |e| format!("cycle {i}, server {step}: {e:?}");
            server.connect().map_err(at("connect"))?;
            let mut req = [0u8; 5];
            (&server).read_exact(&mut req).map_err(at("read"))?;
            assert_eq!(req, *format!("req{i:02}").as_bytes());
            (&server)
                .write_all(format!("rep{i:02}").as_bytes())
                .map_err(at("write"))?;
            server.flush_buffers().map_err(at("flush"))?;
            server.disconnect().map_err(at("disconnect"))?;
        }
        Ok(())
    });
    let clients = (|| -> Result<(), String> {
        for i in 0..8 {
            let at = |step: &'static str| move |e| format!("cycle {i}, client {step}: {e:?}");
            // Bounded: if the server loop failed, this is where it shows.
            wait_available(&name, WaitTimeout::Duration(Duration::from_secs(5)))
                .map_err(at("wait"))?;
            let client = ClientOptions::new().open(&name).map_err(at("open"))?;
            (&client)
                .write_all(format!("req{i:02}").as_bytes())
                .map_err(at("write"))?;
            let mut rep = [0u8; 5];
            (&client).read_exact(&mut rep).map_err(at("read"))?;
            assert_eq!(rep, *format!("rep{i:02}").as_bytes());
        }
        Ok(())
    })();
    // The server's error, if any, is the cause of the client's.
    serve.finish().unwrap();
    clients.unwrap();
}

/// The index of the one server that gained a client since `taken` was
/// last updated.
#[track_caller]
fn newly_attached(servers: &[Arc<NamedPipeServer>], taken: &mut [bool]) -> usize {
    let now: Vec<bool> = servers
        .iter()
        .map(|s| s.client_process_id().is_ok())
        .collect();
    let new: Vec<usize> = (0..servers.len())
        .filter(|&i| now[i] && !taken[i])
        .collect();
    assert_eq!(new.len(), 1, "exactly one instance gained the client");
    taken.copy_from_slice(&now);
    new[0]
}

#[test]
fn sem_042_clients_attach_to_the_longest_listening_instance() {
    let name = unique_name("s042");
    let servers: Vec<Arc<NamedPipeServer>> = (0..4)
        .map(|_| Arc::new(default_opts().max_instances(4).create(&name).unwrap()))
        .collect();
    // A connect pending on the newest instance must not move it forward.
    let d = Arc::clone(&servers[3]);
    let pending = Pending::start("connect on instance D", move || d.connect());
    pending.assert_pending("nobody opened yet");
    let mut taken = [false; 4];
    let mut clients = Vec::new();
    clients.push(open(&name));
    assert_eq!(newly_attached(&servers, &mut taken), 0, "first client: A");
    // A goes to the back of the queue.
    servers[0].disconnect().unwrap();
    rearm(&servers[0]);
    taken[0] = false;
    for want in [1, 2, 3, 0] {
        clients.push(open(&name));
        assert_eq!(newly_attached(&servers, &mut taken), want);
    }
    assert_eq!(pending.finish().unwrap(), Connected::New);
    assert_data_flows(&servers[3], &clients[3], "s042-d");
    assert_data_flows(&servers[0], &clients[4], "s042-a");
}

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

// ------------------------------------------------- 9.14 state and identity

#[test]
fn sem_136_state_of_a_fresh_server_end() {
    let name = unique_name("s136");
    let first = default_opts().max_instances(2).create(&name).unwrap();
    let st = first.state().unwrap();
    assert!(!st.nonblocking, "blocking");
    assert!(!st.message_read, "byte-read");
    assert_eq!(st.current_instances, 1);
    let second = default_opts().max_instances(2).create(&name).unwrap();
    assert_eq!(first.state().unwrap().current_instances, 2);
    assert_eq!(second.state().unwrap().current_instances, 2);
    let client = open(&name);
    assert_eq!(client.state().unwrap().current_instances, 2);
    drop(second);
    assert_eq!(first.state().unwrap().current_instances, 1);
}

#[test]
fn sem_139_pids_after_disconnect() {
    let name = unique_name("s139");
    let server = default_opts().create(&name).unwrap();
    let client = open(&name);
    let me = std::process::id();
    assert_eq!(server.client_process_id().unwrap(), me);
    assert_eq!(client.client_process_id().unwrap(), me);
    assert_eq!(client.server_process_id().unwrap(), me);
    server.disconnect().unwrap();
    assert_kind(
        server.client_process_id(),
        ErrorKind::NotFound,
        "client pid on a disconnected server end",
    );
    assert_eq!(server.server_process_id().unwrap(), me);
    assert_kind(
        client.client_process_id(),
        ErrorKind::PipeNotConnected,
        "client pid on the orphaned client end",
    );
    assert_kind(
        client.server_process_id(),
        ErrorKind::PipeNotConnected,
        "server pid on the orphaned client end",
    );
}

#[test]
fn sem_139_client_pid_on_a_listening_server_end_is_not_found() {
    let name = unique_name("s139b");
    let server = default_opts().create(&name).unwrap();
    assert_kind(
        server.client_process_id(),
        ErrorKind::NotFound,
        "never had a client",
    );
}

#[test]
fn sem_140_attribute_rights_of_one_way_ends() {
    let name = unique_name("s140in");
    let inbound = default_opts()
        .access(Direction::Inbound)
        .create(&name)
        .unwrap();
    assert_kind(
        inbound.set_state(None, Some(WaitMode::Nonblocking)),
        ErrorKind::AccessDenied,
        "set_state on an inbound server end",
    );
    assert_kind(
        inbound.set_nonblocking(true),
        ErrorKind::AccessDenied,
        "set_nonblocking on an inbound server end",
    );
    assert!(inbound.info().is_ok(), "inbound server end can get_info");

    let name = unique_name("s140out");
    let outbound = default_opts()
        .access(Direction::Outbound)
        .pipe_type(PipeType::Message)
        .max_instances(2)
        .create(&name)
        .unwrap();
    assert_kind(
        outbound.info(),
        ErrorKind::AccessDenied,
        "get_info on an outbound server end",
    );
    assert_kind(
        outbound.state(),
        ErrorKind::AccessDenied,
        "get_state on an outbound server end",
    );
    outbound
        .set_state(None, Some(WaitMode::Blocking))
        .expect("outbound server end has write-attributes");

    // READ alone cannot change the read mode ...
    let read_only = ClientOptions::new().write(false).open(&name).unwrap();
    assert_kind(
        read_only.set_read_mode(ReadMode::Message),
        ErrorKind::AccessDenied,
        "set_state with READ only",
    );
    // ... READ plus write-attributes can.
    let _other = default_opts()
        .access(Direction::Outbound)
        .pipe_type(PipeType::Message)
        .max_instances(2)
        .create(&name)
        .unwrap();
    let with_attrs = ClientOptions::new()
        .access(Access {
            write_attributes: true,
            ..Access::READ
        })
        .open(&name)
        .unwrap();
    with_attrs.set_read_mode(ReadMode::Message).unwrap();
    assert!(with_attrs.state().unwrap().message_read);
}

#[test]
fn sem_141_client_credentials() {
    let name = unique_name("s141");
    let server = default_opts().create(&name).unwrap();
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "Listening",
    );
    let client = open(&name);
    let c = server.client_credentials().expect("Connected");
    assert_eq!(c.pid, std::process::id());
    assert_eq!(c.uid, rustix::process::geteuid().as_raw());
    assert_eq!(c.gid, rustix::process::getegid().as_raw());
    drop(client);
    let after = server
        .client_credentials()
        .expect("still available when ClientGone");
    assert_eq!(after, c);
    server.disconnect().unwrap();
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "Disconnected",
    );
}

// ------------------------------------------- hostile rendezvous input

/// The abstract socket a pipe's server listens on: a copy of the crate's
/// private `PipeName::socket_name` for ASCII names (their key is the
/// uppercased name part). If the crate changes it, the check at the start
/// of the test says so.
fn socket_name(full: &str) -> String {
    let key = full
        .strip_prefix(r"\\.\pipe\")
        .expect("full name")
        .to_ascii_uppercase();
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
    let mut h2: u64 = 0x6c62_272e_07bb_0142;
    for b in key.bytes() {
        h1 = (h1 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        h2 = (h2 ^ u64::from(b))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(17);
    }
    format!("shmpipe-v1/{h1:016x}{h2:016x}")
}

fn raw_connect(full: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = SocketAddrUnix::new_abstract_name(socket_name(full).as_bytes())?;
    rustix::net::connect(&fd, &addr)?;
    Ok(fd)
}

/// Waits for the server to close `fd`, skipping any reply; fails the test
/// if it keeps the connection for [`HANG`].
#[track_caller]
fn assert_dropped(fd: &std::os::fd::OwnedFd, what: &str) {
    rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Recv, Some(HANG))
        .unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..4 {
        match rustix::net::recv(fd, &mut buf, rustix::net::RecvFlags::empty()) {
            Ok((0, _)) => return,
            Ok(_) => continue, // an error reply; the close follows
            Err(rustix::io::Errno::CONNRESET) => return,
            Err(e) => panic!("{what}: the server kept the connection ({e})"),
        }
    }
    panic!("{what}: the server kept answering");
}

#[test]
fn garbage_on_the_rendezvous_socket_is_dropped() {
    use rustix::net::SendFlags;
    let name = unique_name("garbage");
    let server = default_opts().create(&name).unwrap();
    raw_connect(&name).expect(
        "the test's copy of PipeName::socket_name no longer matches the crate: \
         a test hook exposing the socket name is needed",
    );
    let long_key = vec![b'K'; 3000];
    let mut bad_access = vec![1u8, 0xff];
    bad_access.extend_from_slice(b"X");
    let mut wrong_key = vec![1u8, 0x0f];
    wrong_key.extend_from_slice(b"NOT-THIS-PIPE");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", b"\x00\xde\xad\xbe\xef garbage".to_vec()),
        ("unknown request", vec![0x7f, 1, 2, 3]),
        ("a reply code as request", vec![0x81; 25]),
        ("OPEN with bad access bits", bad_access),
        ("OPEN for another key", wrong_key),
        ("truncated CREATE", vec![4u8]),
        ("oversized packet", long_key),
        ("empty packet", Vec::new()),
    ];
    for (what, bytes) in &cases {
        let fd = raw_connect(&name).unwrap();
        rustix::net::send(&fd, bytes, SendFlags::NOSIGNAL).unwrap();
        assert_dropped(&fd, what);
    }
    // A peer that sends nothing, and one that sends a descriptor with its
    // request, are dropped too.
    let silent = raw_connect(&name).unwrap();
    assert_dropped(&silent, "silent peer");
    {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage};
        use std::mem::MaybeUninit;
        let fd = raw_connect(&name).unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [std::os::fd::AsFd::as_fd(&devnull)];
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        let mut req = vec![1u8, 0x0f];
        req.extend_from_slice(
            name.strip_prefix(r"\\.\pipe\")
                .unwrap()
                .to_ascii_uppercase()
                .as_bytes(),
        );
        rustix::net::sendmsg(
            &fd,
            &[std::io::IoSlice::new(&req)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .unwrap();
        assert_dropped(&fd, "request with a descriptor");
    }
    // Nothing of it took the instance or hurt the name.
    let client = open(&name);
    assert_eq!(server.connect().unwrap(), Connected::Already);
    assert_data_flows(&server, &client, "after garbage");
}
