//! The waveshaping stage of one voice: each of the 64 shaper inputs (from the exciter)
//! goes through FiLM (ramped input gain and bias, with the affine knobs of
//! [`VoiceParams`]), its learned shaper (a FastNEWT table or the exact MLP), FiLM's output
//! gain and bias, and the output mixer sums the 64 into the harmonic branch: one
//! dimensionless signal at the model rate, `hop` samples a frame.

use super::film_ramp::{FilmParam, FilmRamp};
use super::params::VoiceParams;
use crate::kernels::{self, ShaperCoefs};
use crate::prepared::PreparedModel;
use crate::shaper::ShaperPath;

/// The stage's state: what it measured of the shaper inputs.
pub(crate) struct Waveshapers {
    hop: usize,
    /// Range `[lo, hi]` of each shaper's input (after the FiLM and the affine knobs) over
    /// the last frame rendered: what an editor draws over the transfer curves.
    input_range: Vec<[f32; 2]>,
    /// Whether `render` measures `input_range` (an engine measures only the voice its
    /// editor shows).
    pub(crate) measure_input_range: bool,
}

impl Waveshapers {
    pub(crate) fn new(model: &PreparedModel) -> Self {
        Self {
            hop: model.meta.hop,
            input_range: vec![[0.0; 2]; model.meta.n_shapers],
            measure_input_range: true,
        }
    }

    /// Range `[lo, hi]` of each shaper's input over the last frame rendered.
    pub(crate) fn input_range(&self) -> &[[f32; 2]] {
        &self.input_range
    }

    /// `n` frames of the harmonic branch into `out` (`[n][hop]`, overwritten) from the
    /// shaper inputs `x` (`[n][n_shapers][hop]`) and the batch's FiLM rows, channel by
    /// channel so that each table is fetched once per batch. The affine knobs move
    /// linearly from `p` at the batch's start to `p_end` at its end (folded, per frame,
    /// into the FiLM ramp); with `p_end == p` the knobs hold.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn render(
        &mut self,
        model: &PreparedModel,
        p: &VoiceParams,
        p_end: &VoiceParams,
        film: &FilmRamp,
        x: &[f32],
        n: usize,
        out: &mut [f32],
    ) {
        let hop = self.hop;
        let ns = model.meta.n_shapers;
        let mix = &model.weights.output_mixer;
        let ramp = film.ramp();
        let spec = model.tables.spec();
        // Table positions per unit of shaper input, and the input at position 0.
        let (inv, lo) = match p.shaper {
            ShaperPath::Table => ((spec.size - 1) as f32 / (spec.hi - spec.lo), spec.lo),
            ShaperPath::Mlp => (1.0, 0.0),
        };
        let (g, o, og) = (p.shaper_in_gain, p.shaper_in_offset, p.shaper_out_gain);
        let held = p.shaper_in_gain == p_end.shaper_in_gain
            && p.shaper_in_offset == p_end.shaper_in_offset
            && p.shaper_out_gain == p_end.shaper_out_gain;
        // The knobs at frame boundary `t` of the batch (`t` in [0, 1]).
        let knobs_at = |t: f32| {
            let lerp = |a: f32, b: f32| a + (b - a) * t;
            (
                lerp(g, p_end.shaper_in_gain),
                lerp(o, p_end.shaper_in_offset),
                lerp(og, p_end.shaper_out_gain),
            )
        };
        for j in 0..n {
            let frame = film.frame(j);
            // The beta_out terms do not depend on the shapers: summed once.
            let (mut k0, mut dk) = (mix.bias[0], 0.0f32);
            for c in 0..ns {
                let w = mix.weight[c];
                let (bo, dbo) = frame.start_and_change(FilmParam::OutBias, c);
                k0 += w * bo;
                dk += w * dbo;
            }
            for (y, r) in out[j * hop..(j + 1) * hop].iter_mut().zip(ramp) {
                *y = k0 + dk * r;
            }
        }
        for c in 0..ns {
            let w = mix.weight[c];
            for j in 0..n {
                let frame = film.frame(j);
                let (ai, dai) = frame.start_and_change(FilmParam::InGain, c);
                let (bi, dbi) = frame.start_and_change(FilmParam::InBias, c);
                let (ao, dao) = frame.start_and_change(FilmParam::OutGain, c);
                let k = if held {
                    ShaperCoefs {
                        a: inv * g * ai,
                        da: inv * g * dai,
                        b: inv * (g * bi + o - lo),
                        db: inv * g * dbi,
                        c: w * og * ao,
                        dc: w * og * dao,
                    }
                } else {
                    // Each product ramps linearly from its value at the frame's start to
                    // its value at the frame's end.
                    let (g0, o0, og0) = knobs_at(j as f32 / n as f32);
                    let (g1, o1, og1) = knobs_at((j + 1) as f32 / n as f32);
                    let (a0, a1) = (inv * g0 * ai, inv * g1 * (ai + dai));
                    let (b0, b1) = (inv * (g0 * bi + o0 - lo), inv * (g1 * (bi + dbi) + o1 - lo));
                    let (c0, c1) = (w * og0 * ao, w * og1 * (ao + dao));
                    ShaperCoefs {
                        a: a0,
                        da: a1 - a0,
                        b: b0,
                        db: b1 - b0,
                        c: c0,
                        dc: c1 - c0,
                    }
                };
                let x = &x[(j * ns + c) * hop..(j * ns + c + 1) * hop];
                if j + 1 == n && self.measure_input_range {
                    self.input_range[c] = input_range(x, g * ai, g * bi + o, g * dai, g * dbi);
                }
                let y = &mut out[j * hop..(j + 1) * hop];
                match p.shaper {
                    ShaperPath::Table => {
                        kernels::shape_table(k, x, ramp, model.tables.segments(c), y)
                    }
                    ShaperPath::Mlp => {
                        if let Some(shaper) = kernels::MlpShaper::of(&model.weights.shapers, c) {
                            kernels::shape_mlp(k, &shaper, x, ramp, y);
                        }
                    }
                }
            }
        }
    }
}

/// Range of `u = (a + da r) x + (b + db r)` over a frame (`r` in [0, 1]): bilinear in
/// `x` and `r`, so its extremes lie at the corners of `[min x, max x] x [0, 1]`.
fn input_range(x: &[f32], a: f32, b: f32, da: f32, db: f32) -> [f32; 2] {
    let (lo, hi) = min_max(x);
    if !(lo.is_finite() && hi.is_finite()) {
        return [0.0; 2];
    }
    let corners = [
        a * lo + b,
        a * hi + b,
        (a + da) * lo + b + db,
        (a + da) * hi + b + db,
    ];
    [
        corners.iter().copied().fold(f32::INFINITY, f32::min),
        corners.iter().copied().fold(f32::NEG_INFINITY, f32::max),
    ]
}

/// Smallest and largest of `x`, NaN skipped (infinities for an empty or all-NaN slice),
/// in 8 lanes so that it vectorises.
fn min_max(x: &[f32]) -> (f32, f32) {
    const L: usize = 8;
    let mut lo = [f32::INFINITY; L];
    let mut hi = [f32::NEG_INFINITY; L];
    let mut chunks = x.chunks_exact(L);
    for c in &mut chunks {
        for l in 0..L {
            lo[l] = lo[l].min(c[l]);
            hi[l] = hi[l].max(c[l]);
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        lo[l] = lo[l].min(v);
        hi[l] = hi[l].max(v);
    }
    (
        lo.into_iter().fold(f32::INFINITY, f32::min),
        hi.into_iter().fold(f32::NEG_INFINITY, f32::max),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_skips_nan_and_finds_the_extremes() {
        let mut x: Vec<f32> = (0..37)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) * 0.5)
            .collect();
        x[5] = f32::NAN;
        x[36] = -9.5;
        assert_eq!(min_max(&x), (-9.5, 4.0));
        assert_eq!(min_max(&[]), (f32::INFINITY, f32::NEG_INFINITY));
        assert_eq!(input_range(&[f32::NAN; 3], 1.0, 0.0, 0.0, 0.0), [0.0; 2]);
    }
}
