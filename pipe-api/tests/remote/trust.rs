//! Who gets in: reject_remote_clients, the mapped identity judged by the
//! pipe's Security, certificates of another CA or none at all, hosts
//! unknown or silent.

use crate::common::named::{assert_kind, unique_name, NOBODY};
use crate::{dir, ready, remote};
use shmpipe::named::{ClientOptions, Permissions, Security, ServerOptions};
use shmpipe::remote::frame::Frame;
use shmpipe::ErrorKind;

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

/// A certificate mapped by its subject (`subject = "CN=bysubject"` in
/// gateway.toml) acts as the user it maps to; one whose subject only
/// starts the same is refused.
fn certificate_mapped_by_subject() {
    if !ready("certificate_mapped_by_subject") {
        return;
    }
    let name = unique_name("remote-subject");
    let server = ServerOptions::new()
        .security(Security {
            group: Permissions::ALL,
            others: Permissions::ALL,
        })
        .create(&name)
        .unwrap();
    assert_kind(
        ClientOptions::new().open(&remote("bysubjectx", &name)),
        ErrorKind::AccessDenied,
        "a certificate whose subject is not in the map",
    );
    let _client = ClientOptions::new()
        .open(&remote("bysubject", &name))
        .unwrap();
    let who = server.client_credentials().unwrap();
    assert_eq!((who.uid, who.gid, who.remote), (NOBODY, NOBODY, true));
    // The server sees which certificate it was.
    assert_eq!(who.remote_subject.as_deref(), Some("CN=bysubject"));
    let pem = dir().join("a").join("bysubject.pem");
    assert_eq!(
        who.remote_fingerprint,
        Some(shmpipe::remote::fingerprint_of(&pem).unwrap())
    );
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

/// A QUIC connection to `gw` made here, with the client certificate of
/// `init` or with none, and what the first stream (sending `bytes`) reads
/// back: the first frame, or why there is none.
pub(crate) fn raw_exchange(with_cert: bool, streams: &[Vec<u8>]) -> Vec<Result<Frame, String>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let port: u16 = std::fs::read_to_string(dir().join("gw.port"))
        .unwrap()
        .parse()
        .unwrap();
    let certs = dir().join("a");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(certs.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)] // ring, as the library uses
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut tls = if with_cert {
        let chain = CertificateDer::pem_file_iter(certs.join("client.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(certs.join("client.key")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    tls.alpn_protocols = vec![b"shmpipe/1".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let streams = streams.to_vec();
    rt.block_on(async move {
        let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        ep.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let conn = match ep.connect(addr, "localhost").unwrap().await {
            Ok(c) => c,
            Err(e) => return vec![Err(e.to_string())],
        };
        let mut out = Vec::new();
        for bytes in streams {
            let one = async {
                let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                send.write_all(&bytes).await.map_err(|e| e.to_string())?;
                let mut h = [0u8; 5];
                recv.read_exact(&mut h).await.map_err(|e| e.to_string())?;
                let (t, len) = Frame::header(&h).map_err(|e| e.to_string())?;
                let mut p = vec![0u8; len];
                recv.read_exact(&mut p).await.map_err(|e| e.to_string())?;
                Frame::parse(t, p).map_err(|e| e.to_string())
            };
            out.push(one.await);
        }
        out
    })
}

pub(crate) fn open_frame(name: &str) -> Vec<u8> {
    Frame::Open {
        access: 3,
        trust: Default::default(),
        name: name.rsplit('\\').next().unwrap().to_owned(),
    }
    .encode()
}

/// A client with no certificate at all (a raw QUIC client) gets no open;
/// the same client with its certificate does (the control).
fn no_client_certificate_refused() {
    if !ready("no_client_certificate_refused") {
        return;
    }
    let name = unique_name("remote-nocert");
    let server = ServerOptions::new().create(&name).unwrap();
    let got = raw_exchange(false, &[open_frame(&name)]);
    assert!(got[0].is_err(), "a client without certificate got {got:?}");
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "no client reached the server",
    );
    let got = raw_exchange(true, &[open_frame(&name)]);
    assert!(matches!(got[0], Ok(Frame::Opened(_))), "{got:?}");
}

/// Garbage on a stream (an unknown frame type, a length above the
/// maximum, data before any OPEN) gets the stream reset; the gateway and
/// the connection go on serving (a valid OPEN on the same connection).
fn garbage_on_a_stream() {
    if !ready("garbage_on_a_stream") {
        return;
    }
    let name = unique_name("remote-garbage");
    let _server = ServerOptions::new().create(&name).unwrap();
    let garbage = [
        vec![0x42, 0, 0, 0, 0],
        vec![4, 0xff, 0xff, 0xff, 0x7f],
        Frame::Data(b"no open first".to_vec()).encode(),
    ];
    let mut streams = garbage.to_vec();
    streams.push(open_frame(&name));
    let got = raw_exchange(true, &streams);
    for (g, r) in garbage.iter().zip(&got) {
        assert!(r.is_err(), "{g:?} was answered with {r:?}");
    }
    assert!(matches!(got[3], Ok(Frame::Opened(_))), "{:?}", got[3]);
}

/// A certificate of the right CA, mapped, but expired: refused by the
/// handshake. The same CA's certificate valid until 2100, mapped alike,
/// gets in (so the validity period is what refused the first).
fn expired_certificate_refused() {
    if !ready("expired_certificate_refused") {
        return;
    }
    let name = unique_name("remote-expired");
    let server = ServerOptions::new().create(&name).unwrap();
    assert_kind(
        ClientOptions::new().open(&remote("expired", &name)),
        ErrorKind::AccessDenied,
        "an expired client certificate",
    );
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "no client reached the server",
    );
    ClientOptions::new().open(&remote("fresh", &name)).unwrap();
    assert!(server.client_is_remote().unwrap());
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
    crate::common::within("open of a silent host", || {
        assert_kind(
            ClientOptions::new().open(r"\\nowhere\pipe\x"),
            ErrorKind::BadNetPath,
            "a host that never answers",
        )
    });
}

/// A pinned gateway certificate instead of a CA: the right pin gets in,
/// a pin of another certificate is refused before anything is sent.
fn pinned_gateway_certificate() {
    if !ready("pinned_gateway_certificate") {
        return;
    }
    let name = unique_name("remote-pin");
    let server = ServerOptions::new().create(&name).unwrap();
    assert_kind(
        ClientOptions::new().open(&remote("badpin", &name)),
        ErrorKind::AccessDenied,
        "a pin that is not the gateway's certificate",
    );
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "no client reached the server",
    );
    ClientOptions::new().open(&remote("pinned", &name)).unwrap();
    assert!(server.client_is_remote().unwrap());
}

/// A server of `<PIPE>` running as nobody (any user may connect): says
/// `ready`, serves until its stdin closes.
fn child_nobody_server() {
    let name = crate::common::named::env("PIPE");
    crate::common::named::become_nobody();
    let _server = ServerOptions::new()
        .security(Security {
            group: Permissions::ALL,
            others: Permissions::ALL,
        })
        .create(&name)
        .unwrap();
    crate::common::named::say("ready");
    while crate::common::named::hear().is_some() {}
}

/// The client's trust rule travels: a server running as nobody is refused
/// by default (the gateway judges it for the mapped user, as a local open
/// would), and accepted with `trust_server_uid(65534)`, by `wait_available`
/// as by `open`.
fn trust_options_reach_the_gateway() {
    if !ready("trust_options_reach_the_gateway") {
        return;
    }
    let name = unique_name("remote-trust");
    let far = remote("gw", &name);
    let mut kid = crate::common::named::Kid::spawn("child_nobody_server", &[("PIPE", name)]);
    kid.expect("ready");
    assert_kind(
        ClientOptions::new().open(&far),
        ErrorKind::AccessDenied,
        "a server running as nobody, not trusted",
    );
    assert_kind(
        ClientOptions::new().wait_available(&far, shmpipe::named::WaitTimeout::Default),
        ErrorKind::AccessDenied,
        "wait for a server running as nobody, not trusted",
    );
    let mut trusting = ClientOptions::new();
    trusting.trust_server_uid(crate::common::named::NOBODY);
    trusting
        .wait_available(&far, shmpipe::named::WaitTimeout::Default)
        .unwrap();
    let client = trusting.open(&far).unwrap();
    assert_eq!(
        client.server_credentials().unwrap().uid,
        crate::common::named::NOBODY
    );
    kid.finish();
}

/// Both the owner and a member of a name refuse remote clients; the owner
/// is killed and the member takes the name over: remote clients are still
/// refused. (The member's record of the name came from the owner's JOINED,
/// which does not carry the flag; it used to keep `false` and let them in.)
fn reject_remote_survives_a_takeover() {
    if !ready("reject_remote_survives_a_takeover") {
        return;
    }
    let name = unique_name("remote-reject-takeover");
    let mut kid =
        crate::common::named::Kid::spawn("child_rejecting_owner", &[("PIPE", name.clone())]);
    kid.expect("ready");
    let _member = ServerOptions::new()
        .max_instances(4)
        .reject_remote_clients(true)
        .create(&name)
        .unwrap();
    assert_kind(
        ClientOptions::new().open(&remote("gw", &name)),
        ErrorKind::AccessDenied,
        "remote open while the rejecting owner lives",
    );
    kid.kill();
    // Until the member has taken over, an open finds no owner (FileNotFound
    // or PipeBusy); then its verdict is the member's.
    let start = std::time::Instant::now();
    let r = loop {
        let r = ClientOptions::new().open(&remote("gw", &name));
        let between = matches!(
            r.as_ref().map_err(shmpipe::Error::kind_of),
            Err(Some(ErrorKind::FileNotFound | ErrorKind::PipeBusy))
        );
        if !between || start.elapsed() > crate::common::HANG {
            break r;
        }
        std::thread::yield_now();
    };
    assert_kind(
        r,
        ErrorKind::AccessDenied,
        "remote open after the member (reject_remote_clients(true)) took over",
    );
}

/// The owner of `reject_remote_survives_a_takeover`'s name.
fn child_rejecting_owner() {
    let name = crate::common::named::env("PIPE");
    let _server = ServerOptions::new()
        .max_instances(4)
        .reject_remote_clients(true)
        .create(&name)
        .unwrap();
    crate::common::named::say("ready");
    while crate::common::named::hear().is_some() {}
}

/// An authenticated client that opens unidirectional streams (nothing in
/// shmpipe uses them) and sends on them: the gateway must allow none,
/// rather than acknowledge and keep everything sent (64 MiB a connection
/// before, found by review).
fn unidirectional_streams_are_refused() {
    if !ready("unidirectional_streams_are_refused") {
        return;
    }
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let port: u16 = std::fs::read_to_string(dir().join("gw.port"))
        .unwrap()
        .parse()
        .unwrap();
    let certs = dir().join("a");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(certs.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)] // the ring provider, as the gateway's
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_file_iter(certs.join("client.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(certs.join("client.key")).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    tls.alpn_protocols = vec![b"shmpipe/1".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let acked = rt.block_on(async move {
        let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        ep.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let conn = ep.connect(addr, "localhost").unwrap().await.unwrap();
        let all = async {
            let mut n = 0usize;
            for _ in 0..64 {
                // With no stream allowed, opening waits for credit that
                // never comes: the timeout below ends it with 0 sent.
                let mut s = conn.open_uni().await.unwrap();
                s.write_all(&vec![0u8; 1 << 20]).await.unwrap();
                s.finish().unwrap();
                if s.stopped().await.unwrap().is_none() {
                    n += 1 << 20;
                }
            }
            n
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), all)
            .await
            .unwrap_or(0)
    });
    assert_eq!(
        acked, 0,
        "the gateway acknowledged {acked} bytes on streams it never reads"
    );
}

crate::common::tests! {
    tests: [certificate_mapped_by_subject, unidirectional_streams_are_refused, reject_remote_survives_a_takeover, trust_options_reach_the_gateway, pinned_gateway_certificate, reject_remote_clients, garbage_on_a_stream, expired_certificate_refused, mapped_uid_judged_by_security, certificate_of_another_ca_refused, no_client_certificate_refused, unknown_and_unreachable_hosts],
    children: [child_nobody_server, child_rejecting_owner],
}
