//! The rows of the performance targets (issue 12, `docs/performance.md`),
//! one criterion group each, with the reference the target is a ratio to
//! in the same group, so criterion's report puts the two side by side:
//!
//! * `row1_msgs_64B`: 64 B messages streamed one way (one iteration is one
//!   message, up to the peer's acknowledgement of the last):
//!   `named-msg` and `anon` against the kernel `pipe`, with `engine-spsc`,
//!   the engine's path below them, for reference.
//! * `row2_rtt_named_msg`: a 64 B round trip on `named-msg`, both sides
//!   spinning, against the cache-line `floor`.
//! * `row3_rtt_engine_spsc`: the same on `engine-spsc`.
//! * `row4_open_rtt`: `named-pipe` (open a named message pipe served by the
//!   peer, one 64 B round trip) against `unix-stream` (connect to the peer's
//!   Unix socket, one 64 B round trip); one iteration is one connection.
//! * `row6_unaligned_4KiB`, `row6_unaligned_64KiB`: streaming with both
//!   user buffers 64-byte aligned (`aligned`) and 16 bytes past a boundary
//!   (`+16B`), for every shared-memory transport.
//!
//! Row 5 of the table (descriptors per connected end) is a count, not a
//! time: `shmpipe bench --full` reports it. The ratio of row 6 is better
//! read from `shmpipe bench` (its `Na` column): criterion measures `aligned`
//! and `+16B` one after the other, seconds apart, and on a machine whose
//! speed drifts the two can land on either side of a change; the suite
//! pairs batches run back to back.
//!
//! Every member runs the code `shmpipe bench` measures with
//! (`shmpipe_benches::Peer::roundtrip`, `Peer::stream`,
//! `ConnectPeer::measure`). Measurement and warm-up times come from
//! criterion's defaults and command line (e.g. `-- --quick`).

mod common;

use common::Setup;
use criterion::{Criterion, SamplingMode, Throughput};
use shmpipe_benches::transport::{human_bytes, Family};
use shmpipe_benches::{ConnectPeer, Kind, Policy, Target};
use std::time::Duration;

/// Round trips of one transport under `policy`, as members `kind/policy`.
fn rtt_group(c: &mut Criterion, setup: &Setup, name: &str, kinds: &[Kind], policy: Policy) {
    let mut g = c.benchmark_group(name);
    for &kind in kinds {
        let mut peer = setup.spawn(kind);
        peer.set_policy(policy).expect("set the wait policy");
        let id = format!("{}/{}", kind.name(), policy.name());
        g.bench_function(id.clone(), |b| {
            b.iter_custom(|n| {
                peer.roundtrip(n, None)
                    .unwrap_or_else(|e| panic!("{id}: {e}"))
            })
        });
        peer.quit().expect("the peer quits cleanly");
    }
    g.finish();
}

/// One-way streaming of `size`-byte messages from buffers at each of
/// `offsets`, as members `kind/aligned` and `kind/+16B`, under the
/// transport's throughput policy (as in `shmpipe bench`).
fn stream_group(
    c: &mut Criterion,
    setup: &Setup,
    name: &str,
    kinds: &[Kind],
    size: usize,
    offsets: &[usize],
) {
    let mut g = c.benchmark_group(name);
    if size >= 64 << 10 {
        // Long iterations: the same count in every sample, not a ramp.
        g.sampling_mode(SamplingMode::Flat);
    }
    g.throughput(if size <= 64 {
        Throughput::Elements(1)
    } else {
        Throughput::Bytes(size as u64)
    });
    for &kind in kinds {
        let mut peer = setup.spawn(kind);
        peer.set_policy(kind.stream_policy())
            .expect("set the wait policy");
        for &offset in offsets {
            let align = match offset {
                0 => "aligned".to_owned(),
                _ => format!("+{offset}B"),
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

fn open_rtt(c: &mut Criterion, setup: &Setup) {
    let mut g = c.benchmark_group("row4_open_rtt");
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
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    stream_group(
        &mut c,
        &setup,
        "row1_msgs_64B",
        &[Kind::NamedMsg, Kind::Anon, Kind::Pipe, Kind::EngineSpsc],
        64,
        &[0],
    );
    rtt_group(
        &mut c,
        &setup,
        "row2_rtt_named_msg",
        &[Kind::Floor, Kind::NamedMsg],
        Policy::Spin,
    );
    rtt_group(
        &mut c,
        &setup,
        "row3_rtt_engine_spsc",
        &[Kind::Floor, Kind::EngineSpsc],
        Policy::Spin,
    );
    open_rtt(&mut c, &setup);
    let shared_memory: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| matches!(k.family(), Family::Engine | Family::Pipe))
        .collect();
    for size in [4 << 10, 64 << 10] {
        let name = format!("row6_unaligned_{}", human_bytes(size).replace(' ', ""));
        stream_group(&mut c, &setup, &name, &shared_memory, size, &[0, 16]);
    }
    c.final_summary();
}
