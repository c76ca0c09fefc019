//! AUROC and ROC curves. Convention throughout the crate: a score is "OOD-ness" (larger
//! means more out-of-distribution), in-distribution inputs are the negatives and
//! out-of-distribution inputs the positives. AUROC = P(score(out) > score(in)) +
//! 1/2 P(score(out) = score(in)): ties count one half (the Mann-Whitney statistic).

/// AUROC of `out` (positives) against `inside` (negatives); NaN scores are an error.
pub fn auroc(inside: &[f64], out: &[f64]) -> Result<f64, AurocError> {
    // Rank all scores together, ties sharing their mean rank.
    let mut all = labelled(inside, out)?;
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_out = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share (i + 1 + j) / 2.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum_out += mean_rank * all[i..j].iter().filter(|e| e.1).count() as f64;
        i = j;
    }
    let (n_in, n_out) = (inside.len() as f64, out.len() as f64);
    Ok((rank_sum_out - n_out * (n_out + 1.0) / 2.0) / (n_in * n_out))
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AurocError {
    #[error("AUROC needs at least one in-distribution and one out-of-distribution score")]
    Empty,
    #[error("a score is NaN")]
    NaN,
}

/// Every score with its label (true = out-of-distribution), after checking them.
fn labelled(inside: &[f64], out: &[f64]) -> Result<Vec<(f64, bool)>, AurocError> {
    if inside.is_empty() || out.is_empty() {
        return Err(AurocError::Empty);
    }
    if inside.iter().chain(out).any(|s| s.is_nan()) {
        return Err(AurocError::NaN);
    }
    Ok(inside
        .iter()
        .map(|s| (*s, false))
        .chain(out.iter().map(|s| (*s, true)))
        .collect())
}

/// The ROC curve: `(false positive rate, true positive rate)` at every threshold, from
/// (0, 0) to (1, 1); tied scores move both rates at once (a diagonal step).
pub fn roc_curve(inside: &[f64], out: &[f64]) -> Result<Vec<(f64, f64)>, AurocError> {
    let mut all = labelled(inside, out)?;
    // Descending: lowering the threshold admits the most OOD-looking inputs first.
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (n_in, n_out) = (inside.len() as f64, out.len() as f64);
    let (mut fp, mut tp) = (0usize, 0usize);
    let mut curve = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        curve.push((fp as f64 / n_in, tp as f64 / n_out));
        i = j;
    }
    Ok(curve)
}

/// Area under a curve of `(x, y)` points by the trapezoid rule (for checking that the
/// ROC curve and [`auroc`] agree).
pub fn trapezoid(curve: &[(f64, f64)]) -> f64 {
    curve
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum()
}
