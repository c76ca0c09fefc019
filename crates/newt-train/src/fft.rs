//! Real FFTs as candle custom ops backed by realfft, with their backward passes.
//!
//! Complex spectra are real tensors with a last dimension of 2 (re, im): `rfft` maps
//! `[..., n]` to `[..., n/2 + 1, 2]` (unnormalised, like `torch.fft.rfft`), `irfft` maps it
//! back with the `1/n` scaling of `torch.fft.irfft`; imaginary parts of the DC and Nyquist
//! bins are ignored, as a real inverse transform must. Each op's backward is its adjoint,
//! itself an op whose backward is the original, so gradients of gradients work too.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Error, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(Error::Msg("fft ops need contiguous f32 input".into())),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// real n -> complex n/2+1, `X_k = sum x_n e^{-2 pi i k n / n}`.
    Forward,
    /// Adjoint of `Forward`: complex n/2+1 -> real n.
    ForwardAdjoint,
    /// complex n/2+1 -> real n, `x_n = (1/n) sum_k X_k e^{2 pi i k n / n}` (Hermitian).
    Inverse,
    /// Adjoint of `Inverse`: real n -> complex n/2+1.
    InverseAdjoint,
}

struct FftOp {
    n: usize,
    kind: Kind,
    fwd: Arc<dyn RealToComplex<f32>>,
    inv: Arc<dyn ComplexToReal<f32>>,
}

impl FftOp {
    fn new(n: usize, kind: Kind) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        Self {
            n,
            kind,
            fwd: planner.plan_fft_forward(n),
            inv: planner.plan_fft_inverse(n),
        }
    }

    fn real_to_complex(&self, x: &[f32], out: &mut [f32], scale_bins: bool) {
        let n = self.n;
        let bins = n / 2 + 1;
        let fwd = &self.fwd;
        out.par_chunks_mut(2 * bins)
            .zip(x.par_chunks(n))
            .for_each_init(
                || {
                    (
                        vec![0.0f32; n],
                        fwd.make_output_vec(),
                        fwd.make_scratch_vec(),
                    )
                },
                |(time, spec, scratch), (o, xi)| {
                    time.copy_from_slice(xi);
                    fwd.process_with_scratch(time, spec, scratch)
                        .expect("sizes from the plan");
                    for (k, c) in spec.iter().enumerate() {
                        // The adjoint of the 1/n-scaled Hermitian inverse weighs interior bins
                        // twice and drops the imaginary parts of DC and Nyquist.
                        let (w, keep_im) = if scale_bins {
                            let edge = k == 0 || (n.is_multiple_of(2) && k == bins - 1);
                            ((if edge { 1.0 } else { 2.0 }) / n as f32, !edge)
                        } else {
                            (1.0, true)
                        };
                        o[2 * k] = c.re * w;
                        o[2 * k + 1] = if keep_im { c.im * w } else { 0.0 };
                    }
                },
            );
    }

    fn complex_to_real(&self, z: &[f32], out: &mut [f32], adjoint_of_forward: bool) {
        let n = self.n;
        let bins = n / 2 + 1;
        let inv = &self.inv;
        out.par_chunks_mut(n)
            .zip(z.par_chunks(2 * bins))
            .for_each_init(
                || {
                    (
                        inv.make_input_vec(),
                        vec![0.0f32; n],
                        inv.make_scratch_vec(),
                    )
                },
                |(spec, time, scratch), (o, zi)| {
                    for k in 0..bins {
                        // DC, and Nyquist for even lengths, are real bins.
                        let edge = k == 0 || (n.is_multiple_of(2) && k == bins - 1);
                        let (re, im) = (zi[2 * k], if edge { 0.0 } else { zi[2 * k + 1] });
                        spec[k] = if adjoint_of_forward {
                            // sum_k (g_re cos - g_im sin): interior bins are counted twice by
                            // the Hermitian inverse, so halve them.
                            let w = if edge { 1.0 } else { 0.5 };
                            Complex::new(re * w, im * w)
                        } else {
                            Complex::new(re / n as f32, im / n as f32)
                        };
                    }
                    inv.process_with_scratch(spec, time, scratch)
                        .expect("sizes from the plan");
                    o.copy_from_slice(time);
                },
            );
    }
}

impl CustomOp1 for FftOp {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Forward => "rfft",
            Kind::ForwardAdjoint => "rfft-adjoint",
            Kind::Inverse => "irfft",
            Kind::InverseAdjoint => "irfft-adjoint",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l)?;
        let dims = l.dims();
        let n = self.n;
        let bins = n / 2 + 1;
        match self.kind {
            Kind::Forward | Kind::InverseAdjoint => {
                if dims.last() != Some(&n) {
                    return Err(Error::Msg(format!(
                        "{} expects a last dimension of {n}, got {dims:?}",
                        self.name()
                    )));
                }
                let rows = x.len() / n;
                let mut out = vec![0.0f32; rows * bins * 2];
                self.real_to_complex(x, &mut out, self.kind == Kind::InverseAdjoint);
                let mut shape = dims[..dims.len() - 1].to_vec();
                shape.extend([bins, 2]);
                Ok((CpuStorage::F32(out), Shape::from(shape)))
            }
            Kind::Inverse | Kind::ForwardAdjoint => {
                if dims.len() < 2 || dims[dims.len() - 1] != 2 || dims[dims.len() - 2] != bins {
                    return Err(Error::Msg(format!(
                        "{} expects [..., {bins}, 2], got {dims:?}",
                        self.name()
                    )));
                }
                let rows = x.len() / (2 * bins);
                let mut out = vec![0.0f32; rows * n];
                self.complex_to_real(x, &mut out, self.kind == Kind::ForwardAdjoint);
                let mut shape = dims[..dims.len() - 2].to_vec();
                shape.push(n);
                Ok((CpuStorage::F32(out), Shape::from(shape)))
            }
        }
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let adjoint = match self.kind {
            Kind::Forward => Kind::ForwardAdjoint,
            Kind::ForwardAdjoint => Kind::Forward,
            Kind::Inverse => Kind::InverseAdjoint,
            Kind::InverseAdjoint => Kind::Inverse,
        };
        Ok(Some(
            grad.contiguous()?.apply_op1(FftOp::new(self.n, adjoint))?,
        ))
    }
}

/// `torch.fft.rfft` over the last dimension: `[..., n]` -> `[..., n/2 + 1, 2]`.
pub fn rfft(x: &Tensor) -> Result<Tensor> {
    let n = x.dim(candle_core::D::Minus1)?;
    x.contiguous()?.apply_op1(FftOp::new(n, Kind::Forward))
}

/// `torch.fft.irfft(X, n)` over the last two dimensions: `[..., n/2 + 1, 2]` -> `[..., n]`.
pub fn irfft(x: &Tensor, n: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(FftOp::new(n, Kind::Inverse))
}

/// Complex product of two packed spectra `[..., bins, 2]` (broadcasting).
pub fn complex_mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let last = a.rank() - 1;
    let (ar, ai) = (a.narrow(last, 0, 1)?, a.narrow(last, 1, 1)?);
    let last_b = b.rank() - 1;
    let (br, bi) = (b.narrow(last_b, 0, 1)?, b.narrow(last_b, 1, 1)?);
    let re = (ar.broadcast_mul(&br)? - ai.broadcast_mul(&bi)?)?;
    let im = (ar.broadcast_mul(&bi)? + ai.broadcast_mul(&br)?)?;
    Tensor::cat(&[re, im], last)
}

/// Magnitude of a packed spectrum `[..., bins, 2]` -> `[..., bins]`, with `eps` inside the
/// square root so that the gradient stays finite at zero.
pub fn magnitude(x: &Tensor, eps: f64) -> Result<Tensor> {
    x.sqr()?
        .sum(candle_core::D::Minus1)?
        .affine(1.0, eps)?
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use newt_model::SplitMix64;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = SplitMix64::new(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn rfft_matches_the_dft_and_irfft_inverts_it() {
        let n = 12;
        let x = random(&[3, n], 1);
        let spec = rfft(&x).unwrap();
        assert_eq!(spec.dims(), &[3, 7, 2]);
        let xs: Vec<Vec<f32>> = x.to_vec2().unwrap();
        let s: Vec<Vec<Vec<f32>>> = spec.to_vec3().unwrap();
        for (row, sr) in xs.iter().zip(&s) {
            for (k, bin) in sr.iter().enumerate() {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (t, v) in row.iter().enumerate() {
                    let a = -std::f64::consts::TAU * (k * t) as f64 / n as f64;
                    re += *v as f64 * a.cos();
                    im += *v as f64 * a.sin();
                }
                assert!((bin[0] as f64 - re).abs() < 1e-4 && (bin[1] as f64 - im).abs() < 1e-4);
            }
        }
        let back = irfft(&spec, n).unwrap();
        let diff = (back - &x)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "{diff}");
    }

    /// Autograd gradients of a nonlinear loss through rfft and irfft against central
    /// finite differences.
    #[test]
    fn gradients_match_finite_differences() {
        for n in [8usize, 15, 16] {
            let x0 = random(&[2, n], 7 + n as u64);
            let w = random(&[2, n / 2 + 1, 2], 9);
            let loss_of = |x: &Tensor| -> Tensor {
                let s = rfft(x).unwrap();
                let mag = magnitude(&s, 1e-6).unwrap();
                let back = irfft(&(s * &w).unwrap(), n).unwrap();
                (mag.sum_all().unwrap() + back.sqr().unwrap().sum_all().unwrap()).unwrap()
            };
            let x = Var::from_tensor(&x0).unwrap();
            let loss = loss_of(x.as_tensor());
            let grads = loss.backward().unwrap();
            let g: Vec<Vec<f32>> = grads.get(x.as_tensor()).unwrap().to_vec2().unwrap();
            let base: Vec<Vec<f32>> = x0.to_vec2().unwrap();
            let eps = 1e-2f32;
            for r in 0..2 {
                for c in 0..n {
                    let mut plus = base.clone();
                    plus[r][c] += eps;
                    let mut minus = base.clone();
                    minus[r][c] -= eps;
                    let t = |v: Vec<Vec<f32>>| Tensor::new(v, &Device::Cpu).unwrap();
                    let lp = loss_of(&t(plus)).to_scalar::<f32>().unwrap();
                    let lm = loss_of(&t(minus)).to_scalar::<f32>().unwrap();
                    let fd = (lp - lm) / (2.0 * eps);
                    assert!(
                        (fd - g[r][c]).abs() < 2e-2 * (1.0 + fd.abs()),
                        "n {n} [{r},{c}]: fd {fd} vs autograd {}",
                        g[r][c]
                    );
                }
            }
        }
    }
}
