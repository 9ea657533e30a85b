//! Spec 9.3: instance states and `connect` (SEM-029..042).

use crate::common;

use super::support::*;
use common::named::{assert_kind, default_opts, unique_name, Pending, HANG};
use shmpipe::named::{wait_available, ClientOptions, Connected, NamedPipeServer, WaitTimeout};
use shmpipe::{ErrorKind, WaitMode};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
