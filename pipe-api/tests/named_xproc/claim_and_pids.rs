//! The atomic claim of a Listening instance by clients in several
//! processes (SEM-043), and the process ids each end reports (SEM-137,
//! SEM-138), also across pid namespaces.

use crate::common;

use super::support::*;
use common::named::{assert_kind, child_done, default_opts, env, hear, say, unique_name, Kid};
use shmpipe::named::{ClientOptions, Connected};
use shmpipe::ErrorKind;
use std::io::{Read, Write};

// ------------------------------------------------- SEM-043 atomic claim

fn child_race_opener() {
    let name = env(NAME_ENV);
    while let Some(cmd) = hear() {
        assert_eq!(cmd, "go");
        let r = ClientOptions::new().open(&name);
        say(&outcome(&r));
        drop(r);
    }
    child_done();
}

fn sem_043_two_processes_race_for_one_listening_instance() {
    let name = unique_name("x043");
    let server = default_opts().create(&name).unwrap();
    server.set_nonblocking(true).unwrap();
    let envs = [(NAME_ENV, name.clone())];
    let mut kids = [
        Kid::spawn("child_race_opener", &envs),
        Kid::spawn("child_race_opener", &envs),
    ];
    let mut wins = [0; 2];
    for round in 0..25 {
        for k in kids.iter_mut() {
            k.tell("go");
        }
        let said = [kids[0].listen(), kids[1].listen()];
        let winner = match (said[0].as_str(), said[1].as_str()) {
            ("ok", "PipeBusy") => 0,
            ("PipeBusy", "ok") => 1,
            _ => panic!("round {round}: one open must win, the other get PipeBusy: {said:?}"),
        };
        wins[winner] += 1;
        assert_eq!(
            server.client_process_id().unwrap(),
            kids[winner].pid(),
            "round {round}: the instance belongs to the winner"
        );
        server.disconnect().unwrap();
        assert_kind(server.connect(), ErrorKind::PipeListening, "re-arm");
    }
    println!("wins per process: {wins:?}");
    for k in kids {
        k.finish();
    }
}

// --------------------------------------------------- SEM-137/138 pids

fn child_pid_client() {
    let client = ClientOptions::new().open(&env(NAME_ENV)).unwrap();
    say(&format!(
        "pids {} {}",
        client.client_process_id().unwrap(),
        client.server_process_id().unwrap()
    ));
    // Hold the client end until the parent has looked.
    let _ = hear();
    drop(client);
    child_done();
}

fn child_pid_server() {
    let server = default_opts().create(&env(NAME_ENV)).unwrap();
    say("ready");
    assert_eq!(hear().as_deref(), Some("close"));
    assert_eq!(server.connect().unwrap(), Connected::Already);
    drop(server);
    say("closed");
    let _ = hear();
    child_done();
}

fn sem_137_pids_of_opener_and_creator_in_different_processes() {
    let name = unique_name("x137");
    let me = std::process::id();
    let server = default_opts().create(&name).unwrap();
    let mut kid = Kid::spawn(
        "child_pid_client",
        &[(NAME_ENV, name.clone()), (PARENT_ENV, me.to_string())],
    );
    let child = kid.pid();
    assert_eq!(
        kid.listen(),
        format!("pids {child} {me}"),
        "client end's view"
    );
    assert_eq!(server.client_process_id().unwrap(), child);
    assert_eq!(server.server_process_id().unwrap(), me);
    assert_eq!(server.client_credentials().unwrap().pid, child);
    assert_ne!(child, me);
    kid.finish();
}

/// `unshare` with a new pid namespace (and its own /proc), when this
/// machine lets us make one; otherwise why not.
fn pid_namespace_wrapper() -> Result<&'static [&'static str], String> {
    const WRAPPER: &[&str] = &["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"];
    let out = std::process::Command::new(WRAPPER[0])
        .args(&WRAPPER[1..])
        .arg("true")
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(WRAPPER)
    } else {
        Err(format!(
            "cannot create a pid namespace here (needs root or user namespaces): \
             unshare {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn child_namespaced_server() {
    // Our session leader is outside this pid namespace: the kernel's
    // session id for us is 0 here, as on container-based CI runners.
    let server = default_opts().create(&env(NAME_ENV)).unwrap();
    say("ready");
    server.connect().unwrap();
    let mut req = [0u8; 2];
    (&server).read_exact(&mut req).unwrap();
    assert_eq!(&req, b"hi");
    let reply = format!(
        "{} {} {}\n",
        std::process::id(),
        server.client_process_id().unwrap(),
        server.client_credentials().unwrap().pid
    );
    (&server).write_all(reply.as_bytes()).unwrap();
    let _ = hear();
    child_done();
}

/// A server in a pid namespace of its own serves a client outside it: the
/// handshake copes with the kernel's 0 (a session id, a peer pid that the
/// namespace cannot see), and each side's pids are the kernel's
/// translation into its own namespace, never the other side's numbering.
fn sem_137_pids_across_pid_namespaces() {
    let wrapper = match pid_namespace_wrapper() {
        Ok(w) => w,
        Err(why) => {
            common::require(false, "sem_137_pids_across_pid_namespaces", &why);
            return;
        }
    };
    let name = unique_name("x137ns");
    let mut kid = Kid::spawn_under(
        wrapper,
        "child_namespaced_server",
        &[(NAME_ENV, name.clone())],
    );
    kid.expect("ready");
    let client = ClientOptions::new().open(&name).unwrap();
    (&client).write_all(b"hi").unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n") {
        (&client).read_exact(&mut byte).unwrap();
        reply.push(byte[0]);
    }
    let reply = String::from_utf8(reply).unwrap();
    let mut parts = reply
        .trim_end()
        .split(' ')
        .map(|p| p.parse::<u32>().unwrap());
    let (inner_pid, client_pid_seen, cred_pid_seen) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    // We are outside the server's namespace: it cannot name us.
    assert_eq!(
        client_pid_seen, 0,
        "client pid as the namespaced server sees it"
    );
    assert_eq!(
        cred_pid_seen, 0,
        "credentials pid as the namespaced server sees it"
    );
    // The server's pid as we see it is a real pid of ours whose innermost
    // namespace pid is the one the server knows itself by.
    let server_pid = client.server_process_id().unwrap();
    assert_ne!(server_pid, 0);
    assert_ne!(
        server_pid, inner_pid,
        "the server's own numbering leaked through"
    );
    let status = std::fs::read_to_string(format!("/proc/{server_pid}/status")).unwrap();
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .expect("NSpid line");
    assert_eq!(
        nspid
            .split_whitespace()
            .last()
            .unwrap()
            .parse::<u32>()
            .unwrap(),
        inner_pid,
        "NSpid of {server_pid}: {nspid}"
    );
    drop(client);
    kid.finish();
}

fn sem_138_pids_survive_the_peer_closing() {
    // The client's process exits: the server end still names it.
    let name = unique_name("x138a");
    let me = std::process::id();
    let server = default_opts().create(&name).unwrap();
    let mut kid = Kid::spawn(
        "child_pid_client",
        &[(NAME_ENV, name.clone()), (PARENT_ENV, me.to_string())],
    );
    let child = kid.pid();
    assert_eq!(kid.listen(), format!("pids {child} {me}"));
    kid.finish();
    assert_kind(server.send_msg(b"x"), ErrorKind::NoData, "ClientGone");
    assert_eq!(
        server.client_process_id().unwrap(),
        child,
        "after ClientGone"
    );
    assert_eq!(server.server_process_id().unwrap(), me);

    // The server's process closes its end: the client end still names both.
    let name = unique_name("x138b");
    let mut kid = Kid::spawn("child_pid_server", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let child = kid.pid();
    let client = ClientOptions::new().open(&name).unwrap();
    assert_eq!(client.client_process_id().unwrap(), me);
    assert_eq!(client.server_process_id().unwrap(), child);
    kid.tell("close");
    kid.expect("closed");
    assert_kind(client.send_msg(b"x"), ErrorKind::NoData, "ServerGone");
    assert_eq!(client.client_process_id().unwrap(), me, "after ServerGone");
    assert_eq!(
        client.server_process_id().unwrap(),
        child,
        "after ServerGone"
    );
    kid.finish();
}

common::tests! {
    tests: [
        sem_043_two_processes_race_for_one_listening_instance,
        sem_137_pids_of_opener_and_creator_in_different_processes,
        sem_137_pids_across_pid_namespaces,
        sem_138_pids_survive_the_peer_closing,
    ],
    children: [child_race_opener, child_pid_client, child_pid_server, child_namespaced_server],
}
