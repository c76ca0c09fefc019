//! The measurements of the debias experiment, on any [`LanguageModel`]: held-out perplexity
//! (optionally debiased), local bias between counterfactual contexts (KL and Hellinger of
//! next-token distributions), the per-step bias and alpha of A-INLP, and INLP fitted on
//! final hidden states.

use candle_core::Tensor;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::debiaser::Debiaser;
use crate::divergence::{hellinger, kl};
use crate::inlp::{Inlp, Labelled, LinearClassifier, inlp};
use crate::lm::LanguageModel;

/// INLP's inputs and the accuracy of fresh classifiers before and after it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct InlpSummary {
    pub examples_per_gender: usize,
    pub directions_removed: usize,
    pub dev_accuracies: Vec<f64>,
    pub test_accuracy_before: f64,
    pub test_accuracy_after: f64,
}

/// Held-out perplexity of `stream`, debiased when asked.
pub fn perplexity(
    lm: &impl LanguageModel,
    stream: &[u32],
    debias: Option<(&Debiaser, &[f64])>,
) -> anyhow::Result<f64> {
    let (hidden, targets) = lm.stream_hidden(stream)?;
    perplexity_of(lm, &hidden, &targets, debias)
}

/// exp(mean negative log-likelihood) of `targets` given their hidden states.
pub fn perplexity_of(
    lm: &impl LanguageModel,
    hidden: &Tensor,
    targets: &[u32],
    debias: Option<(&Debiaser, &[f64])>,
) -> anyhow::Result<f64> {
    const ROWS: usize = 2048;
    let mut nats = 0.0;
    for start in (0..targets.len()).step_by(ROWS) {
        let n = (targets.len() - start).min(ROWS);
        let h = hidden.narrow(0, start, n)?;
        let d = debias.map(|(d, alphas)| (d, &alphas[start..start + n]));
        let logp = lm.target_log_probs(&h, &targets[start..start + n], d)?;
        nats -= logp.iter().map(|&x| x as f64).sum::<f64>();
    }
    Ok((nats / targets.len() as f64).exp())
}

pub fn step_biases(
    lm: &impl LanguageModel,
    hidden: &Tensor,
    debiaser: &Debiaser,
) -> anyhow::Result<Vec<f64>> {
    const ROWS: usize = 1024;
    let n = hidden.dim(0)?;
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(ROWS) {
        let h = hidden.narrow(0, start, (n - start).min(ROWS))?;
        for p in lm.next_token_probs(&h, None)? {
            out.push(debiaser.step_bias(&p));
        }
    }
    Ok(out)
}

pub fn alphas_for(debiaser: &Debiaser, biases: &[f64]) -> Vec<f64> {
    biases.iter().map(|&b| debiaser.alpha(b)).collect()
}

/// Mean local bias over counterfactual pairs, with the standard error of each mean.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalBias {
    pub kl: f64,
    pub hellinger: f64,
    pub kl_se: f64,
    pub hellinger_se: f64,
    /// Each pair's Hellinger distance, in the pairs' order (for paired comparisons
    /// between decoders measured on the same pairs).
    pub hellinger_pairs: Vec<f64>,
}

/// Mean and standard error of the mean.
pub fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

/// KL(p_male || p_female) and Hellinger distance over pairs of hidden states (male
/// context first), each side debiased with its own step's alpha when asked.
pub fn local_bias(
    lm: &impl LanguageModel,
    pair: &(Tensor, Tensor),
    biases: &(Vec<f64>, Vec<f64>),
    debiaser: Option<&Debiaser>,
) -> anyhow::Result<LocalBias> {
    // Rows at a time: a subword model's distributions are large.
    const ROWS: usize = 256;
    let probs = |h: &Tensor, b: &[f64]| -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(match debiaser {
            None => lm.next_token_probs(h, None)?,
            Some(d) => {
                let mixed = d.mix(h, &alphas_for(d, b))?;
                lm.next_token_probs(&mixed, None)?
            }
        })
    };
    let n = pair.0.dim(0)?;
    let (mut kls, mut hellingers) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for start in (0..n).step_by(ROWS) {
        let rows = (n - start).min(ROWS);
        let male = probs(
            &pair.0.narrow(0, start, rows)?,
            &biases.0[start..start + rows],
        )?;
        let female = probs(
            &pair.1.narrow(0, start, rows)?,
            &biases.1[start..start + rows],
        )?;
        // Renormalised in f64: an f32 softmax over a large vocabulary misses 1 by enough
        // to put a floor under small Hellinger distances.
        let normalised = |p: &[f32]| -> Vec<f64> {
            let total: f64 = p.iter().map(|&x| x as f64).sum();
            p.iter().map(|&x| x as f64 / total).collect()
        };
        for (p, q) in male.iter().zip(&female) {
            let (p, q) = (normalised(p), normalised(q));
            kls.push(kl(&p, &q));
            hellingers.push(hellinger(&p, &q));
        }
    }
    let (kl, kl_se) = mean_and_se(&kls);
    let (hellinger, hellinger_se) = mean_and_se(&hellingers);
    Ok(LocalBias {
        kl,
        hellinger,
        kl_se,
        hellinger_se,
        hellinger_pairs: hellingers,
    })
}

/// INLP on final hidden states `rows` with their gender labels (`true` = female; the
/// rows interleaved so that any split is balanced): split 60/20/20 into train, dev (the
/// stopping rule) and test, ridge classifiers, at most `iterations` rounds. The summary
/// holds a fresh classifier's test accuracy before and after the projection.
pub fn fit_inlp_on(rows: &[Vec<f64>], labels: &[bool], iterations: usize) -> (Inlp, InlpSummary) {
    let n = rows.len() / 2;
    let d = rows.first().map_or(0, Vec::len);
    let matrix = |range: std::ops::Range<usize>| {
        DMatrix::from_row_iterator(range.len(), d, rows[range].iter().flatten().copied())
    };
    let (t, v) = (2 * n * 6 / 10, 2 * n * 8 / 10);
    let (train_x, dev_x, test_x) = (matrix(0..t), matrix(t..v), matrix(v..2 * n));
    let (train_y, dev_y, test_y) = (&labels[..t], &labels[t..v], &labels[v..]);
    let ridge = 1e-2;
    let result = inlp(
        Labelled {
            x: &train_x,
            labels: train_y,
        },
        Labelled {
            x: &dev_x,
            labels: dev_y,
        },
        iterations,
        ridge,
        0.01,
    );
    let before = LinearClassifier::fit(&train_x, train_y, ridge).accuracy(&test_x, test_y);
    let p = &result.projection;
    let after =
        LinearClassifier::fit(&(&train_x * p), train_y, ridge).accuracy(&(&test_x * p), test_y);
    let summary = InlpSummary {
        examples_per_gender: n,
        directions_removed: result.removed.ncols(),
        dev_accuracies: result.accuracies.clone(),
        test_accuracy_before: before,
        test_accuracy_after: after,
    };
    (result, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debiaser::AlphaRule;
    use crate::lm::WordLm;
    use crate::vocabulary::Vocabulary;
    use candle_core::Device;
    use combiner::{LmConfig, TransformerLm};

    const WIDTH: usize = 16;

    fn tiny_lm(vocab: usize) -> WordLm {
        let config = LmConfig {
            vocab,
            len: 8,
            width: WIDTH,
            heads: 2,
            layers: 1,
            mlp_ratio: 2,
        };
        let (model, _) = TransformerLm::init_seeded(config, &Device::Cpu, 5).unwrap();
        let mut words = vec!["<unk>".to_string(), "<eos>".to_string()];
        words.extend((2..vocab).map(|i| format!("w{i}")));
        WordLm::new(model, Vocabulary::from_words(words).unwrap()).unwrap()
    }

    fn hidden(rows: usize, seed: u64) -> Tensor {
        let mut rng = seeded_rng::SplitMix64::new(seed);
        let v: Vec<f32> = (0..rows * WIDTH)
            .map(|_| 3.0 * (rng.next_f64() as f32 - 0.5))
            .collect();
        Tensor::from_vec(v, (rows, WIDTH), &Device::Cpu).unwrap()
    }

    #[test]
    fn perplexity_is_the_exponential_of_the_mean_negative_log_probability_across_chunks() {
        let lm = tiny_lm(12);
        // More rows than one chunk (2048), so the chunked sum is exercised.
        let rows = 2100;
        let h = hidden(rows, 1);
        let targets: Vec<u32> = (0..rows as u32).map(|i| (i * 7) % 12).collect();
        let probs = lm.next_token_probs(&h, None).unwrap();
        let nll: f64 = probs
            .iter()
            .zip(&targets)
            .map(|(p, &t)| -(p[t as usize] as f64).ln())
            .sum::<f64>()
            / rows as f64;
        let ppl = perplexity_of(&lm, &h, &targets, None).unwrap();
        assert!(
            (ppl - nll.exp()).abs() < 1e-3 * ppl,
            "{ppl} vs {}",
            nll.exp()
        );
        // An untrained model is near uniform over its 12 words.
        assert!((4.0..40.0).contains(&ppl), "{ppl}");
    }

    #[test]
    fn mean_and_standard_error() {
        assert_eq!(mean_and_se(&[]), (0.0, 0.0));
        assert_eq!(mean_and_se(&[3.0]), (3.0, 0.0));
        let (m, se) = mean_and_se(&[1.0, 2.0, 3.0, 4.0]);
        // Sample variance 5/3, over n = 4.
        assert!((m - 2.5).abs() < 1e-12 && (se - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn local_bias_is_zero_for_identical_contexts_and_hellinger_is_symmetric() {
        let lm = tiny_lm(10);
        let (a, b) = (hidden(6, 2), hidden(6, 3));
        let zeros = (vec![0.0; 6], vec![0.0; 6]);
        let same = local_bias(&lm, &(a.clone(), a.clone()), &zeros, None).unwrap();
        let (k, h) = (same.kl, same.hellinger);
        // Hellinger is sqrt(1 - sum sqrt(pq)): f32 probabilities that sum to 1 - 1e-8
        // would leave about 1e-4; renormalised in f64 they leave nothing.
        assert!(k.abs() < 1e-9 && h.abs() < 1e-6, "{k} {h}");
        let ab = local_bias(&lm, &(a.clone(), b.clone()), &zeros, None).unwrap();
        let (k_ab, h_ab) = (ab.kl, ab.hellinger);
        let h_ba = local_bias(&lm, &(b, a), &zeros, None).unwrap().hellinger;
        assert!(k_ab > 1e-3 && h_ab > 1e-2, "{k_ab} {h_ab}");
        // Six different pairs: their spread gives a positive, finite standard error.
        assert!(ab.hellinger_se > 0.0 && ab.hellinger_se < h_ab, "{ab:?}");
        // The per-pair values are kept, in order, and average to the mean.
        assert_eq!(ab.hellinger_pairs.len(), 6);
        let mean = ab.hellinger_pairs.iter().sum::<f64>() / 6.0;
        assert!((mean - h_ab).abs() < 1e-12);
        assert!((h_ab - h_ba).abs() < 1e-9);
    }

    #[test]
    fn a_full_projection_at_alpha_zero_removes_all_local_bias() {
        let lm = tiny_lm(10);
        // Projecting onto nothing (P = 0) at alpha 0 maps every hidden state to zero, so
        // both contexts predict the same distribution.
        let debiaser = Debiaser::new(
            &DMatrix::zeros(WIDTH, WIDTH),
            vec![0.0; 10],
            AlphaRule::Fixed { alpha: 0.0 },
            0.7,
        )
        .unwrap();
        let pair = (hidden(4, 4), hidden(4, 5));
        let biases = (vec![0.5; 4], vec![-0.5; 4]);
        let plain = local_bias(&lm, &pair, &biases, None).unwrap().kl;
        let debiased = local_bias(&lm, &pair, &biases, Some(&debiaser)).unwrap().kl;
        assert!(plain > 1e-3 && debiased < 1e-9, "{plain} {debiased}");
    }

    #[test]
    fn inlp_removes_a_planted_gender_direction() {
        // Gender is coordinate 0 (plus noise); the other coordinates are noise.
        let mut rng = seeded_rng::SplitMix64::new(9);
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for i in 0..600 {
            let female = i % 2 == 0;
            let mut r: Vec<f64> = (0..8).map(|_| rng.next_f64() - 0.5).collect();
            r[0] += if female { 1.0 } else { -1.0 };
            rows.push(r);
            labels.push(female);
        }
        let (result, summary) = fit_inlp_on(&rows, &labels, 10);
        assert_eq!(summary.examples_per_gender, 300);
        assert!(summary.test_accuracy_before > 0.95, "{summary:?}");
        assert!(summary.test_accuracy_after < 0.65, "{summary:?}");
        assert!(summary.directions_removed >= 1);
        // The first removed direction is the planted one.
        assert!(result.removed[(0, 0)].abs() > 0.9, "{}", result.removed);
    }
}
