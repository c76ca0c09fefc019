//! Success probability against training dimension, and the threshold training dimension
//! (the smallest d whose success probability reaches 1/2).

use std::collections::BTreeMap;

/// `(d, share of runs at d whose accuracy reaches target)`, by increasing d.
pub fn success_curve(runs: &[(usize, f64)], target: f64) -> Vec<(usize, f64)> {
    let mut by_d: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (d, accuracy) in runs {
        let e = by_d.entry(*d).or_default();
        e.0 += usize::from(*accuracy >= target);
        e.1 += 1;
    }
    by_d.into_iter()
        .map(|(d, (ok, n))| (d, ok as f64 / n as f64))
        .collect()
}

/// The smallest d of `curve` with success probability >= 1/2 and every larger d too
/// (one lucky seed below a failing d does not count); None when the largest d fails.
pub fn threshold_dimension(curve: &[(usize, f64)]) -> Option<usize> {
    let mut threshold = None;
    for (d, p) in curve.iter().rev() {
        if *p >= 0.5 {
            threshold = Some(*d);
        } else {
            break;
        }
    }
    threshold
}
