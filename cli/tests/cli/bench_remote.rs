//! The benchmark's remote rows end to end (`shmpipe bench --only remote`,
//! smoke mode): a temporary CA, a gateway and the servers in a peer
//! process, and this run's client really move checked round trips and
//! acknowledged one-way data through a remote named pipe, a bare quinn
//! stream and TCP + rustls (a round trip that comes back changed fails the
//! run); the section and the JSON show every row with its ratios to the
//! quinn stream. The rows run only when asked for.

use super::bench::{bench_ok, table_rows, tmp};
use serde_json::Value;

const ROWS: [&str; 3] = ["remote-pipe", "quinn-stream", "tcp-rustls"];
const SECTION: &str = "Remote (loopback";
const SIZES: [u64; 3] = [64, 64 << 10, 1 << 20];

fn needs_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: needs root under CI=true (the gateway switches to mapped uids)"
    );
    println!("{test}: skipped: needs root");
    false
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
}

#[test]
fn bench_only_remote_runs_every_remote_row() {
    if !needs_root("bench_only_remote_runs_every_remote_row") {
        return;
    }
    let json_path = tmp("remote.json");
    let stdout = bench_ok(&[
        "--smoke",
        "--only",
        "remote",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    // Not in the main table: a section of its own.
    assert!(table_rows(&stdout).is_empty(), "{stdout}");
    let section: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with(SECTION))
        .skip(2)
        .take(ROWS.len())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(section, ROWS, "{stdout}");
    assert!(stdout.contains("Targets for remote-pipe"), "{stdout}");

    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("valid JSON");
    std::fs::remove_file(&json_path).ok();
    assert_eq!(v["transports"].as_array().map(Vec::len), Some(0));
    let rows = v["remote"]["rows"].as_array().expect("remote.rows");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ROWS);
    let quinn = &rows[1];
    for r in rows {
        let name = r["name"].as_str().unwrap();
        assert_eq!(r["rtt"]["samples"], 16, "{name}: {r}");
        let (p50, p99) = (
            r["rtt"]["p50_ns"].as_f64().unwrap(),
            r["rtt"]["p99_ns"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{name}: {r}");
        let want = p50 / quinn["rtt"]["p50_ns"].as_f64().unwrap();
        assert!(
            close(r["rtt_p50_to_quinn"].as_f64().unwrap(), want),
            "{name}: {r}"
        );
        let t = r["throughput"].as_array().expect("throughput");
        let sizes: Vec<u64> = t.iter().map(|x| x["size"].as_u64().unwrap()).collect();
        assert_eq!(sizes, SIZES, "{name}: {r}");
        for (x, q) in t.iter().zip(quinn["throughput"].as_array().unwrap()) {
            let b = x["bytes_per_s"].as_f64().unwrap();
            assert!(b > 0.0, "{name}: {r}");
            let want = b / q["bytes_per_s"].as_f64().unwrap();
            assert!(close(x["to_quinn"].as_f64().unwrap(), want), "{name}: {r}");
        }
    }
    assert_eq!(quinn["rtt_p50_to_quinn"].as_f64(), Some(1.0));
}

#[test]
fn remote_rows_run_only_when_asked_for() {
    let json_path = tmp("no-remote.json");
    let stdout = bench_ok(&[
        "--smoke",
        "--only",
        "connect",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(!stdout.contains(SECTION), "{stdout}");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("valid JSON");
    std::fs::remove_file(&json_path).ok();
    assert!(v["remote"].is_null(), "{v}");
}
