//! `strom-bench compare`: the same workload against two brokers, alternating
//! A B A B over several rounds so that drift of the machine (page cache, heat,
//! neighbours) hits both alike; each figure is given as the ratio A/B per
//! round, summarised by its geometric mean and spread.

use crate::error::BenchError;
use crate::report::{RunReport, SCHEMA};
use crate::runner::{self, RunOptions};
use crate::stats::RatioSpread;
use crate::workload::Workload;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// Most rounds of a comparison.
pub const ROUNDS_MAX: u32 = 20;

#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub a: RunOptions,
    pub b: RunOptions,
    /// Each side's own workload (they differ only in topic configs).
    pub workload_a: Workload,
    pub workload_b: Workload,
    pub rounds: u32,
    /// Pause between two runs, so one broker's background work (flushes,
    /// deletes) does not land in the other's run.
    pub pause: Duration,
}

/// Whether a larger value of a figure is better.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Clone, Debug, Serialize)]
pub struct FigureComparison {
    pub figure: &'static str,
    pub better: Better,
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    /// A/B per round.
    pub ratio: Option<RatioSpread>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CompareReport {
    pub schema: String,
    pub a: String,
    pub b: String,
    pub rounds: Vec<(RunReport, RunReport)>,
    pub figures: Vec<FigureComparison>,
}

/// The figures a comparison reports, taken from one run.
pub fn figures(r: &RunReport) -> Vec<(&'static str, Better, Option<f64>)> {
    let p = &r.produce;
    let mut out = vec![
        ("produce MB/s", Better::Higher, Some(p.throughput.mb_per_s)),
        (
            "produce msgs/s",
            Better::Higher,
            Some(p.throughput.msgs_per_s),
        ),
        (
            "produce p50 µs",
            Better::Lower,
            Some(p.latency_us.p50 as f64),
        ),
        (
            "produce p99 µs",
            Better::Lower,
            Some(p.latency_us.p99 as f64),
        ),
        (
            "produce p99.9 µs",
            Better::Lower,
            Some(p.latency_us.p99_9 as f64),
        ),
        (
            "produce max µs",
            Better::Lower,
            Some(p.latency_us.max as f64),
        ),
    ];
    let c = r.consume.as_ref();
    out.extend([
        (
            "consume MB/s",
            Better::Higher,
            c.map(|c| c.throughput.mb_per_s),
        ),
        (
            "end-to-end p50 µs",
            Better::Lower,
            c.map(|c| c.e2e_latency_us.p50 as f64),
        ),
        (
            "end-to-end p99 µs",
            Better::Lower,
            c.map(|c| c.e2e_latency_us.p99 as f64),
        ),
        (
            "end-to-end p99.9 µs",
            Better::Lower,
            c.map(|c| c.e2e_latency_us.p99_9 as f64),
        ),
        (
            "broker CPU s per M msgs",
            Better::Lower,
            r.broker_cpu
                .as_ref()
                .and_then(|b| b.cpu_seconds_per_million_messages),
        ),
    ]);
    out
}

/// Runs the comparison, printing each run's summary as it ends.
pub fn run(opts: &CompareOptions) -> Result<CompareReport, BenchError> {
    let mut rounds = Vec::new();
    for round in 0..opts.rounds {
        eprintln!("== round {} of {}: A", round + 1, opts.rounds);
        let a = runner::run(&opts.workload_a, &opts.a)?;
        print!("{}", crate::report::summary(&a));
        std::thread::sleep(opts.pause);
        eprintln!("== round {} of {}: B", round + 1, opts.rounds);
        let b = runner::run(&opts.workload_b, &opts.b)?;
        print!("{}", crate::report::summary(&b));
        if round + 1 < opts.rounds {
            std::thread::sleep(opts.pause);
        }
        rounds.push((a, b));
    }
    Ok(tabulate(&opts.a.bootstrap, &opts.b.bootstrap, rounds))
}

/// Pure: ratios per figure over the rounds.
pub fn tabulate(a: &str, b: &str, rounds: Vec<(RunReport, RunReport)>) -> CompareReport {
    let mut table: Vec<FigureComparison> = Vec::new();
    for (ra, rb) in &rounds {
        for ((name, better, va), (_, _, vb)) in figures(ra).into_iter().zip(figures(rb)) {
            let entry = match table.iter_mut().find(|f| f.figure == name) {
                Some(e) => e,
                None => {
                    table.push(FigureComparison {
                        figure: name,
                        better,
                        a: Vec::new(),
                        b: Vec::new(),
                        ratio: None,
                    });
                    table.last_mut().expect("just pushed")
                }
            };
            if let (Some(va), Some(vb)) = (va, vb) {
                entry.a.push(va);
                entry.b.push(vb);
            }
        }
    }
    for f in &mut table {
        f.ratio = RatioSpread::of(&f.a, &f.b);
    }
    table.retain(|f| !f.a.is_empty());
    CompareReport {
        schema: SCHEMA.replace("/run/", "/compare/"),
        a: a.to_string(),
        b: b.to_string(),
        rounds,
        figures: table,
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The comparison table for people.
pub fn table(report: &CompareReport, a_name: &str, b_name: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A = {a_name} ({}), B = {b_name} ({}), {} rounds A B A B …",
        report.a,
        report.b,
        report.rounds.len()
    );
    let _ = writeln!(
        out,
        "{:<26} {:>14} {:>14} {:>9} {:>17} {:>8}",
        "figure", "A (median)", "B (median)", "A/B", "min – max", "±sd"
    );
    for f in &report.figures {
        let Some(r) = &f.ratio else { continue };
        let _ = writeln!(
            out,
            "{:<26} {:>14.1} {:>14.1} {:>9.3} {:>8.3} – {:<6.3} {:>7.1}%   ({} is better)",
            f.figure,
            median(&f.a),
            median(&f.b),
            r.geomean,
            r.min,
            r.max,
            r.rel_stddev * 100.0,
            match f.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
