//! Lottery subspaces: the top-d left singular vectors of a recorded training trajectory.

use candle_core::{Device, Result, Tensor};
use nalgebra::{DMatrix, SymmetricEigen};

use crate::basis::Basis;

/// The basis of the top-`d` left singular vectors of the trajectory matrix whose columns
/// are `deltas` (parameter vectors minus the initial point, each of length D). Computed
/// through the small Gram matrix `M^T M` (T x T): `u_i = M v_i / sigma_i`. Directions with
/// a singular value below 1e-6 of the largest are left out, so the basis may have fewer
/// than `d` columns when the trajectory spans fewer.
pub fn lottery_basis(deltas: &[Vec<f32>], d: usize, device: &Device) -> Result<Basis> {
    let t = deltas.len();
    let dim = deltas.first().map_or(0, Vec::len);
    if t == 0 || dim == 0 || deltas.iter().any(|v| v.len() != dim) {
        return Err(candle_core::Error::Msg(
            "a trajectory needs at least one delta, all of the same length".into(),
        ));
    }
    let gram = DMatrix::from_fn(t, t, |i, j| {
        deltas[i]
            .iter()
            .zip(&deltas[j])
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>()
    });
    let eigen = SymmetricEigen::new(gram);
    let mut order: Vec<usize> = (0..t).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let largest = eigen.eigenvalues[order[0]].max(0.0).sqrt();
    let kept: Vec<usize> = order
        .into_iter()
        .filter(|&i| eigen.eigenvalues[i].max(0.0).sqrt() > 1e-6 * largest)
        .take(d)
        .collect();
    let k = kept.len();
    let mut p = vec![0f32; dim * k];
    for (col, &i) in kept.iter().enumerate() {
        let sigma = eigen.eigenvalues[i].max(0.0).sqrt();
        let v = eigen.eigenvectors.column(i);
        for row in 0..dim {
            let u: f64 = (0..t).map(|s| deltas[s][row] as f64 * v[s]).sum::<f64>() / sigma;
            p[row * k + col] = u as f32;
        }
    }
    Ok(Basis::Dense(Tensor::from_vec(p, (dim, k), device)?))
}
