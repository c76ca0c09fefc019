//! Short training runs on a tiny synthetic set: the loss goes down, and a run stopped and
//! resumed from its checkpoint continues exactly as an uninterrupted one, and every
//! trainable tensor learns, and the thread count does not change a run.

use candle_core::Device;
use grad_layers::LearningAudit;
use newt_train::dataset::{Dataset, Segment, Stats};
use newt_train::loss::{PAPER_RESOLUTIONS, mrstft_loss};
use newt_train::optim::{Adam, AdamConfig};
use newt_train::train::{Decoder, Recipe, Synth, TrainOptions, batch, meta_for, train};

const SR: u32 = 16_000;
const HOP: usize = 128;
const FRAMES: usize = 20;

/// A bright harmonic tone with its exact controls.
fn segment(f0: f32, amp: f32) -> Segment {
    let n = FRAMES * HOP;
    let audio: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f32 / SR as f32;
            (1..=8)
                .map(|k| amp / k as f32 * (std::f32::consts::TAU * k as f32 * f0 * t).sin())
                .sum()
        })
        .collect();
    let loud = 20.0 * (amp * 0.7).log10();
    Segment {
        audio,
        f0_hz: vec![f0; FRAMES],
        loudness_db: vec![loud; FRAMES],
        voiced: vec![true; FRAMES],
        source: format!("synthetic {f0} Hz"),
    }
}

fn dataset() -> Dataset {
    let train = vec![
        segment(220.0, 0.3),
        segment(330.0, 0.2),
        segment(440.0, 0.4),
        segment(294.0, 0.25),
    ];
    let valid = vec![segment(262.0, 0.3)];
    Dataset {
        train,
        valid,
        stats: Stats {
            f0_mean_hz: 300.0,
            f0_std_hz: 80.0,
            loudness_mean_db: -15.0,
            loudness_std_db: 5.0,
        },
        sample_rate: SR,
        hop: HOP,
    }
}

fn recipe(steps: usize) -> Recipe {
    Recipe {
        name: "tiny",
        segment_frames: FRAMES,
        batch: 2,
        steps,
        adam: AdamConfig {
            lr: 3e-3,
            ..AdamConfig::default()
        },
        valid_every: 10,
        checkpoint_every: 10,
    }
}

fn options(steps: usize, dir: &str, resume: bool, decoder: Decoder) -> TrainOptions {
    TrainOptions {
        recipe: recipe(steps),
        decoder,
        steps,
        seed: 5,
        checkpoint_dir: std::env::temp_dir()
            .join(format!("newt-train-{dir}-{}", std::process::id())),
        resume,
        progress: false,
        instrument: "synthetic".into(),
    }
}

fn mean(v: &[(usize, f32)]) -> f32 {
    v.iter().map(|x| x.1).sum::<f32>() / v.len() as f32
}

#[test]
fn fifty_steps_lower_the_loss_for_newt_and_the_baseline() {
    let ds = dataset();
    for decoder in [Decoder::Newt, Decoder::Ddsp] {
        let out = train(&ds, &options(50, &format!("{decoder:?}"), false, decoder)).unwrap();
        let (first, last) = (mean(&out.log.train[..10]), mean(&out.log.train[40..]));
        println!(
            "{decoder:?}: loss {first:.3} -> {last:.3}, held-out {:?}, {:.2} s/step",
            out.log.valid,
            out.log.seconds_per_step()
        );
        assert!(last < 0.9 * first, "{decoder:?}: loss {first} -> {last}");
        assert_eq!(out.model.is_some(), decoder == Decoder::Newt);
    }
}

#[test]
fn a_resumed_run_continues_exactly() {
    let ds = dataset();
    let whole = train(&ds, &options(30, "whole", false, Decoder::Newt)).unwrap();
    let dir = "resumed";
    let _ = std::fs::remove_dir_all(options(0, dir, false, Decoder::Newt).checkpoint_dir);
    train(&ds, &options(20, dir, false, Decoder::Newt)).unwrap();
    let resumed = train(&ds, &options(30, dir, true, Decoder::Newt)).unwrap();
    assert_eq!(resumed.log.train.len(), 30);
    assert_eq!(
        whole.log.train, resumed.log.train,
        "losses differ after resuming"
    );
    let (a, b) = (whole.model.unwrap(), resumed.model.unwrap());
    assert_eq!(a.weights, b.weights);
    // The exported model loads in the engine's format.
    let bytes = a.to_bytes();
    assert!(newt_model::NewtModel::from_bytes(&bytes).is_ok());
}

#[test]
fn the_exported_model_is_the_best_checked_one() {
    let ds = dataset();
    let whole = train(&ds, &options(30, "best-whole", false, Decoder::Newt)).unwrap();
    let (best_step, best_loss) = whole.log.best.expect("checks were made");
    let lowest = whole
        .log
        .valid
        .iter()
        .map(|v| v.1)
        .fold(f32::INFINITY, f32::min);
    assert_eq!(best_loss, lowest, "checks {:?}", whole.log.valid);
    // Training is deterministic, so a run stopped at the best step has its weights.
    let dir = "best-prefix";
    let _ = std::fs::remove_dir_all(options(0, dir, false, Decoder::Newt).checkpoint_dir);
    let prefix = train(&ds, &options(best_step, dir, false, Decoder::Newt)).unwrap();
    assert_eq!(
        whole.model.as_ref().unwrap().weights,
        prefix.model.as_ref().unwrap().weights,
        "exported weights are not those of step {best_step} (checks {:?})",
        whole.log.valid
    );
    let provenance = &whole.model.unwrap().meta.provenance;
    assert!(
        provenance.contains(&format!("weights of step {best_step}")),
        "{provenance}"
    );
}

/// Three Adam steps on a batch of two short segments: every trainable tensor of NEWT and
/// of the DDSP baseline receives a non-zero gradient and changes. None is frozen on
/// purpose (the exciter's phases are fixed, but they are not a training variable). With
/// candle-nn's LayerNorm, which records no backward pass, this names the 30 tensors
/// before the LayerNorms: the GRU, the projection, the first linear layers and the
/// LayerNorm gains and biases of the FiLM and noise nets.
#[test]
fn every_trainable_tensor_receives_a_gradient_and_changes() {
    let ds = dataset();
    let meta = meta_for(&ds, "synthetic");
    let device = Device::Cpu;
    let picks: Vec<&Segment> = ds.train.iter().take(2).collect();
    for decoder in [Decoder::Newt, Decoder::Ddsp] {
        let (synth, phases) = Synth::new(decoder, &meta, 5, &device).unwrap();
        let vars = synth.vars();
        assert!(vars.len() > 20, "{decoder:?}: {} tensors", vars.len());
        let mut adam = Adam::new(
            vars.clone(),
            AdamConfig {
                lr: 3e-3,
                ..AdamConfig::default()
            },
        )
        .unwrap();
        let mut audit = LearningAudit::new(&vars).unwrap();
        for step in 0..3 {
            let (cond, target) = batch(&picks, &meta, &phases, step, &device).unwrap();
            let loss =
                mrstft_loss(&synth.forward(&cond).unwrap(), &target, &PAPER_RESOLUTIONS).unwrap();
            let grads = loss.backward().unwrap();
            audit.record(&grads).unwrap();
            adam.step(&grads).unwrap();
        }
        if let Err(e) = audit.finish(&[]) {
            panic!("{decoder:?}: {e}");
        }
    }
}

/// The same seed gives the same run, bit for bit, and the thread count does not change it:
/// the parallel ops split their work over batch rows and channels, never inside a sum.
#[test]
fn a_run_is_the_same_on_one_thread_and_on_two() {
    let ds = dataset();
    for decoder in [Decoder::Newt, Decoder::Ddsp] {
        let run = |threads: usize, dir: &str| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| train(&ds, &options(8, dir, false, decoder)).unwrap())
        };
        let one = run(1, "threads-1");
        let two = run(2, "threads-2");
        let two_again = run(2, "threads-2-again");
        assert_eq!(two.log.train, two_again.log.train, "{decoder:?}: rerun");
        assert_eq!(one.log.train, two.log.train, "{decoder:?}: 1 vs 2 threads");
        assert_eq!(one.log.valid, two.log.valid, "{decoder:?}: 1 vs 2 threads");
        if let (Some(a), Some(b)) = (&one.model, &two.model) {
            assert_eq!(a.weights, b.weights, "{decoder:?}: weights");
        }
    }
}
