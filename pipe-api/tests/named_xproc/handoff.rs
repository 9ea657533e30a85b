//! Named-pipe client ends passed to other processes (`SCM_RIGHTS`, Windows'
//! `DuplicateHandle` into another process): writers in two processes on one
//! end (SEM-067, SEM-081), a message continued by another process
//! (SEM-070), modes shared by the duplicates, and the end staying open while
//! any process holds it.
//!
//! Children are this test binary run again (see [`common::named::Kid`]); each
//! connects to an abstract Unix socket the parent listens on and receives
//! the end there.

use crate::common;

use common::named::{assert_kind, child_done, default_opts, env, hear, say, unique_name, Kid};
use shmpipe::named::{ClientOptions, NamedPipeClient, NamedPipeServer};
use shmpipe::{ErrorKind, PipeType, ReadMode};
use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

const HANDOFF_ENV: &str = "SHMPIPE_HANDOFF_TEST_SOCKET";
const WRITER_ENV: &str = "SHMPIPE_HANDOFF_TEST_WRITER";

/// 100 000-byte blocks, as SEM-067 has them.
const BLOCK: usize = 100_000;
const BLOCKS_PER_WRITER: u8 = 3;
const MESSAGES_PER_WRITER: u16 = 40;

/// A socket a child connects to (by the name in [`HANDOFF_ENV`]) to be
/// handed ends.
struct Handoff {
    listener: UnixListener,
    name: String,
}

impl Handoff {
    fn new(tag: &str) -> Handoff {
        let name = unique_name(&format!("handoff-{tag}"));
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        Handoff {
            listener: UnixListener::bind_addr(&addr).unwrap(),
            name,
        }
    }

    /// Starts child `role` and accepts its connection.
    fn spawn(&self, role: &str, extra: &[(&str, String)]) -> (Kid, UnixStream) {
        let mut envs = vec![(HANDOFF_ENV, self.name.clone())];
        envs.extend(extra.iter().cloned());
        let kid = Kid::spawn(role, &envs);
        let (sock, _) = self.listener.accept().unwrap();
        (kid, sock)
    }
}

/// In a child: the client end the parent sends.
fn receive_end() -> NamedPipeClient {
    let addr = SocketAddr::from_abstract_name(env(HANDOFF_ENV).as_bytes()).unwrap();
    let sock = UnixStream::connect_addr(&addr).unwrap();
    NamedPipeClient::recv_from(&sock).unwrap()
}

fn block_value(writer: u8, i: u8) -> u8 {
    1 + writer * BLOCKS_PER_WRITER + i
}

fn write_blocks(end: &NamedPipeClient, writer: u8) {
    for i in 0..BLOCKS_PER_WRITER {
        let block = vec![block_value(writer, i); BLOCK];
        assert_eq!(end.send_msg(&block).unwrap(), BLOCK);
    }
}

/// A message that says who wrote it and its number, with a length and
/// content that differ from message to message.
fn numbered_message(writer: u8, seq: u16) -> Vec<u8> {
    let len = 3 + (usize::from(seq) * 397 + usize::from(writer) * 131) % 3000;
    let mut m = vec![writer];
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend((3..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(writer ^ seq as u8)));
    m
}

fn write_messages(end: &NamedPipeClient, writer: u8) {
    for seq in 0..MESSAGES_PER_WRITER {
        let m = numbered_message(writer, seq);
        assert_eq!(end.send_msg(&m).unwrap(), m.len());
    }
}

fn child_passed_writer() {
    let end = receive_end();
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    match env(WRITER_ENV).as_str() {
        "blocks" => write_blocks(&end, 1),
        "messages" => write_messages(&end, 1),
        other => panic!("unknown writer {other}"),
    }
    say("written");
    let _ = hear();
    child_done();
}

/// The parent's client end and the child's duplicate write at once; the
/// server end reads everything.
fn two_process_writers(server: &NamedPipeServer, client: NamedPipeClient, what: &str) -> Kid {
    let handoff = Handoff::new(what);
    let (mut kid, sock) = handoff.spawn("child_passed_writer", &[(WRITER_ENV, what.to_owned())]);
    client.send_to(&sock).unwrap();
    kid.expect("ready");
    kid.tell("go");
    std::thread::scope(|sc| {
        sc.spawn(|| match what {
            "blocks" => write_blocks(&client, 0),
            _ => write_messages(&client, 0),
        });
        match what {
            "blocks" => check_blocks(server),
            _ => check_messages(server),
        }
    });
    kid.expect("written");
    kid
}

fn check_blocks(server: &NamedPipeServer) {
    let writers = 2 * usize::from(BLOCKS_PER_WRITER);
    let mut stream = vec![0u8; BLOCK * writers];
    (&*server).read_exact(&mut stream).unwrap();
    let mut got: Vec<u8> = stream
        .chunks(BLOCK)
        .enumerate()
        .map(|(i, b)| {
            assert!(
                b.iter().all(|&x| x == b[0]),
                "block {i} is not contiguous: the other process's write cut into it"
            );
            b[0]
        })
        .collect();
    got.sort_unstable();
    let want: Vec<u8> = (0..2)
        .flat_map(|w| (0..BLOCKS_PER_WRITER).map(move |i| block_value(w, i)))
        .collect();
    assert_eq!(got, want, "every block arrives exactly once");
}

fn check_messages(server: &NamedPipeServer) {
    let mut next = [0u16; 2];
    let mut buf = vec![0u8; 4096];
    for _ in 0..2 * MESSAGES_PER_WRITER {
        let r = server.recv_msg(&mut buf).unwrap();
        assert!(r.complete, "a message was split");
        let m = &buf[..r.len];
        let w = m[0];
        assert!(w < 2, "no such writer {w}");
        let seq = u16::from_le_bytes([m[1], m[2]]);
        assert_eq!(seq, next[usize::from(w)], "writer {w}: lost or reordered");
        assert_eq!(m, numbered_message(w, seq), "message mixed with another");
        next[usize::from(w)] += 1;
    }
    assert_eq!(next, [MESSAGES_PER_WRITER; 2]);
}

fn sem_067_writers_in_two_processes_keep_blocks_contiguous() {
    // SEM-067: one client end, held by this process and by a child.
    let name = unique_name("ho067");
    let server = default_opts().create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    let kid = two_process_writers(&server, client, "blocks");
    kid.finish();
}

fn sem_081_messages_of_writers_in_two_processes_arrive_whole() {
    // SEM-081: message writes from two processes on one client end.
    let name = unique_name("ho081");
    let mut opts = default_opts();
    opts.pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message);
    let server = opts.create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    let kid = two_process_writers(&server, client, "messages");
    kid.finish();
}

fn child_passed_reader() {
    let end = receive_end();
    // The modes travel with the end: the parent set message-read mode.
    let state = end.state().unwrap();
    say(&format!("message_read={}", state.message_read));
    let mut buf = [0u8; 32];
    let r = end.recv_msg(&mut buf).unwrap();
    say(&format!(
        "rest {} complete={}",
        String::from_utf8_lossy(&buf[..r.len]),
        r.complete
    ));
    // A mode change here is a mode change of the one end.
    end.set_nonblocking(true).unwrap();
    say("nonblocking set");
    assert_eq!(hear().as_deref(), Some("exit"));
    child_done();
}

fn sem_070_partly_read_message_is_continued_by_another_process() {
    let name = unique_name("ho070");
    let mut opts = default_opts();
    opts.pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message);
    let server = opts.create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    client.set_read_mode(ReadMode::Message).unwrap();
    server.send_msg(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    let r = client.recv_msg(&mut buf).unwrap();
    assert_eq!((&buf[..r.len], r.complete), (&b"0123"[..], false));

    let handoff = Handoff::new("070");
    let (mut kid, sock) = handoff.spawn("child_passed_reader", &[]);
    client.send_to(&sock).unwrap();
    let keep = client.try_clone().unwrap();
    drop(client);
    kid.expect("message_read=true");
    // SEM-070: the other process reads the remainder of the message.
    kid.expect("rest 456789 complete=true");
    kid.expect("nonblocking set");
    assert!(
        keep.state().unwrap().nonblocking,
        "the duplicates in two processes share the end's modes"
    );
    drop(keep);
    // Our handles are closed; the child's keeps the end open.
    assert_eq!(server.send_msg(b"still open").unwrap(), 10);
    kid.tell("exit");
    kid.finish();
    // Now every handle of the client end, in every process, is closed.
    let mut buf = [0u8; 16];
    assert_kind(
        server.recv_msg(&mut buf),
        ErrorKind::BrokenPipe,
        "read after the last duplicate closed",
    );
}

fn anything_but_a_named_client_end_is_refused() {
    let (a, b) = UnixStream::pair().unwrap();
    let (reader, _writer) = shmpipe::pipe().unwrap();
    reader.send_to(&a).unwrap();
    assert_kind(
        NamedPipeClient::recv_from(&b),
        ErrorKind::AccessDenied,
        "an anonymous end",
    );

    // A named client end is not an anonymous end either.
    let name = unique_name("ho-refuse");
    let _server = default_opts().create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    client.send_to(&a).unwrap();
    assert_kind(
        shmpipe::PipeReader::recv_from(&b),
        ErrorKind::AccessDenied,
        "a named end taken for an anonymous one",
    );

    // The socket is still usable after the refusals: nothing was left
    // half-read.
    client.send_to(&a).unwrap();
    let again = NamedPipeClient::recv_from(&b).unwrap();
    assert_eq!(again.info().unwrap().end, shmpipe::EndKind::Client);
}

common::tests! {
    tests: [
        sem_067_writers_in_two_processes_keep_blocks_contiguous,
        sem_081_messages_of_writers_in_two_processes_arrive_whole,
        sem_070_partly_read_message_is_continued_by_another_process,
        anything_but_a_named_client_end_is_refused,
    ],
    children: [child_passed_writer, child_passed_reader],
}
