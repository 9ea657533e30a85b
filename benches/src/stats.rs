//! Latency percentiles from per-iteration samples.

use serde::Serialize;

/// Summary of a set of latency samples, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Fastest sample.
    pub min_ns: u64,
    /// Slowest sample.
    pub max_ns: u64,
}

/// The nearest-rank `q` quantile of sorted `v` (non-empty).
fn quantile(v: &[u64], q: f64) -> u64 {
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Summarises `samples` (sorted in place); `None` when empty.
pub fn summarize(samples: &mut [u64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Some(Summary {
        samples: samples.len(),
        p50_ns: quantile(samples, 0.50),
        p99_ns: quantile(samples, 0.99),
        p999_ns: quantile(samples, 0.999),
        mean_ns: sum as f64 / samples.len() as f64,
        min_ns: samples[0],
        max_ns: samples[samples.len() - 1],
    })
}

/// The median of `v` (sorted in place); `None` when empty.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let s = summarize(&mut v).unwrap();
        assert_eq!((s.p50_ns, s.p99_ns, s.p999_ns), (500, 990, 999));
        assert_eq!((s.min_ns, s.max_ns, s.samples), (1, 1000, 1000));
        assert!((s.mean_ns - 500.5).abs() < 1e-9);
        let mut one = [7u64];
        let s = summarize(&mut one).unwrap();
        assert_eq!((s.p50_ns, s.p999_ns), (7, 7));
        assert!(summarize(&mut []).is_none());
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
