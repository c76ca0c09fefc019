//! Social bias in language models (Liang, Wu, Morency, Salakhutdinov, "Towards
//! Understanding and Mitigating Social Biases in Language Models", ICML 2021).
//!
//! - [`lm`]: the word-level transformer language model, its final hidden state,
//!   next-token distributions and top-p generation;
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
pub mod runs;
pub mod vocabulary;
