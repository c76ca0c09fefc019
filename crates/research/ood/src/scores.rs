//! OOD scores over any model with a log-density. Each is "OOD-ness" (larger = more
//! out-of-distribution), computed from per-input log-likelihoods (nats):
//! - likelihood: `-ln p(x)`;
//! - typicality (Nalisnick et al., 2019): `|-ln p(x) - H|`, H the model's entropy
//!   estimated on held-out in-distribution data; for a batch of M inputs,
//!   `|mean(-ln p) - H|`;
//! - likelihood ratio (Ren et al., 2019): `-(ln p(x) - ln p_background(x))`, the
//!   background model trained on perturbed inputs;
//! - input complexity (Serra et al., 2020): `-log2 p(x) - L(x)`, L the code length in
//!   bits of a lossless compressor (PNG here).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Score {
    Likelihood,
    Typicality,
    LikelihoodRatio,
    InputComplexity,
}

impl Score {
    pub const ALL: [Score; 4] = [
        Score::Likelihood,
        Score::Typicality,
        Score::LikelihoodRatio,
        Score::InputComplexity,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Score::Likelihood => "likelihood",
            Score::Typicality => "typicality",
            Score::LikelihoodRatio => "likelihood ratio",
            Score::InputComplexity => "input complexity",
        }
    }
}

/// What the scores are computed from, one entry per input.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    /// `ln p(x)` under the model, nats.
    pub log_likelihood: &'a [f64],
    /// `ln p_background(x)`, nats (likelihood ratio).
    pub background: Option<&'a [f64]>,
    /// Lossless code length of the input, bits (input complexity).
    pub code_bits: Option<&'a [f64]>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScoreError {
    #[error("{0} needs {1}")]
    Missing(&'static str, &'static str),
    #[error("{what} has {got} entries, the log-likelihoods {want}")]
    Length {
        what: &'static str,
        got: usize,
        want: usize,
    },
}

fn aligned<'a>(
    v: Option<&'a [f64]>,
    score: Score,
    what: &'static str,
    want: usize,
) -> Result<&'a [f64], ScoreError> {
    let v = v.ok_or(ScoreError::Missing(score.name(), what))?;
    if v.len() != want {
        return Err(ScoreError::Length {
            what,
            got: v.len(),
            want,
        });
    }
    Ok(v)
}

/// Per-input OOD scores; `entropy` is the typicality test's H (nats).
pub fn ood_scores(score: Score, e: Evidence<'_>, entropy: f64) -> Result<Vec<f64>, ScoreError> {
    let ll = e.log_likelihood;
    Ok(match score {
        Score::Likelihood => ll.iter().map(|l| -l).collect(),
        Score::Typicality => ll.iter().map(|l| (-l - entropy).abs()).collect(),
        Score::LikelihoodRatio => {
            let bg = aligned(e.background, score, "background log-likelihoods", ll.len())?;
            ll.iter().zip(bg).map(|(l, b)| -(l - b)).collect()
        }
        Score::InputComplexity => {
            let bits = aligned(e.code_bits, score, "code lengths", ll.len())?;
            ll.iter()
                .zip(bits)
                .map(|(l, c)| -l / std::f64::consts::LN_2 - c)
                .collect()
        }
    })
}

/// The typicality test on batches of `m` consecutive inputs: `|mean(-ln p) - H|` per
/// batch (a trailing partial batch is dropped).
pub fn batch_typicality(log_likelihood: &[f64], entropy: f64, m: usize) -> Vec<f64> {
    log_likelihood
        .chunks_exact(m.max(1))
        .map(|b| (-b.iter().sum::<f64>() / b.len() as f64 - entropy).abs())
        .collect()
}

/// The typicality test's entropy estimate: the mean negative log-likelihood of held-out
/// in-distribution inputs, nats.
pub fn entropy_estimate(held_out_log_likelihood: &[f64]) -> f64 {
    -held_out_log_likelihood.iter().sum::<f64>() / held_out_log_likelihood.len().max(1) as f64
}
