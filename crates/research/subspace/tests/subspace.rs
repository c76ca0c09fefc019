//! The subspace machinery against the full space.

use candle_core::{Device, Result, Tensor, Var};
use subspace::rng::SplitMix64;
use subspace::{AffineSubspace, Basis, ParamLayout};

/// A 2-layer MLP `x [N, 4] -> 3 logits` as a function of the flat parameters.
fn mlp(layout: &ParamLayout, theta: &Tensor, x: &Tensor) -> Result<Tensor> {
    let h = x
        .matmul(&layout.get(theta, "w1")?)?
        .broadcast_add(&layout.get(theta, "b1")?)?
        .relu()?;
    h.matmul(&layout.get(theta, "w2")?)?
        .broadcast_add(&layout.get(theta, "b2")?)
}

fn setup() -> (ParamLayout, Tensor, Tensor, Tensor) {
    let dev = Device::Cpu;
    let layout = ParamLayout::new(&[("w1", &[4, 8]), ("b1", &[8]), ("w2", &[8, 3]), ("b2", &[3])]);
    let theta0: Vec<f32> = (0..layout.len())
        .map(|i| ((i as f32 * 0.37).sin()) * 0.5)
        .collect();
    let theta0 = Tensor::from_vec(theta0, layout.len(), &dev).unwrap();
    let x: Vec<f32> = (0..40).map(|i| ((i as f32) * 0.71).cos()).collect();
    let x = Tensor::from_vec(x, (10, 4), &dev).unwrap();
    let y = Tensor::from_vec((0..10u32).map(|i| i % 3).collect::<Vec<_>>(), 10, &dev).unwrap();
    (layout, theta0, x, y)
}

fn loss(layout: &ParamLayout, theta: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    candle_nn::loss::cross_entropy(&mlp(layout, theta, x)?, y)
}

#[test]
fn the_subspace_gradient_is_p_transpose_times_the_full_gradient() -> Result<()> {
    let (layout, theta0, x, y) = setup();
    let d = 7;
    let bases = [
        Basis::gaussian(layout.len(), d, 3, &Device::Cpu)?,
        Basis::sparse_gaussian(layout.len(), d, 6, 3, &Device::Cpu)?,
    ];
    for basis in bases {
        // Away from phi = 0, so that theta differs from theta0.
        let sub = AffineSubspace::new(theta0.clone(), basis)?;
        sub.phi.set(&Tensor::from_vec(
            (0..d).map(|i| 0.1 * i as f32).collect::<Vec<_>>(),
            d,
            &Device::Cpu,
        )?)?;
        let grads = loss(&layout, &sub.theta()?, &x, &y)?.backward()?;
        let g_phi = grads.get(sub.phi.as_tensor()).expect("phi has a gradient");

        let theta = Var::from_tensor(&sub.theta()?.detach())?;
        let full = loss(&layout, theta.as_tensor(), &x, &y)?.backward()?;
        let g_theta = full.get(theta.as_tensor()).expect("theta has a gradient");
        // P^T g with P written out as a dense matrix, independent of `Basis::project`.
        let p = sub.basis.to_dense()?;
        let expected = p.t()?.matmul(&g_theta.unsqueeze(1)?)?.squeeze(1)?;
        let err = (g_phi - &expected)?.abs()?.max(0)?.to_scalar::<f32>()?;
        let scale = expected.abs()?.max(0)?.to_scalar::<f32>()?;
        assert!(scale > 1e-4, "a zero gradient proves nothing");
        assert!(err < 1e-5 * scale.max(1.0), "{err} (scale {scale})");
        let projected = sub.basis.project(g_theta)?;
        let err = (projected - &expected)?.abs()?.max(0)?.to_scalar::<f32>()?;
        assert!(err < 1e-5 * scale.max(1.0), "project: {err}");
    }
    Ok(())
}

#[test]
fn sparse_basis_columns_have_unit_length_and_the_stated_sparsity() -> Result<()> {
    let (dim, d, k) = (500, 12, 23);
    let p = Basis::sparse_gaussian(dim, d, k, 5, &Device::Cpu)?.to_dense()?;
    let p: Vec<Vec<f32>> = p.to_vec2()?;
    for col in 0..d {
        let column: Vec<f32> = p.iter().map(|row| row[col]).collect();
        let nnz = column.iter().filter(|v| **v != 0.0).count();
        assert_eq!(nnz, k, "column {col}");
        let norm = column.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "column {col}: {norm}");
    }
    Ok(())
}

#[test]
fn with_d_equal_to_d_and_the_identity_basis_subspace_training_is_full_training() -> Result<()> {
    let (layout, theta0, x, y) = setup();
    let lr = 0.1;
    // Full space: plain gradient descent on theta.
    let theta = Var::from_tensor(&theta0)?;
    for _ in 0..20 {
        let g = loss(&layout, theta.as_tensor(), &x, &y)?.backward()?;
        let step = g
            .get(theta.as_tensor())
            .expect("gradient")
            .affine(lr, 0.0)?;
        theta.set(&(theta.as_tensor() - step)?)?;
    }
    // Subspace with P = I.
    let sub = AffineSubspace::new(theta0, Basis::Identity(layout.len()))?;
    for _ in 0..20 {
        let g = loss(&layout, &sub.theta()?, &x, &y)?.backward()?;
        let step = g
            .get(sub.phi.as_tensor())
            .expect("gradient")
            .affine(lr, 0.0)?;
        sub.phi.set(&(sub.phi.as_tensor() - step)?)?;
    }
    let diff = (theta.as_tensor() - sub.theta()?)?
        .abs()?
        .max(0)?
        .to_scalar::<f32>()?;
    assert!(diff < 1e-5, "trajectories differ by {diff}");
    Ok(())
}

#[test]
fn gaussian_basis_columns_have_unit_length() -> Result<()> {
    let basis = Basis::gaussian(300, 5, 9, &Device::Cpu)?;
    let Basis::Dense(p) = &basis else {
        unreachable!()
    };
    let norms = p.sqr()?.sum(0)?.sqrt()?.to_vec1::<f32>()?;
    for n in norms {
        assert!((n - 1.0).abs() < 1e-5, "{n}");
    }
    Ok(())
}

#[test]
fn conv2_has_the_papers_parameter_count_and_runs() -> Result<()> {
    let layout = subspace::models::conv2_layout();
    assert_eq!(layout.len(), 20_490);
    let theta = Tensor::zeros(layout.len(), candle_core::DType::F32, &Device::Cpu)?;
    let x = Tensor::zeros((2, 1, 28, 28), candle_core::DType::F32, &Device::Cpu)?;
    let logits = subspace::models::conv2_forward(&layout, &theta, &x)?;
    assert_eq!(logits.dims(), &[2, 10]);
    Ok(())
}

#[test]
fn conv2_as_matrix_products_equals_conv2d_in_value_and_gradient() -> Result<()> {
    use subspace::models::{conv2_forward, conv2_forward_reference, conv2_layout, init_params};
    let layout = conv2_layout();
    let theta = Var::from_vec(init_params(&layout, 4), layout.len(), &Device::Cpu)?;
    let mut rng = SplitMix64::new(9);
    let x: Vec<f32> = (0..3 * 28 * 28).map(|_| rng.next_f64() as f32).collect();
    let x = Tensor::from_vec(x, (3, 1, 28, 28), &Device::Cpu)?;
    let y = Tensor::from_vec(vec![1u32, 7, 3], 3, &Device::Cpu)?;
    let mut outputs = Vec::new();
    for forward in [conv2_forward, conv2_forward_reference] {
        let logits = forward(&layout, theta.as_tensor(), &x)?;
        let grads = candle_nn::loss::cross_entropy(&logits, &y)?.backward()?;
        let g = grads.get(theta.as_tensor()).expect("theta has a gradient");
        outputs.push((logits.flatten_all()?.to_vec1::<f32>()?, g.to_vec1::<f32>()?));
    }
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max)
    };
    let (logits, grad) = (&outputs[0], &outputs[1]);
    assert!(max_diff(&logits.0, &grad.0) < 1e-5);
    let scale = grad.1.iter().fold(0f32, |m, g| m.max(g.abs()));
    assert!(scale > 1e-3, "a zero gradient proves nothing");
    assert!(max_diff(&logits.1, &grad.1) < 1e-5 * scale);
    // Every parameter block gets a gradient somewhere (no block is cut off).
    for (name, _) in layout.params() {
        let block = layout.get(&Tensor::new(logits.1.as_slice(), &Device::Cpu)?, name)?;
        let norm = block.abs()?.sum_all()?.to_scalar::<f32>()?;
        assert!(norm > 0.0, "{name} gets no gradient");
    }
    Ok(())
}

#[test]
fn the_lottery_subspace_of_a_planar_trajectory_recovers_the_plane() -> Result<()> {
    use subspace::rng::SplitMix64;
    let (dim, steps) = (200, 30);
    let mut rng = SplitMix64::new(4);
    // An orthonormal pair spanning the plane (Gram-Schmidt on two Gaussian vectors).
    let a: Vec<f64> = (0..dim).map(|_| rng.normal_f64()).collect();
    let b: Vec<f64> = (0..dim).map(|_| rng.normal_f64()).collect();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let u1: Vec<f64> = a.iter().map(|x| x / norm(&a)).collect();
    let dot: f64 = b.iter().zip(&u1).map(|(x, y)| x * y).sum();
    let b2: Vec<f64> = b.iter().zip(&u1).map(|(x, y)| x - dot * y).collect();
    let u2: Vec<f64> = b2.iter().map(|x| x / norm(&b2)).collect();
    let deltas: Vec<Vec<f32>> = (1..=steps)
        .map(|s| {
            let (p, q) = (s as f64 * 0.3, (s as f64 * 0.2).sin());
            (0..dim).map(|i| (p * u1[i] + q * u2[i]) as f32).collect()
        })
        .collect();
    let basis = subspace::lottery::lottery_basis(&deltas, 5, &Device::Cpu)?;
    let Basis::Dense(p) = &basis else {
        unreachable!()
    };
    assert_eq!(
        p.dims(),
        &[dim, 2],
        "a planar trajectory spans two directions"
    );
    // Each true direction lies in the recovered span: |P^T u| = 1.
    for u in [&u1, &u2] {
        let u = Tensor::from_vec(
            u.iter().map(|x| *x as f32).collect::<Vec<_>>(),
            dim,
            &Device::Cpu,
        )?;
        let inside = basis
            .project(&u)?
            .sqr()?
            .sum_all()?
            .sqrt()?
            .to_scalar::<f32>()?;
        assert!((inside - 1.0).abs() < 1e-4, "{inside}");
    }
    Ok(())
}

/// A toy version of the paper's phase transition: a 2-16-4 MLP on four Gaussian blobs
/// fits them in the full space and in a random 64-dimensional subspace, but not in a
/// 1-dimensional one.
/// Four Gaussian blobs in the plane, one per class.
fn blobs(rng: &mut SplitMix64, n: usize) -> Result<subspace::train::Labelled> {
    let centres = [(-2.0, -2.0), (2.0, -2.0), (-2.0, 2.0), (2.0, 2.0)];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (cx, cy) = centres[i % 4];
        x.push((cx + 0.5 * rng.normal_f64()) as f32);
        x.push((cy + 0.5 * rng.normal_f64()) as f32);
        y.push((i % 4) as u32);
    }
    Ok(subspace::train::Labelled {
        x: Tensor::from_vec(x, (n, 2), &Device::Cpu)?,
        y: Tensor::from_vec(y, n, &Device::Cpu)?,
    })
}

#[test]
fn a_random_subspace_trains_once_it_is_large_enough() -> Result<()> {
    use subspace::models::{mlp_forward, mlp_layout};
    use subspace::train::{Space, TrainConfig, accuracy, train};
    let dev = Device::Cpu;
    let mut rng = SplitMix64::new(11);
    let data = blobs(&mut rng, 400)?;
    let layout = mlp_layout(2, 16, 4);
    let forward = |theta: &Tensor, x: &Tensor| mlp_forward(&layout, theta, x);
    let init: Vec<f32> = (0..layout.len())
        .map(|_| (0.5 * rng.normal_f64()) as f32)
        .collect();
    let theta0 = Tensor::from_vec(init, layout.len(), &dev)?;
    let config = TrainConfig {
        steps: 300,
        batch: 64,
        lr: 0.05,
        seed: 1,
    };
    let mut results = Vec::new();
    for d in [1usize, 64] {
        let sub = AffineSubspace::new(theta0.clone(), Basis::gaussian(layout.len(), d, 5, &dev)?)?;
        train(forward, &Space::Sub(&sub), &data, config, |_, _| Ok(()))?;
        results.push((d, accuracy(forward, &sub.theta()?, &data, 128)?));
    }
    let full = Var::from_tensor(&theta0)?;
    train(forward, &Space::Full(&full), &data, config, |_, _| Ok(()))?;
    let full_acc = accuracy(forward, full.as_tensor(), &data, 128)?;
    println!(
        "D = {}: full {full_acc:.3}, subspaces {results:?}",
        layout.len()
    );
    assert!(full_acc > 0.97, "full space {full_acc}");
    assert!(results[1].1 > 0.97, "d = 64: {}", results[1].1);
    assert!(
        results[0].1 < 0.75,
        "d = 1 should not fit four blobs: {}",
        results[0].1
    );
    Ok(())
}

#[test]
fn initial_parameters_follow_the_fan_in_bounds() {
    let layout = subspace::models::conv2_layout();
    let theta = subspace::models::init_params(&layout, 3);
    assert_eq!(theta.len(), 20_490);
    let t = Tensor::from_vec(theta.clone(), theta.len(), &Device::Cpu).unwrap();
    let max_abs = |name: &str| {
        layout
            .get(&t, name)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    // conv1: fan_in 9 -> 1/3; conv2: 144 -> 1/12; dense: 1568 -> 0.0253.
    for (name, bound) in [
        ("conv1.weight", 1.0 / 3.0),
        ("conv2.weight", 1.0 / 12.0),
        ("dense.weight", 1.0 / 1568f32.sqrt()),
        ("dense.bias", 1.0 / 1568f32.sqrt()),
    ] {
        let m = max_abs(name);
        assert!(
            m <= bound && m > 0.8 * bound,
            "{name}: max {m}, bound {bound}"
        );
    }
    assert_eq!(theta, subspace::models::init_params(&layout, 3), "seeded");
}

/// Gordon's escape theorem on a quadratic well: the threshold dimension of random
/// subspaces measured exactly (least squares per subspace, 40 subspaces per d) agrees
/// with `D - w^2` within 5% of D, from sublevel sets that need nearly all of D to ones
/// that need a fifth of it. Measured: 58 / 57.5, 43 / 43.3, 27 / 27.4, 13 / 13.8.
#[test]
fn the_quadratic_well_threshold_matches_gordons_escape() {
    use subspace::quadratic::QuadraticWell;
    let dim = 60;
    // Eigenvalues log-spaced over two decades; theta* at distance 1 from theta0.
    for eps in [0.01, 0.1, 0.3, 0.6] {
        let well = QuadraticWell::log_spaced(dim, eps, 2);
        let empirical = well.empirical_threshold(40, 7);
        let w = well.projected_width(200, 3);
        let predicted = dim as f64 - w * w;
        println!(
            "eps {eps}: empirical threshold {empirical}, width {w:.2}, Gordon D - w^2 = {predicted:.1}"
        );
        assert!(
            (empirical as f64 - predicted).abs() <= 0.05 * dim as f64,
            "eps {eps}: measured {empirical}, predicted {predicted:.1}"
        );
    }
}

/// One seed of the experiment on the blobs: burn-in anchors and lottery snapshots are
/// distinct points of the run (not aliases of the end point), the lottery basis has the
/// asked-for rank, a ticket that keeps every weight is exactly full training, and an
/// 8-dimensional lottery subspace fits the blobs.
#[test]
fn a_seed_run_yields_distinct_anchors_a_full_rank_lottery_basis_and_exact_tickets() -> Result<()> {
    use subspace::experiment::{BasisKind, Method, Setup};
    use subspace::models::{mlp_forward, mlp_layout};
    use subspace::train::TrainConfig;
    let mut rng = SplitMix64::new(3);
    let (train, test) = (blobs(&mut rng, 400)?, blobs(&mut rng, 200)?);
    let layout = mlp_layout(2, 16, 4);
    let init: Vec<f32> = (0..layout.len())
        .map(|_| (0.5 * rng.normal_f64()) as f32)
        .collect();
    let theta_init = Tensor::from_vec(init, layout.len(), &Device::Cpu)?;
    let setup = Setup {
        forward: |theta: &Tensor, x: &Tensor| mlp_forward(&layout, theta, x),
        train: &train,
        test: &test,
        full: TrainConfig {
            steps: 64,
            batch: 32,
            lr: 0.05,
            seed: 9,
        },
        subspace_lr: 0.1,
        basis: BasisKind::Sparse { per_column: 11 },
    };
    let run = setup.seed_run(&theta_init, &[4, 16], 8)?;
    let gap =
        |a: &Tensor, b: &Tensor| -> Result<f32> { (a - b)?.abs()?.max(0)?.to_scalar::<f32>() };
    assert_eq!(run.anchors.iter().map(|a| a.0).collect::<Vec<_>>(), [4, 16]);
    assert!(gap(&run.anchors[0].1, &theta_init)? > 1e-3);
    assert!(gap(&run.anchors[1].1, &run.anchors[0].1)? > 1e-3);
    assert!(gap(&run.end, &run.anchors[1].1)? > 1e-3);
    assert_eq!(run.lottery.dims()?, (layout.len(), 8));
    // The share of the trained displacement inside the top-d lottery directions grows
    // with d, stays a share, and is not all there at d = 1 (the basis is centred and
    // leaves the end point out).
    let capture = run.end_in_lottery(&[1, 2, 4, 8, 9])?;
    assert_eq!(
        capture.iter().map(|c| c.0).collect::<Vec<_>>(),
        [1, 2, 4, 8]
    );
    assert!(
        capture.windows(2).all(|w| w[1].1 >= w[0].1 - 1e-9),
        "{capture:?}"
    );
    assert!(
        capture.iter().all(|c| (0.0..=1.0 + 1e-6).contains(&c.1)),
        "{capture:?}"
    );
    assert!(capture[0].1 < 0.999, "{capture:?}");
    assert!(run.train_accuracy > 0.97, "{}", run.train_accuracy);

    let (ticket_train, _) = setup.run(&run, Method::Ticket, layout.len(), 9)?;
    assert_eq!(ticket_train, run.train_accuracy);
    let (lottery_train, lottery_test) = setup.run(&run, Method::Lottery, 8, 1)?;
    assert!(
        lottery_train > 0.95 && lottery_test > 0.95,
        "{lottery_train} {lottery_test}"
    );
    // A lottery basis has only the directions its trajectory spans: asking for more is an
    // error, never a smaller subspace under a larger label.
    assert!(setup.run(&run, Method::Lottery, 9, 1).is_err(), "9 of 8");
    assert!(
        setup.seed_run(&theta_init, &[4], 65).is_err(),
        "65 directions from 64 steps"
    );
    // Burn-in: a 2-dimensional subspace around the point reached after 16 steps keeps what
    // those steps learned, so it fits far better than one around the initial point.
    let (burn_in, _) = setup.run(&run, Method::BurnIn(16), 2, 1)?;
    let (random, _) = setup.run(&run, Method::Random, 2, 1)?;
    let (anchor_train, _) = setup.score(&run.anchors[1].1)?;
    println!("d = 2: burn-in 16 {burn_in:.3} (its anchor {anchor_train:.3}), random {random:.3}");
    assert!(
        burn_in >= anchor_train - 0.02 && burn_in > random + 0.05,
        "burn-in {burn_in:.3}, its anchor {anchor_train:.3}, random {random:.3}"
    );
    assert!(
        setup.run(&run, Method::BurnIn(5), 2, 1).is_err(),
        "no anchor at 5"
    );
    Ok(())
}

#[test]
fn the_threshold_is_the_first_d_from_which_half_the_seeds_succeed() {
    use subspace::threshold::{success_curve, threshold_dimension};
    let runs = [
        (2, 0.5),
        (2, 0.91),
        (2, 0.4),
        (4, 0.2),
        (4, 0.3),
        (4, 0.95),
        (8, 0.9),
        (8, 0.92),
        (8, 0.1),
        (16, 0.99),
        (16, 0.97),
        (16, 0.98),
    ];
    let curve = success_curve(&runs, 0.9);
    let expected = [(2, 1.0 / 3.0), (4, 1.0 / 3.0), (8, 2.0 / 3.0), (16, 1.0)];
    for ((d, p), (ed, ep)) in curve.iter().zip(expected) {
        assert_eq!(*d, ed);
        assert!((p - ep).abs() < 1e-12, "{d}: {p}");
    }
    assert_eq!(threshold_dimension(&curve), Some(8));
    // A higher target needs more dimensions, and one nobody reaches has no threshold.
    assert_eq!(threshold_dimension(&success_curve(&runs, 0.96)), Some(16));
    assert_eq!(threshold_dimension(&success_curve(&runs, 0.999)), None);
    for label in ["random", "burn-in-64", "lottery", "ticket"] {
        let method = subspace::experiment::Method::parse(label).unwrap();
        assert_eq!(method.label(), label);
    }
}

/// A forward pass over the flat parameters theta: `(theta, inputs)` to logits.
type Forward<'a> = &'a dyn Fn(&Tensor, &Tensor) -> Result<Tensor>;

/// `n` deterministic examples of `shape` (per example) with labels cycling over
/// `classes`.
fn tiny_set(n: usize, shape: &[usize], classes: u32) -> Result<subspace::train::Labelled> {
    let mut rng = SplitMix64::new(17);
    let per: usize = shape.iter().product();
    let x: Vec<f32> = (0..n * per).map(|_| rng.normal_f64() as f32).collect();
    let dims: Vec<usize> = std::iter::once(n).chain(shape.iter().copied()).collect();
    Ok(subspace::train::Labelled {
        x: Tensor::from_vec(x, dims, &Device::Cpu)?,
        y: Tensor::from_vec(
            (0..n as u32).map(|i| i % classes).collect(),
            n,
            &Device::Cpu,
        )?,
    })
}

/// Three steps of what `subspace::train::train` does (AdamW without weight decay on the
/// trained variable, cross-entropy of `forward(space.theta(), x)`), on the whole tiny set:
/// calls `seen` with each step's gradients, returns theta after every step.
fn three_steps(
    forward: Forward,
    space: &subspace::train::Space<'_>,
    var: &Var,
    data: &subspace::train::Labelled,
    lr: f64,
    mut seen: impl FnMut(&candle_core::backprop::GradStore) -> Result<()>,
) -> Result<Vec<Tensor>> {
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    let mut opt = AdamW::new(
        vec![var.clone()],
        ParamsAdamW {
            lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let mut trajectory = Vec::new();
    for _ in 0..3 {
        let loss = candle_nn::loss::cross_entropy(&forward(&space.theta()?, &data.x)?, &data.y)?;
        let grads = loss.backward()?;
        seen(&grads)?;
        opt.step(&grads)?;
        trajectory.push(space.theta()?.detach().copy()?);
    }
    Ok(trajectory)
}

/// Every way the experiment trains `forward`: the full parameter vector (checked per
/// parameter of the layout, since it is one variable), the coordinates phi of a dense
/// random, a sparse random and a lottery subspace (checked per coordinate too), and a
/// lottery ticket (whose pruned weights must stay put).
fn every_space_learns(
    name: &str,
    layout: &ParamLayout,
    forward: Forward,
    data: &subspace::train::Labelled,
) -> Result<()> {
    use grad_layers::LearningAudit;
    use subspace::train::{Space, magnitude_mask};
    let dev = Device::Cpu;
    let dim = layout.len();
    let theta_init = Tensor::from_vec(subspace::models::init_params(layout, 1), dim, &dev)?;

    // Full space: theta itself, and each parameter's slice of it and of its gradient.
    let theta = Var::from_tensor(&theta_init)?;
    let mut audit = LearningAudit::new(&[("theta".to_string(), theta.clone())])?;
    let names: Vec<String> = layout.params().map(|(n, _)| n.to_string()).collect();
    let mut got_gradient = vec![false; names.len()];
    let trajectory = three_steps(forward, &Space::Full(&theta), &theta, data, 1e-2, |grads| {
        audit.record(grads)?;
        let g = grads.get(theta.as_tensor()).expect("theta has a gradient");
        for (seen, n) in got_gradient.iter_mut().zip(&names) {
            let slice = layout
                .get(g, n)?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f32>()?;
            *seen |= slice.is_finite() && slice > 0.0;
        }
        Ok(())
    })?;
    if let Err(e) = audit.finish(&[]) {
        panic!("{name}, full space: {e}");
    }
    let end = trajectory.last().expect("three steps");
    for (n, seen) in names.iter().zip(&got_gradient) {
        let moved = (layout.get(end, n)? - layout.get(&theta_init, n)?)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?;
        assert!(
            *seen && moved > 0.0,
            "{name}, full space: {n} gradient {seen}, moved {moved}"
        );
    }

    // Subspaces: phi, every coordinate of it. The lottery basis is that of the full run's
    // own trajectory (three directions), as `Setup::seed_run` builds it.
    let deltas = trajectory
        .iter()
        .map(|t| (t - &theta_init)?.to_vec1::<f32>())
        .collect::<Result<Vec<_>>>()?;
    let per_column = (dim as f64).sqrt().ceil() as usize;
    let bases = [
        ("dense random", Basis::gaussian(dim, 8, 3, &dev)?),
        (
            "sparse random",
            Basis::sparse_gaussian(dim, 8, per_column, 3, &dev)?,
        ),
        (
            "lottery",
            subspace::lottery::lottery_basis(&deltas, 8, &dev)?,
        ),
    ];
    for (kind, basis) in bases {
        let sub = AffineSubspace::new(theta_init.clone(), basis)?;
        let mut audit = LearningAudit::new(&[("phi".to_string(), sub.phi.clone())])?;
        three_steps(forward, &Space::Sub(&sub), &sub.phi, data, 0.1, |g| {
            audit.record(g)
        })?;
        if let Err(e) = audit.finish(&[]) {
            panic!("{name}, {kind} subspace: {e}");
        }
        // phi starts at 0; a coordinate with no gradient at any step would stay there.
        let phi = sub.phi.as_tensor().to_vec1::<f32>()?;
        assert!(
            phi.iter().all(|v| *v != 0.0),
            "{name}, {kind} subspace: phi {phi:?}"
        );
    }

    // Lottery ticket: the kept half of the weights learns, the pruned half stays put.
    let mask = magnitude_mask(end, dim / 2)?;
    let var = Var::from_tensor(&theta_init)?;
    let mut audit = LearningAudit::new(&[("theta".to_string(), var.clone())])?;
    three_steps(
        forward,
        &Space::Masked(&var, &mask),
        &var,
        data,
        1e-2,
        |g| audit.record(g),
    )?;
    if let Err(e) = audit.finish(&[]) {
        panic!("{name}, ticket: {e}");
    }
    let moved = (var.as_tensor() - &theta_init)?.abs()?.to_vec1::<f32>()?;
    let kept = mask.to_vec1::<f32>()?;
    let pruned_moved = moved
        .iter()
        .zip(&kept)
        .filter(|(m, k)| **k == 0.0 && **m != 0.0)
        .count();
    assert_eq!(pruned_moved, 0, "{name}, ticket: pruned weights moved");
    Ok(())
}

/// Three optimiser steps on a tiny batch, for Conv-2 (the network of the experiment) and
/// the test MLP, in every space the experiment trains: every trainable tensor receives a
/// non-zero gradient and changes (the only trainable tensor is theta, or phi in a
/// subspace, so layers and coordinates are checked one by one as well). None is frozen on
/// purpose; the anchor theta0 and the basis P of a subspace are constants, not variables.
#[test]
fn every_trainable_tensor_of_every_training_space_receives_a_gradient_and_changes() -> Result<()> {
    use subspace::models::{conv2_forward, conv2_layout, mlp_forward, mlp_layout};
    let conv2 = conv2_layout();
    every_space_learns(
        "conv2",
        &conv2,
        &|theta: &Tensor, x: &Tensor| conv2_forward(&conv2, theta, x),
        &tiny_set(4, &[1, 28, 28], 10)?,
    )?;
    let mlp = mlp_layout(6, 16, 4);
    every_space_learns(
        "mlp",
        &mlp,
        &|theta: &Tensor, x: &Tensor| mlp_forward(&mlp, theta, x),
        &tiny_set(8, &[6], 4)?,
    )?;
    Ok(())
}
