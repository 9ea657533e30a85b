//! Remote pipes end to end on loopback: this process serves local pipes
//! and opens `\\host\pipe\name`; the gateways are children (this binary
//! run again) serving QUIC on 127.0.0.1 with certificates made by
//! `shmpipe::remote::init`.
//!
//! Hosts in the `remote.toml` every test shares (written once, before any
//! test opens anything):
//! * `gw`: a gateway mapping the client certificate to root;
//! * `gwnobody`: another gateway mapping the same certificate to nobody;
//! * `otherca`: `gw` again, with a client certificate of another CA;
//! * `killme`: a gateway of its own, which one test SIGKILLs;
//! * `nowhere`: a UDP port that never answers.
//!
//! The gateways switch to the mapped uid per thread, so they need root:
//! without it the tests say why and return, except under `CI=true`.

#[path = "common/mod.rs"]
mod common;

use common::named::{assert_kind, hear, say, unique_name, Kid, NOBODY};
use common::{is_root, require, Pending};
use shmpipe::named::{ClientOptions, ServerOptions, WaitTimeout};
use shmpipe::remote::{Gateway, GatewayConfig};
use shmpipe::{ErrorKind, PipeType, ReadMode};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The gateways and files every test shares.
struct Fixture {
    /// `killme`'s gateway (the others live as long as this process: their
    /// stdin closes when it exits).
    killme: Mutex<Kid>,
    _kids: Mutex<Vec<Kid>>,
    _silent: std::net::UdpSocket,
}

fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("shmpipe-remote-test-{}", std::process::id()))
}

fn gateway_config(certs: &std::path::Path, uid: u32, fingerprint: &str, file: &str) -> PathBuf {
    let path = dir().join(file);
    let text = format!(
        "listen = \"127.0.0.1:0\"\ncert = \"{c}/gateway.pem\"\nkey = \"{c}/gateway.key\"\n\
         client_ca = \"{c}/ca.pem\"\nidle_timeout_ms = 1500\n\n[[clients]]\n\
         fingerprint = \"{fingerprint}\"\nuid = {uid}\ngid = {uid}\n",
        c = certs.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn start_gateway(config: &std::path::Path) -> (Kid, u16) {
    let mut kid = Kid::spawn(
        "child_gateway",
        &[("GATEWAY_CONFIG", config.display().to_string())],
    );
    let port = kid.listen().parse().expect("the gateway says its port");
    (kid, port)
}

fn host(
    name: &str,
    port: u16,
    ca: &std::path::Path,
    client: &std::path::Path,
    timeout: u64,
) -> String {
    format!(
        "[hosts.{name}]\naddress = \"127.0.0.1\"\nport = {port}\nserver_name = \"localhost\"\n\
         ca = \"{}/ca.pem\"\ncert = \"{c}/client.pem\"\nkey = \"{c}/client.key\"\n\
         connect_timeout_ms = {timeout}\nidle_timeout_ms = 1500\n\n",
        ca.display(),
        c = client.display()
    )
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (a, b) = (dir().join("a"), dir().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
        }
        let names = ["localhost".to_owned()];
        let ia = shmpipe::remote::init(&a, &names, 0, 0, "gw", 0).unwrap();
        shmpipe::remote::init(&b, &names, 0, 0, "gw", 0).unwrap();
        let fp = &ia.client_fingerprint;
        let (gw, gw_port) = start_gateway(&gateway_config(&a, 0, fp, "gw.toml"));
        let (gwn, gwn_port) = start_gateway(&gateway_config(&a, NOBODY, fp, "gwnobody.toml"));
        let (killme, kill_port) = start_gateway(&gateway_config(&a, 0, fp, "killme.toml"));
        // Bound and never read: packets to it go nowhere, no ICMP comes back.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let mut toml = String::new();
        toml += &host("gw", gw_port, &a, &a, 3000);
        toml += &host("gwnobody", gwn_port, &a, &a, 3000);
        toml += &host("otherca", gw_port, &a, &b, 3000);
        toml += &host("killme", kill_port, &a, &a, 3000);
        toml += &host("nowhere", silent_port, &a, &a, 300);
        std::fs::write(config_path(), toml).unwrap();
        Fixture {
            killme: Mutex::new(killme),
            _kids: Mutex::new(vec![gw, gwn]),
            _silent: silent,
        }
    })
}

fn config_path() -> PathBuf {
    dir().join("remote.toml")
}

/// `\\host\pipe\<name>` for a local name from `unique_name`.
fn remote(host: &str, local: &str) -> String {
    local.replacen(r"\\.\", &format!(r"\\{host}\"), 1)
}

fn ready(test: &str) -> bool {
    if !require(
        is_root(),
        test,
        "gateways switch to the mapped uid (needs root)",
    ) {
        return false;
    }
    fixture();
    true
}

/// A gateway: binds the configuration in `GATEWAY_CONFIG`, says its port,
/// serves until its stdin closes.
fn child_gateway() {
    let path = common::named::env("GATEWAY_CONFIG");
    let gateway = Gateway::bind(GatewayConfig::load(path.as_ref()).unwrap()).unwrap();
    say(&gateway.local_addr().unwrap().port().to_string());
    std::thread::spawn(move || gateway.run());
    while hear().is_some() {}
}

/// Bytes both ways through the gateway; the server sees a remote client
/// with the mapped identity.
fn byte_round_trip() {
    if !ready("byte_round_trip") {
        return;
    }
    let name = unique_name("remote-bytes");
    let server = ServerOptions::new().create(&name).unwrap();
    let mut client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    assert!(server.client_is_remote().unwrap());
    let who = server.client_credentials().unwrap();
    assert_eq!((who.uid, who.gid, who.remote), (0, 0, true));
    assert!(!who.groups.contains(&shmpipe::named::REMOTE_MARKER_GID));
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    (&server).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    (&server).write_all(b"PONG").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"PONG");
    // A local client of the same kind of pipe is not remote.
    let local_name = unique_name("remote-bytes-local");
    let local = ServerOptions::new().create(&local_name).unwrap();
    let _c = ClientOptions::new().open(&local_name).unwrap();
    assert!(!local.client_is_remote().unwrap());
}

/// Message boundaries (also of a message longer than one frame), and
/// transact, through the gateway.
fn message_round_trip_and_transact() {
    if !ready("message_round_trip_and_transact") {
        return;
    }
    let name = unique_name("remote-msg");
    let server = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .quotas(1 << 20, 1 << 20)
        .create(&name)
        .unwrap();
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    assert_eq!(client.info().unwrap().pipe_type, PipeType::Message);
    client.set_read_mode(ReadMode::Message).unwrap();
    let big = common::pattern(200_000, 7);
    client.send_msg(b"first").unwrap();
    client.send_msg(&big).unwrap();
    client.send_msg(b"").unwrap();
    let mut buf = vec![0u8; 300_000];
    let m = server.recv_msg(&mut buf).unwrap();
    assert_eq!((&buf[..m.len], m.complete), (&b"first"[..], true));
    let m = server.recv_msg(&mut buf).unwrap();
    assert!(m.complete);
    assert!(buf[..m.len] == big[..], "the long message arrived whole");
    let m = server.recv_msg(&mut buf).unwrap();
    assert_eq!((m.len, m.complete), (0, true));
    let replier = std::thread::spawn(move || {
        let mut b = [0u8; 16];
        let m = server.recv_msg(&mut b).unwrap();
        assert_eq!(&b[..m.len], b"request");
        server.send_msg(b"reply").unwrap();
        server
    });
    let mut reply = [0u8; 16];
    let m = client.transact(b"request", &mut reply).unwrap();
    assert_eq!((&reply[..m.len], m.complete), (&b"reply"[..], true));
    replier.join().unwrap();
}

/// The tokio layer's open, and the blocking `call`, reach remote names
/// too.
fn async_open_and_call() {
    if !ready("async_open_and_call") {
        return;
    }
    let name = unique_name("remote-async");
    let mut o = ServerOptions::new();
    o.pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .max_instances(2);
    let first = o.create(&name).unwrap();
    let second = o.create(&name).unwrap();
    let far = remote("gw", &name);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        let c = shmpipe::tokio::NamedPipeClient::open(&ClientOptions::new(), &far).unwrap();
        c.send_msg(b"async").await.unwrap();
        c
    });
    let mut buf = [0u8; 16];
    let m = first.recv_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"async");
    first.send_msg(b"back").unwrap();
    rt.block_on(async {
        let m = client.recv_msg(&mut buf).await.unwrap();
        assert_eq!(&buf[..m.len], b"back");
    });
    let replier = std::thread::spawn(move || {
        second.connect().unwrap();
        let mut b = [0u8; 16];
        let m = second.recv_msg(&mut b).unwrap();
        assert_eq!(&b[..m.len], b"question");
        second.send_msg(b"answer").unwrap();
        second
    });
    let m = ClientOptions::new()
        .call(&far, b"question", &mut buf, WaitTimeout::Default)
        .unwrap();
    assert_eq!(&buf[..m.len], b"answer");
    replier.join().unwrap();
}

/// `wait_available` through the gateway: Timeout while the only instance
/// is busy, success once it listens again, FileNotFound for no pipe.
fn wait_available_while_busy() {
    if !ready("wait_available_while_busy") {
        return;
    }
    let name = unique_name("remote-wait");
    let far = remote("gw", &name);
    let server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    let client = ClientOptions::new().open(&far).unwrap();
    assert_kind(
        shmpipe::named::wait_available(&far, WaitTimeout::Duration(Duration::from_millis(200))),
        ErrorKind::Timeout,
        "wait on a busy pipe",
    );
    let far2 = far.clone();
    let wait = Pending::start("remote wait", move || {
        shmpipe::named::wait_available(&far2, WaitTimeout::Forever)
    });
    wait.assert_pending("the only instance is busy");
    drop(client);
    server.disconnect().unwrap();
    let listener = std::thread::spawn(move || server.connect().map(|_| server));
    wait.finish().unwrap();
    // The wait reserved nothing; an open takes the instance.
    let _client = ClientOptions::new().open(&far).unwrap();
    listener.join().unwrap().unwrap();
    assert_kind(
        shmpipe::named::wait_available(&remote("gw", &unique_name("none")), WaitTimeout::Default),
        ErrorKind::FileNotFound,
        "wait for a pipe nobody serves",
    );
}

/// What the server wrote before it closed arrives; then the pipe is
/// broken for the remote client.
fn server_close_after_data() {
    if !ready("server_close_after_data") {
        return;
    }
    let name = unique_name("remote-close");
    let server = ServerOptions::new().create(&name).unwrap();
    let mut client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    (&server).write_all(b"bye").unwrap();
    drop(server);
    let mut got = Vec::new();
    common::within("read to the end", move || {
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
    });
}

/// `reject_remote_clients(true)`: AccessDenied for the remote client, a
/// local one still connects.
fn reject_remote_clients() {
    if !ready("reject_remote_clients") {
        return;
    }
    let name = unique_name("remote-reject");
    let _server = ServerOptions::new()
        .max_instances(2)
        .reject_remote_clients(true)
        .create(&name)
        .unwrap();
    assert_kind(
        ClientOptions::new().open(&remote("gw", &name)),
        ErrorKind::AccessDenied,
        "remote open of a pipe that rejects remote clients",
    );
    ClientOptions::new().open(&name).unwrap();
}

/// A certificate mapped to nobody: the pipe's Security (owner only, the
/// owner is root) refuses it as it would a local nobody.
fn mapped_uid_judged_by_security() {
    if !ready("mapped_uid_judged_by_security") {
        return;
    }
    let name = unique_name("remote-nobody");
    let server = ServerOptions::new().create(&name).unwrap();
    assert_kind(
        ClientOptions::new().open(&remote("gwnobody", &name)),
        ErrorKind::AccessDenied,
        "a certificate mapped to nobody on an owner-only pipe",
    );
    // The instance is still free: the same certificate mapped to root gets it.
    ClientOptions::new().open(&remote("gw", &name)).unwrap();
    assert_eq!(server.client_credentials().unwrap().uid, 0);
}

/// A client certificate of another CA fails the handshake: no open
/// reaches the pipe.
fn certificate_of_another_ca_refused() {
    if !ready("certificate_of_another_ca_refused") {
        return;
    }
    let name = unique_name("remote-otherca");
    let server = ServerOptions::new().create(&name).unwrap();
    assert_kind(
        ClientOptions::new().open(&remote("otherca", &name)),
        ErrorKind::AccessDenied,
        "a client certificate of another CA",
    );
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "no client reached the server",
    );
}

/// A client with no certificate at all (a raw QUIC client) gets no open.
fn no_client_certificate_refused() {
    if !ready("no_client_certificate_refused") {
        return;
    }
    let name = unique_name("remote-nocert");
    let server = ServerOptions::new().create(&name).unwrap();
    let text = std::fs::read_to_string(config_path()).unwrap();
    let port: u16 = text
        .split("[hosts.gw]")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("port = ")))
        .and_then(|p| p.parse().ok())
        .expect("gw's port in remote.toml");
    let ca = dir().join("a/ca.pem");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = name.rsplit('\\').next().unwrap().to_owned();
    let outcome: Result<(), String> = rt.block_on(async move {
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for c in rustls::pki_types::CertificateDer::pem_file_iter(&ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        #[allow(deprecated)] // ring, as the library uses
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"shmpipe/1".to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        ep.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let conn = ep
            .connect(addr, "localhost")
            .unwrap()
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        let open = shmpipe::remote::frame::Frame::Open {
            access: 3,
            name: key,
        };
        send.write_all(&open.encode())
            .await
            .map_err(|e| e.to_string())?;
        let mut b = [0u8; 1];
        recv.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        Ok(())
    });
    assert!(
        outcome.is_err(),
        "a client without certificate got an answer"
    );
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "no client reached the server",
    );
}

/// A host not in remote.toml, and one that never answers: BadNetPath (the
/// latter after its connect timeout).
fn unknown_and_unreachable_hosts() {
    if !ready("unknown_and_unreachable_hosts") {
        return;
    }
    assert_kind(
        ClientOptions::new().open(r"\\no-such-host\pipe\x"),
        ErrorKind::BadNetPath,
        "a host not in remote.toml",
    );
    common::within("open of a silent host", || {
        assert_kind(
            ClientOptions::new().open(r"\\nowhere\pipe\x"),
            ErrorKind::BadNetPath,
            "a host that never answers",
        )
    });
}

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
    fixture().killme.lock().unwrap().kill();
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

fn main() -> std::process::ExitCode {
    // Before any thread exists (children inherit it, unused).
    // SAFETY: `main` has not started any thread yet; nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var(shmpipe::remote::CLIENT_CONFIG_ENV, config_path()) };
    // Every test, by name (as `common::main!` lists them).
    macro_rules! trials {
        ($($test:ident),* $(,)?) => {
            vec![$(common::harness::trial(stringify!($test), $test)),*]
        };
    }
    let code = common::harness::run(
        trials![
            async_open_and_call,
            byte_round_trip,
            certificate_of_another_ca_refused,
            gateway_killed_during_read,
            mapped_uid_judged_by_security,
            message_round_trip_and_transact,
            no_client_certificate_refused,
            reject_remote_clients,
            server_close_after_data,
            unknown_and_unreachable_hosts,
            wait_available_while_busy,
        ],
        &[("child_gateway", child_gateway as fn())],
    );
    if std::env::var_os(common::ROLE_ENV).is_none() {
        let _ = std::fs::remove_dir_all(dir());
    }
    code
}
