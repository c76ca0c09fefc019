//! The NEWT model file: one `safetensors` file holding the weights of one trained
//! Neural Waveshaping Synthesis model plus its metadata.
//!
//! This crate is the contract between training (candle) and the real-time engine (plain
//! Rust): tensor names are the training crate's `VarBuilder` paths, shapes are those of
//! the published architecture (Hayes et al., ISMIR 2021), and [`NewtModel::load`]
//! validates everything, returning a typed [`ModelError`] on any defect. It never panics
//! on a bad file.
//!
//! It also holds the two pieces of randomness that training and inference must share
//! bit for bit: the fixed harmonic phases (stored in the file) and the white-noise
//! generator [`WhiteNoise`] that feeds the filtered-noise branch.

mod error;
mod file;
mod meta;
pub mod range;
mod rng;
mod seeded;
pub mod sine;
mod weights;

pub use error::ModelError;
pub use meta::{FORMAT_VERSION, LoudnessMeasure, ModelMeta, Operators};
pub use range::RangeMap;
pub use rng::{SplitMix64, WhiteNoise};
pub use weights::{
    CONTROL_HIDDEN, CONTROL_LAYERS, ControlMlp, GRU_HIDDEN, Gru, LAYER_NORM_EPS, LayerNorm, Linear,
    NOISE_BANDS, NewtWeights, SHAPER_WIDTH, ShaperBank,
};

/// One NEWT model: metadata and validated weights.
#[derive(Clone, Debug, PartialEq)]
pub struct NewtModel {
    pub meta: ModelMeta,
    pub weights: NewtWeights,
}
