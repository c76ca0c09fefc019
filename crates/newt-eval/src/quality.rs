//! Audio-quality measures of the evaluation: log-mel frames, and the Fréchet distance
//! between Gaussians fitted to two sets of them ("Fréchet log-mel distance"). It is the
//! FAD recipe on a plain log-mel embedding, not on VGGish: comparable between our own
//! models on the same data, not with published FAD figures.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use realfft::RealFftPlanner;

/// Log-mel analysis at 16 kHz: 1024-point Hann frames every 256 samples, 64 bands
/// (HTK mel scale) from 40 Hz to 8 kHz.
pub const N_FFT: usize = 1024;
pub const HOP: usize = 256;
pub const N_MELS: usize = 64;

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// Triangular mel filters `[N_MELS][N_FFT / 2 + 1]`.
fn mel_filters(sample_rate: u32) -> Vec<Vec<f64>> {
    let bins = N_FFT / 2 + 1;
    let (lo, hi) = (hz_to_mel(40.0), hz_to_mel(sample_rate as f64 / 2.0));
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    (0..N_MELS)
        .map(|m| {
            let (a, b, c) = (edges[m], edges[m + 1], edges[m + 2]);
            (0..bins)
                .map(|k| {
                    let f = k as f64 * sample_rate as f64 / N_FFT as f64;
                    if f <= a || f >= c {
                        0.0
                    } else if f <= b {
                        (f - a) / (b - a)
                    } else {
                        (c - f) / (c - b)
                    }
                })
                .collect()
        })
        .collect()
}

/// Log-mel frames of `x` (natural log of band power + 1e-6), one `Vec` per frame.
pub fn log_mel(x: &[f32], sample_rate: u32) -> Vec<Vec<f64>> {
    let filters = mel_filters(sample_rate);
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
    let window: Vec<f64> = (0..N_FFT)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / N_FFT as f64).cos())
        .collect();
    let mut buf = fft.make_input_vec();
    let mut spec = fft.make_output_vec();
    let mut frames = Vec::new();
    let mut start = 0;
    while start + N_FFT <= x.len() {
        for ((b, &v), w) in buf.iter_mut().zip(&x[start..start + N_FFT]).zip(&window) {
            *b = v as f64 * w;
        }
        fft.process(&mut buf, &mut spec)
            .expect("sizes from the plan");
        let power: Vec<f64> = spec.iter().map(|c| c.norm_sqr()).collect();
        frames.push(
            filters
                .iter()
                .map(|f| (f.iter().zip(&power).map(|(a, p)| a * p).sum::<f64>() + 1e-6).ln())
                .collect(),
        );
        start += HOP;
    }
    frames
}

/// Mean and covariance of a set of frames.
fn gaussian(frames: &[Vec<f64>]) -> (DVector<f64>, DMatrix<f64>) {
    let n = frames.len().max(2);
    let d = frames.first().map_or(0, Vec::len);
    let data = DMatrix::from_fn(frames.len(), d, |i, j| frames[i][j]);
    let mean = DVector::from_fn(d, |j, _| data.column(j).mean());
    let centred = DMatrix::from_fn(frames.len(), d, |i, j| data[(i, j)] - mean[j]);
    let cov = centred.transpose() * &centred / (n - 1) as f64;
    (mean, cov)
}

/// Symmetric positive semi-definite square root (eigenvalues clamped at 0).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new(m.clone());
    let roots = e.eigenvalues.map(|v| v.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&roots) * e.eigenvectors.transpose()
}

/// Fréchet distance between Gaussians fitted to `a` and `b`:
/// `|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)`.
pub fn frechet_distance(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (ma, sa) = gaussian(a);
    let (mb, sb) = gaussian(b);
    let ra = sqrt_psd(&sa);
    let cross = sqrt_psd(&(&ra * &sb * &ra));
    (ma - mb).norm_squared() + sa.trace() + sb.trace() - 2.0 * cross.trace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: u64, n: usize, gain: f32) -> Vec<f32> {
        let mut rng = newt_model::SplitMix64::new(seed);
        (0..n).map(|_| gain * rng.uniform(-1.0, 1.0)).collect()
    }

    #[test]
    fn identical_statistics_are_near_zero_and_different_ones_are_far() {
        let a = log_mel(&noise(1, 64_000, 0.3), 16_000);
        let b = log_mel(&noise(2, 64_000, 0.3), 16_000);
        let c = log_mel(&noise(3, 64_000, 0.03), 16_000);
        assert_eq!(a[0].len(), N_MELS);
        let same = frechet_distance(&a, &b);
        let quieter = frechet_distance(&a, &c);
        // Two draws of the same noise differ only by sampling error (~250 frames of 64
        // bands each).
        assert!((-1e-6..10.0).contains(&same), "{same}");
        // 20 dB quieter: every band's log power drops by ln(100) = 4.6.
        assert!(
            quieter > 64.0 * 4.0 * 4.0 && quieter > 100.0 * same,
            "{quieter}"
        );
        assert!(frechet_distance(&a, &a).abs() < 1e-6);
    }
}
