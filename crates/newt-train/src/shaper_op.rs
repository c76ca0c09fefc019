//! The 64 sine-MLP waveshapers (1 -> 8 -> 8 -> 8 -> 1) as one fused candle op.
//!
//! Grouped conv1d or batched matmuls materialise `[64, B*T, 8]` activations per layer and
//! allocate gigabytes (NEWT.md section 5). This op runs each shaper on 16 samples at a
//! time (lane arrays that vectorise, dispatched at run time to AVX-512 or AVX2 code) in one
//! rayon-parallel pass, and recomputes the activations in backward instead of storing
//! them. Its arithmetic order and its sine (`newt_model::sine`) are those of
//! `newt_model::ShaperBank::eval`, which the engine's MLP path uses, so training and
//! inference agree to the last bits, on every instruction set.

use candle_core::{CpuStorage, CustomOp2, Error, Layout, Result, Shape, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

use newt_model::SHAPER_WIDTH as W;
use newt_model::sine::{cos, sin};

/// Parameters per shaper, packed: scale, w1[8], b1[8], w2[8x8], b2[8], w3[8x8], b3[8],
/// w4[8], b4.
pub const PACKED: usize = 1 + W + W + W * W + W + W * W + W + W + 1;

const SCALE: usize = 0;
const W1: usize = 1;
const B1: usize = W1 + W;
const W2: usize = B1 + W;
const B2: usize = W2 + W * W;
const W3: usize = B2 + W;
const B3: usize = W3 + W * W;
const W4: usize = B3 + W;
const B4: usize = W4 + W;

/// Samples computed together: one AVX-512 register, two AVX2 registers.
pub(crate) const L: usize = 16;

/// One value per sample of a chunk. Each operation is a fixed-length loop over the lanes,
/// which the compiler turns into vector instructions; the lanes never mix.
#[derive(Clone, Copy)]
pub(crate) struct Lanes(pub(crate) [f32; L]);

impl Lanes {
    pub(crate) const ZERO: Self = Self([0.0; L]);

    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; L])
    }

    #[inline(always)]
    pub(crate) fn map(self, f: impl Fn(f32) -> f32) -> Self {
        let mut out = self;
        for v in &mut out.0 {
            *v = f(*v);
        }
        out
    }

    /// `L` samples of a row from `start`, zero past its end.
    #[inline(always)]
    pub(crate) fn load(row: &[f32], start: usize) -> Self {
        let mut v = Self::ZERO;
        let n = L.min(row.len() - start);
        v.0[..n].copy_from_slice(&row[start..start + n]);
        v
    }
}

impl std::ops::Add for Lanes {
    type Output = Self;
    #[inline(always)]
    fn add(mut self, o: Self) -> Self {
        for l in 0..L {
            self.0[l] += o.0[l];
        }
        self
    }
}

impl std::ops::AddAssign for Lanes {
    #[inline(always)]
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}

impl std::ops::Mul for Lanes {
    type Output = Self;
    #[inline(always)]
    fn mul(mut self, o: Self) -> Self {
        for l in 0..L {
            self.0[l] *= o.0[l];
        }
        self
    }
}

impl std::ops::Mul<f32> for Lanes {
    type Output = Self;
    #[inline(always)]
    fn mul(mut self, w: f32) -> Self {
        for l in 0..L {
            self.0[l] *= w;
        }
        self
    }
}

/// A shaper's neurons over one chunk.
type Neurons = [Lanes; W];

/// Forward activations of one chunk through one shaper.
pub(crate) struct Trace {
    x: Lanes,
    a1: Neurons,
    h1: Neurons,
    a2: Neurons,
    h2: Neurons,
    a3: Neurons,
    h3: Neurons,
    pub(crate) a4: Lanes,
}

impl Trace {
    /// Runs shaper `p` on `u`, each lane in the operation order of
    /// `newt_model::ShaperBank::eval` (so its bits are that function's).
    #[inline(always)]
    pub(crate) fn run(p: &[f32], u: Lanes) -> Self {
        let x = u * p[SCALE];
        let mut a1 = [Lanes::ZERO; W];
        for j in 0..W {
            a1[j] = x * p[W1 + j] + Lanes::splat(p[B1 + j]);
        }
        let h1 = sines(&a1);
        let a2 = affine(&p[W2..W2 + W * W], &p[B2..B2 + W], &h1);
        let h2 = sines(&a2);
        let a3 = affine(&p[W3..W3 + W * W], &p[B3..B3 + W], &h2);
        let h3 = sines(&a3);
        let mut a4 = Lanes::splat(p[B4]);
        for k in 0..W {
            a4 += h3[k] * p[W4 + k];
        }
        Self {
            x,
            a1,
            h1,
            a2,
            h2,
            a3,
            h3,
            a4,
        }
    }
}

/// The sine of every neuron (a loop, not `array::map`, which the compiler may leave
/// out of line, compiled without the caller's instruction set).
#[inline(always)]
fn sines(a: &Neurons) -> Neurons {
    let mut h = [Lanes::ZERO; W];
    for k in 0..W {
        h[k] = a[k].map(sin);
    }
    h
}

/// `a_j = b_j + sum_k w_jk h_k`, summed over `k` in order from the bias.
#[inline(always)]
fn affine(w: &[f32], b: &[f32], h: &Neurons) -> Neurons {
    let mut a = [Lanes::ZERO; W];
    for j in 0..W {
        a[j] = Lanes::splat(b[j]);
        for k in 0..W {
            a[j] += h[k] * w[j * W + k];
        }
    }
    a
}

/// One row of the forward pass: `out[i] = sin(shaper_p(u[i]))`.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
fn forward_row(p: &[f32], u: &[f32], out: &mut [f32]) {
    for start in (0..u.len()).step_by(L) {
        let y = Trace::run(p, Lanes::load(u, start)).a4.map(sin);
        let n = L.min(u.len() - start);
        out[start..start + n].copy_from_slice(&y.0[..n]);
    }
}

/// Per-lane f32 sums of the parameter gradient, flushed into f64 every this many chunks
/// (1024 samples), so that long rows keep full precision.
pub(crate) const FLUSH_CHUNKS: usize = 64;

/// One channel's backward pass over its rows (`u` and the incoming gradient `g`, each
/// row of `u` as long as its row of `g`): adds its parameter gradient to `gp` (f64) and
/// writes the input gradient of each sample to `gu`, rows one after another.
///
/// AVX2 only, on AVX-512 machines too: with AVX-512's scatters available the compiler
/// vectorises the weight-gradient loops across neurons (strided gathers and scatters, 20x
/// slower) instead of across the lanes.
#[multiversion(targets("x86_64+avx2+fma"))]
fn backward_rows(p: &[f32], rows: &[(&[f32], &[f32])], gp: &mut [f64], gu: &mut [f32]) {
    let mut acc = [Lanes::ZERO; PACKED];
    let mut pending = 0usize;
    let mut offset = 0usize;
    for (u_row, g_row) in rows {
        for start in (0..u_row.len()).step_by(L) {
            let u = Lanes::load(u_row, start);
            // Padded lanes carry a zero gradient, so they add nothing.
            let g = Lanes::load(g_row, start);
            let t = Trace::run(p, u);
            let du = chunk_backward(p, u, &t, g, &mut acc);
            let n = L.min(u_row.len() - start);
            gu[offset + start..offset + start + n].copy_from_slice(&du.0[..n]);
            pending += 1;
            if pending == FLUSH_CHUNKS {
                flush(&mut acc, gp);
                pending = 0;
            }
        }
        offset += u_row.len();
    }
    flush(&mut acc, gp);
}

/// Backward of one chunk through shaper `p` (its trace `t` on inputs `u`): `g` is the
/// gradient at the shaper's output. Adds the parameter gradient to `acc` and returns the
/// gradient at `u`.
#[inline(always)]
pub(crate) fn chunk_backward(
    p: &[f32],
    u: Lanes,
    t: &Trace,
    g: Lanes,
    acc: &mut [Lanes; PACKED],
) -> Lanes {
    let d4 = g * t.a4.map(cos);
    acc[B4] += d4;
    let mut d3 = [Lanes::ZERO; W];
    for k in 0..W {
        acc[W4 + k] += d4 * t.h3[k];
        d3[k] = d4 * p[W4 + k] * t.a3[k].map(cos);
    }
    let d2 = layer_backward::<W3, B3>(p, &d3, &t.h2, &t.a2, acc);
    // The gradient at the first layer's pre-activations.
    let d1 = layer_backward::<W2, B2>(p, &d2, &t.h1, &t.a1, acc);
    let mut dx = Lanes::ZERO;
    for k in 0..W {
        acc[B1 + k] += d1[k];
        acc[W1 + k] += d1[k] * t.x;
        dx += d1[k] * p[W1 + k];
    }
    acc[SCALE] += dx * u;
    dx * p[SCALE]
}

/// Backward through one 8 -> 8 sine layer whose weights start at `WO` and biases at `BO`
/// in the packed parameters: adds their gradients to `acc` and returns the gradient at
/// the layer's input pre-activations, `(W^T d) * cos(a_in)`.
#[inline(always)]
fn layer_backward<const WO: usize, const BO: usize>(
    p: &[f32],
    d: &Neurons,
    h_in: &Neurons,
    a_in: &Neurons,
    acc: &mut [Lanes; PACKED],
) -> Neurons {
    let mut d_in = [Lanes::ZERO; W];
    for j in 0..W {
        acc[BO + j] += d[j];
        for k in 0..W {
            acc[WO + j * W + k] += d[j] * h_in[k];
            d_in[k] += d[j] * p[WO + j * W + k];
        }
    }
    for k in 0..W {
        d_in[k] = d_in[k] * a_in[k].map(cos);
    }
    d_in
}

/// Adds the lane sums to `gp` in lane order, and clears them.
#[inline(always)]
pub(crate) fn flush(acc: &mut [Lanes; PACKED], gp: &mut [f64]) {
    for (g, lanes) in gp.iter_mut().zip(acc.iter_mut()) {
        for v in &mut lanes.0 {
            *g += *v as f64;
            *v = 0.0;
        }
    }
}

pub(crate) fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    l.contiguous_offsets()
        .map(|(a, b)| &data[a..b])
        .ok_or_else(|| Error::Msg("shaper bank needs contiguous f32 tensors".into()))
}

/// `s[b, c, t] = shaper_c(u[b, c, t])` for `u` of shape `[B, C, T]` and packed
/// parameters `[C, PACKED]`.
struct ShaperBank;

impl CustomOp2 for ShaperBank {
    fn name(&self) -> &'static str {
        "shaper-bank"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (u, p) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
        let (b, c, t) = l1.shape().dims3()?;
        if l2.dims() != [c, PACKED] {
            return Err(Error::Msg(format!(
                "shaper params must be [{c}, {PACKED}], got {:?}",
                l2.dims()
            )));
        }
        let _ = b;
        let mut out = vec![0.0f32; u.len()];
        out.par_chunks_mut(t)
            .zip(u.par_chunks(t))
            .enumerate()
            .for_each(|(row, (o, ui))| {
                let ch = row % c;
                forward_row(&p[ch * PACKED..(ch + 1) * PACKED], ui, o);
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        u: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, c, t) = u.dims3()?;
        let uv = u.flatten_all()?.to_vec1::<f32>()?;
        let pv = params.flatten_all()?.to_vec1::<f32>()?;
        let gv = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        // One task per channel: it owns that channel's parameter gradient (f64 sums over
        // B*T samples, added in a fixed order) and that channel's input gradients.
        let per_channel: Vec<(Vec<f64>, Vec<f32>)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let rows: Vec<(&[f32], &[f32])> = (0..b)
                    .map(|bi| {
                        let base = (bi * c + ch) * t;
                        (&uv[base..base + t], &gv[base..base + t])
                    })
                    .collect();
                let mut gp = vec![0.0f64; PACKED];
                let mut gu = vec![0.0f32; b * t];
                backward_rows(&pv[ch * PACKED..(ch + 1) * PACKED], &rows, &mut gp, &mut gu);
                (gp, gu)
            })
            .collect();
        let mut grad_u = vec![0.0f32; uv.len()];
        let mut grad_p = vec![0.0f32; pv.len()];
        for (ch, (gp, gu)) in per_channel.into_iter().enumerate() {
            for (k, v) in gp.into_iter().enumerate() {
                grad_p[ch * PACKED + k] = v as f32;
            }
            for bi in 0..b {
                let base = (bi * c + ch) * t;
                grad_u[base..base + t].copy_from_slice(&gu[bi * t..(bi + 1) * t]);
            }
        }
        let dev = u.device();
        Ok((
            Some(Tensor::from_vec(grad_u, (b, c, t), dev)?),
            Some(Tensor::from_vec(grad_p, (c, PACKED), dev)?),
        ))
    }
}

/// Applies the shaper bank: `u` is `[B, C, T]`, `params` `[C, PACKED]`.
pub fn shaper_bank(u: &Tensor, params: &Tensor) -> Result<Tensor> {
    u.contiguous()?.apply_op2(&params.contiguous()?, ShaperBank)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use newt_model::{NewtModel, SplitMix64};

    /// Packs a model's shaper bank the way the training model does.
    pub(crate) fn packed(bank: &newt_model::ShaperBank) -> Tensor {
        let mut v = Vec::with_capacity(bank.n * PACKED);
        for c in 0..bank.n {
            v.push(bank.input_scale[c]);
            v.extend_from_slice(&bank.w1[c * W..(c + 1) * W]);
            v.extend_from_slice(&bank.b1[c * W..(c + 1) * W]);
            v.extend_from_slice(&bank.w2[c * W * W..(c + 1) * W * W]);
            v.extend_from_slice(&bank.b2[c * W..(c + 1) * W]);
            v.extend_from_slice(&bank.w3[c * W * W..(c + 1) * W * W]);
            v.extend_from_slice(&bank.b3[c * W..(c + 1) * W]);
            v.extend_from_slice(&bank.w4[c * W..(c + 1) * W]);
            v.push(bank.b4[c]);
        }
        Tensor::from_vec(v, (bank.n, PACKED), &Device::Cpu).unwrap()
    }

    #[test]
    fn forward_is_bit_identical_to_the_model_crate() {
        let bank = NewtModel::seeded(3).weights.shapers;
        let p = packed(&bank);
        let mut rng = SplitMix64::new(1);
        let u: Vec<f32> = (0..2 * 64 * 50).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let ut = Tensor::from_vec(u.clone(), (2, 64, 50), &Device::Cpu).unwrap();
        let s: Vec<f32> = shaper_bank(&ut, &p)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (i, (&si, &ui)) in s.iter().zip(&u).enumerate() {
            let c = (i / 50) % 64;
            assert_eq!(si.to_bits(), bank.eval(c, ui).to_bits(), "sample {i}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let bank = NewtModel::seeded(4).weights.shapers;
        // Two full lane chunks and a partial one.
        let (c, t) = (3usize, 2 * L + 5);
        let p0: Vec<f32> = packed(&bank)
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[..c * PACKED]
            .to_vec();
        let mut rng = SplitMix64::new(2);
        let u0: Vec<f32> = (0..c * t).map(|_| rng.uniform(-1.5, 1.5)).collect();
        let wts: Vec<f32> = (0..c * t).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let wt = Tensor::from_vec(wts, (1, c, t), &Device::Cpu).unwrap();
        let loss = |u: &Tensor, p: &Tensor| -> Tensor {
            (shaper_bank(u, p).unwrap() * &wt)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let u = Var::from_vec(u0.clone(), (1, c, t), &Device::Cpu).unwrap();
        let p = Var::from_vec(p0.clone(), (c, PACKED), &Device::Cpu).unwrap();
        let grads = loss(u.as_tensor(), p.as_tensor()).backward().unwrap();
        let gu: Vec<f32> = grads
            .get(u.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let gp: Vec<f32> = grads
            .get(p.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let eval = |uv: &[f32], pv: &[f32]| -> f64 {
            let ut = Tensor::from_vec(uv.to_vec(), (1, c, t), &Device::Cpu).unwrap();
            let pt = Tensor::from_vec(pv.to_vec(), (c, PACKED), &Device::Cpu).unwrap();
            loss(&ut, &pt).to_scalar::<f32>().unwrap() as f64
        };
        let eps = 1e-2f32;
        let fd = |i: usize, of_u: bool| -> f64 {
            let (mut a, mut b) = ((u0.clone(), p0.clone()), (u0.clone(), p0.clone()));
            if of_u {
                a.0[i] += eps;
                b.0[i] -= eps;
            } else {
                a.1[i] += eps;
                b.1[i] -= eps;
            }
            (eval(&a.0, &a.1) - eval(&b.0, &b.1)) / (2.0 * eps as f64)
        };
        for i in 0..c * t {
            let f = fd(i, true);
            assert!(
                (f - gu[i] as f64).abs() < 3e-2 * (1.0 + f.abs()),
                "u[{i}]: fd {f} vs {}",
                gu[i]
            );
        }
        for i in (0..c * PACKED).step_by(7) {
            let f = fd(i, false);
            assert!(
                (f - gp[i] as f64).abs() < 3e-2 * (1.0 + f.abs()),
                "p[{i}]: fd {f} vs {}",
                gp[i]
            );
        }
    }
}
