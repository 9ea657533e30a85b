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
//! * `expired`, `fresh`: `gw` again, with certificates of its CA (both
//!   mapped) whose validity ended in 2001 and ends in 2100;
//! * `bysubject`, `bysubjectx`: `gw` again, with certificates of its CA
//!   whose subjects are `CN=bysubject` (mapped by subject to nobody) and
//!   `CN=bysubjectx` (not mapped);
//! * `killme`: a gateway of its own, which one test SIGKILLs;
//! * `waitgw`: a gateway of its own, whose waiting threads one test counts;
//! * `nowhere`: a UDP port that never answers;
//! * `relay`: `gw` through a UDP relay the test makes lossy, then cuts;
//! * `slow`: `gw` through a relay that delays every packet, which a test
//!   then cuts;
//! * `pinned`, `badpin`: `gw` recognised by a pinned certificate (its own,
//!   or another one) instead of a CA.
//!
//! The gateways switch to the mapped uid per thread, so they need root:
//! without it the tests say why and return, except under `CI=true`.

#[path = "../common/mod.rs"]
mod common;

mod data;
mod faults;
mod flush;
mod trust;

use common::named::{hear, say, Kid, NOBODY};
use common::{is_root, require};
use shmpipe::remote::{Gateway, GatewayConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

/// The gateways and files every test shares.
pub(crate) struct Fixture {
    /// `killme`'s gateway (the others live as long as this process: their
    /// stdin closes when it exits).
    killme: Mutex<Kid>,
    /// The pid of `waitgw`'s gateway.
    pub(crate) waitgw: u32,
    _kids: Mutex<Vec<Kid>>,
    _silent: std::net::UdpSocket,
}

/// The QUIC idle timeout of the tests' gateways and hosts. Longer than the
/// 3 s default: every test of this binary shares one connection per host,
/// and on a loaded 2-core CI machine its keep-alives could starve for 3 s,
/// which broke every pipe on it at once (a flush then failed with
/// BrokenPipe). The fault tests still see their blocked calls end within
/// this bound, well under the hang guard.
const IDLE_MS: u64 = 8000;

pub(crate) fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("shmpipe-remote-test-{}", std::process::id()))
}

fn gateway_config(certs: &Path, uid: u32, fingerprints: &[&str], file: &str) -> PathBuf {
    let path = dir().join(file);
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\ncert = \"{c}/gateway.pem\"\nkey = \"{c}/gateway.key\"\n\
         client_ca = \"{c}/ca.pem\"\nidle_timeout_ms = {IDLE_MS}\n",
        c = certs.display()
    );
    for fp in fingerprints {
        text += &format!("\n[[clients]]\nfingerprint = \"{fp}\"\nuid = {uid}\ngid = {uid}\n");
    }
    std::fs::write(&path, text).unwrap();
    path
}
fn start_gateway(config: &Path) -> (Kid, u16) {
    let mut kid = Kid::spawn(
        "child_gateway",
        &[("GATEWAY_CONFIG", config.display().to_string())],
    );
    let port = kid.listen().parse().expect("the gateway says its port");
    (kid, port)
}

fn host(name: &str, port: u16, ca: &Path, cert: &Path, timeout: u64) -> String {
    let key = cert.with_extension("key");
    format!(
        "[hosts.{name}]\naddress = \"127.0.0.1\"\nport = {port}\nserver_name = \"localhost\"\n\
         ca = \"{}/ca.pem\"\ncert = \"{}\"\nkey = \"{}\"\n\
         connect_timeout_ms = {timeout}\nidle_timeout_ms = {IDLE_MS}\n\n",
        ca.display(),
        cert.display(),
        key.display()
    )
}

/// A client certificate of the CA in `certs` (signed with its key, as
/// `init` made it), valid from `from` to `to` (years); its fingerprint.
fn client_cert(certs: &Path, file: &str, from: i32, to: i32) -> String {
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
        Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(certs.join("ca.key")).unwrap()).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "shmpipe gateway CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = Issuer::new(ca, ca_key);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, file);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.not_before = date_time_ymd(from, 1, 1);
    p.not_after = date_time_ymd(to, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    let pem = certs.join(format!("{file}.pem"));
    std::fs::write(&pem, cert.pem()).unwrap();
    std::fs::write(pem.with_extension("key"), key.serialize_pem()).unwrap();
    shmpipe::remote::fingerprint_of(&pem).unwrap()
}
pub(crate) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (a, b) = (dir().join("a"), dir().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
        }
        let names = ["localhost".to_owned()];
        let ia = shmpipe::remote::init(&a, &names, 0, 0, "gw", 0).unwrap();
        shmpipe::remote::init(&b, &names, 0, 0, "gw", 0).unwrap();
        let fp = ia.client_fingerprint.as_str();
        // Both mapped to root: only the validity period tells them apart.
        let expired = client_cert(&a, "expired", 2000, 2001);
        let fresh = client_cert(&a, "fresh", 2000, 2100);
        let all = [fp, &expired, &fresh];
        // Mapped by subject (to nobody, not root): any certificate of the
        // CA named exactly so; "bysubjectx" is not.
        client_cert(&a, "bysubject", 2000, 2100);
        client_cert(&a, "bysubjectx", 2000, 2100);
        let gw_toml = gateway_config(&a, 0, &all, "gw.toml");
        let by_subject =
            format!("\n[[clients]]\nsubject = \"CN=bysubject\"\nuid = {NOBODY}\ngid = {NOBODY}\n");
        let text = std::fs::read_to_string(&gw_toml).unwrap() + &by_subject;
        std::fs::write(&gw_toml, text).unwrap();
        let (gw, gw_port) = start_gateway(&gw_toml);
        let (gwn, gwn_port) = start_gateway(&gateway_config(&a, NOBODY, &[fp], "gwnobody.toml"));
        let (killme, kill_port) = start_gateway(&gateway_config(&a, 0, &[fp], "killme.toml"));
        let (waitgw, waitgw_port) = start_gateway(&gateway_config(&a, 0, &[fp], "waitgw.toml"));
        // Bound and never read: packets to it go nowhere, no ICMP comes back.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let mut toml = String::new();
        let client = a.join("client.pem");
        toml += &host("gw", gw_port, &a, &client, 3000);
        toml += &host("gwnobody", gwn_port, &a, &client, 3000);
        toml += &host("otherca", gw_port, &a, &b.join("client.pem"), 3000);
        toml += &host("expired", gw_port, &a, &a.join("expired.pem"), 3000);
        toml += &host("fresh", gw_port, &a, &a.join("fresh.pem"), 3000);
        toml += &host("bysubject", gw_port, &a, &a.join("bysubject.pem"), 3000);
        toml += &host("bysubjectx", gw_port, &a, &a.join("bysubjectx.pem"), 3000);
        toml += &host("killme", kill_port, &a, &client, 3000);
        toml += &host("waitgw", waitgw_port, &a, &client, 3000);
        toml += &host("nowhere", silent_port, &a, &client, 300);
        toml += &host("relay", start_relay(gw_port, &RELAY), &a, &client, 3000);
        toml += &host("slow", start_relay(gw_port, &SLOW_RELAY), &a, &client, 3000);
        // The gateway recognised by its certificate's fingerprint, no CA;
        // and a pin of another certificate.
        let gateway_fp = shmpipe::remote::fingerprint_of(&a.join("gateway.pem")).unwrap();
        for (name, pin) in [("pinned", gateway_fp.as_str()), ("badpin", fp)] {
            toml += &host(name, gw_port, &a, &client, 3000).replace(
                &format!("ca = \"{}/ca.pem\"", a.display()),
                &format!("pin = \"{pin}\""),
            );
        }
        // For tests that speak QUIC themselves.
        std::fs::write(dir().join("gw.port"), gw_port.to_string()).unwrap();
        std::fs::write(config_path(), toml).unwrap();
        Fixture {
            killme: Mutex::new(killme),
            waitgw: waitgw.pid(),
            _kids: Mutex::new(vec![gw, gwn, waitgw]),
            _silent: silent,
        }
    })
}

/// What the relay `relay` in front of `gw` does with packets.
pub(crate) static RELAY: AtomicU8 = AtomicU8::new(RELAY_PASS);
/// What the relay `slow` in front of `gw` does (its own: tests run in
/// parallel).
pub(crate) static SLOW_RELAY: AtomicU8 = AtomicU8::new(RELAY_DELAY);
/// Forward every packet.
pub(crate) const RELAY_PASS: u8 = 0;
/// Drop every fifth packet each way (QUIC retransmits).
pub(crate) const RELAY_LOSSY: u8 = 1;
/// Drop everything: the network is gone.
pub(crate) const RELAY_BLACKHOLE: u8 = 2;
/// Forward every packet [`RELAY_DELAY_BY`] late (a slow network: QUIC's
/// acknowledgements and the pipe's frames all arrive late).
pub(crate) const RELAY_DELAY: u8 = 3;
/// How late [`RELAY_DELAY`] forwards a packet.
const RELAY_DELAY_BY: std::time::Duration = std::time::Duration::from_millis(25);

/// A thread that sends what it is given on `socket` (to the address, or
/// the connected peer for `None`) once its time came; the sender side.
fn delayer(
    socket: std::sync::Arc<std::net::UdpSocket>,
) -> std::sync::mpsc::Sender<(std::time::Instant, Vec<u8>, Option<std::net::SocketAddr>)> {
    let (tx, rx) =
        std::sync::mpsc::channel::<(std::time::Instant, Vec<u8>, Option<std::net::SocketAddr>)>();
    std::thread::spawn(move || {
        // Packets come in order of their due time (one fixed delay).
        for (due, packet, to) in rx {
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            let _ = match to {
                Some(to) => socket.send_to(&packet, to),
                None => socket.send(&packet),
            };
        }
    });
    tx
}

/// A UDP relay on 127.0.0.1 to `port`, doing what `mode` says; its port.
/// Its threads live as long as the process.
fn start_relay(port: u16, mode: &'static AtomicU8) -> u16 {
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::Arc;
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    back.connect(("127.0.0.1", port)).unwrap();
    let front_port = front.local_addr().unwrap().port();
    let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    // When to forward a packet, if at all.
    let pass = |n: &mut u64| {
        *n += 1;
        let now = std::time::Instant::now();
        match mode.load(Ordering::SeqCst) {
            RELAY_PASS => Some(now),
            RELAY_LOSSY => (*n % 5 != 0).then_some(now),
            RELAY_DELAY => Some(now + RELAY_DELAY_BY),
            _ => None,
        }
    };
    let (to_back, to_front) = (delayer(Arc::clone(&back)), delayer(Arc::clone(&front)));
    let (f, c) = (Arc::clone(&front), Arc::clone(&client));
    std::thread::spawn(move || {
        let (mut buf, mut n) = ([0u8; 65536], 0);
        while let Ok((len, from)) = f.recv_from(&mut buf) {
            *c.lock().unwrap() = Some(from);
            if let Some(due) = pass(&mut n) {
                let _ = to_back.send((due, buf[..len].to_vec(), None));
            }
        }
    });
    std::thread::spawn(move || {
        let (mut buf, mut n) = ([0u8; 65536], 0);
        while let Ok(len) = back.recv(&mut buf) {
            let to = *client.lock().unwrap();
            if let (Some(to), Some(due)) = (to, pass(&mut n)) {
                let _ = to_front.send((due, buf[..len].to_vec(), Some(to)));
            }
        }
    });
    front_port
}

pub(crate) fn config_path() -> PathBuf {
    dir().join("remote.toml")
}

/// `\\host\pipe\<name>` for a local name from `unique_name`.
pub(crate) fn remote(host: &str, local: &str) -> String {
    local.replacen(r"\\.\", &format!(r"\\{host}\"), 1)
}

pub(crate) fn ready(test: &str) -> bool {
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

fn main() -> std::process::ExitCode {
    // Before any thread exists; children inherit the parent's.
    if std::env::var_os(common::ROLE_ENV).is_none() {
        // SAFETY: `main` has not started any thread yet; nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var(shmpipe::remote::CLIENT_CONFIG_ENV, config_path()) };
    }
    let mut tests = data::tests();
    tests.extend(trust::tests());
    tests.extend(faults::tests());
    tests.extend(flush::tests());
    let children: Vec<(&str, fn())> = [
        &[("child_gateway", child_gateway as fn())][..],
        data::CHILDREN,
        trust::CHILDREN,
        faults::CHILDREN,
        flush::CHILDREN,
    ]
    .concat();
    let code = common::harness::run(tests, &children);
    if std::env::var_os(common::ROLE_ENV).is_none() {
        let _ = std::fs::remove_dir_all(dir());
    }
    code
}
