//! Decoding pieces: top-p (nucleus) sampling, the bias of a decoding step and the
//! token-dependent alpha of Liang et al. (alpha = 1 when the top-p candidates carry no
//! bias, else max(1 - |bias|, floor)); [`crate::debiaser`] applies it.

/// The smallest set of tokens, most probable first, whose probabilities sum to at least
/// `p` (always at least one token); ties go to the lower id.
///
/// Only tokens above a threshold are sorted: when those alone reach `p`, the nucleus
/// lies among them (it is made of the largest probabilities), so the result is the one
/// a full sort gives; otherwise the threshold falls tenfold. A 49,152-token vocabulary
/// is then a scan and a sort of a few hundred entries.
pub fn top_p(probs: &[f64], p: f64) -> Vec<usize> {
    let mut threshold = 1e-3;
    loop {
        let every = threshold == 0.0;
        let mut order: Vec<usize> = (0..probs.len())
            .filter(|&i| every || probs[i] >= threshold)
            .collect();
        let mass: f64 = order.iter().map(|&i| probs[i]).sum();
        if every || mass >= p {
            order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
            let mut total = 0.0;
            let mut kept = Vec::new();
            for i in order {
                kept.push(i);
                total += probs[i];
                if total >= p {
                    break;
                }
            }
            return kept;
        }
        threshold = if threshold < 1e-12 {
            0.0
        } else {
            threshold / 10.0
        };
    }
}

/// A token drawn from the top-p set renormalised, `u` uniform in [0, 1).
pub fn sample_top_p(probs: &[f64], p: f64, u: f64) -> usize {
    let kept = top_p(probs, p);
    let mass: f64 = kept.iter().map(|&i| probs[i]).sum();
    let mut acc = 0.0;
    for &i in &kept {
        acc += probs[i] / mass;
        if u < acc {
            return i;
        }
    }
    *kept.last().expect("top_p keeps at least one token")
}

/// The bias of one decoding step (Liang et al.'s reference code): the mean, over the
/// top-p candidates renormalised, of each token's bias score (the cosine of its output
/// embedding with the bias direction).
pub fn step_bias(probs: &[f64], candidates: &[usize], token_bias: &[f64]) -> f64 {
    let mass: f64 = candidates.iter().map(|&i| probs[i]).sum();
    candidates
        .iter()
        .map(|&i| probs[i] * token_bias[i])
        .sum::<f64>()
        / mass.max(1e-12)
}

/// A-INLP's alpha for a step of bias `bias`: 1 when the step is not bias-sensitive
/// (|bias| <= `band`), else max(1 - |bias|, floor).
pub fn a_inlp_alpha(bias: f64, band: f64, floor: f64) -> f64 {
    if bias.abs() <= band {
        1.0
    } else {
        (1.0 - bias.abs()).max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_matches_a_full_sort_on_peaked_and_flat_distributions() {
        let full = |probs: &[f64], p: f64| {
            let mut order: Vec<usize> = (0..probs.len()).collect();
            order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
            let mut total = 0.0;
            let mut kept = Vec::new();
            for i in order {
                kept.push(i);
                total += probs[i];
                if total >= p {
                    break;
                }
            }
            kept
        };
        let mut rng = seeded_rng::SplitMix64::new(4);
        for (n, sharpness) in [(50_000, 0.0), (50_000, 12.0), (30, 1.0), (5_000, 30.0)] {
            let logits: Vec<f64> = (0..n).map(|_| sharpness * rng.next_f64()).collect();
            let z: f64 = logits.iter().map(|l| l.exp()).sum();
            let probs: Vec<f64> = logits.iter().map(|l| l.exp() / z).collect();
            for p in [0.1, 0.7, 0.9, 1.0] {
                assert_eq!(
                    top_p(&probs, p),
                    full(&probs, p),
                    "n {n}, sharpness {sharpness}, p {p}"
                );
            }
        }
        // Ties at the threshold keep the lower ids first.
        assert_eq!(top_p(&[0.25, 0.25, 0.25, 0.25], 0.5), vec![0, 1]);
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_p() {
        let probs = [0.1, 0.5, 0.3, 0.1];
        assert_eq!(top_p(&probs, 0.5), vec![1]);
        assert_eq!(top_p(&probs, 0.7), vec![1, 2]);
        assert_eq!(top_p(&probs, 1.0), vec![1, 2, 0, 3]);
        // Renormalised over {1, 2}: 0.625 and 0.375.
        assert_eq!(sample_top_p(&probs, 0.7, 0.6), 1);
        assert_eq!(sample_top_p(&probs, 0.7, 0.7), 2);
    }

    #[test]
    fn alpha_follows_the_rule() {
        let probs = [0.6, 0.3, 0.1];
        let bias = [0.0, 0.9, -0.5];
        // Only the neutral token is a candidate: no bias, alpha 1.
        assert_eq!(step_bias(&probs, &[0], &bias), 0.0);
        assert_eq!(a_inlp_alpha(0.0, 0.05, 0.6), 1.0);
        // Renormalised over {0, 1}: 0.6 / 0.9 * 0 + 0.3 / 0.9 * 0.9 = 0.3.
        let b = step_bias(&probs, &[0, 1], &bias);
        assert!((b - 0.3).abs() < 1e-12);
        assert!((a_inlp_alpha(b, 0.05, 0.6) - 0.7).abs() < 1e-12);
        assert_eq!(a_inlp_alpha(b, 0.35, 0.6), 1.0);
        assert_eq!(a_inlp_alpha(-0.9, 0.05, 0.6), 0.6);
    }
}
