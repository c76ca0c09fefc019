//! Why deep generative models fail at out-of-distribution detection (Zhang, Goldstein,
//! Ranganath, "Understanding Failures in Out-of-Distribution Detection with Deep
//! Generative Models", ICML 2021), made executable.
//!
//! - [`auroc`]: AUROC (ties count one half) and ROC curves.
//! - [`scores`]: likelihood, typicality, likelihood ratio, input complexity.
//! - [`gaussian`], [`mixture`], [`no_free_lunch`]: the paper's arguments on densities
//!   known exactly.
//! - [`pixel_ar`]: a local autoregressive pixel model in candle with exact likelihoods.
//! - [`flow`]: a multi-scale normalizing flow (RealNVP's levels, Glow's steps) in candle
//!   with exact log-likelihoods.
//! - [`train`]: maximum-likelihood training and batched log-likelihoods for either.
//! - [`complexity`]: PNG code length, the compressor of the input-complexity score.

pub mod auroc;
pub mod complexity;
pub mod flow;
pub mod gaussian;
pub mod mixture;
pub mod no_free_lunch;
pub mod pixel_ar;
pub mod report;
pub mod runs;
pub mod scores;
pub mod train;
