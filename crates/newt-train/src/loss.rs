//! Multi-resolution STFT loss (the published resolutions): FFT sizes 512, 1024, 2048,
//! hops 50, 120, 240, Hann windows 240, 600, 1200; spectral convergence plus L1 distance
//! of log magnitudes, averaged over resolutions. The STFT is framing by `index_select`,
//! a window, zero padding to the FFT size, and the realfft-backed `rfft` op.

use candle_core::{Device, Result, Tensor};

use crate::fft::{magnitude, rfft};

/// One STFT resolution: FFT size, hop, window length (samples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub n_fft: usize,
    pub hop: usize,
    pub window: usize,
}

pub const PAPER_RESOLUTIONS: [Resolution; 3] = [
    Resolution {
        n_fft: 512,
        hop: 50,
        window: 240,
    },
    Resolution {
        n_fft: 1024,
        hop: 120,
        window: 600,
    },
    Resolution {
        n_fft: 2048,
        hop: 240,
        window: 1200,
    },
];

/// Floor inside the logarithm of magnitudes.
const LOG_EPS: f64 = 1e-7;

/// Magnitude spectrogram `[B, frames, n_fft/2 + 1]` of `x` `[B, T]` (frames that fit
/// entirely, no padding).
pub fn stft_magnitude(x: &Tensor, r: Resolution, device: &Device) -> Result<Tensor> {
    let (b, t) = x.dims2()?;
    if t < r.window {
        return Err(candle_core::Error::Msg(format!(
            "audio of {t} samples is shorter than a {} window",
            r.window
        )));
    }
    let frames = 1 + (t - r.window) / r.hop;
    let idx: Vec<u32> = (0..frames)
        .flat_map(|f| (0..r.window).map(move |i| (f * r.hop + i) as u32))
        .collect();
    let idx = Tensor::from_vec(idx, frames * r.window, device)?;
    let window: Vec<f32> = (0..r.window)
        .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / r.window as f32).cos())
        .collect();
    let window = Tensor::from_vec(window, (1, 1, r.window), device)?;
    let framed = x
        .index_select(&idx, 1)?
        .reshape((b, frames, r.window))?
        .broadcast_mul(&window)?;
    let padded = framed.pad_with_zeros(2, 0, r.n_fft - r.window)?;
    magnitude(&rfft(&padded)?, 1e-12)
}

/// The multi-resolution STFT loss between `pred` and `target` (`[B, T]` each).
pub fn mrstft_loss(pred: &Tensor, target: &Tensor, resolutions: &[Resolution]) -> Result<Tensor> {
    let device = pred.device();
    let mut total: Option<Tensor> = None;
    for &r in resolutions {
        let sp = stft_magnitude(pred, r, device)?;
        let st = stft_magnitude(target, r, device)?;
        let sc = ((&st - &sp)?.sqr()?.sum_all()?.sqrt()?
            / st.sqr()?.sum_all()?.sqrt()?.affine(1.0, 1e-12)?)?;
        let log_l1 = (st.affine(1.0, LOG_EPS)?.log()? - sp.affine(1.0, LOG_EPS)?.log()?)?
            .abs()?
            .mean_all()?;
        let term = (sc + log_l1)?;
        total = Some(match total {
            None => term,
            Some(acc) => (acc + term)?,
        });
    }
    total
        .expect("at least one resolution")
        .affine(1.0 / resolutions.len() as f64, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (std::f32::consts::TAU * f * i as f32 / 16_000.0).sin() * 0.5)
            .collect()
    }

    #[test]
    fn loss_is_zero_for_equal_signals_and_grows_with_detuning() {
        let dev = Device::Cpu;
        let n = 8000;
        let t = Tensor::from_vec(tone(440.0, n), (1, n), &dev).unwrap();
        let same = mrstft_loss(&t, &t, &PAPER_RESOLUTIONS)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(same.abs() < 1e-5, "{same}");
        let mut last = 0.0;
        for f in [445.0, 470.0, 600.0] {
            let p = Tensor::from_vec(tone(f, n), (1, n), &dev).unwrap();
            let l = mrstft_loss(&p, &t, &PAPER_RESOLUTIONS)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(l > last, "{f} Hz: {l} <= {last}");
            last = l;
        }
    }

    #[test]
    fn stft_frames_and_bins() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 1000), candle_core::DType::F32, &dev).unwrap();
        let s = stft_magnitude(&x, PAPER_RESOLUTIONS[0], &dev).unwrap();
        assert_eq!(s.dims(), &[2, 1 + (1000 - 240) / 50, 257]);
    }
}
