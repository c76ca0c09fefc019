//! The 64 sine-MLP waveshapers (1 -> 8 -> 8 -> 8 -> 1) as one fused candle op.
//!
//! Grouped conv1d or batched matmuls materialise `[64, B*T, 8]` activations per layer and
//! allocate gigabytes (NEWT.md section 5). This op runs every shaper sample by sample in
//! one rayon-parallel pass, and recomputes the activations in backward instead of storing
//! them. Its arithmetic order is that of `newt_model::ShaperBank::eval`, which the
//! engine's MLP path uses, so training and inference agree to the last bits.

use candle_core::{CpuStorage, CustomOp2, Error, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use newt_model::SHAPER_WIDTH as W;

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

/// One channel's backward result: its parameter gradient, and (flat index, gradient) of
/// its inputs.
type ChannelGrads = (Vec<f64>, Vec<(usize, f32)>);

/// Forward activations of one sample through one shaper.
struct Trace {
    x: f32,
    a1: [f32; W],
    h1: [f32; W],
    a2: [f32; W],
    h2: [f32; W],
    a3: [f32; W],
    h3: [f32; W],
    a4: f32,
}

#[inline]
fn run(p: &[f32], u: f32) -> Trace {
    let x = p[SCALE] * u;
    let mut t = Trace {
        x,
        a1: [0.0; W],
        h1: [0.0; W],
        a2: [0.0; W],
        h2: [0.0; W],
        a3: [0.0; W],
        h3: [0.0; W],
        a4: 0.0,
    };
    for j in 0..W {
        t.a1[j] = p[W1 + j] * x + p[B1 + j];
        t.h1[j] = t.a1[j].sin();
    }
    (t.a2, t.h2) = hidden_layer(&p[W2..W2 + W * W], &p[B2..B2 + W], &t.h1);
    (t.a3, t.h3) = hidden_layer(&p[W3..W3 + W * W], &p[B3..B3 + W], &t.h2);
    let mut acc = p[B4];
    for k in 0..W {
        acc += p[W4 + k] * t.h3[k];
    }
    t.a4 = acc;
    t
}

/// One 8 -> 8 sine layer: pre-activations and activations, summed in the order of
/// `newt_model::ShaperBank::eval`.
#[inline]
fn hidden_layer(w: &[f32], b: &[f32], h: &[f32; W]) -> ([f32; W], [f32; W]) {
    let (mut a, mut out) = ([0.0f32; W], [0.0f32; W]);
    for j in 0..W {
        let mut acc = b[j];
        for k in 0..W {
            acc += w[j * W + k] * h[k];
        }
        a[j] = acc;
        out[j] = acc.sin();
    }
    (a, out)
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
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
        let mut out = vec![0.0f32; u.len()];
        out.par_chunks_mut(t)
            .zip(u.par_chunks(t))
            .enumerate()
            .for_each(|(row, (o, ui))| {
                let ch = row % c;
                let params = &p[ch * PACKED..(ch + 1) * PACKED];
                for (oi, &v) in o.iter_mut().zip(ui) {
                    *oi = run(params, v).a4.sin();
                }
            });
        let _ = b;
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
        // B*T samples) and writes that channel's input gradients.
        let per_channel: Vec<ChannelGrads> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let p = &pv[ch * PACKED..(ch + 1) * PACKED];
                let mut gp = vec![0.0f64; PACKED];
                let mut gu = Vec::with_capacity(b * t);
                for bi in 0..b {
                    let base = (bi * c + ch) * t;
                    for i in 0..t {
                        let g = gv[base + i];
                        let uval = uv[base + i];
                        let tr = run(p, uval);
                        let d4 = g * tr.a4.cos();
                        gp[B4] += d4 as f64;
                        let mut d3 = [0.0f32; W];
                        for k in 0..W {
                            gp[W4 + k] += (d4 * tr.h3[k]) as f64;
                            d3[k] = d4 * p[W4 + k] * tr.a3[k].cos();
                        }
                        let mut d2 = [0.0f32; W];
                        for j in 0..W {
                            gp[B3 + j] += d3[j] as f64;
                            for k in 0..W {
                                gp[W3 + j * W + k] += (d3[j] * tr.h2[k]) as f64;
                                d2[k] += d3[j] * p[W3 + j * W + k];
                            }
                        }
                        for k in 0..W {
                            d2[k] *= tr.a2[k].cos();
                        }
                        let mut d1 = [0.0f32; W];
                        for j in 0..W {
                            gp[B2 + j] += d2[j] as f64;
                            for k in 0..W {
                                gp[W2 + j * W + k] += (d2[j] * tr.h1[k]) as f64;
                                d1[k] += d2[j] * p[W2 + j * W + k];
                            }
                        }
                        let mut dx = 0.0f32;
                        for k in 0..W {
                            let d = d1[k] * tr.a1[k].cos();
                            gp[B1 + k] += d as f64;
                            gp[W1 + k] += (d * tr.x) as f64;
                            dx += d * p[W1 + k];
                        }
                        gp[SCALE] += (dx * uval) as f64;
                        gu.push((base + i, dx * p[SCALE]));
                    }
                }
                (gp, gu)
            })
            .collect();
        let mut grad_u = vec![0.0f32; uv.len()];
        let mut grad_p = vec![0.0f32; pv.len()];
        for (ch, (gp, gu)) in per_channel.into_iter().enumerate() {
            for (k, v) in gp.into_iter().enumerate() {
                grad_p[ch * PACKED + k] = v as f32;
            }
            for (idx, v) in gu {
                grad_u[idx] = v;
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
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use newt_model::{NewtModel, SplitMix64};

    /// Packs a model's shaper bank the way the training model does.
    fn packed(bank: &newt_model::ShaperBank) -> Tensor {
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
        let (c, t) = (3usize, 5usize);
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
