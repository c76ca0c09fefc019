//! Social bias in language models (Liang, Wu, Morency, Salakhutdinov, "Towards
//! Understanding and Mitigating Social Biases in Language Models", ICML 2021).
//!
//! - [`decoding`]: top-p sampling and the A-INLP mixing rule;
//! - [`divergence`]: local bias between next-token distributions (KL, Hellinger);
//! - [`inlp`]: iterative nullspace projection of a protected attribute;
//! - [`lexicon`]: a VADER-style lexicon sentiment scorer (global bias);
//! - [`vocabulary`]: a word-level vocabulary for the Brown corpus.
//!
//! Work in progress (issue 9): training the language model on Brown, the bias
//! measurements over it and the experiment command are still to come.

pub mod decoding;
pub mod divergence;
pub mod inlp;
pub mod lexicon;
pub mod vocabulary;
