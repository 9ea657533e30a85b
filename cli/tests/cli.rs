//! End-to-end tests of the `shmpipe` binary: the benchmark really spawns its
//! peer processes and moves checked payloads through every transport (in
//! smoke mode: a few iterations each), and errors come out as one line.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const TRANSPORTS: [&str; 6] = [
    "floor",
    "shmpipe-spsc",
    "shmpipe",
    "pipe",
    "unix-stream",
    "unix-seqpacket",
];

fn shmpipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmpipe"))
        .args(args)
        .output()
        .expect("run shmpipe")
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()))
}

/// First words of the table's body: the lines between the rule under the
/// header and the blank line after the table.
fn table_rows(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn bench_smoke_prints_every_transport_and_writes_json() {
    let json_path = tmp("bench.json");
    let out = shmpipe(&["bench", "--smoke", "--json", json_path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // One table row per transport, each starting with its name.
    let rows = table_rows(&stdout);
    for name in TRANSPORTS {
        assert!(rows.contains(&name), "no row for {name} in:\n{stdout}");
    }
    assert_eq!(rows, TRANSPORTS, "rows in table order");
    for needle in [
        "cpu:",
        "kernel",
        "pinned:",
        "p50 / p99 / p99.9",
        "1 MiB GB/s",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }

    let text = std::fs::read_to_string(&json_path).expect("JSON written");
    std::fs::remove_file(&json_path).ok();
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    for key in ["cpu_model", "kernel", "cpus_online", "hypervisor"] {
        assert!(v["machine"].get(key).is_some(), "machine.{key} missing");
    }
    assert!(v["placement"]["pinned"].is_boolean());
    assert_eq!(v["mode"], "smoke");
    let transports = v["transports"].as_array().expect("transports array");
    let names: Vec<&str> = transports
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, TRANSPORTS);
    for t in transports {
        let name = t["name"].as_str().unwrap();
        let rtt = t["rtt"].as_array().unwrap();
        assert!(!rtt.is_empty(), "{name}: no latency results");
        for r in rtt {
            for key in ["policy", "samples", "p50_ns", "p99_ns", "p999_ns"] {
                assert!(r.get(key).is_some(), "{name}: rtt.{key} missing");
            }
            let (p50, p999) = (
                r["p50_ns"].as_u64().unwrap(),
                r["p999_ns"].as_u64().unwrap(),
            );
            assert!(p50 > 0 && p50 <= p999, "{name}: p50 {p50} p99.9 {p999}");
        }
        let stream = t["stream"].as_array().unwrap();
        if name == "floor" {
            assert!(stream.is_empty());
            continue;
        }
        // 4 sizes x {aligned, +16 B}.
        assert_eq!(stream.len(), 8, "{name}: {stream:?}");
        for s in stream {
            for key in ["size", "offset", "msgs_per_s", "gb_per_s", "ratio_to_pipe"] {
                assert!(s.get(key).is_some(), "{name}: stream.{key} missing");
            }
            assert!(s["msgs_per_s"].as_f64().unwrap() > 0.0);
            if name == "pipe" {
                assert_eq!(s["ratio_to_pipe"].as_f64(), Some(1.0));
            }
        }
    }
    let sizes: Vec<u64> = transports[3]["stream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [64, 64, 4096, 4096, 65536, 65536, 1 << 20, 1 << 20]);
}

#[test]
fn bench_only_selected_transports() {
    let out = shmpipe(&["bench", "--smoke", "--only", "unix-stream,floor"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let rows = table_rows(&stdout);
    assert!(rows.contains(&"floor") && rows.contains(&"unix-stream"));
    assert!(!rows.contains(&"pipe") && !rows.contains(&"shmpipe"));
}

fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(
        stderr.starts_with("shmpipe: ") && stderr.contains(needle),
        "{stderr}"
    );
}

#[test]
fn bad_options_fail_with_one_line() {
    assert_one_line_error(&shmpipe(&["bench", "--buffer-kib", "1000"]), "power of two");
    assert_one_line_error(
        &shmpipe(&["bench", "--only", "carrier-pigeon"]),
        "carrier-pigeon",
    );
    // Checked before measuring: fails at once.
    let missing = tmp("no-such-dir").join("out.json");
    assert_one_line_error(
        &shmpipe(&["bench", "--json", missing.to_str().unwrap()]),
        "no-such-dir",
    );
}
