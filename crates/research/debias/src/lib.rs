//! Social bias in language models (Liang, Wu, Morency, Salakhutdinov, "Towards
//! Understanding and Mitigating Social Biases in Language Models", ICML 2021).
//!
//! - [`lm`]: what the experiment needs of a language model (final hidden states, the
//!   output layer, next-token distributions, top-p generation), and the word-level
//!   transformer trained here;
//! - [`smollm`]: SmolLM2-135M-Instruct read from its GGUF file (llama forward pass over
//!   candle's quantized matmuls, its byte-level BPE tokenizer);
//! - [`gender`]: definitional pairs, counterfactual swaps, gendered sentences;
//! - [`direction`]: the bias direction and each token's bias score;
//! - [`inlp`]: iterative nullspace projection of a protected attribute;
//! - [`debiaser`]: INLP and A-INLP decoding, h' = alpha h + (1 - alpha) P h;
//! - [`decoding`]: top-p sampling and the A-INLP alpha rule;
//! - [`divergence`]: local bias between next-token distributions (KL, Hellinger);
//! - [`lexicon`]: a VADER-style lexicon sentiment scorer (global bias);
//! - [`vocabulary`]: a word-level vocabulary for the Brown corpus.
//!
//! `cargo xtask debias` trains the model and runs the experiment.

pub mod corpus;
pub mod debiaser;
pub mod decoding;
pub mod direction;
pub mod divergence;
pub mod gender;
pub mod inlp;
pub mod lexicon;
pub mod lm;
pub mod measures;
pub mod report;
pub mod runs;
pub mod smollm;
pub mod vocabulary;
