//! `theta = theta0 + P phi`, with `phi` the only trained variable.

use candle_core::{DType, Result, Tensor, Var};

use crate::basis::Basis;

pub struct AffineSubspace {
    /// The anchor `[D]`: the initialisation (random subspace) or the point after t full
    /// steps (burn-in subspace).
    pub theta0: Tensor,
    pub basis: Basis,
    /// The trained coordinates `[d]`, starting at 0.
    pub phi: Var,
}

impl AffineSubspace {
    pub fn new(theta0: Tensor, basis: Basis) -> Result<Self> {
        let (dim, d) = basis.dims()?;
        if theta0.dims1()? != dim {
            return Err(candle_core::Error::Msg(format!(
                "theta0 has {} parameters, the basis {dim}",
                theta0.dims1()?
            )));
        }
        let phi = Var::zeros(d, DType::F32, theta0.device())?;
        Ok(Self { theta0, basis, phi })
    }

    /// The full parameter vector `[D]`, differentiable in `phi`.
    pub fn theta(&self) -> Result<Tensor> {
        self.theta0.add(&self.basis.apply(self.phi.as_tensor())?)
    }
}
