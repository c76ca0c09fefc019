//! Decoding pieces: top-p (nucleus) sampling and A-INLP's mixing of the final hidden
//! state, h' = alpha h + (1 - alpha) P h, with the token-dependent alpha of Liang et al.
//! (alpha = 1 when the top-p candidates carry no bias, else max(1 - |bias|, floor)).

use nalgebra::{DMatrix, DVector};

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

/// h' = alpha h + (1 - alpha) P h.
pub fn mix_hidden(h: &DVector<f64>, projection: &DMatrix<f64>, alpha: f64) -> DVector<f64> {
    if alpha == 1.0 {
        return h.clone();
    }
    h * alpha + (projection * h) * (1.0 - alpha)
}

/// softmax(W h + b), the next-token distribution of a linear output layer.
pub fn next_token_distribution(w: &DMatrix<f64>, b: &DVector<f64>, h: &DVector<f64>) -> Vec<f64> {
    let logits = w * h + b;
    let max = logits.max();
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
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
    fn alpha_follows_the_rule_and_alpha_one_changes_nothing() {
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

        // A projection removing the first axis, a random-ish output layer.
        let p = DMatrix::from_diagonal(&DVector::from_vec(vec![0.0, 1.0, 1.0]));
        let w = DMatrix::from_row_slice(
            4,
            3,
            &[
                1.0, -2.0, 0.5, 0.3, 0.0, 1.0, -1.0, 1.0, 2.0, 0.2, 0.2, -0.7,
            ],
        );
        let bias = DVector::from_vec(vec![0.1, -0.2, 0.0, 0.3]);
        let h = DVector::from_vec(vec![1.5, -0.5, 0.25]);
        let plain = next_token_distribution(&w, &bias, &h);
        assert_eq!(
            next_token_distribution(&w, &bias, &mix_hidden(&h, &p, 1.0)),
            plain
        );
        let debiased = next_token_distribution(&w, &bias, &mix_hidden(&h, &p, 0.6));
        assert!(
            plain
                .iter()
                .zip(&debiased)
                .any(|(a, b)| (a - b).abs() > 1e-3)
        );
    }
}
