//! A "same" 2-D convolution of channels-last images as one matrix product (im2col).
//!
//! candle's CPU `conv2d` and the transposed convolution its backward pass runs are several
//! times slower than a matmul of the same size for the small kernels and channel counts of
//! the research models. Here the input is padded, each output pixel's `k * k`
//! neighbourhood is gathered next to the channels by one `index_select`, and one matmul
//! does the rest; every op is an ordinary differentiable candle op, so gradients flow as
//! usual.

use candle_core::{Result, Tensor};

/// `x [N, H, W, Cin]` convolved with `weight [Cout, Cin, k, k]` (candle's layout, k odd),
/// zero padding `k / 2` on each side, stride 1, plus `bias [Cout]`: `[N, H, W, Cout]`.
pub fn conv2d_same_nhwc(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let (out, c_w, k, k2) = weight.dims4()?;
    if c_w != c || k != k2 || k % 2 == 0 {
        return Err(candle_core::Error::Msg(format!(
            "conv2d_same_nhwc: a weight [{out}, {c_w}, {k}, {k2}] does not fit {c} input \
             channels with an odd square kernel"
        )));
    }
    let y = if k == 1 {
        x.reshape((n * h * w, c))?
            .matmul(&weight.reshape((out, c))?.t()?)?
    } else if c <= out {
        // Gather each output pixel's k x k input neighbourhood next to its channels
        // (im2col), then one matmul: `[N H W, k k C] x [k k C, out]`.
        let columns = neighbourhoods(x, k)?.reshape((n * h * w, k * k * c))?;
        let weight = weight.permute((2, 3, 1, 0))?.reshape((k * k * c, out))?;
        columns.matmul(&weight)?
    } else {
        // Fewer outputs than inputs: multiply first (each pixel by all k k taps,
        // `[N H W, C] x [C, k k out]`), then gather and sum each output pixel's k x k
        // contributions, so the gathered tensor has `out`, not `C`, channels.
        let taps = x
            .reshape((n * h * w, c))?
            .matmul(&weight.permute((1, 2, 3, 0))?.reshape((c, k * k * out))?)?
            .reshape((n, h, w, k * k * out))?;
        // Output pixel p sums tap i of the pixel at p + o_i (zero outside the image).
        let pad = k / 2;
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        let padded = taps
            .pad_with_zeros(1, pad, pad)?
            .pad_with_zeros(2, pad, pad)?
            .reshape((n, hp * wp * k * k, out))?;
        let mut index = Vec::with_capacity(h * w * k * k);
        for y in 0..h {
            for x in 0..w {
                for i in 0..k * k {
                    index.push((((y + i / k) * wp + x + i % k) * k * k + i) as u32);
                }
            }
        }
        let index = Tensor::from_vec(index, h * w * k * k, x.device())?;
        // Summing the k k blocks of `out` channels as a matmul with a 0/1 matrix: candle
        // reduces over a middle axis an element at a time.
        let blocks: Vec<f32> = (0..k * k * out * out)
            .map(|i| f32::from(u8::from((i / out) % out == i % out)))
            .collect();
        let blocks =
            Tensor::from_vec(blocks, (k * k * out, out), x.device())?.to_dtype(x.dtype())?;
        padded
            .index_select(&index, 1)?
            .reshape((n * h * w, k * k * out))?
            .matmul(&blocks)?
    };
    // The bias as a rank-1 product, so that its gradient is a matmul too (a broadcast
    // add's gradient sums over every row, which candle does an element at a time).
    let y = match bias {
        Some(b) => {
            let ones = Tensor::ones((n * h * w, 1), y.dtype(), y.device())?;
            (y + ones.matmul(&b.reshape((1, out))?)?)?
        }
        None => y,
    };
    y.reshape((n, h, w, out))
}

/// `[N, H, W, k k, C]`: each pixel's k x k neighbourhood of `x [N, H, W, C]` (zero
/// outside), gathered with one index over contiguous rows of C channels (candle copies
/// strided views an element at a time; this avoids them).
fn neighbourhoods(x: &Tensor, k: usize) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let pad = k / 2;
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let padded = x
        .pad_with_zeros(1, pad, pad)?
        .pad_with_zeros(2, pad, pad)?
        .reshape((n, hp * wp, c))?;
    let mut index = Vec::with_capacity(h * w * k * k);
    for y in 0..h {
        for x in 0..w {
            for i in 0..k * k {
                index.push(((y + i / k) * wp + x + i % k) as u32);
            }
        }
    }
    let index = Tensor::from_vec(index, h * w * k * k, x.device())?;
    padded.index_select(&index, 1)?.reshape((n, h, w, k * k, c))
}

/// 2x2 average pooling of channels-last `x [N, H, W, C]` (H and W even):
/// `[N, H/2, W/2, C]`. The four pixels of each block are gathered side by side and
/// averaged by a matmul, not by candle's reductions over middle axes (an element at a
/// time on a CPU).
pub fn avg_pool_2x2_nhwc(x: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    if h % 2 != 0 || w % 2 != 0 {
        return Err(candle_core::Error::Msg(format!(
            "avg_pool_2x2_nhwc: {h}x{w} is not divisible into 2x2 blocks"
        )));
    }
    let (ho, wo) = (h / 2, w / 2);
    let mut index = Vec::with_capacity(h * w);
    for y in 0..ho {
        for x in 0..wo {
            for i in 0..4 {
                index.push(((2 * y + i / 2) * w + 2 * x + i % 2) as u32);
            }
        }
    }
    let index = Tensor::from_vec(index, h * w, x.device())?;
    let average: Vec<f32> = (0..4 * c * c)
        .map(|i| if (i / c) % c == i % c { 0.25 } else { 0.0 })
        .collect();
    let average = Tensor::from_vec(average, (4 * c, c), x.device())?.to_dtype(x.dtype())?;
    x.reshape((n, h * w, c))?
        .index_select(&index, 1)?
        .reshape((n * ho * wo, 4 * c))?
        .matmul(&average)?
        .reshape((n, ho, wo, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Value and gradients (input, weight, bias) equal candle's `conv2d` in NCHW.
    #[test]
    fn equals_conv2d_in_value_and_gradient() -> Result<()> {
        let dev = Device::Cpu;
        for (k, c, out, h, w) in [
            (3, 2, 5, 6, 7),
            (1, 4, 3, 5, 5),
            (5, 3, 2, 7, 6),
            (3, 6, 2, 5, 4),
        ] {
            let x = Var::from_vec(values(2 * h * w * c, 1), (2, h, w, c), &dev)?;
            let weight = Var::from_vec(values(out * c * k * k, 2), (out, c, k, k), &dev)?;
            let bias = Var::from_vec(values(out, 3), out, &dev)?;
            let probe = Tensor::from_vec(values(2 * h * w * out, 4), (2, h, w, out), &dev)?;

            let ours = conv2d_same_nhwc(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()))?;
            let theirs = x
                .as_tensor()
                .permute((0, 3, 1, 2))?
                .conv2d(weight.as_tensor(), k / 2, 1, 1, 1)?
                .broadcast_add(&bias.as_tensor().reshape((1, out, 1, 1))?)?
                .permute((0, 2, 3, 1))?;
            let diff = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "k {k}: value differs by {diff}");

            let g_ours = (ours * &probe)?.sum_all()?.backward()?;
            let g_theirs = (theirs * &probe)?.sum_all()?.backward()?;
            for v in [&x, &weight, &bias] {
                let (a, b) = (
                    g_ours.get(v.as_tensor()).expect("gradient"),
                    g_theirs.get(v.as_tensor()).expect("gradient"),
                );
                let scale = b.abs()?.max_all()?.to_scalar::<f32>()?;
                let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(
                    scale > 1e-3 && diff < 1e-4 * scale.max(1.0),
                    "k {k}: {diff}"
                );
            }
        }
        Ok(())
    }

    /// Value and gradient equal candle's `avg_pool2d` in NCHW.
    #[test]
    fn average_pooling_equals_avg_pool2d() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_vec(values(2 * 6 * 4 * 3, 5), (2, 6, 4, 3), &dev)?;
        let probe = Tensor::from_vec(values(2 * 3 * 2 * 3, 6), (2, 3, 2, 3), &dev)?;
        let ours = avg_pool_2x2_nhwc(x.as_tensor())?;
        let theirs = x
            .as_tensor()
            .permute((0, 3, 1, 2))?
            .avg_pool2d(2)?
            .permute((0, 2, 3, 1))?;
        let diff = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        let g_ours = (ours * &probe)?.sum_all()?.backward()?;
        let g_theirs = (theirs * &probe)?.sum_all()?.backward()?;
        let (a, b) = (
            g_ours.get(x.as_tensor()).expect("gradient"),
            g_theirs.get(x.as_tensor()).expect("gradient"),
        );
        assert!((a - b)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-6);
        assert!(
            avg_pool_2x2_nhwc(&Tensor::zeros((1, 3, 4, 1), candle_core::DType::F32, &dev)?)
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn a_weight_that_does_not_fit_is_an_error() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 4, 4, 3), candle_core::DType::F32, &dev).unwrap();
        let even = Tensor::zeros((2, 3, 2, 2), candle_core::DType::F32, &dev).unwrap();
        let channels = Tensor::zeros((2, 4, 3, 3), candle_core::DType::F32, &dev).unwrap();
        assert!(conv2d_same_nhwc(&x, &even, None).is_err());
        assert!(conv2d_same_nhwc(&x, &channels, None).is_err());
    }
}
