//! The language models under study, behind one interface ([`LanguageModel`]): the final
//! hidden state at any position (what INLP and A-INLP act on), the output layer, next-token
//! distributions with or without debiasing, and top-p sampling.
//!
//! [`WordLm`] is the word-level model trained here on the Brown corpus (a
//! [`combiner::TransformerLm`] with full causal attention over a [`Vocabulary`]);
//! [`crate::smollm::SmolLm`] is a pretrained subword model read from a GGUF file.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::ops::{log_softmax, softmax};
use combiner::{AttentionPlan, LmConfig, Pattern, TransformerLm, default_block};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::debiaser::{AlphaRule, Debiaser};
use crate::decoding::sample_top_p;
use crate::vocabulary::{END, Vocabulary};

#[derive(Debug, thiserror::Error)]
pub enum LmError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a model card: {source}")]
    Card {
        path: String,
        source: serde_json::Error,
    },
    #[error("the vocabulary must start with <unk>, <eos> and have the model's size {0}")]
    Vocabulary(usize),
    #[error("{0}")]
    Format(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, LmError>;

/// What `model.json` must hold next to `model.safetensors` (other fields are ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub config: LmConfig,
    pub vocabulary: Vec<String>,
}

/// Top-p sampling settings for [`LanguageModel::generate`].
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// Nucleus mass kept (0.9 in Liang et al.).
    pub top_p: f64,
    /// New tokens at most (generation also stops at `<eos>`).
    pub max_new: usize,
    pub seed: u64,
    /// Consecutive prompts that draw the same random numbers (1: each its own). A
    /// female and a male prompt side by side, sharing them, give a paired difference.
    pub shared: usize,
}

/// What the experiment needs of a language model. Contexts are given as words in the
/// Brown corpus's tokenisation; each model turns them into its own tokens.
pub trait LanguageModel {
    /// Width of the final hidden state.
    fn width(&self) -> usize;
    /// Size of the next-token distribution.
    fn vocab(&self) -> usize;
    /// The longest context read, in tokens (older tokens are dropped).
    fn max_len(&self) -> usize;
    /// The token that ends a generation.
    fn end(&self) -> u32;
    /// Tokens generation never draws.
    fn never_sampled(&self) -> &[u32];
    /// The tokens of a context of words (no end token).
    fn encode_words(&self, words: &[&str]) -> Result<Vec<u32>>;
    /// One token stream of sentences (each of space-separated words), each ended the
    /// model's way.
    fn encode_sentences(&self, sentences: &[String]) -> Result<Vec<u32>>;
    /// The text of generated tokens.
    fn decode(&self, ids: &[u32]) -> Result<String>;
    /// One token as text (for reports).
    fn token_text(&self, id: u32) -> String;
    /// The token of `word` as it appears inside a sentence, when it is a single token.
    fn word_token(&self, word: &str) -> Option<u32>;
    /// Tokens that end a generation (the end token among them).
    fn stops(&self) -> Vec<u32> {
        vec![self.end()]
    }
    /// The final hidden state after each context's last token, `(n, width)`.
    fn last_hidden(&self, contexts: &[Vec<u32>]) -> Result<Tensor>;
    /// Hidden states of every position of consecutive windows of `stream`, with the token
    /// each position predicts: `((n, width), n targets)`.
    fn stream_hidden(&self, stream: &[u32]) -> Result<(Tensor, Vec<u32>)>;
    /// Next-token logits `(n, vocab)` from hidden states `(n, width)`.
    fn logits(&self, hidden: &Tensor) -> Result<Tensor>;
    /// The output embedding of every token, `(vocab, width)`.
    fn output_embeddings(&self) -> Result<nalgebra::DMatrix<f64>>;

    /// Next-token distributions, one row per hidden state, debiased when asked.
    fn next_token_probs(
        &self,
        hidden: &Tensor,
        debiaser: Option<&Debiaser>,
    ) -> Result<Vec<Vec<f32>>> {
        let probs = |h: &Tensor| -> Result<Vec<Vec<f32>>> {
            Ok(softmax(&self.logits(h)?, D::Minus1)?.to_vec2::<f32>()?)
        };
        let Some(debiaser) = debiaser else {
            return probs(hidden);
        };
        // Only an adaptive rule reads the undebiased distribution.
        let alphas = match debiaser.rule {
            AlphaRule::Fixed { alpha } => vec![alpha; hidden.dim(0)?],
            _ => debiaser.alphas(&probs(hidden)?),
        };
        let mixed = debiaser.mix(hidden, &alphas)?;
        probs(&mixed)
    }

    /// Natural-log probability of each target under the (debiased) next-token
    /// distribution of its hidden state; `alphas` are the per-row mixing weights.
    fn target_log_probs(
        &self,
        hidden: &Tensor,
        targets: &[u32],
        debiaser: Option<(&Debiaser, &[f64])>,
    ) -> Result<Vec<f32>> {
        let hidden = match debiaser {
            Some((d, alphas)) => d.mix(hidden, alphas)?,
            None => hidden.clone(),
        };
        let logp = log_softmax(&self.logits(&hidden)?, D::Minus1)?;
        let targets = Tensor::from_slice(targets, (targets.len(), 1), &Device::Cpu)?;
        Ok(logp.gather(&targets, 1)?.squeeze(1)?.to_vec1::<f32>()?)
    }

    /// Top-p continuations of each prompt (without the prompt), each stopping at the end
    /// token (dropped) or after `max_new` tokens. Row `i` draws its uniforms from a
    /// generator seeded by `(seed, i)`, so two decoders given the same seed differ only
    /// where their distributions do. This one reads every context again at each step;
    /// a model with a key/value cache overrides it.
    fn generate(
        &self,
        prompts: &[Vec<u32>],
        debiaser: Option<&Debiaser>,
        sampling: Sampling,
    ) -> Result<Vec<Vec<u32>>>
    where
        Self: Sized,
    {
        let rows: Vec<usize> = (0..prompts.len()).collect();
        let mut sampler = Sampler::new(self, &rows, sampling);
        let mut contexts = prompts.to_vec();
        let mut generated = vec![Vec::new(); prompts.len()];
        let mut open = rows;
        for _ in 0..sampling.max_new {
            if open.is_empty() {
                break;
            }
            let batch: Vec<Vec<u32>> = open.iter().map(|&i| contexts[i].clone()).collect();
            let hidden = self.last_hidden(&batch)?;
            let probs = self.next_token_probs(&hidden, debiaser)?;
            let mut still = Vec::with_capacity(open.len());
            for (row, &i) in open.iter().enumerate() {
                if let Some(token) = sampler.draw_row(i, &probs[row]) {
                    contexts[i].push(token);
                    generated[i].push(token);
                    still.push(i);
                }
            }
            open = still;
        }
        Ok(generated)
    }
}

/// Top-p draws for a batch of generations: each row's own seeded generator, the banned
/// tokens zeroed, a stop token (dropped) closing the row.
pub struct Sampler {
    rngs: Vec<StdRng>,
    done: Vec<bool>,
    banned: Vec<u32>,
    stops: Vec<u32>,
    end: u32,
    top_p: f64,
}

impl Sampler {
    /// Rows `rows` (their indices among all prompts, over `sampling.shared`, seed their
    /// generators).
    pub fn new(lm: &impl LanguageModel, rows: &[usize], sampling: Sampling) -> Self {
        Self {
            rngs: rows
                .iter()
                .map(|&i| {
                    let stream = (i / sampling.shared.max(1)) as u64;
                    StdRng::seed_from_u64(sampling.seed.wrapping_mul(1_000_003) + stream)
                })
                .collect(),
            done: vec![false; rows.len()],
            banned: lm.never_sampled().to_vec(),
            stops: lm.stops(),
            end: lm.end(),
            top_p: sampling.top_p,
        }
    }

    /// Row `k`'s next token from `probs`, or None once it has drawn the end token.
    pub fn draw_row(&mut self, k: usize, probs: &[f32]) -> Option<u32> {
        if self.done[k] {
            return None;
        }
        let mut p: Vec<f64> = probs.iter().map(|&x| x as f64).collect();
        for &b in &self.banned {
            p[b as usize] = 0.0;
        }
        // The nucleus is top-p of what can be drawn.
        let total: f64 = p.iter().sum();
        if total > 0.0 {
            p.iter_mut().for_each(|x| *x /= total);
        }
        let token = sample_top_p(&p, self.top_p, self.rngs[k].random()) as u32;
        if self.stops.contains(&token) {
            self.done[k] = true;
            return None;
        }
        Some(token)
    }

    /// Every row's next token (the end token for finished rows), appending the drawn
    /// ones to `generated[rows[k]]`.
    pub fn draw(
        &mut self,
        rows: &[usize],
        probs: &[Vec<f32>],
        generated: &mut [Vec<u32>],
    ) -> Vec<u32> {
        let mut next = Vec::with_capacity(rows.len());
        for (k, &i) in rows.iter().enumerate() {
            match self.draw_row(k, &probs[k]) {
                Some(t) => {
                    generated[i].push(t);
                    next.push(t);
                }
                None => next.push(self.end),
            }
        }
        next
    }

    pub fn all_done(&self) -> bool {
        self.done.iter().all(|&d| d)
    }
}

pub struct WordLm {
    pub model: TransformerLm,
    pub vocabulary: Vocabulary,
    plan: AttentionPlan,
}

/// Contexts processed per forward pass.
const CHUNK: usize = 128;

impl WordLm {
    pub fn new(model: TransformerLm, vocabulary: Vocabulary) -> Result<Self> {
        if vocabulary.len() != model.config.vocab {
            return Err(LmError::Vocabulary(model.config.vocab));
        }
        let len = model.config.len;
        let plan = AttentionPlan::new(Pattern::Full, len, default_block(len), true, &Device::Cpu)?;
        Ok(Self {
            model,
            vocabulary,
            plan,
        })
    }

    /// The model in `dir`: `model.json` (a [`ModelCard`]) and `model.safetensors`.
    pub fn load(dir: &Path) -> Result<Self> {
        let card_path = dir.join("model.json");
        let text = std::fs::read_to_string(&card_path).map_err(|source| LmError::Io {
            path: card_path.display().to_string(),
            source,
        })?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|source| LmError::Card {
            path: card_path.display().to_string(),
            source,
        })?;
        let vocabulary = Vocabulary::from_words(card.vocabulary)
            .ok_or(LmError::Vocabulary(card.config.vocab))?;
        let (model, mut vars) = TransformerLm::init(card.config, &Device::Cpu)?;
        vars.load(dir.join("model.safetensors"))?;
        Self::new(model, vocabulary)
    }
}

impl LanguageModel for WordLm {
    fn vocab(&self) -> usize {
        self.vocabulary.len()
    }

    fn end(&self) -> u32 {
        self.vocabulary.id(END)
    }

    /// `<unk>` (id 0) reads as nothing.
    fn never_sampled(&self) -> &[u32] {
        &[0]
    }

    fn encode_words(&self, words: &[&str]) -> Result<Vec<u32>> {
        Ok(words.iter().map(|w| self.vocabulary.id(w)).collect())
    }

    fn encode_sentences(&self, sentences: &[String]) -> Result<Vec<u32>> {
        Ok(sentences
            .iter()
            .flat_map(|s| self.vocabulary.encode(s))
            .collect())
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.vocabulary.decode(ids))
    }

    fn token_text(&self, id: u32) -> String {
        self.vocabulary.word(id).to_string()
    }

    fn word_token(&self, word: &str) -> Option<u32> {
        self.vocabulary
            .contains(word)
            .then(|| self.vocabulary.id(word))
    }

    fn width(&self) -> usize {
        self.model.config.width
    }

    fn max_len(&self) -> usize {
        self.model.config.len
    }

    fn last_hidden(&self, contexts: &[Vec<u32>]) -> Result<Tensor> {
        let len = self.max_len();
        let mut parts = Vec::new();
        for chunk in contexts.chunks(CHUNK) {
            let mut tokens = Vec::with_capacity(chunk.len() * len);
            let mut rows = Vec::with_capacity(chunk.len());
            for (i, c) in chunk.iter().enumerate() {
                assert!(!c.is_empty(), "a context holds at least one token");
                let tail = &c[c.len().saturating_sub(len)..];
                tokens.extend_from_slice(tail);
                // Causal attention: padding after the context cannot change it.
                tokens.extend(std::iter::repeat_n(1u32, len - tail.len()));
                rows.push((i * len + tail.len() - 1) as u32);
            }
            let tokens = Tensor::from_vec(tokens, (chunk.len(), len), &Device::Cpu)?;
            let hidden = self.model.hidden_states(&self.plan, &tokens)?;
            let flat = hidden.reshape((chunk.len() * len, self.width()))?;
            let rows = Tensor::from_vec(rows, chunk.len(), &Device::Cpu)?;
            parts.push(flat.index_select(&rows, 0)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    fn stream_hidden(&self, stream: &[u32]) -> Result<(Tensor, Vec<u32>)> {
        let len = self.max_len();
        let windows = stream.len().saturating_sub(1) / len;
        let mut parts = Vec::new();
        let mut targets = Vec::with_capacity(windows * len);
        for first in (0..windows).step_by(CHUNK / 4) {
            let count = (windows - first).min(CHUNK / 4);
            let start = first * len;
            let tokens = stream[start..start + count * len].to_vec();
            targets.extend_from_slice(&stream[start + 1..start + count * len + 1]);
            let tokens = Tensor::from_vec(tokens, (count, len), &Device::Cpu)?;
            let hidden = self.model.hidden_states(&self.plan, &tokens)?;
            parts.push(hidden.reshape((count * len, self.width()))?);
        }
        Ok((Tensor::cat(&parts, 0)?, targets))
    }

    fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.model.logits(hidden)?)
    }

    fn output_embeddings(&self) -> Result<nalgebra::DMatrix<f64>> {
        let w = self
            .model
            .output_layer()
            .weight()
            .to_dtype(DType::F64)?
            .to_vec2::<f64>()?;
        let (rows, cols) = (w.len(), self.width());
        Ok(nalgebra::DMatrix::from_row_iterator(
            rows,
            cols,
            w.into_iter().flatten(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};

    fn tiny() -> WordLm {
        let config = LmConfig {
            vocab: 12,
            len: 8,
            width: 8,
            heads: 2,
            layers: 1,
            mlp_ratio: 2,
        };
        let (model, _vars) = TransformerLm::init_seeded(config, &Device::Cpu, 5).unwrap();
        let words = [
            "<unk>", "<eos>", "the", "man", "woman", "was", "a", "b", "c", "d", "e", "f",
        ];
        let vocabulary =
            Vocabulary::from_words(words.iter().map(|w| w.to_string()).collect()).unwrap();
        WordLm::new(model, vocabulary).unwrap()
    }

    fn debiaser(rule: AlphaRule) -> Debiaser {
        // Removes the first hidden axis.
        let mut diag = vec![1.0; 8];
        diag[0] = 0.0;
        let p = DMatrix::from_diagonal(&DVector::from_vec(diag));
        Debiaser::new(
            &p,
            (0..12).map(|i| i as f64 / 12.0 - 0.5).collect(),
            rule,
            0.7,
        )
        .unwrap()
    }

    #[test]
    fn alpha_one_leaves_the_next_token_distribution_unchanged() {
        let lm = tiny();
        let contexts = vec![vec![2, 3, 5], vec![2, 4, 5, 6], vec![7]];
        let hidden = lm.last_hidden(&contexts).unwrap();
        let plain = lm.next_token_probs(&hidden, None).unwrap();
        let one = debiaser(AlphaRule::Fixed { alpha: 1.0 });
        assert_eq!(lm.next_token_probs(&hidden, Some(&one)).unwrap(), plain);
        let half = debiaser(AlphaRule::Fixed { alpha: 0.5 });
        let moved = lm.next_token_probs(&hidden, Some(&half)).unwrap();
        let largest = plain
            .iter()
            .flatten()
            .zip(moved.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(largest > 1e-4, "alpha 0.5 moved nothing ({largest})");
        // A-INLP with a band no step exceeds is alpha 1 everywhere.
        let adaptive = debiaser(AlphaRule::Adaptive {
            band: 1.0,
            floor: 0.6,
        });
        assert!(adaptive.alphas(&plain).iter().all(|&a| a == 1.0));
        assert_eq!(
            lm.next_token_probs(&hidden, Some(&adaptive)).unwrap(),
            plain
        );
        // Sampling with alpha 1 draws exactly what the plain model draws.
        let sampling = Sampling {
            top_p: 0.9,
            max_new: 6,
            seed: 3,
            shared: 1,
        };
        assert_eq!(
            lm.generate(&contexts, Some(&one), sampling).unwrap(),
            lm.generate(&contexts, None, sampling).unwrap()
        );
        // Prompts that share their random numbers draw alike from the same context.
        let twice: Vec<Vec<u32>> = contexts
            .iter()
            .flat_map(|c| [c.clone(), c.clone()])
            .collect();
        let paired = lm
            .generate(
                &twice,
                None,
                Sampling {
                    shared: 2,
                    ..sampling
                },
            )
            .unwrap();
        for pair in paired.chunks(2) {
            assert_eq!(pair[0], pair[1]);
        }
    }

    #[test]
    fn the_last_hidden_state_ignores_padding_and_later_tokens() {
        let lm = tiny();
        let full = vec![2u32, 3, 5, 6, 7, 8, 9, 10];
        let tokens = Tensor::from_vec(full.clone(), (1, 8), &Device::Cpu).unwrap();
        let every = lm.model.hidden_states(&lm.plan, &tokens).unwrap();
        let at2: Vec<f32> = every.get(0).unwrap().get(2).unwrap().to_vec1().unwrap();
        let last = lm.last_hidden(&[full[..3].to_vec()]).unwrap();
        let got: Vec<f32> = last.get(0).unwrap().to_vec1().unwrap();
        for (a, b) in at2.iter().zip(&got) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_model_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("debias-lm-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(WordLm::load(&dir), Err(LmError::Io { .. })));
        std::fs::write(dir.join("model.json"), "{\"config\": 3").unwrap();
        assert!(matches!(WordLm::load(&dir), Err(LmError::Card { .. })));
        let lm = tiny();
        let mut words = lm.vocabulary.words().to_vec();
        words.swap(0, 1);
        let card = ModelCard {
            config: lm.model.config,
            vocabulary: words,
        };
        std::fs::write(
            dir.join("model.json"),
            serde_json::to_string(&card).unwrap(),
        )
        .unwrap();
        assert!(matches!(WordLm::load(&dir), Err(LmError::Vocabulary(12))));
        // A good card without weights.
        let card = ModelCard {
            config: lm.model.config,
            vocabulary: lm.vocabulary.words().to_vec(),
        };
        std::fs::write(
            dir.join("model.json"),
            serde_json::to_string(&card).unwrap(),
        )
        .unwrap();
        assert!(matches!(WordLm::load(&dir), Err(LmError::Candle(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
