//! Processes killed with SIGKILL while their peers wait on them.

use crate::common;

use super::support::*;
use common::named::{
    assert_kind, child_done, default_opts, env, hear, say, unique_name, Kid, HANG,
};
use shmpipe::named::{wait_available, ClientOptions, Connected, WaitTimeout};
use shmpipe::ErrorKind;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

// ------------------------------------------------------ killed processes

fn child_kill_server() {
    let _server = default_opts().create(&env(NAME_ENV)).unwrap();
    say("ready");
    // Serve nothing; wait to be killed.
    while hear().is_some() {}
    child_done();
}

fn killed_server_process_releases_its_clients_and_its_name() {
    let name = unique_name("xkillsrv");
    let mut kid = Kid::spawn("child_kill_server", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let client = Arc::new(ClientOptions::new().open(&name).unwrap());
    let c = Arc::clone(&client);
    let read = timed("client read", move || {
        let mut buf = [0u8; 16];
        c.recv_msg(&mut buf)
    });
    // 5000 bytes against a quota of 1024, with nobody reading: pending.
    let c = Arc::clone(&client);
    let write = timed("client write", move || c.send_msg(&[7u8; 5000]));
    let n = name.clone();
    let wait = timed("wait_available", move || {
        wait_available(&n, WaitTimeout::Duration(HANG))
    });
    read.assert_pending("nothing was written");
    write.assert_pending("nothing was read");
    wait.assert_pending("the only instance is Connected");

    let killed = Instant::now();
    kid.kill();
    let (r, at) = read.finish();
    notice("pending read", killed, at);
    assert_kind(r, ErrorKind::BrokenPipe, "pending read");
    let (r, at) = write.finish();
    notice("pending write", killed, at);
    assert_kind(r, ErrorKind::BrokenPipe, "pending write");
    let (r, at) = wait.finish();
    notice("pending wait_available", killed, at);
    assert_kind(r, ErrorKind::FileNotFound, "pending wait_available");
    assert_kind(client.send_msg(b"x"), ErrorKind::NoData, "new write");
    let mut buf = [0u8; 4];
    assert_kind(client.recv_msg(&mut buf), ErrorKind::BrokenPipe, "new read");

    // The name is free again, even while the old client holds its end.
    let server = default_opts()
        .create(&name)
        .expect("a new server takes the name");
    let fresh = ClientOptions::new().open(&name).unwrap();
    assert_eq!(server.connect().unwrap(), Connected::Already);
    assert_data_flows(&server, &fresh, "after server kill");
}

fn child_kill_client() {
    let client = ClientOptions::new().open(&env(NAME_ENV)).unwrap();
    (&client).write_all(b"queued-bytes").unwrap();
    say("ready");
    while hear().is_some() {}
    drop(client);
    child_done();
}

fn killed_client_process_releases_the_server() {
    let name = unique_name("xkillcli");
    let server = Arc::new(default_opts().create(&name).unwrap());
    let mut kid = Kid::spawn("child_kill_client", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let child = kid.pid();
    assert_eq!(server.connect().unwrap(), Connected::Already);
    let mut buf = [0u8; 12];
    (&*server).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"queued-bytes");
    let s = Arc::clone(&server);
    let read = timed("server read", move || {
        let mut buf = [0u8; 16];
        s.recv_msg(&mut buf)
    });
    read.assert_pending("the client wrote nothing more");

    let killed = Instant::now();
    kid.kill();
    let (r, at) = read.finish();
    notice("pending server read", killed, at);
    assert_kind(r, ErrorKind::BrokenPipe, "pending server read");
    assert_kind(
        server.send_msg(b"x"),
        ErrorKind::NoData,
        "write to a killed client",
    );
    assert_kind(
        server.connect(),
        ErrorKind::NoData,
        "connect after the client died",
    );
    assert_eq!(server.client_process_id().unwrap(), child);
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "ClientGone instance",
    );

    // The instance serves a new client after disconnect + connect.
    server.disconnect().unwrap();
    server.set_nonblocking(true).unwrap();
    assert_kind(server.connect(), ErrorKind::PipeListening, "re-arm");
    server.set_nonblocking(false).unwrap();
    let fresh = ClientOptions::new().open(&name).unwrap();
    assert_data_flows(&server, &fresh, "after client kill");
}

fn killed_server_process_with_a_waiting_connectless_client() {
    // A client waits for an instance of a name whose owner is killed before
    // any instance frees up; afterwards the name can be created again with
    // other attributes.
    let name = unique_name("xkillwait");
    let mut kid = Kid::spawn("child_kill_server", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let holder = ClientOptions::new().open(&name).unwrap();
    let n = name.clone();
    let wait = timed("wait_available", move || {
        wait_available(&n, WaitTimeout::Forever)
    });
    wait.assert_pending("the only instance is Connected");
    let killed = Instant::now();
    kid.kill();
    let (r, at) = wait.finish();
    notice("wait_available(Forever)", killed, at);
    assert_kind(r, ErrorKind::FileNotFound, "wait on a vanished name");
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::FileNotFound,
        "open after the owner died",
    );
    let server = default_opts()
        .access(shmpipe::named::Direction::Outbound)
        .create(&name)
        .expect("re-create with another direction");
    let reader = ClientOptions::new().write(false).open(&name).unwrap();
    (&server).write_all(b"out").unwrap();
    let mut buf = [0u8; 3];
    (&reader).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"out");
    drop(holder);
}

fn child_idle_client() {
    let _client = ClientOptions::new().open(&env(NAME_ENV)).unwrap();
    say("ready");
    while hear().is_some() {}
    child_done();
}

fn killed_client_process_fails_the_next_server_write() {
    // The survivor only writes: nothing of its own has noticed the death
    // before the write.
    let name = unique_name("xkillw");
    // A quota large enough that the rounds below never wait on it.
    let server = default_opts()
        .quotas(1 << 20, 1 << 20)
        .create(&name)
        .unwrap();
    let mut kid = Kid::spawn("child_idle_client", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    assert_eq!(server.connect().unwrap(), Connected::Already);
    (&server).write_all(b"before").unwrap();
    kid.kill();
    // A killed process leaves no hang-up hint; a write that need not wait
    // asks the kernel once a coarse-clock tick passed since it last asked
    // (pipe-api/src/datapath/), so the first write of a round (20 ms after the
    // last) gets NoData, and it stays.
    // (In rounds: a child that another test forks at the same moment holds
    // copies of our descriptors until it execs.)
    let mut failed = None;
    for round in 0..100 {
        if let Some((i, e)) = (0..64).find_map(|i| server.send_msg(b"after").err().map(|e| (i, e)))
        {
            failed = Some((round, i, e));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (round, i, e) = failed.expect("no NoData within 100 rounds of 64 writes after the kill");
    println!("NoData at write {i} of round {round} after the kill");
    assert_kind(
        Err::<(), _>(e),
        ErrorKind::NoData,
        "write after the client was killed",
    );
    assert_kind(server.send_msg(b"again"), ErrorKind::NoData, "next write");
}

common::tests! {
    tests: [
        killed_server_process_releases_its_clients_and_its_name,
        killed_client_process_releases_the_server,
        killed_server_process_with_a_waiting_connectless_client,
        killed_client_process_fails_the_next_server_write,
    ],
    children: [child_kill_server, child_kill_client, child_idle_client],
}
