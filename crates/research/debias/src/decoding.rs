//! Decoding pieces: top-p (nucleus) sampling, the bias of a decoding step and the
//! token-dependent alpha of Liang et al. (alpha = 1 when the top-p candidates carry no
//! bias, else max(1 - |bias|, floor)); [`crate::debiaser`] applies it.

/// The smallest set of tokens, most probable first, whose probabilities sum to at least
/// `p` (always at least one token).
pub fn top_p(probs: &[f64], p: f64) -> Vec<usize> {
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
