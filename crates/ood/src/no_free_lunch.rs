//! The no-free-lunch construction: for any OOD score, an out-distribution exists on which
//! the score does no better than chance. Take the in-distribution conditioned on the
//! inputs the score finds most typical (score at or below its in-distribution median):
//! its supports overlap the in-distribution's, and AUROC <= 1/2 by construction.

/// Scores of `n` in-distribution inputs and of `n` inputs from the constructed
/// out-distribution (rejection sampling from the in-distribution, at most `max_draws`
/// draws). The median is taken on a separate set of `n` draws.
pub fn adversarial_out_scores<X>(
    mut draw_in: impl FnMut() -> X,
    score: impl Fn(&X) -> f64,
    n: usize,
    max_draws: usize,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut reference: Vec<f64> = (0..n).map(|_| score(&draw_in())).collect();
    reference.sort_by(f64::total_cmp);
    let median = reference[n / 2];
    let inside: Vec<f64> = (0..n).map(|_| score(&draw_in())).collect();
    let mut out = Vec::with_capacity(n);
    let mut draws = 0;
    while out.len() < n {
        if draws == max_draws {
            return None;
        }
        draws += 1;
        let s = score(&draw_in());
        if s <= median {
            out.push(s);
        }
    }
    Some((inside, out))
}
