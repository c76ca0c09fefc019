//! The projection P (D x d) of a subspace.

use candle_core::{Device, Result, Tensor};

use crate::rng::SplitMix64;

#[derive(Clone, Debug)]
pub enum Basis {
    /// A dense `[D, d]` matrix.
    Dense(Tensor),
    /// A column-sparse `[D, d]` matrix: `nnz` entries `values[k]` at `(rows[k], cols[k])`.
    /// `P phi` costs O(nnz) instead of O(D d).
    Sparse {
        dim: usize,
        d: usize,
        rows: Tensor,
        cols: Tensor,
        values: Tensor,
    },
    /// P = I (d = D): the full space, for checking subspace training against plain
    /// training.
    Identity(usize),
}

/// `n` draws of N(0, 1) scaled to unit length.
fn unit_gaussian(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..n).map(|_| rng.normal_f64()).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / norm).collect()
}

impl Basis {
    /// The paper's random basis: i.i.d. N(0, 1) entries, each of the d columns scaled to
    /// unit length (not orthogonalised).
    pub fn gaussian(dim: usize, d: usize, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let mut p = vec![0f32; dim * d];
        for col in 0..d {
            for (row, v) in unit_gaussian(&mut rng, dim).into_iter().enumerate() {
                p[row * d + col] = v as f32;
            }
        }
        Ok(Basis::Dense(Tensor::from_vec(p, (dim, d), device)?))
    }

    /// A sparse random basis: each column has `per_column` non-zeros at distinct random
    /// rows, N(0, 1) values scaled to unit length. With `per_column` of about sqrt(D)
    /// (Li et al., 2018) the columns are as nearly orthogonal as dense ones.
    pub fn sparse_gaussian(
        dim: usize,
        d: usize,
        per_column: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let per_column = per_column.clamp(1, dim.max(1));
        let mut rng = SplitMix64::new(seed);
        let (mut rows, mut cols, mut values) = (Vec::new(), Vec::new(), Vec::new());
        let mut chosen = vec![false; dim];
        for col in 0..d {
            let mut picked = Vec::with_capacity(per_column);
            while picked.len() < per_column {
                let row = (rng.next_u64() % dim as u64) as usize;
                if !chosen[row] {
                    chosen[row] = true;
                    picked.push(row);
                }
            }
            for (row, v) in picked.iter().zip(unit_gaussian(&mut rng, per_column)) {
                chosen[*row] = false;
                rows.push(*row as u32);
                cols.push(col as u32);
                values.push(v as f32);
            }
        }
        let nnz = rows.len();
        Ok(Basis::Sparse {
            dim,
            d,
            rows: Tensor::from_vec(rows, nnz, device)?,
            cols: Tensor::from_vec(cols, nnz, device)?,
            values: Tensor::from_vec(values, nnz, device)?,
        })
    }

    /// `(D, d)`.
    pub fn dims(&self) -> Result<(usize, usize)> {
        match self {
            Basis::Dense(p) => p.dims2(),
            Basis::Sparse { dim, d, .. } => Ok((*dim, *d)),
            Basis::Identity(n) => Ok((*n, *n)),
        }
    }

    /// `P phi`, `[D]`.
    pub fn apply(&self, phi: &Tensor) -> Result<Tensor> {
        match self {
            Basis::Dense(p) => p.matmul(&phi.unsqueeze(1)?)?.squeeze(1),
            Basis::Sparse {
                dim,
                rows,
                cols,
                values,
                ..
            } => {
                let terms = phi.index_select(cols, 0)?.mul(values)?;
                Tensor::zeros(*dim, phi.dtype(), phi.device())?.index_add(rows, &terms, 0)
            }
            Basis::Identity(_) => Ok(phi.clone()),
        }
    }

    /// `P^T g`, `[d]`.
    pub fn project(&self, g: &Tensor) -> Result<Tensor> {
        match self {
            Basis::Dense(p) => p.t()?.matmul(&g.unsqueeze(1)?)?.squeeze(1),
            Basis::Sparse {
                d,
                rows,
                cols,
                values,
                ..
            } => {
                let terms = g.index_select(rows, 0)?.mul(values)?;
                Tensor::zeros(*d, g.dtype(), g.device())?.index_add(cols, &terms, 0)
            }
            Basis::Identity(_) => Ok(g.clone()),
        }
    }

    /// The first `k` columns (a lottery basis is sorted by singular value, so this is the
    /// top-k subspace). Asking for more columns than the basis has is an error: a
    /// subspace is never smaller than its label.
    pub fn first_columns(&self, k: usize) -> Result<Self> {
        match self {
            Basis::Dense(p) => {
                let have = p.dim(1)?;
                if k > have {
                    return Err(candle_core::Error::Msg(format!(
                        "asked for {k} columns of a basis with {have}"
                    )));
                }
                Ok(Basis::Dense(p.narrow(1, 0, k)?))
            }
            _ => Err(candle_core::Error::Msg(
                "first_columns is defined for dense bases".into(),
            )),
        }
    }

    /// P as a dense `[D, d]` matrix (for tests and small D).
    pub fn to_dense(&self) -> Result<Tensor> {
        match self {
            Basis::Dense(p) => Ok(p.clone()),
            Basis::Sparse { dim, d, values, .. } => {
                let eye = Tensor::eye(*d, candle_core::DType::F32, values.device())?;
                let cols: Vec<Tensor> = (0..*d)
                    .map(|j| self.apply(&eye.get(j)?))
                    .collect::<Result<_>>()?;
                Tensor::stack(&cols, 1)?.reshape((*dim, *d))
            }
            Basis::Identity(n) => Tensor::eye(*n, candle_core::DType::F32, &Device::Cpu),
        }
    }
}
