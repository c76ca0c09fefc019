//! FiLM and the shaper bank at audio rate, fused into one op: `y = a_out * shaper(a_in * x
//! + b_in) + b_out`, with the four FiLM parameters ramped from frame rate inside the op.
//!
//! Composed from candle ops, the frame-rate FiLM `[B, F, 4C]` is first upsampled to
//! `[B, 4C, T]` (65 MB at batch 4 x 1 s), then four element-wise ops and their backward
//! passes stream it through memory; this op reads the frame values instead. Each sample's
//! arithmetic is exactly the composition's (`model::upsample`, then `(a_in * x) + b_in`,
//! the shaper, `(a_out * s) + b_out`), so the result is bit-identical to it.

use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

use crate::shaper_op::{FLUSH_CHUNKS, L, Lanes, PACKED, Trace, chunk_backward, contiguous, flush};
use newt_model::sine::sin;

/// The four FiLM parameters of one (item, channel), one frame-rate sequence each:
/// `[a_in, b_in, a_out, b_out]`.
type FilmFrames = [Vec<f32>; 4];

/// The position of sample `t` in the frame grid: its frame, and the engine's ramp weight
/// `(i + 1) / hop` of sample `i` of that frame.
#[derive(Clone, Copy)]
struct FramePosition {
    frame: usize,
    index: usize,
}

impl FramePosition {
    #[inline(always)]
    fn of(t: usize, hop: usize) -> Self {
        Self {
            frame: t / hop,
            index: t % hop,
        }
    }

    #[inline(always)]
    fn ramp(self, hop: usize) -> f32 {
        (self.index + 1) as f32 / hop as f32
    }

    #[inline(always)]
    fn next(&mut self, hop: usize) {
        self.index += 1;
        if self.index == hop {
            self.index = 0;
            self.frame += 1;
        }
    }
}

/// The four ramped parameters of the `L` samples from `start`: each from the previous
/// frame's value (the first frame's own) towards the current one, reached at the frame's
/// last sample (the last sample's values repeated past the end of the row).
#[inline(always)]
fn film_lanes(film: &FilmFrames, hop: usize, len: usize, start: usize) -> [Lanes; 4] {
    let mut out = [Lanes::ZERO; 4];
    let mut pos = FramePosition::of(start, hop);
    for l in 0..L {
        if start + l < len {
            let ramp = pos.ramp(hop);
            for (o, frames) in out.iter_mut().zip(film) {
                let prev = frames[pos.frame.saturating_sub(1)];
                o.0[l] = prev + (frames[pos.frame] - prev) * ramp;
            }
            pos.next(hop);
        } else {
            for o in &mut out {
                o.0[l] = o.0[l - 1];
            }
        }
    }
    out
}

#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
fn forward_row(p: &[f32], film: &FilmFrames, hop: usize, x: &[f32], out: &mut [f32]) {
    for start in (0..x.len()).step_by(L) {
        let [a_in, b_in, a_out, b_out] = film_lanes(film, hop, x.len(), start);
        let u = a_in * Lanes::load(x, start) + b_in;
        let y = a_out * Trace::run(p, u).a4.map(sin) + b_out;
        let n = L.min(x.len() - start);
        out[start..start + n].copy_from_slice(&y.0[..n]);
    }
}

/// What one row's backward pass gives: the input gradient, written in place, and the
/// four FiLM parameters' gradients per frame (f64 sums).
struct RowGrads<'a> {
    x: &'a mut [f32],
    film: [Vec<f64>; 4],
}

/// One channel's backward pass over its rows; adds the parameter gradient to `gp`.
/// AVX2 only, for the reason given at `shaper_op::backward_rows`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn backward_row(
    p: &[f32],
    film: &FilmFrames,
    hop: usize,
    x: &[f32],
    g: &[f32],
    out: &mut RowGrads,
    gp: &mut [f64],
) {
    let mut acc = [Lanes::ZERO; PACKED];
    let mut pending = 0usize;
    for start in (0..x.len()).step_by(L) {
        let [a_in, b_in, a_out, _] = film_lanes(film, hop, x.len(), start);
        let xs = Lanes::load(x, start);
        // Padded lanes carry a zero gradient, so they add nothing.
        let gs = Lanes::load(g, start);
        let u = a_in * xs + b_in;
        let t = Trace::run(p, u);
        let s = t.a4.map(sin);
        let du = chunk_backward(p, u, &t, gs * a_out, &mut acc);
        let n = L.min(x.len() - start);
        let dx = du * a_in;
        out.x[start..start + n].copy_from_slice(&dx.0[..n]);
        // d a_in = du x, d b_in = du, d a_out = g s, d b_out = g; each sample's share goes
        // to its frame (ramp r) and the previous one (1 - r).
        let per_param = [du * xs, du, gs * s, gs];
        let mut pos = FramePosition::of(start, hop);
        for l in 0..n {
            let ramp = pos.ramp(hop) as f64;
            let (f, prev) = (pos.frame, pos.frame.saturating_sub(1));
            for (grads, d) in out.film.iter_mut().zip(&per_param) {
                let d = d.0[l] as f64;
                grads[f] += d * ramp;
                grads[prev] += d * (1.0 - ramp);
            }
            pos.next(hop);
        }
        pending += 1;
        if pending == FLUSH_CHUNKS {
            flush(&mut acc, gp);
            pending = 0;
        }
    }
    flush(&mut acc, gp);
}

struct FilmShaperBank {
    hop: usize,
}

/// Checks shapes: `x` `[B, C, T]`, `film` `[B, F, 4C]` with `T = F * hop`, `params`
/// `[C, PACKED]`. Returns `(B, C, F, T)`.
fn dims(
    x: &Shape,
    film: &Shape,
    params: &Shape,
    hop: usize,
) -> Result<(usize, usize, usize, usize)> {
    let (b, c, t) = x.dims3()?;
    let (fb, f, fc) = film.dims3()?;
    if fb != b || fc != 4 * c || f * hop != t || params.dims() != [c, PACKED] {
        return Err(Error::Msg(format!(
            "FiLM shaper bank: x {x:?}, film {film:?}, params {params:?} and hop {hop} do not fit \
             ([B, C, F * hop], [B, F, 4C], [C, {PACKED}])"
        )));
    }
    Ok((b, c, f, t))
}

/// The frame sequences of (item `bi`, channel `ch`) from `[B, F, 4C]`.
fn frames_of(film: &[f32], bi: usize, ch: usize, c: usize, f: usize) -> FilmFrames {
    std::array::from_fn(|k| {
        (0..f)
            .map(|fi| film[(bi * f + fi) * 4 * c + k * c + ch])
            .collect()
    })
}

impl CustomOp3 for FilmShaperBank {
    fn name(&self) -> &'static str {
        "film-shaper-bank"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, film, p) = (
            contiguous(s1, l1)?,
            contiguous(s2, l2)?,
            contiguous(s3, l3)?,
        );
        let (_, c, f, t) = dims(l1.shape(), l2.shape(), l3.shape(), self.hop)?;
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(t)
            .zip(x.par_chunks(t))
            .enumerate()
            .for_each(|(row, (o, xr))| {
                let (bi, ch) = (row / c, row % c);
                let frames = frames_of(film, bi, ch, c, f);
                forward_row(&p[ch * PACKED..(ch + 1) * PACKED], &frames, self.hop, xr, o);
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        film: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, c, f, t) = dims(x.shape(), film.shape(), params.shape(), self.hop)?;
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let fv = film.flatten_all()?.to_vec1::<f32>()?;
        let pv = params.flatten_all()?.to_vec1::<f32>()?;
        let gv = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        // One task per channel: its parameter gradient (f64, rows in order), its rows'
        // input gradients and its FiLM gradients.
        type ChannelGrads = (Vec<f64>, Vec<f32>, Vec<[Vec<f64>; 4]>);
        let per_channel: Vec<ChannelGrads> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let p = &pv[ch * PACKED..(ch + 1) * PACKED];
                let mut gp = vec![0.0f64; PACKED];
                let mut gx = vec![0.0f32; b * t];
                let mut gfilm = Vec::with_capacity(b);
                for (bi, gx_row) in gx.chunks_mut(t).enumerate() {
                    let base = (bi * c + ch) * t;
                    let frames = frames_of(&fv, bi, ch, c, f);
                    let mut row = RowGrads {
                        x: gx_row,
                        film: std::array::from_fn(|_| vec![0.0f64; f]),
                    };
                    backward_row(
                        p,
                        &frames,
                        self.hop,
                        &xv[base..base + t],
                        &gv[base..base + t],
                        &mut row,
                        &mut gp,
                    );
                    gfilm.push(row.film);
                }
                (gp, gx, gfilm)
            })
            .collect();
        let mut grad_x = vec![0.0f32; xv.len()];
        let mut grad_film = vec![0.0f32; fv.len()];
        let mut grad_p = vec![0.0f32; pv.len()];
        for (ch, (gp, gx, gfilm)) in per_channel.into_iter().enumerate() {
            for (k, v) in gp.into_iter().enumerate() {
                grad_p[ch * PACKED + k] = v as f32;
            }
            for (bi, film_grads) in gfilm.iter().enumerate() {
                let base = (bi * c + ch) * t;
                grad_x[base..base + t].copy_from_slice(&gx[bi * t..(bi + 1) * t]);
                for (k, frames) in film_grads.iter().enumerate() {
                    for (fi, v) in frames.iter().enumerate() {
                        grad_film[(bi * f + fi) * 4 * c + k * c + ch] = *v as f32;
                    }
                }
            }
        }
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(grad_x, (b, c, t), dev)?),
            Some(Tensor::from_vec(grad_film, (b, f, 4 * c), dev)?),
            Some(Tensor::from_vec(grad_p, (c, PACKED), dev)?),
        ))
    }
}

/// `a_out * shaper(a_in * x + b_in) + b_out` for `x` `[B, C, T]`, frame-rate FiLM
/// `film` `[B, F, 4C]` (`[a_in | b_in | a_out | b_out]` along the last axis, ramped over
/// `hop` samples per frame, `T = F * hop`) and packed shaper parameters `[C, PACKED]`.
pub fn film_shaper_bank(x: &Tensor, film: &Tensor, params: &Tensor, hop: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &film.contiguous()?,
        &params.contiguous()?,
        FilmShaperBank { hop },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::upsample;
    use crate::shaper_op::shaper_bank;
    use crate::shaper_op::tests::packed;
    use candle_core::{Device, Var};
    use newt_model::SplitMix64;

    fn random(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..shape.iter().product::<usize>())
            .map(|_| rng.uniform(lo, hi))
            .collect()
    }

    /// The same function from candle ops and the unfused shaper op.
    fn composed(x: &Tensor, film: &Tensor, params: &Tensor, hop: usize) -> Tensor {
        let c = x.dim(1).unwrap();
        let up = upsample(film, hop).unwrap();
        let part = |k: usize| up.narrow(1, k * c, c).unwrap();
        let u = ((part(0) * x).unwrap() + part(1)).unwrap();
        let s = shaper_bank(&u, params).unwrap();
        ((part(2) * s).unwrap() + part(3)).unwrap()
    }

    /// Forward bits and all three gradients against the composition, with hops that do
    /// and do not divide the lane width.
    #[test]
    fn matches_the_composed_ops() {
        let dev = Device::Cpu;
        for (hop, seed) in [(8usize, 1u64), (20, 2), (32, 3)] {
            let (b, c, f) = (2usize, 3usize, 5usize);
            let t = f * hop;
            let x = Var::from_vec(random(&[b, c, t], -1.0, 1.0, seed), (b, c, t), &dev).unwrap();
            let film = Var::from_vec(
                random(&[b, f, 4 * c], -1.0, 1.0, seed + 10),
                (b, f, 4 * c),
                &dev,
            )
            .unwrap();
            let bank = newt_model::NewtModel::seeded(seed).weights.shapers;
            let params = Var::from_tensor(&packed(&bank).narrow(0, 0, c).unwrap()).unwrap();
            let weights =
                Tensor::from_vec(random(&[b, c, t], -1.0, 1.0, seed + 20), (b, c, t), &dev)
                    .unwrap();
            let loss = |y: Tensor| (y.sqr().unwrap() * &weights).unwrap().sum_all().unwrap();
            let fused =
                film_shaper_bank(x.as_tensor(), film.as_tensor(), params.as_tensor(), hop).unwrap();
            let reference = composed(x.as_tensor(), film.as_tensor(), params.as_tensor(), hop);
            let (a, r): (Vec<f32>, Vec<f32>) = (
                fused.flatten_all().unwrap().to_vec1().unwrap(),
                reference.flatten_all().unwrap().to_vec1().unwrap(),
            );
            for (i, (p, q)) in a.iter().zip(&r).enumerate() {
                assert_eq!(
                    p.to_bits(),
                    q.to_bits(),
                    "hop {hop}, sample {i}: {p} vs {q}"
                );
            }
            let g1 = loss(fused).backward().unwrap();
            let g2 = loss(reference).backward().unwrap();
            for (name, v) in [("x", &x), ("film", &film), ("params", &params)] {
                let p: Vec<f32> = g1
                    .get(v.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let q: Vec<f32> = g2
                    .get(v.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let scale = q.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let worst = p
                    .iter()
                    .zip(&q)
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(scale > 1e-3, "hop {hop}, {name}: zero gradient");
                assert!(
                    worst <= 1e-4 * scale,
                    "hop {hop}, {name}: {worst} against {scale}"
                );
            }
        }
    }
}
