//! Everything computed outside the graph from the controls: the exciter's harmonics, the
//! white noise of the noise branch, and the constant matrix that turns 129 noise
//! magnitudes into the 512-point spectrum of the engine's windowed 256-tap filter. Each
//! mirrors the engine's operator (ARCHITECTURE.md, "The operators training must
//! reproduce exactly").

use newt_model::{NOISE_BANDS, WhiteNoise};
use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

/// Noise filter taps (inverse real DFT of the 129 magnitudes).
pub const NOISE_TAPS: usize = 2 * (NOISE_BANDS - 1);
/// FFT length of the per-frame noise convolution: holds hop + taps - 1 = 383 samples.
pub const NOISE_FFT: usize = 512;

/// `f0` (Hz, one value per frame) sanitised as the engine does: NaN and negatives to 0,
/// capped at Nyquist.
pub fn sanitize_f0(f0: f32, sample_rate: u32) -> f32 {
    let nyquist = 0.5 * sample_rate as f32;
    if f0.is_finite() {
        f0.clamp(0.0, nyquist)
    } else if f0 == f32::INFINITY {
        nyquist
    } else {
        0.0
    }
}

/// The exciter for one item: `[n_harmonics][frames * hop]`, row k = sin((k+1) phi + theta_k)
/// where harmonic k+1 is below Nyquist, else 0. f0 ramps causally from the previous frame
/// (`f_i = f_prev + (f_cur - f_prev)(i + 1)/hop`, the first frame from itself) and the
/// phase is the cumulative sum inclusive of each sample, accumulated in f64.
pub fn harmonics(f0_frames: &[f32], sample_rate: u32, hop: usize, phases: &[f32]) -> Vec<f32> {
    let nh = phases.len();
    let t_len = f0_frames.len() * hop;
    let mut out = vec![0.0f32; nh * t_len];
    let sr = sample_rate as f64;
    let nyquist = 0.5 * sample_rate as f32;
    let mut phase = 0.0f64;
    let mut prev = f0_frames
        .first()
        .map_or(0.0, |f| sanitize_f0(*f, sample_rate));
    for (f, &cur) in f0_frames.iter().enumerate() {
        let cur = sanitize_f0(cur, sample_rate);
        let df = (cur - prev) as f64 / hop as f64;
        for i in 0..hop {
            let fi64 = prev as f64 + df * (i + 1) as f64;
            let fi = fi64 as f32;
            phase = (phase + fi64 / sr).rem_euclid(1.0);
            let on = if fi <= 0.0 {
                nh
            } else {
                (((nyquist / fi).ceil() as usize).saturating_sub(1)).min(nh)
            };
            let t = f * hop + i;
            let angle = std::f64::consts::TAU * phase;
            for k in 0..on {
                out[k * t_len + t] = ((k + 1) as f64 * angle + phases[k] as f64).sin() as f32;
            }
        }
        prev = cur;
    }
    out
}

/// The noise of one item, frame by frame, as the engine's voice draws it from
/// `WhiteNoise::new(seed)`: `[frames][NOISE_FFT / 2 + 1][2]`, the 512-point spectrum of
/// each frame's `hop` samples zero-padded.
pub fn noise_spectra(seed: u64, frames: usize, hop: usize) -> Vec<f32> {
    let mut noise = WhiteNoise::new(seed);
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(NOISE_FFT);
    let bins = NOISE_FFT / 2 + 1;
    let mut out = Vec::with_capacity(frames * bins * 2);
    let mut time = vec![0.0f32; NOISE_FFT];
    let mut spec = fft.make_output_vec();
    for _ in 0..frames {
        time.fill(0.0);
        noise.fill(&mut time[..hop]);
        fft.process(&mut time, &mut spec)
            .expect("sizes from the plan");
        for c in &spec {
            out.push(c.re);
            out.push(c.im);
        }
    }
    out
}

/// `[2][NOISE_FFT/2 + 1][NOISE_BANDS]`: the real and imaginary parts of the linear map from
/// 129 magnitudes to the 512-point spectrum of the filter the engine builds from them
/// (inverse real DFT scaled 1/256, rolled by 128, periodic Hann window, zero-padded).
pub fn noise_filter_matrix() -> Vec<f32> {
    let mut planner = RealFftPlanner::<f32>::new();
    let ifft = planner.plan_fft_inverse(NOISE_TAPS);
    let fft = planner.plan_fft_forward(NOISE_FFT);
    let bins = NOISE_FFT / 2 + 1;
    let window: Vec<f32> = (0..NOISE_TAPS)
        .map(|j| 0.5 - 0.5 * (std::f32::consts::TAU * j as f32 / NOISE_TAPS as f32).cos())
        .collect();
    let mut re = vec![0.0f32; bins * NOISE_BANDS];
    let mut im = vec![0.0f32; bins * NOISE_BANDS];
    let mut spec_in = vec![Complex::default(); NOISE_BANDS];
    let mut h = vec![0.0f32; NOISE_TAPS];
    let mut padded = vec![0.0f32; NOISE_FFT];
    let mut spec_out = fft.make_output_vec();
    for band in 0..NOISE_BANDS {
        spec_in.fill(Complex::default());
        spec_in[band] = Complex::new(1.0, 0.0);
        ifft.process(&mut spec_in, &mut h)
            .expect("sizes from the plan");
        padded.fill(0.0);
        for j in 0..NOISE_TAPS {
            padded[j] = h[(j + NOISE_TAPS / 2) % NOISE_TAPS] / NOISE_TAPS as f32 * window[j];
        }
        fft.process(&mut padded, &mut spec_out)
            .expect("sizes from the plan");
        for (k, c) in spec_out.iter().enumerate() {
            re[k * NOISE_BANDS + band] = c.re;
            im[k * NOISE_BANDS + band] = c.im;
        }
    }
    re.extend(im);
    re
}
