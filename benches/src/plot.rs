//! The results of [`suite::run`](crate::suite::run) as charts, in one SVG
//! document (`shmpipe bench --plot FILE.svg`):
//!
//! * round-trip latency of a 64 B message: one bar per transport and wait
//!   policy at the p50, a whisker out to the p99, on a log scale (the floor
//!   and a blocking socket are two orders of magnitude apart);
//! * one-way throughput per message size: messages/s at 64 B, GB/s at 4 KiB,
//!   64 KiB and 1 MiB, one row per transport with a bar for 64-byte-aligned
//!   buffers and a lighter one for buffers 16 bytes past a boundary;
//! * connection set-up, if measured: named-pipe open against Unix socket
//!   connect, each with its first round trip (p50, p99 whisker);
//! * the async rows, if measured: round trip (p50, p99 whisker) and 64 B
//!   messages/s of shmpipe's tokio ends and tokio's own, side by side.
//!
//! Colours follow the transport's [`Family`]. Only plotters' SVG backend is
//! used: text goes into the SVG as `<text>` elements that the viewer lays
//! out, and plotters sizes it with its built-in estimate, so drawing needs
//! no font files and no system font libraries.

use crate::connect::{ConnectReport, Target};
use crate::link::human_bytes;
use crate::policy::Policy;
use crate::suite::{Report, TransportReport, OFFSETS, SIZES};
use crate::transport::Family;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io;
use std::path::Path;

const WIDTH: u32 = 1200;
const TITLE_HEIGHT: u32 = 70;
/// Pixels per bar chart row (the charts are sized from it).
const ROW_HEIGHT: u32 = 26;
const CHART_CHROME: u32 = 90;
const FONT: &str = "sans-serif";

/// Chart titles, as they appear in the SVG.
pub const LATENCY_TITLE: &str = "Round trip, 64 B: p50 (bar) and p99 (whisker), us, log scale";
/// Title of the throughput chart at `size` bytes.
pub fn throughput_title(size: usize) -> String {
    if size == SIZES[0] {
        format!(
            "Throughput, {} messages: millions of messages/s",
            human_bytes(size)
        )
    } else {
        format!("Throughput, {} messages: GB/s", human_bytes(size))
    }
}
/// Title of the connection set-up chart.
pub const CONNECT_TITLE: &str = "Connect + first 64 B round trip: p50 (bar) and p99 (whisker), us";

fn family_color(f: Family) -> RGBColor {
    match f {
        Family::Floor => RGBColor(110, 110, 110),
        Family::Engine => RGBColor(49, 104, 178),
        Family::Pipe => RGBColor(36, 150, 80),
        Family::Kernel => RGBColor(214, 110, 30),
    }
}

/// The lighter shade used for the second bar of a row.
fn lighter(c: RGBColor) -> RGBColor {
    let mix = |v: u8| ((u16::from(v) + 2 * 255) / 3) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult<T> = Result<T, DrawingAreaErrorKind<io::Error>>;

/// One bar: a value, maybe a whisker, its colour.
#[derive(Clone, Copy)]
struct Bar {
    value: f64,
    whisker: Option<f64>,
    color: RGBColor,
}

/// One row of a horizontal bar chart: one or two bars.
struct Row {
    label: String,
    bars: Vec<Bar>,
}

#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log10,
}

impl Scale {
    fn to_axis(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log10 => v.max(1e-9).log10(),
        }
    }
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Draws a horizontal bar chart of `rows` (first row on top) into `area`.
fn hbars(area: &Area, title: &str, x_desc: &str, rows: &[Row], scale: Scale) -> DrawResult<()> {
    let n = rows.len().max(1);
    let values = rows
        .iter()
        .flat_map(|r| r.bars.iter())
        .flat_map(|b| std::iter::once(b.value).chain(b.whisker))
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (x0, x1) = match scale {
        Scale::Linear => (0.0, if hi > 0.0 { hi * 1.15 } else { 1.0 }),
        Scale::Log10 if hi > 0.0 => (lo.log10().floor(), (hi * 1.5).log10().ceil()),
        Scale::Log10 => (-1.0, 2.0),
    };
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(8)
        // Room for the last axis label, centred on the right edge.
        .margin_right(28)
        .x_label_area_size(36)
        .y_label_area_size(190)
        .build_cartesian_2d(x0..x1, (0..n).into_segmented())?;
    let x_fmt = |v: &f64| match scale {
        Scale::Linear => fmt_value(*v),
        // Decades as plain numbers: 0.1, 1, 10, 100.
        Scale::Log10 if (v - v.round()).abs() < 1e-9 => format!("{}", 10f64.powi(v.round() as i32)),
        Scale::Log10 => fmt_value(10f64.powf(*v)),
    };
    // Rows are drawn top-down: segment n-1 is the first row.
    let y_fmt = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < n => labels.get(n - 1 - *i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let x_labels = match scale {
        Scale::Log10 => (x1 - x0) as usize + 1,
        Scale::Linear => 8,
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        // Light lines evenly spaced in the exponent would mislead on a log
        // axis; one between labels is enough on a linear one.
        .x_max_light_lines(if scale == Scale::Log10 { 0 } else { 1 })
        .x_labels(x_labels)
        .y_labels(n)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(x_desc)
        .label_style((FONT, 13))
        .draw()?;
    for (i, row) in rows.iter().enumerate() {
        let seg = n - 1 - i;
        let k = row.bars.len().max(1);
        for (j, bar) in row.bars.iter().enumerate() {
            if !(bar.value.is_finite() && bar.value > 0.0) {
                continue;
            }
            // Sub-bar j of k within the segment's pixels, from the top down.
            let (_, y_low) = chart.backend_coord(&(x0, SegmentValue::Exact(seg)));
            let (_, y_high) = chart.backend_coord(&(x0, SegmentValue::Exact(seg + 1)));
            let h = y_low.abs_diff(y_high).max(6);
            let thickness = f64::from(h) / k as f64;
            let top = (j as f64 * thickness).round() as u32;
            let bottom = h - ((j + 1) as f64 * thickness).round() as u32;
            let gap = if thickness >= 8.0 { 2 } else { 0 };
            let v = scale.to_axis(bar.value);
            let mut rect = Rectangle::new(
                [
                    (x0, SegmentValue::Exact(seg)),
                    (v, SegmentValue::Exact(seg + 1)),
                ],
                bar.color.filled(),
            );
            rect.set_margin(top + gap, bottom + gap, 0, 0);
            chart.plotting_area().draw(&rect)?;
            // The sub-bar's centre, from the segment's centre.
            let mid = (top + h - bottom) as i32 / 2 - h as i32 / 2;
            let end = match bar.whisker {
                Some(w) if w.is_finite() && w > bar.value => {
                    let wx = scale.to_axis(w);
                    let style = ShapeStyle::from(&BLACK).stroke_width(1);
                    let dx = {
                        let (a, _) = chart.backend_coord(&(v, SegmentValue::CenterOf(seg)));
                        let (b, _) = chart.backend_coord(&(wx, SegmentValue::CenterOf(seg)));
                        b - a
                    };
                    chart.plotting_area().draw(
                        &(EmptyElement::at((v, SegmentValue::CenterOf(seg)))
                            + PathElement::new(vec![(0, mid), (dx, mid)], style)
                            + PathElement::new(vec![(dx, mid - 4), (dx, mid + 4)], style)),
                    )?;
                    wx
                }
                _ => v,
            };
            chart.plotting_area().draw(
                &(EmptyElement::at((end, SegmentValue::CenterOf(seg)))
                    + Text::new(
                        fmt_value(bar.value),
                        (5, mid - 6),
                        (FONT, 11).into_font().color(&BLACK),
                    )),
            )?;
        }
    }
    Ok(())
}

fn latency_rows(report: &Report) -> Vec<Row> {
    let mut rows = Vec::new();
    for t in &report.transports {
        for r in &t.rtt {
            let base = family_color(t.family);
            let color = if r.policy == Policy::Spin || t.rtt.len() == 1 {
                base
            } else {
                lighter(base)
            };
            rows.push(Row {
                label: format!("{} ({})", t.name, r.policy.name()),
                bars: vec![Bar {
                    value: r.latency.p50_ns as f64 / 1e3,
                    whisker: Some(r.latency.p99_ns as f64 / 1e3),
                    color,
                }],
            });
        }
    }
    rows
}

fn throughput_rows(report: &Report, size: usize) -> Vec<Row> {
    let value = |t: &TransportReport, offset| {
        t.stream(size, offset).map(|r| {
            if size == SIZES[0] {
                r.msgs_per_s / 1e6
            } else {
                r.gb_per_s
            }
        })
    };
    report
        .transports
        .iter()
        .filter(|t| !t.stream.is_empty())
        .map(|t| {
            let base = family_color(t.family);
            Row {
                label: t.name.to_owned(),
                bars: OFFSETS
                    .iter()
                    .enumerate()
                    .map(|(i, &offset)| Bar {
                        value: value(t, offset).unwrap_or(0.0),
                        whisker: None,
                        color: if i == 0 { base } else { lighter(base) },
                    })
                    .collect(),
            }
        })
        .collect()
}

fn connect_rows(c: &ConnectReport) -> Vec<Row> {
    Target::ALL
        .iter()
        .map(|&t| {
            let s = c.summary(t);
            let family = match t {
                Target::NamedPipe => Family::Pipe,
                Target::UnixStream => Family::Kernel,
            };
            Row {
                label: t.name().to_owned(),
                bars: vec![Bar {
                    value: s.p50_ns as f64 / 1e3,
                    whisker: Some(s.p99_ns as f64 / 1e3),
                    color: family_color(family),
                }],
            }
        })
        .collect()
}

/// Title of the async round-trip chart.
pub const ASYNC_RTT_TITLE: &str = "Async (tokio), round trip 64 B: p50 (bar) and p99 (whisker), us";
/// Title of the async throughput chart.
pub const ASYNC_MSGS_TITLE: &str = "Async (tokio), 64 B messages: millions of messages/s";

/// The async rows' round trips and throughputs.
fn async_rows(a: &crate::asyncio::AsyncReport) -> (Vec<Row>, Vec<Row>) {
    let row = |r: &crate::asyncio::AsyncRow, value, whisker| Row {
        label: r.name.to_owned(),
        bars: vec![Bar {
            value,
            whisker,
            color: family_color(r.family),
        }],
    };
    let rtt = a.rows.iter().map(|r| {
        let us = |ns: u64| ns as f64 / 1e3;
        row(r, us(r.rtt.p50_ns), Some(us(r.rtt.p99_ns)))
    });
    let msgs = a.rows.iter().map(|r| row(r, r.msgs_per_s / 1e6, None));
    (rtt.collect(), msgs.collect())
}

fn chart_height(rows: usize) -> u32 {
    CHART_CHROME + ROW_HEIGHT * rows.max(1) as u32
}

fn legend(area: &Area, report: &Report) -> DrawResult<()> {
    let m = &report.machine;
    area.draw(&Text::new(
        format!(
            "shmpipe bench ({:?} mode): {}, {} CPUs, kernel {}, pinned: {}",
            report.mode,
            m.cpu_model,
            m.cpus_online,
            m.kernel,
            if report.placement.pinned { "yes" } else { "no" }
        ),
        (10, 8),
        (FONT, 18).into_font().color(&BLACK),
    ))?;
    let mut x = 10;
    for f in [Family::Floor, Family::Engine, Family::Pipe, Family::Kernel] {
        area.draw(&Rectangle::new(
            [(x, 38), (x + 14, 52)],
            family_color(f).filled(),
        ))?;
        let text = f.describe();
        area.draw(&Text::new(
            text,
            (x + 20, 38),
            (FONT, 13).into_font().color(&BLACK),
        ))?;
        x += 40 + 7 * text.len() as i32;
    }
    area.draw(&Text::new(
        "lighter: default wait policy (latency), +16 B buffers (throughput)",
        (x, 38),
        (FONT, 13).into_font().color(&BLACK),
    ))?;
    Ok(())
}

/// Draws `report` as an SVG document.
pub fn svg(report: &Report) -> io::Result<String> {
    let latency = latency_rows(report);
    let throughput: Vec<Vec<Row>> = SIZES.iter().map(|&s| throughput_rows(report, s)).collect();
    let connect = report.connect.as_ref().map(connect_rows);
    let lat_h = chart_height(latency.len());
    let thr_h = chart_height(throughput.iter().map(Vec::len).max().unwrap_or(1));
    let conn_h = connect.as_ref().map_or(0, |r| chart_height(r.len()));
    let asyncio = report.asyncio.as_ref().map(async_rows);
    let async_h = asyncio.as_ref().map_or(0, |(r, _)| chart_height(r.len()));
    let height = TITLE_HEIGHT + lat_h + 2 * thr_h + conn_h + async_h;
    let mut out = String::new();
    let drawn = (|| -> DrawResult<()> {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (head, rest) = root.split_vertically(TITLE_HEIGHT);
        legend(&head, report)?;
        let (lat, rest) = rest.split_vertically(lat_h);
        hbars(&lat, LATENCY_TITLE, "us", &latency, Scale::Log10)?;
        let (thr, conn) = rest.split_vertically(2 * thr_h);
        for ((cell, rows), &size) in thr
            .split_evenly((2, 2))
            .iter()
            .zip(&throughput)
            .zip(SIZES.iter())
        {
            let unit = if size == SIZES[0] { "M msgs/s" } else { "GB/s" };
            hbars(cell, &throughput_title(size), unit, rows, Scale::Linear)?;
        }
        let (conn, asy) = conn.split_vertically(conn_h);
        if let Some(rows) = &connect {
            hbars(&conn, CONNECT_TITLE, "us", rows, Scale::Linear)?;
        }
        if let Some((rtt, msgs)) = &asyncio {
            let (left, right) = asy.split_horizontally(WIDTH / 2);
            hbars(&left, ASYNC_RTT_TITLE, "us", rtt, Scale::Linear)?;
            hbars(&right, ASYNC_MSGS_TITLE, "M msgs/s", msgs, Scale::Linear)?;
        }
        root.present()?;
        Ok(())
    })();
    drawn.map_err(|e| io::Error::other(format!("drawing the charts: {e}")))?;
    Ok(out)
}

/// Draws `report` into the SVG file `path`.
pub fn write_svg(report: &Report, path: &Path) -> io::Result<()> {
    std::fs::write(path, svg(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Machine;
    use crate::stats::Summary;
    use crate::suite::{Mode, PlacementReport, RttResult, StreamResult};

    fn summary(p50_ns: u64) -> Summary {
        Summary {
            samples: 3,
            p50_ns,
            p99_ns: 2 * p50_ns,
            p999_ns: 3 * p50_ns,
            mean_ns: p50_ns as f64,
            min_ns: p50_ns / 2,
            max_ns: 3 * p50_ns,
        }
    }

    fn report(transports: Vec<TransportReport>) -> Report {
        Report {
            machine: Machine {
                cpu_model: "Test CPU <&>".into(),
                kernel: "6.0".into(),
                cpus_online: 2,
                cpus_allowed: 2,
                hypervisor: false,
                clocksource: "tsc".into(),
                load_average: "0 0 0".into(),
            },
            placement: PlacementReport {
                pinned: false,
                parent_cpu: None,
                child_cpu: None,
            },
            mode: Mode::Smoke,
            capacity: 1 << 20,
            timer_overhead_ns: 20,
            default_wait: "spin".into(),
            seconds: 1.0,
            transports,
            connect: None,
            asyncio: None,
        }
    }

    fn transport(name: &'static str, family: Family, streams: bool) -> TransportReport {
        let stream = if streams {
            SIZES
                .iter()
                .flat_map(|&size| {
                    OFFSETS.iter().map(move |&offset| StreamResult {
                        size,
                        offset,
                        policy: Policy::Default,
                        wait: None,
                        messages: 3,
                        batches: 1,
                        seconds: 1.0,
                        msgs_per_s: 1e6 / (1 + offset) as f64,
                        gb_per_s: 1e6 * size as f64 / 1e9,
                        ratio_to_pipe: None,
                        ratio_to_aligned: None,
                        slice_waits: None,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        TransportReport {
            name,
            family,
            buffers: String::new(),
            child_pinned: false,
            rtt: vec![RttResult {
                policy: Policy::Spin,
                wait: None,
                message_bytes: 64,
                carried_bytes: 64,
                latency: summary(1500),
                slice_waits: None,
            }],
            stream,
        }
    }

    fn texts(doc: &str) -> Vec<&str> {
        doc.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim())
            })
            .collect()
    }

    #[test]
    fn draws_rows_for_every_transport_and_escapes_text() {
        let doc = svg(&report(vec![
            transport("floor", Family::Floor, false),
            transport("named-msg", Family::Pipe, true),
        ]))
        .unwrap();
        assert!(doc.starts_with("<svg"));
        let t = texts(&doc);
        assert!(t.contains(&"floor (spin)") && t.contains(&"named-msg (spin)"));
        // One throughput row per chart, for the transport that streams.
        assert_eq!(t.iter().filter(|s| **s == "named-msg").count(), SIZES.len());
        assert!(!t.contains(&"floor"));
        assert!(t.contains(&LATENCY_TITLE));
        assert!(!t.iter().any(|s| s.starts_with(CONNECT_TITLE)));
        // The machine's name went through XML escaping.
        assert!(doc.contains("Test CPU &lt;&amp;&gt;"), "{doc}");
    }

    #[test]
    fn draws_a_report_without_transports() {
        let mut r = report(Vec::new());
        r.connect = Some(ConnectReport {
            repetitions: 3,
            wait: "spin".into(),
            child_pinned: false,
            named_pipe: summary(300_000),
            unix_stream: summary(40_000),
            ratio_p50: 7.5,
            ratio_p99: 7.5,
            method: Vec::new(),
        });
        let doc = svg(&r).unwrap();
        let t = texts(&doc);
        assert!(t.contains(&CONNECT_TITLE));
        assert!(t.contains(&"named-pipe") && t.contains(&"unix-stream"));
        // p50 of each, as bar labels.
        assert!(t.contains(&"300") && t.contains(&"40.0"), "{t:?}");
    }
}
