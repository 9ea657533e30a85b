//! `flush_buffers` across the network: a remote client's flush returns
//! once the server (on the gateway's machine) has read everything it
//! wrote, and fails if it never will; through a relay that delays every
//! packet, nothing a flush confirmed is lost when the network dies later.

use crate::common::named::unique_name;
use crate::common::Pending;
use crate::{ready, remote};
use shmpipe::named::{ClientOptions, ServerOptions};
use shmpipe::{ErrorKind, PipeType, ReadMode};

fn kind(r: &std::io::Result<()>) -> Option<ErrorKind> {
    r.as_ref().err().and_then(shmpipe::Error::kind_of)
}

/// The flush waits while the server has not read, and returns once it
/// has (not when the local bridge took the bytes).
fn remote_flush_waits_for_the_server() {
    if !ready("remote_flush_waits_for_the_server") {
        return;
    }
    let name = unique_name("remote-flush");
    let server = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .create(&name)
        .unwrap();
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    client.send_msg(b"first").unwrap();
    client.send_msg(b"second").unwrap();
    let flush = Pending::start("remote flush", move || {
        client.flush_buffers().map(|()| client)
    });
    flush.assert_pending("the server read nothing yet");
    let mut buf = [0u8; 16];
    let m = server.recv_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"first");
    flush.assert_pending("the server read only the first message");
    let m = server.recv_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"second");
    let client = flush.finish().expect("flush after the server read all");
    // Nothing unread: a flush returns at once, and again.
    client.flush_buffers().unwrap();
    client.flush_buffers().unwrap();
}

/// The async client's flush waits for the server too.
fn async_remote_flush_waits_for_the_server() {
    if !ready("async_remote_flush_waits_for_the_server") {
        return;
    }
    let name = unique_name("remote-async-flush");
    let server = ServerOptions::new().create(&name).unwrap();
    let far = remote("gw", &name);
    let flush = Pending::start("async remote flush", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = shmpipe::tokio::NamedPipeClient::open(&ClientOptions::new(), &far)?;
            c.send_msg(b"async data").await?;
            c.flush_buffers().await
        })
    });
    // The data reached the server's pipe (long after the local bridge
    // took it): the flush must still wait, for the server's read.
    let start = std::time::Instant::now();
    while !matches!(server.peek(None), Ok(p) if p.total_available >= 10) {
        assert!(start.elapsed() < crate::common::HANG, "no data came");
        std::thread::yield_now();
    }
    flush.assert_pending("the server read nothing yet");
    let mut buf = [0u8; 10];
    std::io::Read::read_exact(&mut &server, &mut buf).unwrap();
    assert_eq!(&buf, b"async data");
    flush
        .finish()
        .expect("async flush after the server read all");
}

/// The server closes without reading: the waiting flush fails
/// (BrokenPipe), it never returns `Ok` for bytes nobody read.
fn remote_flush_fails_when_the_server_leaves_unread() {
    if !ready("remote_flush_fails_when_the_server_leaves_unread") {
        return;
    }
    let name = unique_name("remote-flush-close");
    let server = ServerOptions::new().create(&name).unwrap();
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    client.send_msg(b"never read").unwrap();
    let flush = Pending::start("remote flush", move || client.flush_buffers());
    flush.assert_pending("the server read nothing");
    drop(server);
    let r = flush.finish();
    assert!(
        matches!(
            kind(&r),
            Some(ErrorKind::BrokenPipe | ErrorKind::PipeNotConnected)
        ),
        "flush of unread bytes ended with {r:?}"
    );
}

/// Through a relay that delays every packet, each message the client's
/// flush confirmed is in the server's hands; then the relay drops
/// everything: the next flush fails within the idle timeout (never `Ok`,
/// never a hang), and the server holds every confirmed message, in order.
fn nothing_flushed_is_lost_on_a_slow_network_that_dies() {
    if !ready("nothing_flushed_is_lost_on_a_slow_network_that_dies") {
        return;
    }
    use crate::{RELAY_BLACKHOLE, RELAY_DELAY, SLOW_RELAY};
    use std::sync::atomic::Ordering;
    SLOW_RELAY.store(RELAY_DELAY, Ordering::SeqCst);
    let name = unique_name("remote-flush-delay");
    let server = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .create(&name)
        .unwrap();
    let client = ClientOptions::new().open(&remote("slow", &name)).unwrap();
    client.set_read_mode(ReadMode::Message).unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok(m) = server.recv_msg(&mut buf) {
            got.push(buf[..m.len].to_vec());
        }
        got
    });
    let mut confirmed = 0u32;
    for i in 0..20u32 {
        client.send_msg(&i.to_le_bytes()).unwrap();
        client.flush_buffers().unwrap();
        confirmed = i + 1;
    }
    SLOW_RELAY.store(RELAY_BLACKHOLE, Ordering::SeqCst);
    client.send_msg(b"lost").unwrap();
    let flush = Pending::start("flush with the network gone", move || {
        client.flush_buffers()
    });
    let r = flush.finish();
    assert!(
        matches!(
            kind(&r),
            Some(ErrorKind::BrokenPipe | ErrorKind::PipeNotConnected)
        ),
        "flush over a dead network ended with {r:?}"
    );
    let got = crate::common::within("the server's reads end", move || reader.join().unwrap());
    assert!(
        got.len() >= confirmed as usize,
        "{} < {confirmed}",
        got.len()
    );
    for (i, m) in got.iter().take(confirmed as usize).enumerate() {
        assert_eq!(m[..], (i as u32).to_le_bytes(), "message {i}");
    }
}

/// What a completed write means across the network is bounded: a peer
/// that writes into a stream whose pipe's server reads nothing gets its
/// writes accepted for at most the stream's QUIC window
/// (`shmpipe::remote::STREAM_WINDOW`, 512 KiB) plus what the gateway holds
/// (a frame, the pipe's quota): 1 MiB stays pending (with quinn's default
/// window, 1.25 MB, it was all accepted at once).
fn writes_in_flight_are_bounded_by_the_stream_window() {
    if !ready("writes_in_flight_are_bounded_by_the_stream_window") {
        return;
    }
    const TOTAL: usize = 1 << 20;
    assert!(shmpipe::remote::STREAM_WINDOW as usize + (64 << 10) + 4096 < TOTAL);
    let name = unique_name("remote-window");
    let server = ServerOptions::new()
        .quotas(4096, 4096)
        .create(&name)
        .unwrap();
    let mut bytes = crate::trust::open_frame(&name);
    for _ in 0..TOTAL / (64 << 10) {
        bytes.extend(shmpipe::remote::frame::Frame::Data(vec![7u8; 64 << 10]).encode());
    }
    let write = Pending::start("a raw peer writes 1 MiB", move || {
        crate::trust::raw_exchange(true, &[bytes])
    });
    // The gateway opened the pipe and filled it: the peer's writes are
    // now held by flow control alone.
    let start = std::time::Instant::now();
    while !matches!(server.peek(None), Ok(p) if p.total_available >= 4096) {
        assert!(
            start.elapsed() < crate::common::HANG,
            "the pipe never filled"
        );
        std::thread::yield_now();
    }
    write.assert_pending("1 MiB is more than the window and the quota hold");
    // Reading lets the rest in. (The raw peer then drops its connection
    // without waiting for the delivery of its last bytes: the server may
    // see the pipe break before it read them all.)
    let mut got = 0;
    let mut buf = vec![0u8; 64 << 10];
    while got < TOTAL {
        match server.recv_msg(&mut buf) {
            Ok(m) => got += m.len,
            Err(_) => break,
        }
    }
    assert!(got >= 4096, "the server read {got} bytes");
    let replies = write.finish();
    assert!(
        matches!(replies[..], [Ok(shmpipe::remote::frame::Frame::Opened(_))]),
        "{replies:?}"
    );
}

crate::common::tests! {
    tests: [async_remote_flush_waits_for_the_server, writes_in_flight_are_bounded_by_the_stream_window, remote_flush_waits_for_the_server, remote_flush_fails_when_the_server_leaves_unread, nothing_flushed_is_lost_on_a_slow_network_that_dies],
    children: [],
}
