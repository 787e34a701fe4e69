//! Figures over rounds: median with min and max, percentiles, ratios.

use debugsession_e2e::{Value, json};

/// A figure measured over several rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// None for no samples.
    pub fn of(xs: &[f64]) -> Option<Stats> {
        if xs.is_empty() {
            return None;
        }
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            n,
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// `3.18s [3.02-3.40]`
    pub fn show(&self) -> String {
        format!("{:.2}s [{:.2}-{:.2}]", self.median, self.min, self.max)
    }

    pub fn json(&self, samples: &[f64]) -> Value {
        json!({
            "n": self.n,
            "median": round3(self.median),
            "min": round3(self.min),
            "max": round3(self.max),
            "samples": samples.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
        })
    }
}

/// Nearest-rank percentile `p` (0-100) of `xs`; None for no samples.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Median of `a` over median of `b`.
pub fn ratio(a: &Stats, b: &Stats) -> f64 {
    a.median / b.median.max(1e-3)
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max_and_percentiles() {
        let s = Stats::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.n, s.median, s.min, s.max), (4, 2.5, 1.0, 10.0));
        assert_eq!(Stats::of(&[2.0, 1.0, 3.0]).unwrap().median, 2.0);
        assert!(Stats::of(&[]).is_none());
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), Some(50.0));
        assert_eq!(percentile(&xs, 99.0), Some(99.0));
        assert_eq!(percentile(&[0.3], 99.0), Some(0.3));
        assert_eq!(ratio(&s, &Stats::of(&[2.5]).unwrap()), 1.0);
    }
}
