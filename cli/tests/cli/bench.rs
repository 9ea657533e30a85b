//! End-to-end tests of the `shmpipe` binary: the benchmark really spawns its
//! peer processes and moves checked payloads through every transport (in
//! smoke mode: a few iterations each; a payload that arrives wrong fails the
//! run), measures connection set-up against a real server process, draws
//! its charts, and errors come out as one line.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const TRANSPORTS: [&str; 9] = [
    "floor",
    "engine-spsc",
    "engine",
    "anon",
    "named-byte",
    "named-msg",
    "pipe",
    "unix-stream",
    "unix-seqpacket",
];

/// The transports that wait as an engine wait policy says (spin and default
/// latency rows, and a `wait` description in the JSON).
const SHARED_MEMORY: [&str; 5] = ["engine-spsc", "engine", "anon", "named-byte", "named-msg"];

const CONNECT_SECTION: &str = "Connect + first 64 B round trip";

fn shmpipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmpipe"))
        .args(args)
        .output()
        .expect("run shmpipe")
}

/// Runs a benchmark that must succeed; returns its standard output.
pub(super) fn bench_ok(args: &[&str]) -> String {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    let out = shmpipe(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "shmpipe {all:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

pub(super) fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()))
}

/// First words of the table's body: the lines between the rule under the
/// header and the blank line after the table.
pub(super) fn table_rows(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

/// A run that can park has both processes' counts of hand-offs that waited
/// a full park slice (not asserted 0: a smoke run on a loaded machine may
/// see a peer stall for a whole slice); one that cannot has none.
fn assert_slice_waits(w: &Value, parks: bool, name: &str) {
    if parks {
        for side in ["bench", "peer"] {
            assert!(w[side].is_u64(), "{name}: slice_waits.{side} in {w}");
        }
    } else {
        assert!(w.is_null(), "{name}: slice_waits {w}");
    }
}

#[test]
fn bench_smoke_prints_every_transport_and_writes_json() {
    let json_path = tmp("bench.json");
    let stdout = bench_ok(&["--smoke", "--json", json_path.to_str().unwrap()]);

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
        "slice waits",
        "bench / peer",
        CONNECT_SECTION,
        "named / unix",
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
        let family = t["family"].as_str().unwrap();
        let expected = match name {
            "floor" => "floor",
            "engine-spsc" | "engine" => "engine",
            "anon" | "named-byte" | "named-msg" => "pipe",
            _ => "kernel",
        };
        assert_eq!(family, expected, "{name}");
        let policies: Vec<&str> = rtt.iter().map(|r| r["policy"].as_str().unwrap()).collect();
        if SHARED_MEMORY.contains(&name) {
            assert_eq!(policies, ["spin", "default"], "{name}");
            for r in rtt {
                assert!(r["wait"].is_string(), "{name}: no wait policy description");
            }
        } else if name == "floor" {
            assert_eq!(policies, ["spin"]);
        } else {
            assert_eq!(policies, ["default"], "{name}");
        }
        for r in rtt {
            // Counted (in both processes) exactly where a hand-off can park.
            let parks = SHARED_MEMORY.contains(&name) && r["policy"] == "default";
            assert_slice_waits(&r["slice_waits"], parks, name);
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
            assert_slice_waits(&s["slice_waits"], SHARED_MEMORY.contains(&name), name);
            if name == "pipe" {
                assert_eq!(s["ratio_to_pipe"].as_f64(), Some(1.0));
            }
        }
    }
    for t in transports.iter().skip(1) {
        let sizes: Vec<u64> = t["stream"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["size"].as_u64().unwrap())
            .collect();
        assert_eq!(sizes, [64, 64, 4096, 4096, 65536, 65536, 1 << 20, 1 << 20]);
    }

    let c = &v["connect"];
    assert_eq!(c["repetitions"], 3, "{c}");
    for target in ["named_pipe", "unix_stream"] {
        assert_eq!(c[target]["samples"], 3, "{target}");
        let (p50, p99) = (
            c[target]["p50_ns"].as_u64().unwrap(),
            c[target]["p99_ns"].as_u64().unwrap(),
        );
        assert!(p50 > 0 && p50 <= p99, "{target}: p50 {p50} p99 {p99}");
    }
    let ratio = c["ratio_p50"].as_f64().unwrap();
    let expected =
        c["named_pipe"]["p50_ns"].as_f64().unwrap() / c["unix_stream"]["p50_ns"].as_f64().unwrap();
    assert!(
        (ratio - expected).abs() < 1e-9 * expected,
        "{ratio} vs {expected}"
    );
}

#[test]
fn bench_only_selected_transports() {
    let stdout = bench_ok(&["--smoke", "--only", "named-msg,unix-stream,floor,anon"]);
    // Table order, whatever the order on the command line.
    assert_eq!(
        table_rows(&stdout),
        ["floor", "anon", "named-msg", "unix-stream"],
        "{stdout}"
    );
    assert!(!stdout.contains(CONNECT_SECTION), "{stdout}");
}

#[test]
fn bench_only_connect_measures_connection_set_up_alone() {
    let json_path = tmp("connect.json");
    let stdout = bench_ok(&[
        "--smoke",
        "--only",
        "connect",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(table_rows(&stdout).is_empty(), "{stdout}");
    let section: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with(CONNECT_SECTION))
        .collect();
    let first_words: Vec<&str> = section
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for needle in ["named-pipe", "unix-stream", "named"] {
        assert!(first_words.contains(&needle), "{needle} missing:\n{stdout}");
    }
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("valid JSON");
    std::fs::remove_file(&json_path).ok();
    assert_eq!(v["transports"].as_array().map(Vec::len), Some(0));
    assert_eq!(v["connect"]["named_pipe"]["samples"], 3);
}

#[test]
fn bench_pipes_carry_messages_larger_than_their_quota() {
    // 4 KiB quotas: the 64 KiB and 1 MiB messages are written whole
    // (message mode: one message each) and complete as the reader reads.
    let stdout = bench_ok(&[
        "--smoke",
        "--buffer-kib",
        "4",
        "--only",
        "anon,named-byte,named-msg",
    ]);
    assert_eq!(
        table_rows(&stdout),
        ["anon", "named-byte", "named-msg"],
        "{stdout}"
    );
    assert!(stdout.contains("quotas 4 KiB each way"), "{stdout}");
}

/// Whether `doc` is a well-formed tree of tags: every opened tag closed in
/// order, attribute values quoted, nothing outside the root element.
fn well_formed_xml(doc: &str) -> Result<(), String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = doc.trim();
    let mut closed_root = false;
    while let Some(start) = rest.find('<') {
        if closed_root || (stack.is_empty() && !rest[..start].trim().is_empty()) {
            return Err(format!(
                "content outside the root: {:?}",
                &rest[..start.min(40)]
            ));
        }
        let end = rest[start..].find('>').ok_or("unterminated tag")? + start;
        let tag = &rest[start + 1..end];
        if tag.matches('"').count() % 2 != 0 {
            return Err(format!("unbalanced quotes in <{tag}>"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            closed_root = stack.is_empty();
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().ok_or("empty tag")?);
        }
        rest = &rest[end + 1..];
    }
    if !stack.is_empty() || !closed_root || !rest.trim().is_empty() {
        return Err(format!("unclosed: {stack:?}"));
    }
    Ok(())
}

#[test]
fn xml_check_rejects_what_it_should() {
    assert!(well_formed_xml("<svg a=\"1\"><text>x</text><rect/></svg>").is_ok());
    assert!(well_formed_xml("<svg><text>x</svg>").is_err());
    assert!(well_formed_xml("<svg><rect a=\"1/></svg>").is_err());
    assert!(well_formed_xml("<svg></svg><svg></svg>").is_err());
    assert!(well_formed_xml("<svg>").is_err());
}

#[test]
fn bench_plot_draws_every_transport() {
    let svg_path = tmp("bench.svg");
    bench_ok(&["--smoke", "--plot", svg_path.to_str().unwrap()]);
    let doc = std::fs::read_to_string(&svg_path).expect("SVG written");
    std::fs::remove_file(&svg_path).ok();
    assert!(doc.starts_with("<svg "), "{}", &doc[..doc.len().min(200)]);
    assert!(doc.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(doc.trim_end().ends_with("</svg>"));
    well_formed_xml(&doc).unwrap_or_else(|e| panic!("not well-formed: {e}"));
    for title in [
        "Round trip, 64 B",
        "Throughput, 64 B messages",
        "Throughput, 4 KiB messages",
        "Throughput, 64 KiB messages",
        "Throughput, 1 MiB messages",
        "Connect + first 64 B round trip",
    ] {
        assert!(doc.contains(title), "no chart titled {title:?}");
    }
    // Every transport labels a latency row per wait policy, and all but the
    // floor a row in each of the 4 throughput charts; both connection
    // targets label a row.
    let texts = svg_texts(&doc);
    let count = |label: &str| texts.iter().filter(|t| *t == label).count();
    for name in TRANSPORTS {
        let policies = if SHARED_MEMORY.contains(&name) {
            &["spin", "default"][..]
        } else if name == "floor" {
            &["spin"][..]
        } else {
            &["default"][..]
        };
        for policy in policies {
            let label = format!("{name} ({policy})");
            assert_eq!(count(&label), 1, "latency row {label:?} in {texts:?}");
        }
        let throughput_rows = if name == "floor" { 0 } else { 4 };
        // The connect chart has a unix-stream row too.
        let connect_rows = usize::from(name == "unix-stream");
        assert_eq!(
            count(name),
            throughput_rows + connect_rows,
            "{name} in {texts:?}"
        );
    }
    assert_eq!(count("named-pipe"), 1, "named-pipe in {texts:?}");
}

/// The contents of the SVG's `<text>` elements, trimmed.
pub(super) fn svg_texts(doc: &str) -> Vec<String> {
    doc.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
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
    let missing = tmp("no-such-dir").join("out.svg");
    assert_one_line_error(
        &shmpipe(&["bench", "--plot", missing.to_str().unwrap()]),
        "no-such-dir",
    );
}

/// The killed-peer measurement alone: every case, blocking and async, each
/// with real peer processes SIGKILLed (a call that returns anything but the
/// end of the pipe fails the run), printed and in the JSON with the kernel
/// case it compares with.
#[test]
fn bench_only_kill_runs_every_case_blocking_and_async() {
    let json_path = tmp("kill.json");
    let stdout = bench_ok(&[
        "--smoke",
        "--only",
        "kill",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    let cases = [
        ("anon-read", "pipe-read"),
        ("anon-write", "pipe-write"),
        ("pipe-read", "pipe-read"),
        ("pipe-write", "pipe-write"),
        ("async-anon-read", "async-pipe-read"),
        ("async-anon-write", "async-pipe-write"),
        ("async-pipe-read", "async-pipe-read"),
        ("async-pipe-write", "async-pipe-write"),
    ];
    let first_words: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for (case, _) in cases {
        assert!(first_words.contains(&case), "{case} missing:\n{stdout}");
    }
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("valid JSON");
    let got = v["kill"]["cases"].as_array().expect("kill.cases");
    assert_eq!(got.len(), cases.len(), "{v}");
    for (c, (case, kernel)) in got.iter().zip(cases) {
        assert_eq!(c["case"], case, "{c}");
        assert_eq!(c["kernel"], kernel, "{c}");
        assert_eq!(c["samples"], 3, "{c}");
        let ratio = c["ratio_p50"].as_f64().expect("ratio_p50");
        let expected = c["p50_ns"].as_f64().unwrap()
            / got.iter().find(|k| k["case"] == kernel).unwrap()["p50_ns"]
                .as_f64()
                .unwrap()
                .max(1.0);
        assert!((ratio - expected).abs() <= 1e-9 * expected, "{c}");
    }
}

/// The zero-copy measurement alone: both pipes at both sizes, each row
/// with the copy and the zero-copy API's GB/s and their ratio, printed and
/// in the JSON (the peer checks every message, so a run that moved wrong
/// bytes fails).
#[test]
fn bench_only_zero_copy_compares_both_apis_per_pipe_and_size() {
    let json_path = tmp("zero-copy.json");
    let stdout = bench_ok(&[
        "--smoke",
        "--only",
        "zero-copy",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(stdout.contains("zero copy vs copy API"), "{stdout}");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("valid JSON");
    std::fs::remove_file(&json_path).ok();
    let rows = v["zero_copy"].as_array().expect("zero_copy rows");
    let want = [
        ("anon", 64 << 10),
        ("anon", 1 << 20),
        ("named-msg", 64 << 10),
        ("named-msg", 1 << 20),
    ];
    assert_eq!(rows.len(), want.len(), "{v}");
    for (r, (pipe, size)) in rows.iter().zip(want) {
        assert_eq!(r["pipe"], pipe, "{r}");
        assert_eq!(r["size"], size, "{r}");
        let copy = r["copy_gb_per_s"].as_f64().expect("copy GB/s");
        let zero = r["zero_copy_gb_per_s"].as_f64().expect("zero-copy GB/s");
        let ratio = r["ratio"].as_f64().expect("ratio");
        assert!(copy > 0.0 && zero > 0.0, "{r}");
        assert!((ratio - zero / copy).abs() <= 1e-9 * ratio, "{r}");
    }
    assert!(v["transports"].as_array().is_some_and(|t| t.is_empty()));
}
