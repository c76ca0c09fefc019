//! Scale probe for planning the sweeps: Conv-2 on the first N Fashion-MNIST training
//! images, full space and random subspaces, seconds per step and train accuracy.
//! `FASHION_MNIST_DIR=... cargo run --release -p subspace --example probe -- N STEPS D...`

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use subspace::models::{conv2_forward, conv2_layout, init_params};
use subspace::train::{Labelled, Space, TrainConfig, accuracy, train};
use subspace::{AffineSubspace, Basis};

fn main() -> candle_core::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (n, steps) = (
        args.first().copied().unwrap_or(2000),
        args.get(1).copied().unwrap_or(200),
    );
    let dims: Vec<usize> = args.iter().skip(2).copied().collect();
    let dir = std::env::var("FASHION_MNIST_DIR")
        .unwrap_or_else(|_| "/usr/share/datasets/fashion-mnist".into());
    let dir = std::path::Path::new(&dir);
    let set = image_data::LabelledImages::read(
        &dir.join("train-images-idx3-ubyte.gz"),
        &dir.join("train-labels-idx1-ubyte.gz"),
    )
    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let dev = Device::Cpu;
    let x: Vec<f32> = (0..n).flat_map(|i| set.image_f32(i)).collect();
    let y: Vec<u32> = set.labels[..n].iter().map(|l| *l as u32).collect();
    let data = Labelled {
        x: Tensor::from_vec(x, (n, 1, 28, 28), &dev)?,
        y: Tensor::from_vec(y, n, &dev)?,
    };
    let layout = conv2_layout();
    let forward = |theta: &Tensor, x: &Tensor| conv2_forward(&layout, theta, x);
    let theta0 = Tensor::from_vec(init_params(&layout, 1), layout.len(), &dev)?;
    let config = TrainConfig {
        steps,
        batch: 64,
        lr: 1e-2,
        seed: 1,
    };
    let full = Var::from_tensor(&theta0)?;
    let t = Instant::now();
    let loss = train(forward, &Space::Full(&full), &data, config, |_, _| {})?;
    let acc = accuracy(forward, full.as_tensor(), &data, 500)?;
    println!(
        "full D={}: {:.1} ms/step, loss {loss:.3}, train accuracy {acc:.3} on {n}",
        layout.len(),
        1e3 * t.elapsed().as_secs_f64() / steps as f64
    );
    for d in dims {
        let sub = AffineSubspace::new(theta0.clone(), Basis::gaussian(layout.len(), d, 7, &dev)?)?;
        let t = Instant::now();
        let loss = train(forward, &Space::Sub(&sub), &data, config, |_, _| {})?;
        let acc = accuracy(forward, &sub.theta()?, &data, 500)?;
        println!(
            "random d={d}: {:.1} ms/step, loss {loss:.3}, train accuracy {acc:.3}",
            1e3 * t.elapsed().as_secs_f64() / steps as f64
        );
    }
    Ok(())
}
