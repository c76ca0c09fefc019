//! Layer normalisation over the last dimension, as one candle op with its backward pass.

use candle_core::{CpuStorage, CustomOp3, D, Error, Layout, Result, Shape, Tensor};
use candle_nn::{Init, Module, VarBuilder};

/// `y = (x - mean) / sqrt(var + eps) * gain + bias` over the last dimension, like
/// `torch.nn.LayerNorm` and candle-nn's `LayerNorm`, but with a backward pass for `x`,
/// `gain` and `bias`. Parameters are named `weight` and `bias` as in both.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    gain: Tensor,
    bias: Tensor,
    eps: f64,
}

/// A LayerNorm of `width` features with PyTorch's initialisation (gain 1, bias 0) and
/// epsilon (1e-5).
pub fn layer_norm(width: usize, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(LayerNorm {
        gain: vb.get_with_hints(width, "weight", Init::Const(1.0))?,
        bias: vb.get_with_hints(width, "bias", Init::Const(0.0))?,
        eps: 1e-5,
    })
}

impl LayerNorm {
    pub fn new(gain: Tensor, bias: Tensor, eps: f64) -> Self {
        Self { gain, bias, eps }
    }

    pub fn gain(&self) -> &Tensor {
        &self.gain
    }

    pub fn bias(&self) -> &Tensor {
        &self.bias
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op3(
            &self.gain.contiguous()?,
            &self.bias.contiguous()?,
            LayerNormOp {
                eps: self.eps as f32,
            },
        )
    }
}

struct LayerNormOp {
    eps: f32,
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    l.contiguous_offsets()
        .map(|(a, b)| &data[a..b])
        .ok_or_else(|| Error::Msg("layer norm needs contiguous f32 tensors".into()))
}

/// Mean and reciprocal standard deviation of one row.
#[inline]
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "grad-layers-layer-norm"
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
        let (x, gain, bias) = (
            contiguous(s1, l1)?,
            contiguous(s2, l2)?,
            contiguous(s3, l3)?,
        );
        let n = l1.shape().dims().last().copied().unwrap_or(0);
        if n == 0 || gain.len() != n || bias.len() != n {
            return Err(Error::Msg(format!(
                "layer norm over {n} features needs gain and bias of {n}, got {} and {}",
                gain.len(),
                bias.len()
            )));
        }
        let mut out = vec![0.0f32; x.len()];
        for (o, row) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
            let (mean, rstd) = row_stats(row, self.eps);
            for i in 0..n {
                o[i] = (row[i] - mean) * rstd * gain[i] + bias[i];
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gain: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = x.dim(D::Minus1)?;
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let gv = gain.flatten_all()?.to_vec1::<f32>()?;
        let dyv = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let mut dx = vec![0.0f32; xv.len()];
        let mut dgain = vec![0.0f64; n];
        let mut dbias = vec![0.0f64; n];
        let mut xhat = vec![0.0f32; n];
        let mut dxhat = vec![0.0f32; n];
        for ((row, dy), dxr) in xv
            .chunks_exact(n)
            .zip(dyv.chunks_exact(n))
            .zip(dx.chunks_exact_mut(n))
        {
            let (mean, rstd) = row_stats(row, self.eps);
            let (mut sum_d, mut sum_dx) = (0.0f32, 0.0f32);
            for i in 0..n {
                xhat[i] = (row[i] - mean) * rstd;
                dxhat[i] = dy[i] * gv[i];
                sum_d += dxhat[i];
                sum_dx += dxhat[i] * xhat[i];
                dgain[i] += (dy[i] * xhat[i]) as f64;
                dbias[i] += dy[i] as f64;
            }
            let (mean_d, mean_dx) = (sum_d / n as f32, sum_dx / n as f32);
            for i in 0..n {
                dxr[i] = rstd * (dxhat[i] - mean_d - xhat[i] * mean_dx);
            }
        }
        let dev = x.device();
        let to_f32 = |v: Vec<f64>| v.into_iter().map(|g| g as f32).collect::<Vec<f32>>();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(to_f32(dgain), gain.shape(), dev)?),
            Some(Tensor::from_vec(to_f32(dbias), gain.shape(), dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761);
                (h >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
            })
            .collect()
    }

    /// The same operator from candle's differentiable primitives.
    fn reference(x: &Tensor, gain: &Tensor, bias: &Tensor) -> Tensor {
        let centred = x
            .broadcast_sub(&x.mean_keepdim(D::Minus1).unwrap())
            .unwrap();
        let var = centred.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        centred
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(gain)
            .unwrap()
            .broadcast_add(bias)
            .unwrap()
    }

    #[test]
    fn forward_and_gradients_match_the_composed_operator() {
        let dev = Device::Cpu;
        let (rows, n) = (6, 5);
        let x = Var::from_vec(values(rows * n, 1), (2, 3, n), &dev).unwrap();
        let gain = Var::from_vec(values(n, 2), n, &dev).unwrap();
        let bias = Var::from_vec(values(n, 3), n, &dev).unwrap();
        let weights = Tensor::from_vec(values(rows * n, 4), (2, 3, n), &dev).unwrap();
        let norm = LayerNorm::new(gain.as_tensor().clone(), bias.as_tensor().clone(), 1e-5);
        // A nonlinear loss, so that the gradient flowing in differs per element.
        let loss_of = |y: Tensor| (y.sqr().unwrap() * &weights).unwrap().sum_all().unwrap();
        let fused = norm.forward(x.as_tensor()).unwrap();
        let composed = reference(x.as_tensor(), gain.as_tensor(), bias.as_tensor());
        let diff = (&fused - &composed)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        let g1 = loss_of(fused).backward().unwrap();
        let g2 = loss_of(composed).backward().unwrap();
        for (name, v) in [("x", &x), ("gain", &gain), ("bias", &bias)] {
            let a = g1.get(v.as_tensor()).expect("gradient");
            let b = g2.get(v.as_tensor()).expect("gradient");
            let err = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            let err = err.to_scalar::<f32>().unwrap();
            assert!(err < 1e-4, "{name}: {err}");
            let size = a
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(size > 1e-3, "{name}: gradient is zero");
        }
    }

    #[test]
    fn matches_candle_nn_forward() {
        let dev = Device::Cpu;
        let n = 16;
        let x = Tensor::from_vec(values(4 * n, 7), (4, n), &dev).unwrap();
        let gain = Tensor::from_vec(values(n, 8), n, &dev).unwrap();
        let bias = Tensor::from_vec(values(n, 9), n, &dev).unwrap();
        let ours = LayerNorm::new(gain.clone(), bias.clone(), 1e-5)
            .forward(&x)
            .unwrap();
        #[allow(clippy::disallowed_methods)] // the forward-only kernel, as the reference
        let theirs = candle_nn::ops::layer_norm(&x, &gain, &bias, 1e-5).unwrap();
        let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
