//! Latency histograms and the arithmetic of the reports: percentiles,
//! throughput, CPU per message, and ratios with their spread. Pure values.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency a histogram records: 10 minutes in µs. Longer samples are
/// clamped (and so still counted), never dropped.
pub const LATENCY_MAX_US: u64 = 600_000_000;

/// A latency distribution in microseconds, 3 significant digits. Owned by
/// one task; merged on the main thread at the end of a run.
#[derive(Clone, Debug)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            histogram: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
                .expect("constant histogram bounds are valid"),
        }
    }
}

/// The percentiles every report gives, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    /// Records one sample; 0 counts as 1 µs (the histogram's floor).
    pub fn record(&mut self, us: u64) {
        self.histogram
            .saturating_record(us.clamp(1, LATENCY_MAX_US));
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        self.histogram
            .add(&other.histogram)
            .expect("histograms with equal bounds merge");
    }

    /// The value at quantile `q` (0..=1).
    pub fn quantile(&self, q: f64) -> u64 {
        self.histogram.value_at_quantile(q)
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.histogram.is_empty() {
            return Percentiles::default();
        }
        let q = |p| self.histogram.value_at_quantile(p);
        Percentiles {
            count: self.histogram.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: self.histogram.max(),
            mean: self.histogram.mean(),
        }
    }
}

/// Messages and bytes over a time window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    /// Megabytes (10^6 bytes) per second, as the OpenMessaging Benchmark reports.
    pub mb_per_s: f64,
}

impl Throughput {
    pub fn new(messages: u64, bytes: u64, seconds: f64) -> Throughput {
        let per_s = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Throughput {
            messages,
            bytes,
            seconds,
            msgs_per_s: per_s(messages),
            mb_per_s: per_s(bytes) / 1e6,
        }
    }
}

/// CPU seconds spent per million messages; None without messages.
pub fn cpu_seconds_per_million(cpu_seconds: f64, messages: u64) -> Option<f64> {
    (messages > 0).then(|| cpu_seconds * 1e6 / messages as f64)
}

/// Ratios of one figure over several rounds: their geometric mean (the right
/// average for ratios) and spread.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RatioSpread {
    pub ratios: Vec<f64>,
    pub geomean: f64,
    pub min: f64,
    pub max: f64,
    /// Relative standard deviation of the ratios (stddev / mean).
    pub rel_stddev: f64,
}

impl RatioSpread {
    /// `a[i] / b[i]` for every round where both are positive; None if none is.
    pub fn of(a: &[f64], b: &[f64]) -> Option<RatioSpread> {
        let ratios: Vec<f64> = a
            .iter()
            .zip(b)
            .filter(|(x, y)| **x > 0.0 && **y > 0.0)
            .map(|(x, y)| x / y)
            .collect();
        if ratios.is_empty() {
            return None;
        }
        let n = ratios.len() as f64;
        let geomean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / n).exp();
        let mean = ratios.iter().sum::<f64>() / n;
        let variance = ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        Some(RatioSpread {
            geomean,
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            rel_stddev: variance.sqrt() / mean,
            ratios,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_histograms_adds_their_samples() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        for us in 1..=1000 {
            a.record(us);
        }
        for _ in 0..1000 {
            b.record(1_000_000);
        }
        a.merge(&b);
        let p = a.percentiles();
        assert_eq!(p.count, 2000);
        // Half the samples are ≤ 1 ms, half are 1 s.
        assert!(p.p50 <= 1000, "{p:?}");
        assert!(p.p90 >= 999_000, "{p:?}");
        assert!((999_000..=1_001_000).contains(&p.max), "{p:?}");
        // Merging an empty histogram changes nothing.
        let before = a.percentiles();
        a.merge(&Latency::default());
        assert_eq!(a.percentiles(), before);
    }

    #[test]
    fn merge_is_the_same_as_recording_into_one() {
        let (mut one, mut left, mut right) =
            (Latency::default(), Latency::default(), Latency::default());
        for i in 0..10_000u64 {
            let us = (i * 7919) % 50_000 + 1;
            one.record(us);
            if i % 3 == 0 {
                left.record(us);
            } else {
                right.record(us);
            }
        }
        left.merge(&right);
        assert_eq!(left.percentiles(), one.percentiles());
    }

    #[test]
    fn out_of_range_samples_are_clamped_not_lost() {
        let mut h = Latency::default();
        h.record(0);
        h.record(u64::MAX);
        let p = h.percentiles();
        assert_eq!(p.count, 2);
        assert_eq!(h.quantile(0.0), 1);
        assert!(p.max >= LATENCY_MAX_US - LATENCY_MAX_US / 1000);
    }

    #[test]
    fn empty_histograms_report_zeros() {
        assert_eq!(Latency::default().percentiles(), Percentiles::default());
    }

    #[test]
    fn throughput_maths() {
        let t = Throughput::new(2_000_000, 2_048_000_000, 4.0);
        assert_eq!(t.msgs_per_s, 500_000.0);
        assert_eq!(t.mb_per_s, 512.0);
        assert_eq!(Throughput::new(5, 5, 0.0).msgs_per_s, 0.0);
        assert_eq!(cpu_seconds_per_million(3.0, 1_500_000), Some(2.0));
        assert_eq!(cpu_seconds_per_million(3.0, 0), None);
    }

    #[test]
    fn ratio_spread() {
        let r = RatioSpread::of(&[2.0, 8.0, 0.0], &[1.0, 2.0, 5.0]).unwrap();
        assert_eq!(r.ratios, vec![2.0, 4.0]);
        assert!((r.geomean - 8f64.sqrt()).abs() < 1e-9);
        assert_eq!((r.min, r.max), (2.0, 4.0));
        // mean 3, stddev 1
        assert!((r.rel_stddev - 1.0 / 3.0).abs() < 1e-9);
        assert!(RatioSpread::of(&[0.0], &[1.0]).is_none());
    }
}
