//! The ported Windows samples (`examples/named_*.rs`) run against each
//! other across processes.

use crate::common;

#[allow(dead_code)]
#[path = "../../examples/named_call_client.rs"]
mod sample_call;
#[allow(dead_code)]
#[path = "../../examples/named_client.rs"]
mod sample_client;
#[allow(dead_code)]
#[path = "../../examples/named_server_multithreaded.rs"]
mod sample_server;
#[allow(dead_code)]
#[path = "../../examples/named_transact_client.rs"]
mod sample_transact;

use super::support::*;
use common::{child_command, child_done, wait_child, HANG};
use std::io::{self, BufRead, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;

// ---------------------------------------- the Windows samples, across processes

/// The requests the sample clients send: one short, one longer than the
/// samples' 512-byte buffers (it arrives and is answered in pieces).
fn sample_requests() -> [Vec<u8>; 2] {
    let long: Vec<u8> = (0..2000)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
        .collect();
    [b"Default message from client.".to_vec(), long]
}

fn child_sample_server() {
    let name = child_pipe();
    let clients = std::env::var(CLIENTS_ENV).ok().map(|v| v.parse().unwrap());
    let summary = sample_server::serve(&name, clients, || {
        println!("{READY}");
        io::stdout().flush().unwrap();
    })
    .unwrap();
    if let Some(n) = clients {
        assert_eq!(summary.clients, n);
        assert_eq!(summary.requests, n);
    }
    child_done();
}

fn child_sample_client() {
    let name = child_pipe();
    for req in sample_requests() {
        let reply = sample_client::exchange(&name, &req).unwrap();
        assert_eq!(reply, sample_server::reply_for(&req));
    }
    child_done();
}

fn child_sample_transact() {
    let name = child_pipe();
    for req in sample_requests() {
        let reply = sample_transact::transact_once(&name, &req).unwrap();
        assert_eq!(reply, sample_server::reply_for(&req));
    }
    child_done();
}

fn child_sample_call() {
    let name = child_pipe();
    let [short, long] = sample_requests();
    let reply = sample_call::call_once(&name, &short, sample_call::BUFSIZE).unwrap();
    assert_eq!(reply.data, sample_server::reply_for(&short));
    assert!(!reply.truncated);
    let reply = sample_call::call_once(&name, &long, sample_call::BUFSIZE).unwrap();
    assert_eq!(
        reply.data,
        sample_server::reply_for(&long)[..sample_call::BUFSIZE]
    );
    assert!(reply.truncated);
    child_done();
}

/// Starts the sample server in a child process and waits until it listens.
fn start_sample_server(name: &str, clients: Option<usize>) -> Child {
    let mut cmd = child_command("child_sample_server");
    cmd.env(PIPE_ENV, name).stdout(Stdio::piped());
    if let Some(n) = clients {
        cmd.env(CLIENTS_ENV, n.to_string());
    }
    let mut child = cmd.spawn().expect("spawn sample server");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Look for the child's line, then keep draining so the child never
        // blocks on a full pipe.
        let mut told = false;
        for line in io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !told && line.ends_with(READY) {
                told = tx.send(()).is_ok();
            }
        }
    });
    if rx.recv_timeout(HANG).is_err() {
        let _ = child.kill();
        let (_, stderr) = wait_child(child);
        panic!(
            "sample server never became ready; its stderr:\n{}",
            String::from_utf8_lossy(&stderr)
        );
    }
    child
}

fn samples_serve_concurrent_client_processes() {
    let name = unique("samples");
    // Two connections from each of the three client processes.
    let server = start_sample_server(&name, Some(6));
    let clients: Vec<Child> = [
        "child_sample_client",
        "child_sample_transact",
        "child_sample_call",
    ]
    .into_iter()
    .map(|t| spawn_child(t, &name))
    .collect();
    for c in clients {
        let (status, stderr) = wait_child(c);
        common::assert_child_ok(status, &stderr);
    }
    let (status, stderr) = wait_child(server);
    common::assert_child_ok(status, &stderr);
}

fn samples_server_stops_when_told_to_quit() {
    let name = unique("samples-quit");
    let server = start_sample_server(&name, None);
    let reply = sample_client::exchange(&name, sample_server::QUIT).unwrap();
    assert_eq!(reply, sample_server::reply_for(sample_server::QUIT));
    let (status, stderr) = wait_child(server);
    common::assert_child_ok(status, &stderr);
}

common::tests! {
    tests: [samples_serve_concurrent_client_processes, samples_server_stops_when_told_to_quit],
    children: [child_sample_server, child_sample_client, child_sample_transact, child_sample_call],
}
