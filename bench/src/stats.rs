//! Latency percentiles from the full, sorted sample (no histogram buckets, so no rounding).
use std::time::Duration;

pub struct Latencies {
    sorted_us: Vec<u32>,
}

impl Latencies {
    /// Takes per-request latencies in microseconds, in any order.
    pub fn new(mut us: Vec<u32>) -> Self {
        us.sort_unstable();
        Self { sorted_us: us }
    }

    pub fn len(&self) -> usize {
        self.sorted_us.len()
    }

    /// The nearest-rank percentile `p` (0-100), in milliseconds; 0 without samples.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let n = self.sorted_us.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let i = rank.clamp(1, n) - 1;
        f64::from(self.sorted_us[i]) / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.sorted_us
            .last()
            .map_or(0.0, |&u| f64::from(u) / 1000.0)
    }

    pub fn mean_ms(&self) -> f64 {
        if self.sorted_us.is_empty() {
            return 0.0;
        }
        self.sorted_us.iter().map(|&u| u64::from(u)).sum::<u64>() as f64
            / self.sorted_us.len() as f64
            / 1000.0
    }
}

/// A duration in whole microseconds, saturating at `u32::MAX` (about 71 minutes).
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!(l.len(), 100);
        assert_eq!(l.percentile_ms(50.0), 50.0);
        assert_eq!(l.percentile_ms(99.0), 99.0);
        assert_eq!(l.percentile_ms(100.0), 100.0);
        assert_eq!(l.percentile_ms(0.0), 1.0);
        assert_eq!(l.max_ms(), 100.0);
        assert_eq!(l.mean_ms(), 50.5);
        assert_eq!(Latencies::new(Vec::new()).percentile_ms(99.0), 0.0);
    }
}
