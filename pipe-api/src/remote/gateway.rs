//! The gateway: exports this machine's named pipes to remote clients that
//! present a certificate its configuration maps to a local identity.
//!
//! Each remote open is a local open made from a thread that switched its
//! own credentials (raw per-thread syscalls: the gateway's other threads
//! stay root) to the mapped uid, gid and groups plus
//! [`REMOTE_MARKER_GID`]: the pipe's server judges the kernel's account of
//! that thread exactly as for a local client, and knows it is remote.

use super::bridge;
use super::config::{GatewayConfig, Mapping};
use super::frame::{Frame, Trust};
use super::tls;
use crate::error::{Error, ErrorKind};
use crate::info::{PipeType, ReadMode};
use crate::named::client::describe_opened;
use crate::named::wire::RemoteIdentity;
use crate::named::{Access, ClientOptions, NamedPipeClient, REMOTE_MARKER_GID};
use rustix::process::{Gid, Uid};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

/// The application close code of a connection whose certificate chains to
/// the client CA but is not in the gateway's map.
pub const CLOSE_UNKNOWN_CERT: quinn::VarInt = quinn::VarInt::from_u32(0x5350_0001);

/// How long a new stream may take to send its `OPEN`.
const OPEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A gateway bound to its UDP address.
///
/// ```no_run
/// use shmpipe::remote::{Gateway, GatewayConfig};
/// let config = GatewayConfig::load("/etc/shmpipe/gateway.toml".as_ref())?;
/// let gateway = Gateway::bind(config)?;
/// println!("listening on {}", gateway.local_addr()?);
/// gateway.run()?; // serves until the process ends
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Gateway {
    rt: tokio::runtime::Runtime,
    endpoint: quinn::Endpoint,
    config: Arc<GatewayConfig>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listen", &self.endpoint.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Loads the certificates and binds `config.listen`.
    ///
    /// ```no_run
    /// # let config: shmpipe::remote::GatewayConfig = unimplemented!();
    /// let gateway = shmpipe::remote::Gateway::bind(config)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(config: GatewayConfig) -> io::Result<Gateway> {
        for m in &config.clients {
            if m.uid == u32::MAX || m.gid == u32::MAX || m.groups.contains(&u32::MAX) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a mapping names the id -1",
                ));
            }
        }
        // One worker: nothing blocks on it (local opens and waits run on
        // threads of their own, bridges on theirs), so keep-alives are
        // served, and the endpoint and the connections' drivers share the
        // thread instead of waking each other per packet.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("shmpipe-gateway")
            .enable_all()
            .build()?;
        let sc = tls::server_config(
            &config.cert,
            &config.key,
            &config.client_ca,
            config.idle_timeout(),
        )?;
        let endpoint = {
            let _in_runtime = rt.enter();
            quinn::Endpoint::server(sc, config.listen)?
        };
        Ok(Gateway {
            rt,
            endpoint,
            config: Arc::new(config),
        })
    }

    /// The address it listens on (with the port the system chose for 0).
    ///
    /// ```no_run
    /// # let gateway: shmpipe::remote::Gateway = unimplemented!();
    /// let port = gateway.local_addr()?.port();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Serves remote clients until the endpoint is closed.
    ///
    /// ```no_run
    /// # let gateway: shmpipe::remote::Gateway = unimplemented!();
    /// gateway.run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run(&self) -> io::Result<()> {
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        self.rt.block_on(async {
            while let Some(incoming) = self.endpoint.accept().await {
                // A bound on connections in all (each may hold up to 256
                // streams, and each stream threads and buffers): beyond it
                // a new one is refused before its handshake.
                let slot = ConnectionSlot::take(&open);
                let Some(slot) = slot else {
                    eprintln!(
                        "shmpipe gateway: {}: refused: {MAX_CONNECTIONS} connections open",
                        incoming.remote_address()
                    );
                    incoming.refuse();
                    continue;
                };
                let config = Arc::clone(&self.config);
                tokio::spawn(async move {
                    serve_connection(incoming, config).await;
                    drop(slot);
                });
            }
            Ok(())
        })
    }
}

/// How many connections a gateway serves at once.
const MAX_CONNECTIONS: usize = 1024;

/// One of the [`MAX_CONNECTIONS`], given back when dropped.
struct ConnectionSlot(Arc<std::sync::atomic::AtomicUsize>);

impl ConnectionSlot {
    fn take(open: &Arc<std::sync::atomic::AtomicUsize>) -> Option<ConnectionSlot> {
        use std::sync::atomic::Ordering::Relaxed;
        open.fetch_update(Relaxed, Relaxed, |n| (n < MAX_CONNECTIONS).then_some(n + 1))
            .ok()
            .map(|_| ConnectionSlot(Arc::clone(open)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Who the connection's (verified) certificate is here, and the identity
/// the server is shown (its fingerprint and subject).
fn identity(conn: &quinn::Connection, config: &GatewayConfig) -> Option<(Mapping, RemoteIdentity)> {
    let any = conn.peer_identity()?;
    let certs = any
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    let leaf = certs.first()?;
    let id = RemoteIdentity {
        fingerprint: Some(super::init::hex(&tls::fingerprint(leaf))),
        subject: super::config::subject_text(leaf),
    };
    Some((config.mapping_of(leaf).cloned()?, id))
}

async fn serve_connection(incoming: quinn::Incoming, config: Arc<GatewayConfig>) {
    let peer = incoming.remote_address();
    // A handshake that fails (no certificate, another CA) ends here.
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => return eprintln!("shmpipe gateway: {peer}: refused: {e}"),
    };
    let Some((who, id)) = identity(&conn, &config) else {
        eprintln!("shmpipe gateway: {peer}: refused: certificate not in the map");
        conn.close(CLOSE_UNKNOWN_CERT, b"certificate not mapped");
        return;
    };
    // Who came, never what they send: an operator's record of access.
    eprintln!(
        "shmpipe gateway: {peer}: {} as uid {} gid {}",
        who.name.as_deref().unwrap_or("client"),
        who.uid,
        who.gid
    );
    let (who, id) = (Arc::new(who), Arc::new(id));
    while let Ok((send, recv)) = conn.accept_bi().await {
        let (who, id) = (Arc::clone(&who), Arc::clone(&id));
        tokio::spawn(serve_stream(conn.clone(), send, recv, who, id));
    }
}

async fn serve_stream(
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    who: Arc<Mapping>,
    id: Arc<RemoteIdentity>,
) {
    let first = tokio::time::timeout(OPEN_REQUEST_TIMEOUT, bridge::read_frame(&mut recv)).await;
    let (access, trust, name) = match first {
        Ok(Ok(Some(Frame::Open {
            access,
            trust,
            name,
        }))) => match Access::from_u8(access) {
            Some(a) => (a, trust, name),
            None => return refuse_stream(send, recv),
        },
        Ok(Ok(Some(Frame::Wait {
            timeout,
            trust,
            name,
        }))) => {
            let full = format!(r"\\.\pipe\{name}");
            // The local wait ends early when the client goes away: a wait
            // must not outlive its client, whatever its timeout.
            let Ok((cancel_rx, cancel_tx)) =
                rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            else {
                return refuse_stream(send, recv);
            };
            let waited = as_mapped(&who, move || {
                options(&trust).wait_available_cancellable(&full, timeout, cancel_rx.as_fd())
            });
            // The client sends nothing after WAIT: anything more on the
            // stream (its end, a reset, a dead connection) means it left.
            let gone = async {
                let _ = recv.read(&mut [0u8; 1]).await;
            };
            let waited = tokio::select! {
                r = waited => r,
                () = gone => {
                    let _ = rustix::io::write(&cancel_tx, &[1]);
                    return;
                }
            };
            let reply = match waited {
                Ok(()) => Frame::Waited,
                Err(e) => Frame::Error(Error::kind_of(&e).unwrap_or(ErrorKind::BrokenPipe)),
            };
            let _ = bridge::write_frame(&mut send, &reply).await;
            let _ = send.finish();
            return;
        }
        // Garbage, anything else first, or nothing in time.
        _ => return refuse_stream(send, recv),
    };
    let full = format!(r"\\.\pipe\{name}");
    let client = match as_mapped(&who, move || open_local(&full, access, &trust, &id)).await {
        Ok(c) => c,
        Err(e) => {
            let kind = Error::kind_of(&e).unwrap_or(ErrorKind::BrokenPipe);
            let _ = bridge::write_frame(&mut send, &Frame::Error(kind)).await;
            let _ = send.finish();
            return;
        }
    };
    let reply = Frame::Opened(describe_opened(&client));
    if bridge::write_frame(&mut send, &reply).await.is_err() {
        return;
    }
    let message = reply_is_message(&reply);
    // Served on this task: the end's readiness is awaited on the worker
    // that also drives the connection.
    match crate::tokio::NamedPipeClient::from_std(client) {
        Ok(end) => bridge::serve_async(end, message, conn, send, recv).await,
        Err(_) => refuse_stream(send, recv),
    }
}

fn reply_is_message(f: &Frame) -> bool {
    matches!(f, Frame::Opened(o) if o.pipe_type == PipeType::Message)
}

fn refuse_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let refuse = quinn::VarInt::from_u32(2);
    let _ = send.reset(refuse);
    let _ = recv.stop(refuse);
}

/// Runs `f` as the mapped identity, marked remote, on a fresh thread whose
/// credentials are switched for good before `f` runs (see
/// [`switch_thread_credentials`]).
async fn as_mapped<T: Send + 'static>(
    who: &Arc<Mapping>,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let who = Arc::clone(who);
    std::thread::Builder::new()
        .name("shmpipe-gw-as".into())
        .spawn(move || {
            let _ = tx.send(switch_thread_credentials(&who).and_then(|()| f()));
        })?;
    rx.await
        .unwrap_or_else(|_| Err(Error::io(ErrorKind::BrokenPipe)))
}

/// Switches this thread's (only this thread's: raw per-thread syscalls)
/// groups and *effective* gid and uid to the mapping's, plus the remote
/// marker group. If any switch fails the caller does nothing: never act as
/// the gateway itself.
///
/// Only the effective ids: what a server is told (`SO_PEERCRED`,
/// `SO_PEERGROUPS`) and what file access is judged by. The real and saved
/// ids stay the gateway's (root), because the kernel lets a process signal
/// a thread, or read and change the process's limits (`prlimit`), when its
/// uid matches the thread's real or saved uid: with those switched too,
/// any process of the mapped user could stop or kill the whole gateway, or
/// lower its descriptor limit, through the thread serving a remote client.
fn switch_thread_credentials(who: &Mapping) -> io::Result<()> {
    let denied =
        |why: String| -> io::Error { Error::with_source(ErrorKind::AccessDenied, why).into() };
    let mut groups: Vec<Gid> = who.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    groups.push(Gid::from_raw(REMOTE_MARKER_GID));
    let gid = Gid::from_raw(who.gid);
    let uid = Uid::from_raw(who.uid);
    rustix::thread::set_thread_groups(&groups)
        .map_err(|e| denied(format!("gateway cannot set groups: {e}")))?;
    let (ruid, rgid) = (rustix::process::getuid(), rustix::process::getgid());
    rustix::thread::set_thread_res_gid(rgid, gid, rgid)
        .map_err(|e| denied(format!("gateway cannot set gid: {e}")))?;
    rustix::thread::set_thread_res_uid(ruid, uid, ruid)
        .map_err(|e| denied(format!("gateway cannot set uid: {e}")))?;
    // Leaving root's effective uid clears the effective capabilities,
    // unless the gateway was started with securebits that keep them
    // (`SECBIT_NO_SETUID_FIXUP`): then the open would run with root's
    // powers under the mapped user's name. Refuse rather than act so.
    let caps = rustix::thread::capabilities(None)
        .map_err(|e| denied(format!("gateway cannot read its capabilities: {e}")))?;
    if uid.as_raw() != 0 && !caps.effective.is_empty() {
        return Err(denied(format!(
            "gateway kept capabilities {:?} as uid {} (securebits?): refusing",
            caps.effective,
            uid.as_raw()
        )));
    }
    Ok(())
}

/// Opens `full` as a local client (on a thread with the mapped identity).
fn open_local(
    full: &str,
    mut access: Access,
    trust: &Trust,
    id: &RemoteIdentity,
) -> io::Result<NamedPipeClient> {
    // The gateway's end reads messages whole and needs no more rights from
    // the server than data access (attributes are never judged).
    access.read_attributes = true;
    access.write_attributes = true;
    let mut o = options(trust);
    // The server believes it because this thread carries the remote mark.
    o.remote_identity = Some(id.clone());
    let client = o.access(access).open(full)?;
    if client.info()?.pipe_type == PipeType::Message {
        client.set_read_mode(ReadMode::Message)?;
    }
    Ok(client)
}

/// Client options with the remote client's trust rule (on top of the
/// default one, judged on this thread's mapped identity).
fn options(trust: &Trust) -> ClientOptions {
    let mut o = ClientOptions::new();
    o.trust_any_server(trust.any);
    for &uid in &trust.uids {
        o.trust_server_uid(uid);
    }
    for &gid in &trust.gids {
        o.trust_server_gid(gid);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the credential tests can run: they need root, and under
    /// `CI=true` not having it is a failure, not a skip.
    fn is_root() -> bool {
        let root = rustix::process::geteuid().is_root();
        assert!(
            root || std::env::var("CI").as_deref() != Ok("true"),
            "needs root under CI=true"
        );
        root
    }

    /// A mapping to `nobody` with these supplementary groups.
    fn nobody(groups: Vec<u32>) -> Mapping {
        Mapping {
            fingerprint: Some("00".into()),
            subject: None,
            uid: 65534,
            gid: 65534,
            groups,
            name: None,
        }
    }

    /// A local process that claims a certificate identity without the
    /// kernel's remote mark (what a gateway's thread carries) is refused;
    /// the same open without the claim succeeds, and shows no identity.
    #[test]
    fn remote_identities_decode_strictly() {
        let id = RemoteIdentity {
            fingerprint: Some("ab:cd".into()),
            subject: None,
        };
        let mut p = Vec::new();
        id.encode(&mut p);
        p.extend_from_slice(b"key");
        assert_eq!(RemoteIdentity::decode(&p), Some((id, &b"key"[..])));
        assert_eq!(RemoteIdentity::decode(&[5, b'a']), None, "cut short");
        assert_eq!(RemoteIdentity::decode(&[1, 0xff, 0]), None, "not UTF-8");
        assert_eq!(RemoteIdentity::decode(&[0]), None, "no subject length");
    }

    #[test]
    fn a_local_claim_of_a_remote_identity_is_refused() {
        let name = format!(r"\\.\pipe\gw-forged-identity-{}", std::process::id());
        let server = crate::named::ServerOptions::new().create(&name).unwrap();
        let mut forged = ClientOptions::new();
        forged.remote_identity = Some(RemoteIdentity {
            fingerprint: Some("ab:cd".into()),
            subject: Some("CN=admin".into()),
        });
        let e = forged.open(&name).unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied));
        let _client = ClientOptions::new().open(&name).unwrap();
        let who = server.client_credentials().unwrap();
        assert!(!who.remote);
        assert_eq!((who.remote_fingerprint, who.remote_subject), (None, None));
    }

    /// The switch is the calling thread's alone: the gateway's other
    /// threads stay root (glibc's setresuid would have changed them all).
    #[test]
    fn credentials_switch_only_the_calling_thread() {
        if !is_root() {
            return;
        }
        let who = nobody(vec![4242]);
        let (euid, egid, groups, caps) = std::thread::spawn(move || {
            switch_thread_credentials(&who).unwrap();
            (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
                rustix::process::getgroups().unwrap(),
                rustix::thread::capabilities(None).unwrap().effective,
            )
        })
        .join()
        .unwrap();
        assert_eq!((euid, egid), (65534, 65534));
        assert!(caps.is_empty(), "capabilities kept: {caps:?}");
        let groups: Vec<u32> = groups.iter().map(|g| g.as_raw()).collect();
        assert!(groups.contains(&4242) && groups.contains(&REMOTE_MARKER_GID));
        // This thread, and the process, are still root.
        assert!(rustix::process::geteuid().is_root());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uid_line.split_whitespace().skip(1).all(|u| u == "0"),
            "{uid_line}"
        );
        assert!(!rustix::process::getgroups()
            .unwrap()
            .iter()
            .any(|g| g.as_raw() == REMOTE_MARKER_GID));
    }

    /// While a thread serves a remote client as the mapped user, that local
    /// user can neither signal it (`tgkill`: a SIGSTOP or SIGKILL would
    /// stop or kill the whole root gateway) nor read or change the
    /// gateway's limits through it (`prlimit` on the thread). Both worked
    /// while the real and saved ids were switched too (found by review).
    #[test]
    fn the_mapped_user_cannot_reach_the_gateway_through_its_thread() {
        if !is_root() {
            return;
        }
        let who = nobody(vec![]);
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            switch_thread_credentials(&who).unwrap();
            tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let pid = std::process::id() as libc::pid_t;
        // SAFETY: fork in a threaded process; the child makes only raw
        // system calls (async-signal-safe) and leaves with `_exit`.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: raw system calls on plain values and a local
            // `rlimit`, then `_exit`: nothing that needs the parent's other
            // threads or locks.
            unsafe {
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
                libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534);
                if libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) != 0 {
                    libc::_exit(9);
                }
                let sig = libc::syscall(libc::SYS_tgkill, pid, tid, 0);
                let mut lim: libc::rlimit = std::mem::zeroed();
                let pl = libc::syscall(
                    libc::SYS_prlimit64,
                    tid,
                    libc::RLIMIT_NOFILE,
                    std::ptr::null::<libc::rlimit>(),
                    &raw mut lim,
                );
                libc::_exit(i32::from(sig == 0) | (i32::from(pl == 0) << 1));
            }
        }
        assert!(child > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for our own child, writing into a local.
        unsafe { libc::waitpid(child, &raw mut status, 0) };
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert!(libc::WIFEXITED(status), "the probe child died: {status:#x}");
        let code = libc::WEXITSTATUS(status);
        assert_eq!(
            code,
            0,
            "uid 65534 reached the root gateway through its mapped thread: \
             tgkill allowed: {}, prlimit allowed: {}",
            code & 1 != 0,
            code & 2 != 0
        );
    }

    /// A gateway whose thread would keep root's capabilities after the
    /// switch (started with `SECBIT_NO_SETUID_FIXUP`) refuses to act for
    /// the remote client instead of opening with root's powers.
    #[test]
    fn a_switch_that_keeps_capabilities_is_refused() {
        if !is_root() {
            return;
        }
        let who = nobody(vec![]);
        let r = std::thread::spawn(move || {
            // Securebits are the thread's own (its credentials).
            rustix::thread::set_capabilities_secure_bits(
                rustix::thread::CapabilitiesSecureBits::NO_SETUID_FIXUP,
            )
            .unwrap();
            switch_thread_credentials(&who)
        })
        .join()
        .unwrap();
        let e = r.expect_err("the switch kept capabilities and went on");
        assert!(e.to_string().contains("capabilities"), "{e}");
    }
}
