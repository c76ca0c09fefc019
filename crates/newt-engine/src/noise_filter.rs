//! The noise filter's design, shared by the voices of a model: 129 linear magnitudes (the
//! noise net's output, one per DFT bin) -> a centred, Hann-windowed 256-tap FIR filter.

use std::sync::Arc;

use newt_model::NOISE_BANDS;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner};

/// Noise filter length in taps: the inverse real DFT of the 129 magnitudes.
pub const NOISE_TAPS: usize = 2 * (NOISE_BANDS - 1);

/// Magnitudes to filter taps, shared by the voices of a model: the inverse real DFT plan
/// and the periodic Hann window.
pub(crate) struct NoiseFilterPlan {
    ifft: Arc<dyn ComplexToReal<f32>>,
    window: Vec<f32>,
}

impl NoiseFilterPlan {
    /// Plans the FFT and builds the window. Allocates: off the audio thread.
    pub(crate) fn new() -> Self {
        Self {
            ifft: RealFftPlanner::new().plan_fft_inverse(NOISE_TAPS),
            window: (0..NOISE_TAPS)
                .map(|j| 0.5 - 0.5 * (std::f32::consts::TAU * j as f32 / NOISE_TAPS as f32).cos())
                .collect(),
        }
    }

    /// The filter of one frame from its 129 magnitudes: the inverse real DFT (`1/N`
    /// scaled like torch.fft.irfft), rolled by half its length (centred) and windowed.
    /// Allocation-free.
    pub(crate) fn filter(
        &self,
        magnitudes: &[f32],
        spec: &mut [Complex<f32>],
        time: &mut [f32],
        scratch: &mut [Complex<f32>],
        filter: &mut [f32],
    ) {
        for (s, &m) in spec.iter_mut().zip(magnitudes) {
            *s = Complex::new(m, 0.0);
        }
        if self.ifft.process_with_scratch(spec, time, scratch).is_err() {
            // Sizes are fixed at construction; a failure would leave the filter silent.
            time.fill(0.0);
        }
        let half = NOISE_TAPS / 2;
        let scale = 1.0 / NOISE_TAPS as f32;
        for j in 0..NOISE_TAPS {
            filter[j] = time[(j + half) % NOISE_TAPS] * scale * self.window[j];
        }
    }

    /// Working buffers for [`filter`](Self::filter): spectrum, time, scratch.
    pub(crate) fn buffers(&self) -> (Vec<Complex<f32>>, Vec<f32>, Vec<Complex<f32>>) {
        (
            vec![Complex::default(); NOISE_BANDS],
            vec![0.0; NOISE_TAPS],
            vec![Complex::default(); self.ifft.get_scratch_len()],
        )
    }
}
