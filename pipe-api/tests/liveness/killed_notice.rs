//! A blocked read whose peer process is SIGKILLed gets `BrokenPipe` from
//! the kernel's notice (the engine's inotify watcher), not from a park
//! slice (the error itself, not `Read`'s `Ok(0)`): the waiting ends park
//! with ten-minute slices, so only the watcher
//! can end the wait within the hang guard. Anonymous pipes (a read, and a
//! flush: a write's wait) and named pipes (server reading, client killed;
//! client reading, server killed).
//!
//! Children are this test binary run again (`child_*` entry points); every
//! one of them is killed by the parent.

use crate::common;

use common::named::{assert_kind, env, hear, say, unique_name, Kid};
use common::{child_command, Pending, TOKEN_ENV};
use shmpipe::named::{ClientOptions, ServerOptions};
use shmpipe::{CommandExt as _, ErrorKind, PipeBuilder, PipeReader, PipeWriter, WaitPolicy};
use std::io::Write as _;
use std::time::Duration;

const NAME_ENV: &str = "SHMPIPE_KILLED_NOTICE_NAME";

/// Only a notify ends a park under this policy within the hang guard.
const PARK_LONG: WaitPolicy = WaitPolicy {
    spin: Some(Duration::ZERO),
    park_slice: Duration::from_secs(600),
};

/// Child: holds an inherited write end, never writes, until killed.
fn child_notice_hold_writer() {
    let _w = PipeWriter::from_inherited(&env(TOKEN_ENV)).unwrap();
    loop {
        std::thread::park();
    }
}

/// Child: holds an inherited read end, never reads, until killed.
fn child_notice_hold_reader() {
    let _r = PipeReader::from_inherited(&env(TOKEN_ENV)).unwrap();
    loop {
        std::thread::park();
    }
}

/// Child: a client of the parent's pipe that never writes nor reads.
fn child_notice_client() {
    let _c = ClientOptions::new().open(&env(NAME_ENV)).unwrap();
    say("ready");
    let _ = hear();
    panic!("the parent kills us");
}

/// Child: a server of the pipe that never writes nor reads.
fn child_notice_server() {
    let server = ServerOptions::new().create(&env(NAME_ENV)).unwrap();
    say("created");
    server.connect().unwrap();
    say("connected");
    let _ = hear();
    panic!("the parent kills us");
}

/// Anonymous pipe: the only write end is in a child; the parent's read
/// waits, the child is SIGKILLed, the read fails with `BrokenPipe`.
fn anonymous_read_sees_the_killed_writer() {
    let (mut r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    r.set_wait_policy(PARK_LONG);
    let mut cmd = child_command("child_notice_hold_writer");
    let token = cmd.inherit_end(&w).unwrap();
    let mut child = cmd.env(TOKEN_ENV, token).spawn().unwrap();
    drop(cmd);
    drop(w);
    let read = Pending::start("anonymous read", move || r.read_pipe(&mut [0u8; 64]));
    read.assert_pending("the child holds the write end");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_kind(read.finish(), ErrorKind::BrokenPipe, "read after the kill");
}

/// Anonymous pipe: the only read end is in a child; the parent's
/// `flush_buffers` waits for it to read what was written, the child is
/// SIGKILLed, the flush fails with `BrokenPipe` (a blocked write's wait).
fn anonymous_flush_sees_the_killed_reader() {
    let (r, mut w) = PipeBuilder::new().inheritable(true).build().unwrap();
    w.set_wait_policy(PARK_LONG);
    let mut cmd = child_command("child_notice_hold_reader");
    let token = cmd.inherit_end(&r).unwrap();
    let mut child = cmd.env(TOKEN_ENV, token).spawn().unwrap();
    drop(cmd);
    drop(r);
    assert_eq!(w.write(&[7u8; 100]).unwrap(), 100);
    let flush = Pending::start("anonymous flush", move || w.flush_buffers());
    flush.assert_pending("the child holds the read end and reads nothing");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_kind(
        flush.finish(),
        ErrorKind::BrokenPipe,
        "flush after the kill",
    );
}

/// Named pipe: the parent's server reads, its client (a child) is
/// SIGKILLed: `BrokenPipe`.
fn server_read_sees_the_killed_client() {
    let name = unique_name("killed-notice-server");
    let server = ServerOptions::new()
        .wait_policy(PARK_LONG)
        .create(&name)
        .unwrap();
    let mut kid = Kid::spawn("child_notice_client", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    server.connect().unwrap();
    let read = Pending::start("server read", move || server.recv_msg(&mut [0u8; 64]));
    read.assert_pending("the client is alive");
    kid.kill();
    assert_kind(read.finish(), ErrorKind::BrokenPipe, "read after the kill");
}

/// Named pipe: the parent's client reads, the server (a child) is
/// SIGKILLed: `BrokenPipe`.
fn client_read_sees_the_killed_server() {
    let name = unique_name("killed-notice-client");
    let mut kid = Kid::spawn("child_notice_server", &[(NAME_ENV, name.clone())]);
    kid.expect("created");
    let client = ClientOptions::new()
        .wait_policy(PARK_LONG)
        .open(&name)
        .unwrap();
    kid.expect("connected");
    let read = Pending::start("client read", move || client.recv_msg(&mut [0u8; 64]));
    read.assert_pending("the server is alive");
    kid.kill();
    assert_kind(read.finish(), ErrorKind::BrokenPipe, "read after the kill");
}

common::tests! {
    tests: [
        anonymous_read_sees_the_killed_writer,
        anonymous_flush_sees_the_killed_reader,
        server_read_sees_the_killed_client,
        client_read_sees_the_killed_server,
    ],
    children: [child_notice_hold_writer, child_notice_hold_reader, child_notice_client, child_notice_server],
}
