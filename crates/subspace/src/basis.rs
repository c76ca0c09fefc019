//! The projection P (D x d) of a subspace.

use candle_core::{Device, Result, Tensor};

use crate::rng::SplitMix64;

#[derive(Clone, Debug)]
pub enum Basis {
    /// A dense `[D, d]` matrix.
    Dense(Tensor),
    /// P = I (d = D): the full space, for checking subspace training against plain
    /// training.
    Identity(usize),
}

impl Basis {
    /// The paper's random basis: i.i.d. N(0, 1) entries, each of the d columns scaled to
    /// unit length (not orthogonalised).
    pub fn gaussian(dim: usize, d: usize, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let mut p = vec![0f32; dim * d];
        for col in 0..d {
            let column: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
            let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            for (row, v) in column.iter().enumerate() {
                p[row * d + col] = (v / norm) as f32;
            }
        }
        Ok(Basis::Dense(Tensor::from_vec(p, (dim, d), device)?))
    }

    /// `(D, d)`.
    pub fn dims(&self) -> Result<(usize, usize)> {
        match self {
            Basis::Dense(p) => p.dims2(),
            Basis::Identity(n) => Ok((*n, *n)),
        }
    }

    /// `P phi`, `[D]`.
    pub fn apply(&self, phi: &Tensor) -> Result<Tensor> {
        match self {
            Basis::Dense(p) => p.matmul(&phi.unsqueeze(1)?)?.squeeze(1),
            Basis::Identity(_) => Ok(phi.clone()),
        }
    }

    /// `P^T g`, `[d]`.
    pub fn project(&self, g: &Tensor) -> Result<Tensor> {
        match self {
            Basis::Dense(p) => p.t()?.matmul(&g.unsqueeze(1)?)?.squeeze(1),
            Basis::Identity(_) => Ok(g.clone()),
        }
    }
}
