//! Cross-process criterion benchmarks: every transport is a member of the
//! same group, so criterion's reports put them side by side. The members are
//! the transports of `shmpipe bench` (`shmpipe_benches::Kind::ALL`): the
//! cache-line `floor`; the engine's channels (`engine-spsc`, `engine`); the
//! `shmpipe` crate's pipes as applications use them (`anon`, `named-byte`,
//! `named-msg`); and the kernel's `pipe`, `unix-stream`, `unix-seqpacket`.
//!
//! * `roundtrip_64B`: a 64-byte message to the peer process and back
//!   (`iter_custom`: one iteration is one round trip), under each wait policy
//!   that applies to the transport.
//! * `stream_64B`, `stream_4KiB`, `stream_64KiB`, `stream_1MiB`: one-way
//!   streaming to the peer, which checks every message; one iteration is
//!   one message, timed up to the peer's acknowledgement of the last one.
//!   `aligned` members use 64-byte-aligned buffers on both sides, `+16B`
//!   members buffers 16 bytes past a boundary.
//! * `connect_rtt`: `named-pipe` (open a named message pipe served by the
//!   peer's `PipeListener`, one 64 B round trip) against `unix-stream`
//!   (connect to the peer's listening Unix socket, one 64 B round trip); one
//!   iteration is one connection (see `shmpipe_benches::connect`).
//!
//! The binary re-executes itself as the peer (see `shmpipe_benches::peer`),
//! so `main` first checks whether it is one. `cargo test --benches` runs
//! every member once with one iteration. The rows of the performance
//! targets (issue 12), each a small group of its own, are in
//! `benches/targets.rs`.

mod common;

use common::Setup;
use criterion::{Criterion, SamplingMode, Throughput};
use shmpipe_benches::suite::{OFFSETS, SIZES};
use shmpipe_benches::transport::human_bytes;
use shmpipe_benches::{ConnectPeer, Kind, Target};
use std::time::Duration;

fn roundtrip(c: &mut Criterion, setup: &Setup) {
    let mut g = c.benchmark_group("roundtrip_64B");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for kind in Kind::ALL {
        let mut peer = setup.spawn(kind);
        for &policy in kind.policies() {
            peer.set_policy(policy).expect("set the wait policy");
            let id = format!("{}/{}", kind.name(), policy.name());
            g.bench_function(id.clone(), |b| {
                b.iter_custom(|n| {
                    peer.roundtrip(n, None)
                        .unwrap_or_else(|e| panic!("{id}: {e}"))
                })
            });
        }
        peer.quit().expect("the peer quits cleanly");
    }
    g.finish();
}

fn stream(c: &mut Criterion, setup: &Setup, size: usize) {
    let name = format!("stream_{}", human_bytes(size).replace(' ', ""));
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    if size >= 64 << 10 {
        // Long iterations: same count per sample rather than a ramp.
        g.sampling_mode(SamplingMode::Flat).sample_size(30);
    }
    g.throughput(if size <= 64 {
        Throughput::Elements(1)
    } else {
        Throughput::Bytes(size as u64)
    });
    for kind in Kind::ALL.into_iter().filter(|k| k.streams()) {
        let mut peer = setup.spawn(kind);
        let policy = kind.stream_policy();
        peer.set_policy(policy).expect("set the wait policy");
        for offset in OFFSETS {
            let align = if offset == 0 {
                "aligned".to_owned()
            } else {
                format!("+{offset}B")
            };
            let id = format!("{}/{align}", kind.name());
            g.bench_function(id.clone(), |b| {
                b.iter_custom(|n| {
                    peer.stream(size, offset, n)
                        .unwrap_or_else(|e| panic!("{id}: {e}"))
                })
            });
        }
        peer.quit().expect("the peer quits cleanly");
    }
    g.finish();
}

fn connect_rtt(c: &mut Criterion, setup: &Setup) {
    let mut g = c.benchmark_group("connect_rtt");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut peer = ConnectPeer::spawn(setup.child_cpu)
        .unwrap_or_else(|e| panic!("cannot start the connection server: {e}"));
    for target in Target::ALL {
        let id = target.name();
        g.bench_function(id, |b| {
            b.iter_custom(|n| {
                peer.measure(target, n)
                    .unwrap_or_else(|e| panic!("{id}: {e}"))
            })
        });
    }
    peer.quit().expect("the connection server quits cleanly");
    g.finish();
}

fn main() {
    shmpipe_benches::run_if_peer();
    let setup = Setup::place();
    let mut c = Criterion::default().configure_from_args();
    roundtrip(&mut c, &setup);
    for size in SIZES {
        stream(&mut c, &setup, size);
    }
    connect_rtt(&mut c, &setup);
    c.final_summary();
}
