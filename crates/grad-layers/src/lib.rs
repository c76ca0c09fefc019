//! What a candle training path needs beyond candle-nn to be sure that every weight
//! learns.
//!
//! candle-nn's fused CPU kernels for `layer_norm`, `rms_norm`, `softmax_last_dim` and the
//! rotary embeddings are recorded with `apply_op*_no_bwd`: the forward pass is right, but
//! no backward pass is recorded, so everything before them silently stops learning while
//! the loss still falls. [`LayerNorm`] is the differentiable replacement (its backward is
//! written out and checked against finite differences), and [`LearningAudit`] is the check
//! every model that trains runs in its tests: after a few optimiser steps, every trainable
//! tensor has received a non-zero gradient and has changed. The workspace's `clippy.toml`
//! forbids the forward-only kernels outside inference code.
//!
//! [`conv2d_same_nhwc`] is a convolution as one matrix product, several times faster to
//! train on a CPU than candle's `conv2d`.
//!
//! Shared by `newt-train` and the research crates, which stay independent of each other.

mod conv;
mod layer_norm;
mod learning;

pub use conv::{avg_pool_2x2_nhwc, conv2d_same_nhwc};
pub use layer_norm::{LayerNorm, layer_norm};
pub use learning::{LearningAudit, NotLearning};
