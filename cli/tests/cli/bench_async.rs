//! The benchmark's async rows end to end (`shmpipe bench --only async`,
//! smoke mode): each of the four transports really gets a peer process on
//! a tokio runtime and moves checked payloads both ways (a payload that
//! arrives wrong fails the run); the section, the JSON and the charts show
//! every row with its ratios to tokio's `UnixStream`.

use super::bench::{bench_ok, svg_texts, table_rows, tmp};
use serde_json::Value;

const ROWS: [&str; 4] = [
    "async-named-msg",
    "async-anon",
    "tokio-unix-stream",
    "tokio-pipe",
];
const SECTION: &str = "Async (tokio)";

#[test]
fn bench_only_async_runs_every_async_row() {
    let json_path = tmp("async.json");
    let svg_path = tmp("async.svg");
    let stdout = bench_ok(&[
        "--smoke",
        "--only",
        "async",
        "--json",
        json_path.to_str().unwrap(),
        "--plot",
        svg_path.to_str().unwrap(),
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
    assert!(stdout.contains("current-thread tokio runtime"), "{stdout}");

    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("valid JSON");
    std::fs::remove_file(&json_path).ok();
    assert_eq!(v["transports"].as_array().map(Vec::len), Some(0));
    let rows = v["asyncio"]["rows"].as_array().expect("asyncio.rows");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ROWS);
    let unix = &rows[2];
    for r in rows {
        let name = r["name"].as_str().unwrap();
        let expected = if name.starts_with("async-") {
            "pipe"
        } else {
            "kernel"
        };
        assert_eq!(r["family"], expected, "{name}");
        assert_eq!(r["rtt"]["samples"], 32, "{name}: {r}");
        let (p50, p99) = (
            r["rtt"]["p50_ns"].as_f64().unwrap(),
            r["rtt"]["p99_ns"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{name}: {r}");
        assert!(r["msgs_per_s"].as_f64().unwrap() > 0.0, "{name}: {r}");
        // Ratios to tokio's UnixStream of the same run.
        let ratio = r["rtt_p50_to_unix"].as_f64().unwrap();
        let want = p50 / unix["rtt"]["p50_ns"].as_f64().unwrap();
        assert!((ratio - want).abs() <= 1e-9 * want, "{name}: {r}");
        let ratio = r["msgs_to_unix"].as_f64().unwrap();
        let want = r["msgs_per_s"].as_f64().unwrap() / unix["msgs_per_s"].as_f64().unwrap();
        assert!((ratio - want).abs() <= 1e-9 * want, "{name}: {r}");
    }
    assert_eq!(unix["rtt_p50_to_unix"].as_f64(), Some(1.0));

    let doc = std::fs::read_to_string(&svg_path).expect("SVG written");
    std::fs::remove_file(&svg_path).ok();
    let texts = svg_texts(&doc);
    for title in [
        "Async (tokio), round trip 64 B",
        "Async (tokio), 64 B messages",
    ] {
        assert!(doc.contains(title), "no chart titled {title:?}");
    }
    // One row in each of the two async charts.
    for name in ROWS {
        let n = texts.iter().filter(|t| *t == name).count();
        assert_eq!(n, 2, "{name} in {texts:?}");
    }
}
