//! Percentiles of measured durations (nearest rank, so every figure is a real sample).

use serde::Serialize;

/// Summary of a set of samples, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// `None` when there is no sample.
    pub fn of(samples_ms: &[f64]) -> Option<Summary> {
        if samples_ms.is_empty() {
            return None;
        }
        let mut sorted = samples_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let sum: f64 = sorted.iter().sum();
        Some(Summary {
            count: sorted.len(),
            min_ms: sorted[0],
            p50_ms: percentile(&sorted, 50.0),
            p95_ms: percentile(&sorted, 95.0),
            p99_ms: percentile(&sorted, 99.0),
            max_ms: sorted[sorted.len() - 1],
            mean_ms: sum / sorted.len() as f64,
        })
    }
}

/// Milliseconds of a signed chrono duration.
pub fn ms(d: chrono::Duration) -> f64 {
    d.num_microseconds()
        .map_or(d.num_milliseconds() as f64, |us| us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&samples).expect("samples");
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p95_ms, 95.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(s.mean_ms, 50.5);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(Summary::of(&[]).is_none());
        // Unsorted input is sorted first.
        let s = Summary::of(&[3.0, 1.0, 2.0]).expect("samples");
        assert_eq!(s.p50_ms, 2.0);
    }

    #[test]
    fn milliseconds_keep_the_sign_and_the_fraction() {
        assert_eq!(ms(chrono::Duration::microseconds(1500)), 1.5);
        assert_eq!(ms(chrono::Duration::milliseconds(-20)), -20.0);
    }
}
