//! The flow's exactness, AUROC by hand, the paper's constructions on known densities, and
//! that every trained weight learns.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use ood::auroc::{auroc, roc_curve, trapezoid};
use ood::flow::{Coupling, Flow, FlowConfig, logit_map};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Two levels on a 4x4 image: 2x2x4, then 1x1x8.
fn small_config(coupling: Coupling) -> FlowConfig {
    FlowConfig {
        rows: 4,
        cols: 4,
        scales: 2,
        steps_per_scale: 2,
        hidden: 8,
        coupling,
        alpha: 0.05,
    }
}

/// A flow with every parameter random (not the identity it starts as).
fn random_flow(config: FlowConfig) -> Result<(Flow, VarMap)> {
    let map = VarMap::new();
    let flow = Flow::new(
        config,
        VarBuilder::from_varmap(&map, DType::F64, &Device::Cpu),
    )?;
    for (i, var) in map.all_vars().iter().enumerate() {
        let t = var.as_tensor();
        let n = t.elem_count();
        let values: Vec<f64> = (0..n)
            .map(|j| 0.6 * ((i * 31 + j) as f64 * 0.917).sin())
            .collect();
        var.set(&Tensor::from_vec(values, t.shape(), &Device::Cpu)?)?;
    }
    Ok((flow, map))
}

fn inputs(n: usize, d: usize) -> Result<Tensor> {
    let v: Vec<f64> = (0..n * d).map(|i| 1.3 * ((i as f64) * 1.7).cos()).collect();
    Tensor::from_vec(v, (n, d), &Device::Cpu)
}

const COUPLINGS: [Coupling; 2] = [Coupling::Conv, Coupling::Dense];

#[test]
fn the_flow_inverts() -> Result<()> {
    for coupling in COUPLINGS {
        let (flow, _map) = random_flow(small_config(coupling))?;
        let y = inputs(5, 16)?;
        let (z, _) = flow.forward(&y)?;
        let back = flow.inverse(&z)?;
        let err = (back - &y)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(err < 1e-4, "{coupling:?}: {err}");
        // The flow is not the identity, so the check is not vacuous.
        let moved = (z - &y)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(moved > 0.1, "{coupling:?}: {moved}");
    }
    Ok(())
}

/// Through every part: actnorm, the 1x1 convolutions, the couplings, the squeezes, the
/// factored-out half's learned prior (its standardisation counts in the determinant).
#[test]
fn the_log_determinant_matches_a_brute_force_jacobian() -> Result<()> {
    for coupling in COUPLINGS {
        log_determinant_matches(coupling)?;
    }
    Ok(())
}

fn log_determinant_matches(coupling: Coupling) -> Result<()> {
    let (flow, _map) = random_flow(small_config(coupling))?;
    let d = 16;
    let y = inputs(1, d)?;
    let (_, logdet) = flow.forward(&y)?;
    let logdet = logdet.to_vec1::<f64>()?[0];
    // The Jacobian row by row: the gradient of each z_i with respect to y.
    let var = Var::from_tensor(&y)?;
    let (z, _) = flow.forward(var.as_tensor())?;
    let mut jac = nalgebra::DMatrix::<f64>::zeros(d, d);
    for i in 0..d {
        let grads = z.narrow(1, i, 1)?.sum_all()?.backward()?;
        let row = grads
            .get(var.as_tensor())
            .expect("gradient")
            .flatten_all()?;
        for (j, v) in row.to_vec1::<f64>()?.into_iter().enumerate() {
            jac[(i, j)] = v;
        }
    }
    let brute = jac.determinant().abs().ln();
    assert!(
        (brute - logdet).abs() < 1e-8,
        "{coupling:?}: brute {brute}, flow {logdet}"
    );
    assert!(logdet.abs() > 1e-3, "a zero log-determinant proves little");
    Ok(())
}

#[test]
fn an_identity_flow_gives_the_analytic_gaussian_log_density() -> Result<()> {
    for coupling in COUPLINGS {
        identity_flow_density(coupling)?;
    }
    Ok(())
}

fn identity_flow_density(coupling: Coupling) -> Result<()> {
    // A new flow is the identity (zero last layers): ln p(y) is that of N(0, I).
    let map = VarMap::new();
    let config = small_config(coupling);
    let flow = Flow::new(
        config,
        VarBuilder::from_varmap(&map, DType::F64, &Device::Cpu),
    )?;
    let y = inputs(4, 16)?;
    let got = flow.log_prob_logit(&y)?.to_vec1::<f64>()?;
    for (row, lp) in y.to_vec2::<f64>()?.iter().zip(got) {
        let analytic: f64 = row
            .iter()
            .map(|v| -0.5 * v * v - 0.5 * (2.0 * std::f64::consts::PI).ln())
            .sum();
        assert!((analytic - lp).abs() < 1e-10, "{analytic} vs {lp}");
    }
    // And through the logit map: ln p(x) = ln N(logit x') + ln|dy/dx|, by hand.
    let x = Tensor::from_vec(
        vec![
            0.1f64, 0.5, 0.9, 0.02, 0.7, 0.33, 0.25, 0.6, 0.05, 0.95, 0.4, 0.8, 0.15, 0.55, 0.3,
            0.66,
        ],
        (1, 16),
        &Device::Cpu,
    )?;
    let got = flow.log_prob(&x)?.to_vec1::<f64>()?[0];
    let alpha = config.alpha;
    let by_hand: f64 = x.to_vec2::<f64>()?[0]
        .iter()
        .map(|v| {
            let s = alpha + (1.0 - 2.0 * alpha) * v;
            let y = (s / (1.0 - s)).ln();
            let dy = (1.0 - 2.0 * alpha) / (s * (1.0 - s));
            -0.5 * y * y - 0.5 * (2.0 * std::f64::consts::PI).ln() + dy.ln()
        })
        .sum();
    assert!((by_hand - got).abs() < 1e-9, "{by_hand} vs {got}");
    let (_, ld) = logit_map(&x, alpha)?;
    assert!(ld.to_vec1::<f64>()?[0] > 0.0);
    Ok(())
}

#[test]
fn auroc_matches_hand_computed_values_with_ties() {
    // Perfect separation, perfect inversion, and chance.
    assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]).unwrap(), 1.0);
    assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]).unwrap(), 0.0);
    assert_eq!(auroc(&[1.0, 1.0], &[1.0, 1.0]).unwrap(), 0.5);
    // in {1, 2, 3}, out {2, 4}: pairs (out > in) = 1 (2>1) + 3 (4>all); ties (2,2) = 1
    // -> (4 + 0.5) / 6 = 0.75.
    assert_eq!(auroc(&[1.0, 2.0, 3.0], &[2.0, 4.0]).unwrap(), 0.75);
    // in {0, 1, 1}, out {1, 1, 2}: out=1 beats 0 and ties two 1s (twice): 2 * (1 + 1) = 4,
    // out=2 beats all 3 -> 7 / 9.
    let a = auroc(&[0.0, 1.0, 1.0], &[1.0, 1.0, 2.0]).unwrap();
    assert!((a - 7.0 / 9.0).abs() < 1e-12, "{a}");
    let curve = roc_curve(&[0.0, 1.0, 1.0], &[1.0, 1.0, 2.0]).unwrap();
    assert!((trapezoid(&curve) - 7.0 / 9.0).abs() < 1e-12);
    assert_eq!(curve.first(), Some(&(0.0, 0.0)));
    assert_eq!(curve.last(), Some(&(1.0, 1.0)));
    assert!(auroc(&[], &[1.0]).is_err());
    assert!(auroc(&[f64::NAN], &[1.0]).is_err());
}

#[test]
fn the_no_free_lunch_construction_defeats_every_score_on_a_toy_model() {
    use ood::no_free_lunch::{GaussianToy, adversarial_out_scores};
    use ood::scores::Score;
    let toy = GaussianToy::new(4);
    for score in Score::ALL {
        let mut rng = StdRng::seed_from_u64(5);
        let (inside, out) = adversarial_out_scores(
            || toy.model.sample(&mut rng),
            |x| toy.score(score, x),
            400,
            100_000,
        )
        .expect("the construction samples");
        let a = auroc(&inside, &out).unwrap();
        println!("{}: AUROC {a:.3}", score.name());
        assert!(a <= 0.5, "{}: {a}", score.name());
    }
}

#[test]
fn likelihood_fails_and_typicality_succeeds_on_a_narrower_gaussian_in_high_dimension() {
    let mut rng = StdRng::seed_from_u64(1);
    let row = ood::gaussian::gaussian_row(100, 0.8, 500, &mut rng);
    assert!(row.likelihood < 0.05, "{row:?}");
    assert!(row.typicality > 0.95, "{row:?}");
    // In one dimension neither separates much.
    let row = ood::gaussian::gaussian_row(1, 0.8, 2000, &mut rng);
    assert!((0.3..0.7).contains(&row.likelihood), "{row:?}");
}

#[test]
fn a_nearly_perfect_model_flips_the_auroc() {
    use ood::gaussian::IsoGaussian;
    let dim = 10;
    let p = IsoGaussian::centred(dim, 1.0);
    // Out: a tight cluster far from the in-distribution's typical set.
    let far = IsoGaussian {
        mean: vec![2.0; dim],
        sigma: 0.1,
    };
    let mut rng = StdRng::seed_from_u64(2);
    let curve = ood::mixture::auroc_vs_kl(&p, &far, &far, &[1e-30, 1e-3], 400, &mut rng)
        .expect("deltas in (0, 1)");
    // delta = 1e-30: q is p, the out cluster is improbable: likelihood detects it.
    assert!(curve[0].auroc > 0.99, "{curve:?}");
    // delta = 1e-3: KL(p || q) ~ 1e-3 nats, yet the bump outweighs p on the cluster.
    assert!(curve[1].kl < 2e-3 && curve[1].kl > 0.0, "{curve:?}");
    assert!(curve[1].auroc < 0.01, "{curve:?}");
    // delta = 1 is not a mixture: a clear error, not a panic.
    let mut rng = StdRng::seed_from_u64(2);
    assert!(ood::mixture::auroc_vs_kl(&p, &far, &far, &[1.0], 10, &mut rng).is_err());
}

/// The autoregressive model is a proper distribution: every conditional sums to one, and
/// the conditional of pixel i does not depend on pixels i, i+1, ... (so the product of
/// conditionals normalises over all images); `log_prob` picks each pixel's own entry.
#[test]
fn the_pixel_model_is_causal_and_normalised() -> Result<()> {
    use ood::pixel_ar::{PixelAr, PixelArConfig};
    let config = PixelArConfig {
        rows: 4,
        cols: 5,
        radius: 2,
        hidden: 8,
    };
    let map = VarMap::new();
    let model = PixelAr::new(
        config,
        VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
    )?;
    let d = 20;
    let base: Vec<f32> = (0..d).map(|i| ((i * 53) % 256) as f32).collect();
    let image = Tensor::from_vec(base.clone(), (1, d), &Device::Cpu)?;
    let cond = model.conditionals(&image)?;
    let sums = cond.exp()?.sum(2)?.flatten_all()?.to_vec1::<f32>()?;
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-4), "{sums:?}");
    for i in [0, 7, 13, 19] {
        let mut changed = base.clone();
        for v in changed.iter_mut().skip(i) {
            *v = 255.0 - *v;
        }
        let other = model.conditionals(&Tensor::from_vec(changed, (1, d), &Device::Cpu)?)?;
        let before = cond.narrow(1, 0, i + 1)?;
        let after = other.narrow(1, 0, i + 1)?;
        let diff = (before - after)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            diff < 1e-6,
            "changing pixels {i}.. moved a conditional at or before {i}"
        );
    }
    // Some later conditional does change (the model does look at its neighbours).
    let mut changed = base.clone();
    changed[0] = 255.0 - changed[0];
    let other = model.conditionals(&Tensor::from_vec(changed, (1, d), &Device::Cpu)?)?;
    let moved = (cond - other)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(moved > 1e-6);
    // log_prob is the sum of each pixel's conditional at its value.
    let lp = model.log_prob(&image)?.to_vec1::<f32>()?[0];
    let table = model.conditionals(&image)?.squeeze(0)?.to_vec2::<f32>()?;
    let by_hand: f32 = (0..d).map(|i| table[i][base[i] as usize]).sum();
    assert!((lp - by_hand).abs() < 1e-3, "{lp} vs {by_hand}");
    Ok(())
}

/// `(name, variable)` of every tensor in `map`, sorted by name.
fn named_vars(map: &VarMap) -> Vec<(String, Var)> {
    let data = map.data().lock().expect("var map lock");
    let mut named: Vec<(String, Var)> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// The models `ood::train` trains, at 4x4 pixels, by name, with their tensor count.
fn tiny_density(name: &str, vb: VarBuilder) -> Result<(Box<dyn ood::train::ImageDensity>, usize)> {
    use ood::pixel_ar::{PixelAr, PixelArConfig};
    // Per step: actnorm (2), the 1x1 convolution (lower, upper, log_s), the coupling's
    // three layers, convolutional or dense (weight, bias) and its log-scale bound: 12; per level but the
    // last, its prior (weight, bias). The pixel model: three layers (weight, bias).
    Ok(match name {
        "flow" => (
            Box::new(Flow::new(small_config(Coupling::Conv), vb)?),
            2 * 2 * 12 + 2,
        ),
        "dense flow" => (
            Box::new(Flow::new(small_config(Coupling::Dense), vb)?),
            2 * 2 * 12 + 2,
        ),
        "pixel ar" => {
            let config = PixelArConfig {
                rows: 4,
                cols: 4,
                radius: 2,
                hidden: 8,
            };
            (Box::new(PixelAr::new(config, vb)?), 3 * 2)
        }
        other => panic!("no model {other}"),
    })
}

/// Three AdamW steps of the loss `ood::train::train_model` forms (bits per dimension of
/// a minibatch, the flow's through its dequantisation bound) on four 4x4 images: every
/// trainable tensor of the flow (convolutional couplings, and dense ones) and of
/// the autoregressive pixel model receives a non-zero gradient and changes. None is frozen
/// on purpose. A new flow is the identity (zero last layers, tanh(0) = 0), so its hidden
/// layers and log-scale bounds get their first non-zero gradient only at the second step.
#[test]
fn every_trainable_tensor_of_every_model_receives_a_gradient_and_changes() -> Result<()> {
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    use grad_layers::LearningAudit;
    let dev = Device::Cpu;
    let (n, d) = (4, 16);
    let pixels: Vec<f32> = (0..n * d).map(|i| ((i * 73 + 11) % 256) as f32).collect();
    let pixels = Tensor::from_vec(pixels, (n, d), &dev)?;
    for name in ["flow", "dense flow", "pixel ar"] {
        // f32, as trained (the audit reads f32 gradients).
        let map = VarMap::new();
        let (model, count) = tiny_density(name, VarBuilder::from_varmap(&map, DType::F32, &dev))?;
        let named = named_vars(&map);
        assert_eq!(named.len(), count, "{name}");
        let mut opt = AdamW::new(
            map.all_vars(),
            ParamsAdamW {
                lr: 1e-2,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        let mut audit = LearningAudit::new(&named)?;
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..3 {
            let nll = model
                .log_prob_pixels(&pixels, &mut rng)?
                .mean_all()?
                .neg()?;
            let loss = (nll / (d as f64 * std::f64::consts::LN_2))?;
            let grads = loss.backward()?;
            audit.record(&grads)?;
            opt.step(&grads)?;
        }
        if let Err(e) = audit.finish(&[]) {
            panic!("{name}: {e}");
        }
    }
    Ok(())
}

/// The committed report is what `ood report` writes from the committed results, byte for
/// byte (the figures too, where the font they were drawn with is present).
#[test]
fn the_committed_report_regenerates_from_the_committed_results() {
    figures::assert_report_regenerates(
        env!("CARGO_BIN_EXE_ood"),
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results"),
        "cargo xtask ood report --results crates/research/ood/results --out crates/research/ood/results",
    );
}
