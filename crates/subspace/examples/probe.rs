//! Scale probe for planning the sweeps: Conv-2 on the first N Fashion-MNIST training
//! images: full training (time per step), then at each d the train accuracy of random,
//! burn-in (64 steps) and lottery subspaces and of the lottery ticket keeping d weights.
//! `FASHION_MNIST_DIR=... cargo run --release -p subspace --example probe -- N STEPS D...`

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use subspace::lottery::lottery_basis;
use subspace::models::{conv2_forward, conv2_layout, init_params};
use subspace::train::{
    Labelled, Space, TrainConfig, accuracy, full_trajectory, magnitude_mask, train,
};
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
    // Full training, recording the trajectory for the lottery subspace.
    let t = Instant::now();
    let (end, deltas) = full_trajectory(forward, &theta0, &data, config, 2)?;
    let acc = accuracy(forward, &end, &data, 500)?;
    println!(
        "full D={}: {:.1} ms/step, train accuracy {acc:.3} on {n}",
        layout.len(),
        1e3 * t.elapsed().as_secs_f64() / steps as f64
    );
    // Burn-in anchor: 64 full steps.
    let (burned, _) = full_trajectory(
        forward,
        &theta0,
        &data,
        TrainConfig {
            steps: 64,
            ..config
        },
        64,
    )?;
    // Subspace coordinates move at most about lr a step under Adam: they may need a
    // larger rate than the full space (SUBSPACE_LR, default 1e-2).
    let sub_lr: f64 = std::env::var("SUBSPACE_LR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1e-2);
    let sub_config = TrainConfig {
        lr: sub_lr,
        ..config
    };
    for d in dims {
        let mut row = format!("d={d:5}:");
        let anchors = [("random", &theta0), ("burn-in 64", &burned)];
        for (name, anchor) in anchors {
            let sub =
                AffineSubspace::new(anchor.clone(), Basis::gaussian(layout.len(), d, 7, &dev)?)?;
            train(forward, &Space::Sub(&sub), &data, sub_config, |_, _| {})?;
            row += &format!(
                " {name} {:.3}",
                accuracy(forward, &sub.theta()?, &data, 500)?
            );
        }
        let lottery = AffineSubspace::new(theta0.clone(), lottery_basis(&deltas, d, &dev)?)?;
        train(forward, &Space::Sub(&lottery), &data, sub_config, |_, _| {})?;
        row += &format!(
            " lottery {:.3}",
            accuracy(forward, &lottery.theta()?, &data, 500)?
        );
        // Lottery ticket at the same compression: keep d weights, rewind to init.
        let mask = magnitude_mask(&end, d)?;
        let ticket = Var::from_tensor(&theta0)?;
        train(
            forward,
            &Space::Masked(&ticket, &mask),
            &data,
            config,
            |_, _| {},
        )?;
        let theta = ticket.as_tensor().mul(&mask)?;
        row += &format!(" ticket {:.3}", accuracy(forward, &theta, &data, 500)?);
        println!("{row}");
    }
    Ok(())
}
