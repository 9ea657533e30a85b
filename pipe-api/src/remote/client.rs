//! `ClientOptions::open(r"\\host\pipe\name")`: the host's gateway, found
//! in `remote.toml`, opens the pipe there; here the caller gets an ordinary
//! [`NamedPipeClient`] attached to a private segment whose server end a
//! bridge joins to the QUIC stream.
//!
//! One QUIC connection per host, shared by every open of this process and
//! made again when it died; a small runtime (two threads) drives them all.

use super::bridge::{self, PipeSide};
use super::config::{ClientConfig, HostConfig};
use super::frame::{Frame, Opened, Trust};
use super::tls;
use crate::datapath::{Conn, RING_IN, RING_OUT, ROLE_CLIENT, ROLE_SERVER};
use crate::error::{Error, ErrorKind};
use crate::info::PipeType;
use crate::named::client::{attach_private, set_remote_link, NamedPipeClient};
use crate::named::{Access, PipeName, WaitTimeout};
use crate::quota::ring_capacity;
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::{HANGUP_READER, HANGUP_WRITER};
use shmpipe_engine::liveness::EndLock;
use shmpipe_engine::{Segment, WaitPolicy};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long the gateway may take to answer an `OPEN` (its local open waits
/// at most 10 s for the server).
const OPEN_REPLY_TIMEOUT: Duration = Duration::from_secs(15);

fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    // Built once, inside `get_or_init`: a runtime built by a thread that
    // lost the race would be dropped, which panics in async code.
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // One: nothing on it blocks (the bridges' threads, remote
            // opens and flushes block outside it, the watcher's stop runs
            // on the blocking pool), so keep-alives are always served, and
            // quinn's driver and the endpoint share a thread instead of
            // waking each other (a sleep and wake-up per packet).
            .worker_threads(1)
            .thread_name("shmpipe-remote")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| io::Error::other(format!("remote runtime: {e}")))
}

fn bad_net_path(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    Error::with_source(ErrorKind::BadNetPath, why).into()
}

/// The connection of each host (by lowercase name), behind a lock held
/// while it is made, so that opens racing to a new host share one; and the
/// endpoint of each address family.
#[derive(Default)]
struct Pool {
    conns: HashMap<String, Arc<tokio::sync::Mutex<Option<quinn::Connection>>>>,
    endpoints: HashMap<bool, quinn::Endpoint>,
}

/// How many QUIC connections this process has open to gateways (for
/// tests: one per host).
#[doc(hidden)]
pub fn open_connections() -> usize {
    lock(pool())
        .endpoints
        .values()
        .map(quinn::Endpoint::open_connections)
        .sum()
}

fn pool() -> &'static Mutex<Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(Mutex::default)
}

/// The connection to `host`, made now if there is none alive.
async fn connection(host: &str, h: &HostConfig, addr: SocketAddr) -> io::Result<quinn::Connection> {
    let slot = Arc::clone(
        lock(pool())
            .conns
            .entry(host.to_ascii_lowercase())
            .or_default(),
    );
    let mut current = slot.lock().await;
    if let Some(c) = &*current {
        if c.close_reason().is_none() {
            return Ok(c.clone());
        }
    }
    let endpoint = {
        let mut p = lock(pool());
        match p.endpoints.get(&addr.is_ipv6()) {
            Some(e) => e.clone(),
            None => {
                let bind: SocketAddr = if addr.is_ipv6() {
                    "[::]:0".parse().expect("literal")
                } else {
                    "0.0.0.0:0".parse().expect("literal")
                };
                let e = quinn::Endpoint::client(bind)?;
                p.endpoints.insert(addr.is_ipv6(), e.clone());
                e
            }
        }
    };
    let gateway = match (&h.ca, &h.pin) {
        (Some(ca), _) => tls::GatewayTrust::Ca(ca),
        (None, Some(pin)) => tls::GatewayTrust::Pin(
            super::config::normalise_fingerprint(pin)
                .ok_or_else(|| bad_net_path("bad pin in remote.toml"))?,
        ),
        (None, None) => return Err(bad_net_path("no ca or pin in remote.toml")),
    };
    let cfg = tls::client_config(
        gateway,
        &h.cert,
        &h.key,
        Duration::from_millis(h.idle_timeout_ms.max(1)),
    )?;
    let server_name = h.server_name.as_deref().unwrap_or(host);
    let connecting = endpoint
        .connect_with(cfg, addr, server_name)
        .map_err(bad_net_path)?;
    let timeout = Duration::from_millis(h.connect_timeout_ms.max(1));
    let conn = match tokio::time::timeout(timeout, connecting).await {
        Err(_) => return Err(bad_net_path("the gateway did not answer in time")),
        Ok(Err(e)) => return Err(refused(e)),
        Ok(Ok(c)) => c,
    };
    *current = Some(conn.clone());
    Ok(conn)
}

/// A connection the gateway closed: `AccessDenied` when it refused our
/// certificate, `BadNetPath` otherwise.
fn refused(e: quinn::ConnectionError) -> io::Error {
    match &e {
        quinn::ConnectionError::ApplicationClosed(c)
            if c.error_code == super::gateway::CLOSE_UNKNOWN_CERT =>
        {
            Error::with_source(ErrorKind::AccessDenied, e).into()
        }
        // A failed handshake: one side refused the other's certificate.
        quinn::ConnectionError::ConnectionClosed(c) if is_crypto(c.error_code) => {
            Error::with_source(ErrorKind::AccessDenied, e).into()
        }
        quinn::ConnectionError::TransportError(t) if is_crypto(t.code) => {
            Error::with_source(ErrorKind::AccessDenied, e).into()
        }
        _ => bad_net_path(e),
    }
}

/// TLS alerts are the transport error codes 0x100 to 0x1ff (RFC 9001).
fn is_crypto(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `\\host\pipe\name` (`full`) through the host's gateway.
pub(crate) fn open(
    full: &str,
    access: Access,
    policy: Option<WaitPolicy>,
    trust: Trust,
) -> io::Result<NamedPipeClient> {
    let target = Target::of(full)?;
    let req = Frame::Open {
        access: access.to_u8(),
        trust,
        name: target.name.as_str().to_owned(),
    };
    let (conn, send, recv, reply) = target.ask(req, Some(OPEN_REPLY_TIMEOUT), None)?;
    let opened = match reply {
        Frame::Opened(o) => o,
        Frame::Error(kind) => return Err(Error::io(kind)),
        _ => return Err(unexpected()),
    };
    let (server, fd) = private_segment(&opened, policy)?;
    let client = attach_private(fd, full.to_owned(), &opened, access, policy)?;
    let link = bridge::start(
        runtime()?.handle().clone(),
        Arc::new(server),
        conn,
        send,
        recv,
    )?;
    set_remote_link(&client, link);
    Ok(client)
}

/// `wait_available(r"\\host\pipe\name")`: the gateway waits for an
/// instance as the mapped identity. A gateway that dies ends the wait
/// within the connection's idle timeout; one that lives but never answers
/// (hostile, or broken) ends a wait with a time limit at that limit plus
/// [`WAIT_SLACK`], with `BadNetPath`.
pub(crate) fn wait(
    full: &str,
    timeout: WaitTimeout,
    trust: Trust,
    cancel: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let target = Target::of(full)?;
    let req = Frame::Wait {
        timeout,
        trust,
        name: target.name.as_str().to_owned(),
    };
    let limit = match timeout {
        WaitTimeout::Duration(d) => Some(d.saturating_add(WAIT_SLACK)),
        WaitTimeout::NoWait => Some(WAIT_SLACK),
        // The pipe's default is the server's to know; Forever is forever.
        WaitTimeout::Default | WaitTimeout::Forever => None,
    };
    match target.ask(req, limit, cancel)?.3 {
        Frame::Waited => Ok(()),
        Frame::Error(kind) => Err(Error::io(kind)),
        _ => Err(unexpected()),
    }
}

/// How much longer than its own limit a wait gives the gateway to answer
/// (the network's round trip and the gateway's own work).
const WAIT_SLACK: Duration = Duration::from_secs(10);

fn unexpected() -> io::Error {
    Error::with_source(
        ErrorKind::BrokenPipe,
        "the gateway answered with something else",
    )
    .into()
}

/// A remote name and where its host is.
struct Target {
    host: String,
    name: PipeName,
    config: HostConfig,
    addr: SocketAddr,
}

impl Target {
    fn of(full: &str) -> io::Result<Target> {
        let (host, name) = PipeName::for_remote(full)?;
        let path = ClientConfig::path().ok_or_else(|| bad_net_path("no remote.toml"))?;
        let all = ClientConfig::load(&path)?;
        let config = all
            .host(&host)
            .ok_or_else(|| bad_net_path(format!("{host} is not in {}", path.display())))?
            .clone();
        let addr = (config.address.as_str(), config.port)
            .to_socket_addrs()
            .map_err(bad_net_path)?
            .next()
            .ok_or_else(|| bad_net_path("the host's address resolves to nothing"))?;
        Ok(Target {
            host,
            name,
            config,
            addr,
        })
    }

    /// Sends `req` on a new stream and reads the gateway's first frame;
    /// `OperationAborted` as soon as `cancel` (if any) becomes readable
    /// (the stream is then dropped, which tells the gateway to stop).
    fn ask(
        &self,
        req: Frame,
        limit: Option<Duration>,
        cancel: Option<BorrowedFd<'_>>,
    ) -> io::Result<(
        quinn::Connection,
        quinn::SendStream,
        quinn::RecvStream,
        Frame,
    )> {
        let rt = runtime()?;
        let work = || {
            rt.block_on(async {
                let conn = connection(&self.host, &self.config, self.addr).await?;
                let (mut send, mut recv) = conn.open_bi().await.map_err(refused)?;
                bridge::write_frame(&mut send, &req).await?;
                let answer = async {
                    match limit {
                        Some(t) => tokio::time::timeout(t, bridge::read_frame(&mut recv))
                            .await
                            .map_err(|_| bad_net_path("the gateway did not answer"))?,
                        None => bridge::read_frame(&mut recv).await,
                    }
                };
                let reply = match cancel {
                    None => answer.await,
                    Some(fd) => {
                        // SAFETY: `fd` is borrowed for the whole call, so it
                        // stays open and the same file until `watched` is
                        // dropped at the end of this block.
                        let watched = unsafe {
                            tokio::io::unix::AsyncFd::register_with_interest(
                                fd,
                                tokio::io::Interest::READABLE,
                            )
                        }
                        .map_err(|e| io::Error::other(e.to_string()))?;
                        tokio::select! {
                            r = answer => r,
                            _ = watched.readable() => {
                                return Err(Error::io(ErrorKind::OperationAborted));
                            }
                        }
                    }
                };
                match reply {
                    Ok(Some(f)) => Ok((conn, send, recv, f)),
                    Ok(None) => Err(unexpected()),
                    // A connection closed while we asked: refused, or gone.
                    Err(e) => match conn.close_reason() {
                        Some(c) => Err(refused(c)),
                        None => Err(Error::with_source(ErrorKind::BrokenPipe, e).into()),
                    },
                }
            })
        };
        // Called from async code (the tokio layer), this thread may not
        // block on another runtime: a helper thread does, for the time the
        // request takes (as a local open blocks on its handshake).
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(work).join())
                .map_err(|_| io::Error::other("remote request panicked"))?
        } else {
            work()
        }
    }
}

/// The server end of a fresh segment shaped as the remote instance, and
/// the client end's descriptor. The segment is never published: only this
/// process holds it.
fn private_segment(
    o: &Opened,
    policy: Option<WaitPolicy>,
) -> io::Result<(ServerSide, std::os::fd::OwnedFd)> {
    let e = crate::named::conn_engine_error;
    let dir = o.direction;
    use crate::named::Direction;
    let out_cap = if dir == Direction::Inbound {
        4096
    } else {
        ring_capacity(o.out_size)
    };
    let in_cap = if dir == Direction::Outbound {
        4096
    } else {
        ring_capacity(o.in_size)
    };
    let (segment, fd) = Segment::create(&[out_cap, in_cap], 0, [0; 8]).map_err(e)?;
    let server_lock = EndLock::acquire(fd.as_fd(), ROLE_SERVER)?;
    let client_lock = EndLock::acquire(fd.as_fd(), ROLE_CLIENT)?;
    drop(fd);
    let end = End::new(
        server_lock,
        segment,
        ROLE_SERVER,
        &[(RING_OUT, HANGUP_WRITER), (RING_IN, HANGUP_READER)],
    )
    .map_err(e)?;
    let access = dir.server_access();
    let conn = Conn::new(
        end,
        access.write_data.then_some(RING_OUT),
        access.read_data.then_some(RING_IN),
        ROLE_CLIENT,
        o.pipe_type,
        o.out_size,
        policy,
    )?;
    // The same open file description as the lock's, as a descriptor sent
    // to a local client would be: the client end takes its role there.
    let client_fd = client_lock.fd().try_clone_to_owned()?;
    drop(client_lock);
    Ok((ServerSide(conn), client_fd))
}

/// The bridge's end of the private segment.
struct ServerSide(Conn);

impl PipeSide for ServerSide {
    fn message(&self) -> bool {
        self.0.pipe_type == PipeType::Message
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        if self.message() {
            self.0.read_msg(buf, false).map(|m| (m.len, m.complete))
        } else {
            self.0.read_bytes(buf, false).map(|n| (n, true))
        }
    }

    fn send(&self, mut data: &[u8]) -> io::Result<()> {
        loop {
            let n = self.0.write(data, false)?;
            data = &data[n.min(data.len())..];
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    fn cancel(&self) -> bool {
        self.0.canceller().cancel().is_ok()
    }

    fn disconnect(&self) {
        self.0.disconnect();
    }
}
