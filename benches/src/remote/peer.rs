//! The server process of the remote rows: the local named-pipe server, the
//! gateway that exports it, and the two baselines' servers, all on
//! loopback; and the tiny protocol every row speaks over its byte stream.
//!
//! Each command starts with a 16-byte header: `op` (u32 LE), `size` (u32
//! LE), `count` (u64 LE). [`ECHO`]: `count` times, the server reads `size`
//! bytes and writes them back. [`SINK`]: the server reads `size * count`
//! bytes, then writes one byte. A clean end of the stream ends the serving
//! loop.

use crate::peer::protocol::{protocol_error, Control};
use shmpipe::named::{PipeListener, ServerOptions};
use shmpipe::remote::{Gateway, GatewayConfig};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Command: echo `count` messages of `size` bytes.
pub(crate) const ECHO: u32 = 1;
/// Command: swallow `count` messages of `size` bytes, then acknowledge.
pub(crate) const SINK: u32 = 2;
/// The largest `size` a command may name.
pub(crate) const MAX_SIZE: usize = 1 << 20;

/// A command header.
pub(crate) fn header(op: u32, size: usize, count: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&op.to_le_bytes());
    h[4..8].copy_from_slice(&(size as u32).to_le_bytes());
    h[8..].copy_from_slice(&count.to_le_bytes());
    h
}

/// Parses a header from the other process (hostile: bounded).
pub(crate) fn parse(h: &[u8; 16]) -> io::Result<(u32, usize, u64)> {
    let op = u32::from_le_bytes(h[..4].try_into().expect("4 bytes"));
    let size = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes")) as usize;
    let count = u64::from_le_bytes(h[8..].try_into().expect("8 bytes"));
    if !matches!(op, ECHO | SINK)
        || size == 0
        || size > MAX_SIZE
        || (size as u64).checked_mul(count).is_none()
    {
        return Err(protocol_error(format!("bad command {op} {size} {count}")));
    }
    Ok((op, size, count))
}

/// Serves commands on a blocking byte stream until it ends cleanly.
pub(crate) fn serve_blocking(mut s: impl Read + Write) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_SIZE];
    loop {
        let mut h = [0u8; 16];
        match s.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let (op, size, count) = parse(&h)?;
        if op == ECHO {
            for _ in 0..count {
                s.read_exact(&mut buf[..size])?;
                s.write_all(&buf[..size])?;
                s.flush()?;
            }
        } else {
            let mut left = size as u64 * count;
            while left > 0 {
                let n = s.read(&mut buf[..(left.min(MAX_SIZE as u64) as usize)])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                left -= n as u64;
            }
            s.write_all(&[1])?;
            s.flush()?;
        }
    }
}

/// The same over a quinn stream, awaited as a tokio program would.
pub(crate) async fn serve_quinn(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_SIZE];
    loop {
        let mut h = [0u8; 16];
        match recv.read_exact(&mut h).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(()),
            Err(e) => return Err(io::Error::other(e)),
        }
        let (op, size, count) = parse(&h)?;
        if op == ECHO {
            for _ in 0..count {
                recv.read_exact(&mut buf[..size])
                    .await
                    .map_err(io::Error::other)?;
                send.write_all(&buf[..size]).await?;
            }
        } else {
            let mut left = size as u64 * count;
            while left > 0 {
                let want = left.min(MAX_SIZE as u64) as usize;
                match recv
                    .read_chunk(want, true)
                    .await
                    .map_err(io::Error::other)?
                {
                    Some(c) => left -= c.bytes.len() as u64,
                    None => return Err(io::ErrorKind::UnexpectedEof.into()),
                }
            }
            send.write_all(&[1]).await?;
        }
    }
}

/// Runs `f` on a named thread; its failure is printed (the parent sees
/// the stream end and reports that).
fn background(name: &str, f: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            if let Err(e) = f() {
                eprintln!("shmpipe bench remote peer: {name}: {e}");
            }
        })?;
    Ok(())
}

/// The gateway configuration: `gateway.toml` as `init` wrote it, listening
/// on a loopback port the system picks.
fn gateway_config(dir: &Path, toml: &str) -> io::Result<GatewayConfig> {
    let toml = toml
        .lines()
        .map(|l| {
            if l.starts_with("listen") {
                "listen = \"127.0.0.1:0\""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("gateway.toml");
    std::fs::write(&path, toml)?;
    GatewayConfig::load(&path)
}

/// The peer side: `args` are the certificate directory (with
/// `gateway.toml`) and the local pipe's name. Says hello, then `ports
/// <gateway> <quinn> <tcp>`, and serves until `quit`.
pub(crate) fn serve(ctl: &mut Control, args: &[String]) -> io::Result<()> {
    let [dir, name] = args else {
        return Err(protocol_error("the remote peer needs two arguments".into()));
    };
    let dir = PathBuf::from(dir);
    let gw_toml = std::fs::read_to_string(dir.join("gateway.snippet"))?;
    // The local server: one instance at a time, byte mode (the rows are
    // byte streams), default buffers.
    let mut listener = PipeListener::bind(name, ServerOptions::new())?;
    background("local-server", move || loop {
        let server = listener.accept()?;
        // Its end (the gateway's instance closing) ends the serving; the
        // parent hears of any failure as a broken stream.
        let _ = serve_blocking(&server);
    })?;
    // In this process, on its own runtime and threads, as `shmpipe
    // gateway` would run them (see the module doc of `remote`).
    let gateway = Gateway::bind(gateway_config(&dir, &gw_toml)?)?;
    let gw_port = gateway.local_addr()?.port();
    background("gateway", move || gateway.run())?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let endpoint = {
        let _in = rt.enter();
        quinn::Endpoint::server(
            super::tls::quinn_server(&dir)?,
            "127.0.0.1:0".parse().expect("literal"),
        )?
    };
    let quinn_port = endpoint.local_addr()?.port();
    background("quinn-server", move || {
        rt.block_on(async {
            let incoming = endpoint
                .accept()
                .await
                .ok_or_else(|| io::Error::other("quinn endpoint closed"))?;
            let conn = incoming.await.map_err(io::Error::other)?;
            let (send, recv) = conn.accept_bi().await.map_err(io::Error::other)?;
            serve_quinn(send, recv).await
        })
    })?;

    let tcp = TcpListener::bind("127.0.0.1:0")?;
    let tcp_port = tcp.local_addr()?.port();
    let tls = super::tls::server(&dir)?;
    background("tls-server", move || {
        let (sock, _) = tcp.accept()?;
        sock.set_nodelay(true)?;
        let conn = rustls::ServerConnection::new(Arc::clone(&tls)).map_err(io::Error::other)?;
        serve_blocking(rustls::StreamOwned::new(conn, sock))
    })?;

    ctl.send("hello pinned=0")?;
    ctl.send(&format!("ports {gw_port} {quinn_port} {tcp_port}"))?;
    // `quit` or EOF ends the process, and with it the servers and gateway.
    match ctl.recv()? {
        None => Ok(()),
        Some(line) if line == "quit" => Ok(()),
        Some(line) => Err(protocol_error(format!("unknown command {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_garbage_is_refused() {
        assert_eq!(parse(&header(ECHO, 64, 7)).unwrap(), (ECHO, 64, 7));
        assert_eq!(
            parse(&header(SINK, MAX_SIZE, 1)).unwrap(),
            (SINK, MAX_SIZE, 1)
        );
        assert!(parse(&header(3, 64, 1)).is_err());
        assert!(parse(&header(ECHO, 0, 1)).is_err());
        assert!(parse(&header(SINK, MAX_SIZE + 1, 1)).is_err());
        assert!(parse(&header(SINK, 64, u64::MAX)).is_err());
    }
}
