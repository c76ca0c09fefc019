//! The bias direction of an embedding space (Bolukbasi et al.): the first principal
//! component of the definitional pairs, each pair centred on its own mean, oriented so
//! that the female word of the first pair projects positively. A token's bias is the
//! cosine of its embedding with that direction.
//!
//! Word frequency confounds it (Wang et al., "Double-Hard Debias", 2020): in the Brown
//! corpus the male word of every definitional pair is the more frequent, so the pairs'
//! differences share the direction along which embeddings encode frequency, and frequent
//! function words then look male. [`frequency_direction`] estimates that direction and
//! [`remove_component`] takes it out of the embeddings before the bias direction is
//! found.

use nalgebra::{DMatrix, DVector};

/// The unit bias direction from (female, male) embedding pairs.
pub fn bias_direction(pairs: &[(DVector<f64>, DVector<f64>)]) -> DVector<f64> {
    assert!(!pairs.is_empty(), "at least one definitional pair");
    let d = pairs[0].0.len();
    let mut rows = Vec::with_capacity(2 * pairs.len());
    for (f, m) in pairs {
        let mean = (f + m) / 2.0;
        rows.push((f - &mean).transpose());
        rows.push((m - &mean).transpose());
    }
    let x = DMatrix::from_rows(&rows);
    let covariance = x.transpose() * &x;
    let eigen = covariance.symmetric_eigen();
    let top = eigen.eigenvalues.imax();
    let mut direction: DVector<f64> = eigen.eigenvectors.column(top).into_owned();
    direction /= direction.norm().max(1e-12);
    debug_assert_eq!(direction.len(), d);
    if (&pairs[0].0 - &pairs[0].1).dot(&direction) < 0.0 {
        direction = -direction;
    }
    direction
}

/// Cosine of each row of `embeddings` with the unit `direction` (0 for a zero row).
pub fn token_bias(embeddings: &DMatrix<f64>, direction: &DVector<f64>) -> Vec<f64> {
    embeddings
        .row_iter()
        .map(|row| {
            let n = row.norm();
            if n == 0.0 {
                0.0
            } else {
                row.transpose().dot(direction) / n
            }
        })
        .collect()
}

/// The unit direction along which centred `embeddings` (one per row) grow with
/// `log_frequency` (one per row): the covariance of each coordinate with it.
pub fn frequency_direction(embeddings: &DMatrix<f64>, log_frequency: &[f64]) -> DVector<f64> {
    assert_eq!(
        embeddings.nrows(),
        log_frequency.len(),
        "one frequency per row"
    );
    let n = log_frequency.len().max(1) as f64;
    let mean_f = log_frequency.iter().sum::<f64>() / n;
    let mean_e = embeddings.row_mean();
    let mut direction = DVector::zeros(embeddings.ncols());
    for (row, &f) in embeddings.row_iter().zip(log_frequency) {
        direction += (row - &mean_e).transpose() * (f - mean_f);
    }
    let norm = direction.norm().max(1e-12);
    direction / norm
}

/// Every row of `embeddings` with its component along the unit `direction` removed.
pub fn remove_component(embeddings: &DMatrix<f64>, direction: &DVector<f64>) -> DMatrix<f64> {
    let along = embeddings * direction;
    embeddings - along * direction.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_planted_direction() {
        // Pairs differ along (1, 1, 0)/sqrt 2 plus a little noise on the third axis.
        let g = DVector::from_vec(vec![1.0, 1.0, 0.0]) / 2f64.sqrt();
        let pairs: Vec<_> = (0..5)
            .map(|i| {
                let base = DVector::from_vec(vec![i as f64, -(i as f64), 3.0]);
                let noise = DVector::from_vec(vec![0.0, 0.0, 0.05 * (i as f64 - 2.0)]);
                (&base + &g * 0.8 + &noise, &base - &g * 0.8)
            })
            .collect();
        let d = bias_direction(&pairs);
        assert!(d.dot(&g) > 0.99, "found {d}");
        let e = DMatrix::from_row_slice(3, 3, &[1.0, 1.0, 0.0, -2.0, -2.0, 0.0, 0.0, 0.0, 5.0]);
        let b = token_bias(&e, &d);
        assert!(b[0] > 0.99 && b[1] < -0.99 && b[2].abs() < 0.05);
    }

    #[test]
    fn the_frequency_direction_is_found_and_removed() {
        // Rows grow along (0, 1, 0) with their log-frequency; the other axes are noise.
        let freqs: Vec<f64> = (0..20).map(|i| (i as f64 + 1.0).ln()).collect();
        let e = DMatrix::from_fn(20, 3, |i, j| match j {
            1 => 2.0 * freqs[i],
            0 => ((i * 7) % 5) as f64 * 0.1,
            _ => ((i * 3) % 4) as f64 * 0.1,
        });
        let f = frequency_direction(&e, &freqs);
        assert!(f[1] > 0.99, "found {f}");
        let cleaned = remove_component(&e, &f);
        assert!((&cleaned * &f).abs().max() < 1e-9);
    }
}
