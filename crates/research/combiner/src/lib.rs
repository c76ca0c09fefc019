//! Combiner (Ren et al., NeurIPS 2021): full attention at sub-quadratic cost, with the
//! sparse patterns it builds on, in candle.
//!
//! - [`pattern`]: each pattern as an explicit partition of every query's allowed keys;
//! - [`plan`]: the partitions as index tensors, built once per sequence length;
//! - [`attention`]: one kernel for all patterns and the dense matrix it implies;
//! - [`model`]: a small transformer language model taking any pattern;
//! - [`tasks`]: byte-level text batches and the long-range recall task.

pub mod attention;
pub mod corpus;
pub mod images;
pub mod model;
pub mod pattern;
pub mod plan;
pub mod report;
pub mod runs;
pub mod tasks;
pub mod training;

pub use attention::{AttentionWeights, MultiHeadAttention, attend, dense_matrix};
pub use model::{LmConfig, TransformerLm, parameter_count};
pub use pattern::{Partition, Pattern, default_block};
pub use plan::AttentionPlan;
