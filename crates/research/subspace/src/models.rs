//! Functional models: each is a [`ParamLayout`] plus a forward pass over the flat
//! parameter vector.

use candle_core::{Result, Tensor};

use crate::layout::ParamLayout;

/// The Conv-2 network of the paper's code on 28x28 grey images: 3x3 convolutions with 16
/// and 32 channels ("same" padding), each followed by ReLU and 2x2 average pooling, then
/// one dense layer to 10 classes. D = 20,490.
pub fn conv2_layout() -> ParamLayout {
    ParamLayout::new(&[
        ("conv1.weight", &[16, 1, 3, 3]),
        ("conv1.bias", &[16]),
        ("conv2.weight", &[32, 16, 3, 3]),
        ("conv2.bias", &[32]),
        ("dense.weight", &[32 * 7 * 7, 10]),
        ("dense.bias", &[10]),
    ])
}

/// Logits `[N, 10]` of images `[N, 1, 28, 28]`.
///
/// The convolutions run channels-last as one matrix product
/// ([`grad_layers::conv2d_same_nhwc`]), about half of what candle's `conv2d` and its
/// transposed-convolution gradient cost on a CPU; [`conv2_forward_reference`] is the same
/// network through `conv2d`, for tests.
pub fn conv2_forward(layout: &ParamLayout, theta: &Tensor, x: &Tensor) -> Result<Tensor> {
    let n = x.dim(0)?;
    let x = x.reshape((n, 28, 28, 1))?;
    let h = conv3x3_relu_pool(
        &x,
        &layout.get(theta, "conv1.weight")?,
        &layout.get(theta, "conv1.bias")?,
    )?;
    let h = conv3x3_relu_pool(
        &h,
        &layout.get(theta, "conv2.weight")?,
        &layout.get(theta, "conv2.bias")?,
    )?;
    // [N, 7, 7, 32] -> [N, 32, 7, 7]: the dense layer reads channel-major, as after conv2d.
    h.permute((0, 3, 1, 2))?
        .reshape((n, 32 * 7 * 7))?
        .matmul(&layout.get(theta, "dense.weight")?)?
        .broadcast_add(&layout.get(theta, "dense.bias")?)
}

/// A 3x3 "same" convolution, ReLU and 2x2 average pooling of channels-last `x`
/// `[N, H, W, C]` with weight `[out, C, 3, 3]` and bias `[out]`: `[N, H/2, W/2, out]`.
fn conv3x3_relu_pool(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    grad_layers::avg_pool_2x2_nhwc(&grad_layers::conv2d_same_nhwc(x, weight, Some(bias))?.relu()?)
}

/// Conv-2 through candle's `conv2d` and `avg_pool2d` (NCHW): the definition
/// [`conv2_forward`] is tested against.
pub fn conv2_forward_reference(layout: &ParamLayout, theta: &Tensor, x: &Tensor) -> Result<Tensor> {
    let conv = |x: &Tensor, name: &str| -> Result<Tensor> {
        let w = layout.get(theta, &format!("{name}.weight"))?;
        let b = layout.get(theta, &format!("{name}.bias"))?;
        x.conv2d(&w, 1, 1, 1, 1)?
            .broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?
            .relu()?
            .avg_pool2d(2)
    };
    let h = conv(&conv(x, "conv1")?, "conv2")?;
    let n = h.dim(0)?;
    h.reshape((n, 32 * 7 * 7))?
        .matmul(&layout.get(theta, "dense.weight")?)?
        .broadcast_add(&layout.get(theta, "dense.bias")?)
}

/// A small MLP `inputs -> hidden -> classes` (ReLU) for fast tests.
pub fn mlp_layout(inputs: usize, hidden: usize, classes: usize) -> ParamLayout {
    ParamLayout::new(&[
        ("fc1.weight", &[inputs, hidden]),
        ("fc1.bias", &[hidden]),
        ("fc2.weight", &[hidden, classes]),
        ("fc2.bias", &[classes]),
    ])
}

/// Logits `[N, classes]` of inputs `[N, inputs]`.
pub fn mlp_forward(layout: &ParamLayout, theta: &Tensor, x: &Tensor) -> Result<Tensor> {
    x.matmul(&layout.get(theta, "fc1.weight")?)?
        .broadcast_add(&layout.get(theta, "fc1.bias")?)?
        .relu()?
        .matmul(&layout.get(theta, "fc2.weight")?)?
        .broadcast_add(&layout.get(theta, "fc2.bias")?)
}

/// Seeded PyTorch-style initial parameters: weights and biases uniform in
/// `+-1/sqrt(fan_in)`, where fan_in is the weight's input size (`in * kh * kw` for a
/// convolution `[out, in, kh, kw]`, `in` for a dense `[in, out]`).
pub fn init_params(layout: &ParamLayout, seed: u64) -> Vec<f32> {
    let params: Vec<(&str, &[usize])> = layout.params().collect();
    let fan_in = |name: &str| -> usize {
        let prefix = name.rsplit_once('.').map_or(name, |p| p.0);
        let weight = params
            .iter()
            .find(|(n, _)| *n == format!("{prefix}.weight"))
            .map(|p| p.1);
        match weight {
            Some([_, inputs, kh, kw]) => inputs * kh * kw,
            Some([inputs, _]) => *inputs,
            _ => 1,
        }
    };
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut theta = Vec::with_capacity(layout.len());
    for (name, shape) in &params {
        let bound = 1.0 / (fan_in(name).max(1) as f64).sqrt();
        let n: usize = shape.iter().product();
        theta.extend((0..n).map(|_| (bound * (2.0 * rng.next_f64() - 1.0)) as f32));
    }
    theta
}
