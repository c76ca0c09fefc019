//! Lottery subspaces: the top-d principal directions of a recorded training trajectory.

use candle_core::{DType, Device, Result, Tensor};
use nalgebra::{DMatrix, SymmetricEigen};

use crate::basis::Basis;

/// The basis of the top-`d` principal directions of the trajectory `points` (parameter
/// vectors of length D, recorded during training): the left singular vectors of the
/// matrix `M` whose columns are the points minus their mean, sorted by singular value.
///
/// Centring keeps the basis to the directions the trajectory moves along: uncentred
/// deltas from the initial point put the net displacement (the trained solution, nearly)
/// into the first direction, so a 1- or 2-dimensional lottery subspace would already hold
/// the answer. Callers leave the end point out for the same reason.
///
/// Computed through the small Gram matrix `M^T M` (T x T): `u_i = M v_i / sigma_i`.
/// Directions with a singular value below 1e-6 of the largest are left out, so the basis
/// may have fewer than `d` columns when the trajectory spans fewer (T centred points span
/// at most T - 1).
pub fn lottery_basis(points: &[Vec<f32>], d: usize, device: &Device) -> Result<Basis> {
    let t = points.len();
    let dim = points.first().map_or(0, Vec::len);
    if t < 2 || dim == 0 || points.iter().any(|v| v.len() != dim) {
        return Err(candle_core::Error::Msg(
            "a trajectory needs at least two points, all of the same length".into(),
        ));
    }
    let mut mean = vec![0f64; dim];
    for point in points {
        for (m, v) in mean.iter_mut().zip(point) {
            *m += *v as f64 / t as f64;
        }
    }
    let deltas = points
        .iter()
        .map(|point| point.iter().zip(&mean).map(|(v, m)| *v as f64 - m));
    // M^T as a [T, D] tensor in f64, so that the Gram matrix keeps small directions.
    let flat: Vec<f64> = deltas.flatten().collect();
    let mt = Tensor::from_vec(flat, (t, dim), &Device::Cpu)?;
    let gram: Vec<f64> = mt.matmul(&mt.t()?)?.flatten_all()?.to_vec1()?;
    let eigen = SymmetricEigen::new(DMatrix::from_row_slice(t, t, &gram));
    let mut order: Vec<usize> = (0..t).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let largest = eigen.eigenvalues[order[0]].max(0.0).sqrt();
    let kept: Vec<usize> = order
        .into_iter()
        .filter(|&i| eigen.eigenvalues[i].max(0.0).sqrt() > 1e-6 * largest)
        .take(d)
        .collect();
    let k = kept.len();
    // Coefficients v_i / sigma_i as a [T, k] matrix; P = M (V / sigma) = (M^T)^T C.
    let mut coef = vec![0f64; t * k];
    for (col, &i) in kept.iter().enumerate() {
        let sigma = eigen.eigenvalues[i].max(0.0).sqrt();
        for s in 0..t {
            coef[s * k + col] = eigen.eigenvectors[(s, i)] / sigma;
        }
    }
    let coef = Tensor::from_vec(coef, (t, k), &Device::Cpu)?;
    let p = mt.t()?.matmul(&coef)?.to_dtype(DType::F32)?;
    Ok(Basis::Dense(p.to_device(device)?))
}
