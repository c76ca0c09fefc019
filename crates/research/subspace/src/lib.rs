//! Training any candle model inside an affine subspace of its parameters,
//! `theta = theta0 + P phi` (Larsen, Fort, Becker, Ganguli, "How many degrees of freedom
//! do we need to train deep networks", ICLR 2022).
//!
//! Models here are functional: a [`ParamLayout`] names the shapes, and a forward pass
//! takes the flat parameter vector `theta` (length D) as a tensor. Training in a subspace
//! is then training the d-vector `phi` through `theta0 + P phi`; candle's autograd gives
//! `dL/dphi = P^T dL/dtheta`.

pub mod basis;
pub mod experiment;
pub mod layout;
pub mod lottery;
pub mod models;
pub mod quadratic;
pub mod report;
pub mod rng;
pub mod runs;
pub mod subspace;
pub mod threshold;
pub mod train;

pub use basis::Basis;
pub use layout::ParamLayout;
pub use subspace::AffineSubspace;
