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
pub fn conv2_forward(layout: &ParamLayout, theta: &Tensor, x: &Tensor) -> Result<Tensor> {
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
