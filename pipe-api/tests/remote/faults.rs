//! Peers that die: every blocked call ends (BrokenPipe or
//! PipeNotConnected) within the idle timeout, never hangs.

use crate::common::named::{hear, say, unique_name, Kid};
use crate::common::Pending;
use crate::{ready, remote};
use shmpipe::named::{ClientOptions, ServerOptions};
use shmpipe::ErrorKind;

/// SIGKILL of the gateway while a remote read is blocked: the read fails
/// (BrokenPipe or PipeNotConnected) once the idle timeout passed, never
/// hangs.
fn gateway_killed_during_read() {
    if !ready("gateway_killed_during_read") {
        return;
    }
    let name = unique_name("remote-kill");
    let _server = ServerOptions::new().create(&name).unwrap();
    let client = ClientOptions::new().open(&remote("killme", &name)).unwrap();
    let read = Pending::start("remote read", move || client.recv_msg(&mut [0u8; 8]));
    read.assert_pending("nothing was written");
    crate::fixture().killme.lock().unwrap().kill();
    let r = read.finish();
    match r {
        Err(e) => assert!(
            matches!(
                shmpipe::Error::kind_of(&e),
                Some(ErrorKind::BrokenPipe | ErrorKind::PipeNotConnected)
            ),
            "read ended with {e:?}"
        ),
        Ok(m) => panic!("read returned {m:?} from a dead gateway"),
    }
}

fn broken(r: std::io::Result<impl std::fmt::Debug>, what: &str) {
    match r {
        Err(e) => assert!(
            matches!(
                shmpipe::Error::kind_of(&e),
                Some(ErrorKind::BrokenPipe | ErrorKind::PipeNotConnected)
            ),
            "{what}: ended with {e:?}"
        ),
        Ok(v) => panic!("{what}: returned {v:?}"),
    }
}

/// A remote client: opens `\\gw\pipe\<PIPE>`, says `open`, then holds
/// the end until it is killed.
fn child_remote_client() {
    let name = crate::common::named::env("PIPE");
    let _client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    say("open");
    while hear().is_some() {}
}

/// A local server of `<PIPE>`: says `ready`, then serves until killed.
fn child_local_server() {
    let name = crate::common::named::env("PIPE");
    let _server = ServerOptions::new().create(&name).unwrap();
    say("ready");
    while hear().is_some() {}
}

/// SIGKILL of the remote client while the local server's read is
/// blocked: the read fails once the gateway's idle timeout passed.
fn remote_client_killed_during_read() {
    if !ready("remote_client_killed_during_read") {
        return;
    }
    let name = unique_name("remote-client-kill");
    let server = ServerOptions::new().create(&name).unwrap();
    let mut kid = Kid::spawn("child_remote_client", &[("PIPE", name.clone())]);
    kid.expect("open");
    assert!(server.client_is_remote().unwrap());
    let read = Pending::start("server read", move || server.recv_msg(&mut [0u8; 8]));
    read.assert_pending("the remote client wrote nothing");
    kid.kill();
    broken(read.finish(), "server read after the remote client died");
}

/// SIGKILL of the local server while the remote client's read is blocked:
/// the gateway's end breaks, and so does the remote client's.
fn local_server_killed_during_read() {
    if !ready("local_server_killed_during_read") {
        return;
    }
    let name = unique_name("remote-server-kill");
    let mut kid = Kid::spawn("child_local_server", &[("PIPE", name.clone())]);
    kid.expect("ready");
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    let read = Pending::start("remote read", move || client.recv_msg(&mut [0u8; 8]));
    read.assert_pending("the server wrote nothing");
    kid.kill();
    broken(read.finish(), "remote read after the server died");
}

/// A remote client that writes far more than the pipe holds: opens
/// `\\gw\pipe\<PIPE>`, says `open`, keeps writing until it is killed.
fn child_remote_writer() {
    let name = crate::common::named::env("PIPE");
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    std::thread::spawn(move || {
        let chunk = vec![7u8; 64 << 10];
        while client.send_msg(&chunk).is_ok() {}
    });
    say("open");
    while hear().is_some() {}
}

/// The remote client dies while the gateway is blocked writing into a
/// full pipe the server does not read, and the server then writes more
/// than its quota: the write fails (the gateway let go of the end when the
/// connection died), never hangs: once the transport's window is full
/// nothing else would read the pipe.
fn remote_client_killed_while_the_gateway_waits_on_the_pipe() {
    if !ready("remote_client_killed_while_the_gateway_waits_on_the_pipe") {
        return;
    }
    let name = unique_name("remote-writer-kill");
    let server = ServerOptions::new()
        .quotas(4096, 4096)
        .create(&name)
        .unwrap();
    let mut kid = Kid::spawn("child_remote_writer", &[("PIPE", name.clone())]);
    kid.expect("open");
    // The pipe is full (its quota unread): the gateway's next write waits.
    let start = std::time::Instant::now();
    while server.peek(None).unwrap().total_available < 4096 {
        assert!(
            start.elapsed() < crate::common::HANG,
            "the pipe never filled"
        );
        std::thread::yield_now();
    }
    kid.kill();
    // Written until a write fails: what the transport's window holds is
    // accepted first (the quota covers the local pipe only).
    let write = Pending::start("server writes", move || {
        let chunk = vec![1u8; 64 << 10];
        loop {
            server.send_msg(&chunk)?;
        }
    });
    let r: std::io::Result<()> = write.finish();
    match r {
        Err(e) => assert!(
            matches!(
                shmpipe::Error::kind_of(&e),
                Some(ErrorKind::BrokenPipe | ErrorKind::NoData | ErrorKind::PipeNotConnected)
            ),
            "server write ended with {e:?}"
        ),
        Ok(()) => unreachable!(),
    }
}

/// A remote client that writes 512 KiB (far more than the pipe holds),
/// says `written`, closes its end when told `close`, says `closed`, and
/// keeps its connection until its stdin closes.
fn child_remote_closer() {
    let name = crate::common::named::env("PIPE");
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    let chunk = vec![7u8; 64 << 10];
    for _ in 0..8 {
        client.send_msg(&chunk).unwrap();
    }
    say("written");
    assert_eq!(hear().as_deref(), Some("close"));
    drop(client);
    say("closed");
    while hear().is_some() {}
}

/// The remote client closes its end (its connection stays) while the
/// gateway is blocked writing into a full pipe the server does not read;
/// the server then writes until a write fails, which it must: the gateway
/// lets go of the end once the client stopped reading the stream.
fn remote_client_closes_while_the_gateway_waits_on_the_pipe() {
    if !ready("remote_client_closes_while_the_gateway_waits_on_the_pipe") {
        return;
    }
    let name = unique_name("remote-closer");
    let server = ServerOptions::new()
        .quotas(4096, 4096)
        .create(&name)
        .unwrap();
    let mut kid = Kid::spawn("child_remote_closer", &[("PIPE", name.clone())]);
    kid.expect("written");
    let start = std::time::Instant::now();
    while server.peek(None).unwrap().total_available < 4096 {
        assert!(
            start.elapsed() < crate::common::HANG,
            "the pipe never filled"
        );
        std::thread::yield_now();
    }
    kid.tell("close");
    kid.expect("closed");
    let write = Pending::start("server writes", move || {
        let chunk = vec![1u8; 64 << 10];
        loop {
            server.send_msg(&chunk)?;
        }
    });
    let r: std::io::Result<()> = write.finish();
    match r {
        Err(e) => assert!(
            matches!(
                shmpipe::Error::kind_of(&e),
                Some(ErrorKind::BrokenPipe | ErrorKind::NoData | ErrorKind::PipeNotConnected)
            ),
            "server write ended with {e:?}"
        ),
        Ok(()) => unreachable!(),
    }
    kid.finish();
}

/// Through a relay that drops every fifth packet, data arrives whole;
/// then the relay drops everything, and blocked reads on both sides end
/// (BrokenPipe or PipeNotConnected) within the idle timeout.
fn lossy_then_blackholed_network() {
    if !ready("lossy_then_blackholed_network") {
        return;
    }
    use crate::{RELAY, RELAY_BLACKHOLE, RELAY_LOSSY};
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    RELAY.store(RELAY_LOSSY, Ordering::SeqCst);
    let name = unique_name("remote-relay");
    let server = ServerOptions::new()
        .quotas(1 << 20, 1 << 20)
        .create(&name)
        .unwrap();
    let mut client = ClientOptions::new().open(&remote("relay", &name)).unwrap();
    let up = crate::common::pattern(300_000, 3);
    let down = crate::common::pattern(300_000, 5);

    let (up2, down2) = (up, down);
    let server = crate::common::within("data both ways over a lossy network", move || {
        let sent = up2.clone();
        let writer = std::thread::spawn(move || {
            client.write_all(&sent).unwrap();
            client
        });
        let mut got = vec![0u8; up2.len()];
        (&server).read_exact(&mut got).unwrap();
        assert!(got == up2, "upstream data differs");
        let mut client = writer.join().unwrap();
        (&server).write_all(&down2).unwrap();
        let mut got = vec![0u8; down2.len()];
        client.read_exact(&mut got).unwrap();
        assert!(got == down2, "downstream data differs");
        (server, client)
    });
    let (server, client) = server;
    let client_read = Pending::start("remote read", move || client.recv_msg(&mut [0u8; 8]));
    let server_read = Pending::start("server read", move || server.recv_msg(&mut [0u8; 8]));
    client_read.assert_pending("nothing was written");
    server_read.assert_pending("nothing was written");
    RELAY.store(RELAY_BLACKHOLE, Ordering::SeqCst);
    broken(client_read.finish(), "remote read with the network gone");
    broken(server_read.finish(), "server read with the network gone");
}

/// A remote client: opens `\\gw\pipe\<PIPE>`, writes `data`, says
/// `flushing` and flushes (the server never reads it) until it is killed.
fn child_remote_flusher() {
    let name = crate::common::named::env("PIPE");
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    client.send_msg(b"data").unwrap();
    say("flushing");
    let _ = client.flush_buffers();
    say("flush ended");
    while hear().is_some() {}
}

/// The remote client dies while its flush waits (the gateway waits in a
/// local flush for a server that does not read): the gateway lets go of the
/// end (its flush is cancelled), so the server's writes then fail, never
/// hang.
fn remote_client_killed_during_flush() {
    if !ready("remote_client_killed_during_flush") {
        return;
    }
    let name = unique_name("remote-flush-kill");
    let server = ServerOptions::new()
        .quotas(4096, 4096)
        .create(&name)
        .unwrap();
    let mut kid = Kid::spawn("child_remote_flusher", &[("PIPE", name.clone())]);
    kid.expect("flushing");
    let start = std::time::Instant::now();
    while !matches!(server.peek(None), Ok(p) if p.total_available >= 4) {
        assert!(start.elapsed() < crate::common::HANG, "no data came");
        std::thread::yield_now();
    }
    kid.kill();
    let write = Pending::start("server writes", move || {
        let chunk = vec![1u8; 64 << 10];
        loop {
            server.send_msg(&chunk)?;
        }
    });
    let r: std::io::Result<()> = write.finish();
    broken_or_no_data(r);
}

fn broken_or_no_data(r: std::io::Result<()>) {
    match r {
        Err(e) => assert!(
            matches!(
                shmpipe::Error::kind_of(&e),
                Some(ErrorKind::BrokenPipe | ErrorKind::NoData | ErrorKind::PipeNotConnected)
            ),
            "server write ended with {e:?}"
        ),
        Ok(()) => unreachable!(),
    }
}

crate::common::tests! {
    tests: [remote_client_killed_during_flush, lossy_then_blackholed_network, remote_client_closes_while_the_gateway_waits_on_the_pipe, remote_client_killed_while_the_gateway_waits_on_the_pipe, gateway_killed_during_read, remote_client_killed_during_read, local_server_killed_during_read],
    children: [child_remote_flusher, child_remote_closer, child_remote_writer, child_remote_client, child_local_server],
}
