//! A run's result: the JSON document (one per run), the human summary, and
//! an SVG percentile plot drawn by hand. Pure: values in, text out.

use crate::host::Machine;
use crate::stats::{Latency, Percentiles, Throughput};
use crate::workload::Workload;
use serde::Serialize;
use std::fmt::Write as _;

/// Version of the JSON layout; bump when a field changes meaning.
pub const SCHEMA: &str = "strom-bench/run/1";

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub schema: &'static str,
    pub workload: Workload,
    /// `a` or `b` in a comparison.
    pub label: Option<String>,
    pub bootstrap: String,
    pub topic: String,
    pub started_at: String,
    pub machine: Machine,
    /// Cores the generator's executors were pinned to.
    pub generator_cpus: Vec<usize>,
    pub produce: ProduceFigures,
    pub consume: Option<ConsumeFigures>,
    pub verification: Verification,
    pub backlog: Option<BacklogFigures>,
    pub broker_cpu: Option<CpuUse>,
    pub generator_cpu: Option<CpuUse>,
    pub errors: Vec<String>,
    pub curves: Curves,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProduceFigures {
    /// Acknowledged messages and value bytes, from the start to the last
    /// acknowledgement.
    pub throughput: Throughput,
    /// Acknowledgement − intended send time, µs.
    pub latency_us: Percentiles,
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConsumeFigures {
    /// Received messages and value bytes, from when consumers began to the
    /// last receipt.
    pub throughput: Throughput,
    /// Receipt − intended send time, µs.
    pub e2e_latency_us: Percentiles,
    /// Fetch requests, and those that brought no record (a broker that
    /// answers long polls early shows many).
    pub fetches: u64,
    pub empty_fetches: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    /// Messages the broker accepted (acknowledged; written, for acks=0).
    pub produced: u64,
    pub received: u64,
    pub missing: u64,
    /// Received beyond what was produced (duplicates).
    pub extra: u64,
    /// Offsets skipped inside partitions.
    pub gaps: u64,
    pub partitions_incomplete: u64,
    /// Every accepted message was received exactly once (true when there are
    /// no consumers only if nothing failed).
    pub complete: bool,
}

impl Verification {
    /// Compares per-partition counts: produced[p] against received[p].
    pub fn check(produced: &[u64], received: &[u64], gaps: u64) -> Verification {
        assert_eq!(produced.len(), received.len(), "one count per partition");
        let mut v = Verification {
            gaps,
            ..Verification::default()
        };
        for (&p, &r) in produced.iter().zip(received) {
            v.produced += p;
            v.received += r;
            v.missing += p.saturating_sub(r);
            v.extra += r.saturating_sub(p);
            if p != r {
                v.partitions_incomplete += 1;
            }
        }
        v.complete = v.missing == 0 && v.extra == 0 && v.gaps == 0;
        v
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BacklogFigures {
    pub backlog_messages: u64,
    /// From the consumers' start until they had everything produced so far.
    pub catch_up_s: Option<f64>,
    /// Consumer rate over the catch-up.
    pub catch_up_msgs_per_s: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CpuUse {
    pub pid: String,
    pub cpu_seconds: f64,
    pub cpu_seconds_per_million_messages: Option<f64>,
}

/// Latency at increasing percentiles, for plots: (percentile, µs).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Curves {
    pub produce: Vec<(f64, u64)>,
    pub e2e: Vec<(f64, u64)>,
}

/// Points per decade of "nines" in a curve.
const CURVE_STEPS_PER_NINE: u32 = 10;
/// The curve goes up to 99.999%.
const CURVE_NINES: u32 = 5;

/// (percentile, µs) at 1 − 10^(−k/10) for k = 0..=50, then the maximum.
pub fn curve(latency: &Latency) -> Vec<(f64, u64)> {
    if latency.count() == 0 {
        return Vec::new();
    }
    let mut points: Vec<(f64, u64)> = (0..=CURVE_STEPS_PER_NINE * CURVE_NINES)
        .map(|k| {
            let q = 1.0 - 10f64.powf(-f64::from(k) / f64::from(CURVE_STEPS_PER_NINE));
            (q * 100.0, latency.quantile(q))
        })
        .collect();
    points.push((100.0, latency.percentiles().max));
    points
}

fn fmt_us(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

fn fmt_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn latency_line(out: &mut String, what: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "  {what:<16} p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  ({} samples)",
        fmt_us(p.p50),
        fmt_us(p.p90),
        fmt_us(p.p99),
        fmt_us(p.p99_9),
        fmt_us(p.p99_99),
        fmt_us(p.max),
        p.count
    );
}

/// The human summary.
pub fn summary(r: &RunReport) -> String {
    let w = &r.workload;
    let mut out = String::new();
    let rate = w.producer.total_msgs_per_s();
    let _ = writeln!(
        out,
        "{}{} against {} ({} partitions, {} B messages, acks={}, compression {}, {}, {} producers, {} consumers)",
        w.name,
        r.label.as_ref().map(|l| format!(" [{l}]")).unwrap_or_default(),
        r.bootstrap,
        w.topic.partitions,
        w.producer.message_bytes,
        w.producer.acks.name(),
        w.producer.compression.name(),
        if rate > 0.0 {
            format!("{} msgs/s target", fmt_count(rate))
        } else {
            "max rate".to_string()
        },
        w.producer.producers,
        w.consumer.consumers,
    );
    if !w.topic.config.is_empty() {
        let cfg: Vec<String> = w
            .topic
            .config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "  topic config     {}", cfg.join(" "));
    }
    let t = &r.produce.throughput;
    let _ = writeln!(
        out,
        "  produced         {} msgs in {:.1} s: {} msgs/s, {:.1} MB/s ({} errors)",
        r.produce.acked,
        t.seconds,
        fmt_count(t.msgs_per_s),
        t.mb_per_s,
        r.produce.errors
    );
    latency_line(&mut out, "produce latency", &r.produce.latency_us);
    if let Some(c) = &r.consume {
        let t = &c.throughput;
        let _ = writeln!(
            out,
            "  consumed         {} msgs in {:.1} s: {} msgs/s, {:.1} MB/s ({} fetches, {} empty)",
            t.messages,
            t.seconds,
            fmt_count(t.msgs_per_s),
            t.mb_per_s,
            c.fetches,
            c.empty_fetches
        );
        latency_line(&mut out, "end-to-end", &c.e2e_latency_us);
    }
    if let Some(b) = &r.backlog {
        let _ = writeln!(
            out,
            "  backlog          {} msgs caught up in {} ({} msgs/s)",
            b.backlog_messages,
            b.catch_up_s
                .map(|s| format!("{s:.1} s"))
                .unwrap_or_else(|| "— (never)".into()),
            b.catch_up_msgs_per_s
                .map(fmt_count)
                .unwrap_or_else(|| "—".into())
        );
    }
    let v = &r.verification;
    let _ = writeln!(
        out,
        "  verification     {} produced, {} received, {} missing, {} extra, {} gaps: {}",
        v.produced,
        v.received,
        v.missing,
        v.extra,
        v.gaps,
        if v.complete { "complete" } else { "INCOMPLETE" }
    );
    for (what, cpu) in [
        ("broker CPU", &r.broker_cpu),
        ("generator CPU", &r.generator_cpu),
    ] {
        if let Some(c) = cpu {
            let _ = writeln!(
                out,
                "  {what:<16} {:.2} s (pid {}), {} s per million messages",
                c.cpu_seconds,
                c.pid,
                c.cpu_seconds_per_million_messages
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "—".into())
            );
        }
    }
    for e in &r.errors {
        let _ = writeln!(out, "  error: {e}");
    }
    out
}

const SVG_WIDTH: f64 = 800.0;
const SVG_HEIGHT: f64 = 480.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 60.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A latency-by-percentile plot: x = percentile on a "nines" scale
/// (0, 90, 99, 99.9, …), y = latency on a log scale; one line per curve.
pub fn svg(title: &str, series: &[(&str, &[(f64, u64)])]) -> String {
    let colours = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    ];
    let values = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1.max(1)));
    let (lo, hi) = values.fold((u64::MAX, 1u64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = if lo == u64::MAX { 1 } else { lo };
    let decade_lo = (lo as f64).log10().floor();
    let decade_hi = ((hi as f64).log10().ceil()).max(decade_lo + 1.0);
    let plot_w = SVG_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = SVG_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let nines_max = f64::from(CURVE_NINES) + 0.5; // room for the max
    let x_of = |percentile: f64| {
        let nines = if percentile >= 100.0 {
            nines_max
        } else {
            (-(1.0 - percentile / 100.0).log10()).min(nines_max)
        };
        MARGIN_LEFT + plot_w * nines / nines_max
    };
    let y_of = |us: u64| {
        let l = (us.max(1) as f64).log10();
        MARGIN_TOP + plot_h * (1.0 - (l - decade_lo) / (decade_hi - decade_lo))
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{SVG_HEIGHT}" viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        SVG_WIDTH / 2.0,
        escape(title)
    );
    // Horizontal grid: one line per decade of latency.
    let mut decade = decade_lo;
    while decade <= decade_hi + 1e-9 {
        let us = 10f64.powf(decade) as u64;
        let y = y_of(us);
        let _ = writeln!(
            s,
            r##"<line x1="{MARGIN_LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            SVG_WIDTH - MARGIN_RIGHT,
            MARGIN_LEFT - 6.0,
            y + 4.0,
            escape(&fmt_us(us))
        );
        decade += 1.0;
    }
    // Vertical grid: 0%, 90%, 99%, … and max.
    let ticks = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
    for (k, label) in ticks.iter().enumerate() {
        let x = MARGIN_LEFT + plot_w * k as f64 / nines_max;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{MARGIN_TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            SVG_HEIGHT - MARGIN_BOTTOM,
            SVG_HEIGHT - MARGIN_BOTTOM + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">max</text>"#,
        x_of(100.0),
        SVG_HEIGHT - MARGIN_BOTTOM + 16.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        MARGIN_LEFT + plot_w / 2.0,
        SVG_HEIGHT - 16.0
    );
    let _ = writeln!(
        s,
        r#"<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    for (i, (name, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let colour = colours[i % colours.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(p, us)| format!("{:.1},{:.1}", x_of(p), y_of(us)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        let ly = MARGIN_TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            MARGIN_LEFT + 10.0,
            MARGIN_LEFT + 34.0,
            MARGIN_LEFT + 40.0,
            ly + 4.0,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_counts_per_partition() {
        let v = Verification::check(&[10, 5, 0], &[10, 4, 1], 0);
        assert_eq!((v.produced, v.received, v.missing, v.extra), (15, 15, 1, 1));
        assert_eq!(v.partitions_incomplete, 2);
        assert!(!v.complete);
        let v = Verification::check(&[3, 3], &[3, 3], 0);
        assert!(v.complete);
        assert!(!Verification::check(&[3], &[3], 1).complete);
    }

    #[test]
    fn curves_rise_and_end_at_the_max() {
        let mut h = Latency::default();
        for us in 1..=100_000 {
            h.record(us);
        }
        let c = curve(&h);
        assert_eq!(c.len(), 52);
        assert_eq!(c[0].0, 0.0);
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].0 <= w[1].0));
        assert_eq!(c.last().unwrap().0, 100.0);
        assert!(curve(&Latency::default()).is_empty());
    }

    #[test]
    fn svg_is_well_formed_enough() {
        let mut h = Latency::default();
        for us in [100, 200, 5_000, 90_000] {
            h.record(us);
        }
        let c = curve(&h);
        let text = svg("a <test>", &[("produce", &c), ("end-to-end", &[])]);
        assert!(text.starts_with("<svg"));
        assert!(text.trim_end().ends_with("</svg>"));
        assert_eq!(text.matches("<polyline").count(), 1);
        assert!(text.contains("a &lt;test&gt;"));
        assert!(!text.contains("NaN"));
    }

    #[test]
    fn units() {
        assert_eq!(fmt_us(950), "950 µs");
        assert_eq!(fmt_us(12_300), "12.3 ms");
        assert_eq!(fmt_us(12_300_000), "12.3 s");
        assert_eq!(fmt_count(1_234_567.0), "1.23M");
    }
}
