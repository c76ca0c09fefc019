//! The training driver every Combiner experiment shares (and the `debias` companion's
//! language model): one seeded transformer per attention pattern, AdamW with a linear
//! warm-up and cosine decay to a tenth, the loss curve in 25-step means; and the
//! JSON-lines records that make every experiment resumable.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::Device;
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::tasks::Batch;
use crate::{AttentionPlan, LmConfig, Pattern, TransformerLm, default_block};

/// Appends JSON lines to `path`, creating its folder.
pub fn append_line<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write of the whole line: runs in parallel processes append to one file.
    let mut line = serde_json::to_string(value)?;
    line.push('\n');
    f.write_all(line.as_bytes())?;
    Ok(())
}

/// Every line of a JSON-lines file that parses as `T` (none when it does not exist).
pub fn read_lines<T: for<'a> Deserialize<'a>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).with_context(|| format!("parsing a line of {}", path.display()))
        })
        .collect()
}

pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:30}}] {{pos}}/{{len}} {{msg}} ({{elapsed}} spent, {{eta}} left)"
        ))
        .expect("valid template"),
    );
    bar
}

/// Settings shared by the two training experiments; a recorded run is reused only when
/// every field matches.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TrainSettings {
    pub len: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    pub batch: usize,
    pub steps: usize,
    pub lr: f64,
    pub warmup: usize,
    pub seed: u64,
    /// Fixed's block and Axial's row length; None: [`default_block`] of `len` (28 for
    /// 28x28 images, whose rows the default 16 would not follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<usize>,
}

/// [`TrainSettings`] from command-line arguments with `len`, `width`, `heads`, `layers`,
/// `batch`, `steps` and `lr` fields; the warm-up is a tenth of the steps.
#[macro_export]
macro_rules! train_settings {
    ($args:expr, $seed:expr) => {
        $crate::training::TrainSettings {
            len: $args.len,
            width: $args.width,
            heads: $args.heads,
            layers: $args.layers,
            batch: $args.batch,
            steps: $args.steps,
            lr: $args.lr,
            warmup: $args.steps / 10,
            seed: $seed,
            block: None,
        }
    };
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TrainedRun {
    pub pattern: String,
    pub settings: TrainSettings,
    pub parameters: usize,
    /// Training loss (nats per scored token), averaged over every 25 steps.
    pub curve: Vec<(usize, f64)>,
    /// lm: held-out bits per byte; recall: held-out accuracy.
    pub score: f64,
    /// Wall-clock seconds of training alone.
    pub seconds: f64,
}

/// A trained model with the plan it runs on and its training record.
pub struct Trained {
    pub model: TransformerLm,
    pub plan: AttentionPlan,
    /// The model's parameters (for saving).
    pub vars: VarMap,
    pub curve: Vec<(usize, f64)>,
    pub seconds: f64,
    pub parameters: usize,
}

pub fn train(
    pattern: Pattern,
    s: &TrainSettings,
    vocab: usize,
    bar: &indicatif::ProgressBar,
    next_batch: impl FnMut(&mut StdRng) -> candle_core::Result<Batch>,
) -> anyhow::Result<Trained> {
    train_observed(pattern, s, vocab, bar, next_batch, &[], |_, _, _, _| Ok(()))
}

/// [`train`], calling `observe(steps done, model, plan, training seconds so far)` after
/// each step in `at` (the time spent observing is not counted as training).
pub fn train_observed(
    pattern: Pattern,
    s: &TrainSettings,
    vocab: usize,
    bar: &indicatif::ProgressBar,
    mut next_batch: impl FnMut(&mut StdRng) -> candle_core::Result<Batch>,
    at: &[usize],
    mut observe: impl FnMut(usize, &TransformerLm, &AttentionPlan, f64) -> anyhow::Result<()>,
) -> anyhow::Result<Trained> {
    let device = Device::Cpu;
    let config = LmConfig {
        vocab,
        len: s.len,
        width: s.width,
        heads: s.heads,
        layers: s.layers,
        mlp_ratio: 4,
    };
    let block = s.block.unwrap_or_else(|| default_block(s.len));
    if block == 0 || !s.len.is_multiple_of(block) {
        bail!(
            "a block of {block} does not divide the sequence length {}",
            s.len
        );
    }
    let plan = AttentionPlan::new(pattern, s.len, block, true, &device)?;
    // The same seed gives every pattern the same initial weights and data order.
    let mut rng = StdRng::seed_from_u64(s.seed);
    let (model, vars) = TransformerLm::init_seeded(config, &device, s.seed)?;
    let parameters = crate::parameter_count(&vars);
    let mut opt = AdamW::new(
        vars.all_vars(),
        ParamsAdamW {
            lr: s.lr,
            weight_decay: 0.01,
            ..Default::default()
        },
    )?;
    let mut started = Instant::now();
    let mut curve = Vec::new();
    let mut window = Vec::new();
    for step in 0..s.steps {
        // Linear warm-up, then cosine decay to a tenth.
        let lr = if step < s.warmup {
            s.lr * (step + 1) as f64 / s.warmup as f64
        } else {
            let t = (step - s.warmup) as f64 / (s.steps - s.warmup).max(1) as f64;
            s.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
        };
        opt.set_learning_rate(lr);
        let batch = next_batch(&mut rng)?;
        let logits = model.forward(&plan, &batch.inputs)?;
        let loss = TransformerLm::loss(&logits, &batch.targets, &batch.weights)?;
        opt.backward_step(&loss)?;
        let loss = loss.to_scalar::<f32>()? as f64;
        if !loss.is_finite() {
            bail!("{}: loss became {loss} at step {step}", pattern.name());
        }
        window.push(loss);
        if window.len() == 25 || step + 1 == s.steps {
            curve.push((step + 1, window.iter().sum::<f64>() / window.len() as f64));
            window.clear();
        }
        bar.inc(1);
        if at.contains(&(step + 1)) {
            let trained_for = started.elapsed();
            observe(step + 1, &model, &plan, trained_for.as_secs_f64())?;
            // Observation time does not count: restart the clock where training stood.
            started = Instant::now().checked_sub(trained_for).unwrap_or(started);
        }
    }
    Ok(Trained {
        model,
        plan,
        vars,
        curve,
        seconds: started.elapsed().as_secs_f64(),
        parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::RecallTask;

    #[test]
    fn training_is_seeded_learns_and_records_its_curve() {
        let settings = TrainSettings {
            len: 32,
            width: 16,
            heads: 2,
            layers: 1,
            batch: 8,
            steps: 60,
            lr: 3e-3,
            warmup: 6,
            seed: 4,
            block: None,
        };
        let task = RecallTask::new(settings.len, 8);
        let run = || {
            let bar = indicatif::ProgressBar::hidden();
            train(Pattern::Full, &settings, 256, &bar, |rng| {
                task.batch(rng, settings.batch, &Device::Cpu)
            })
            .unwrap()
        };
        let (a, b) = (run(), run());
        // 25-step means: steps 25, 50 and the last.
        assert_eq!(
            a.curve.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![25, 50, 60]
        );
        assert_eq!(a.curve, b.curve, "same seed, same run");
        // Observed at the steps asked for, with the training time so far; observing does
        // not change the run.
        let mut seen = Vec::new();
        let bar = indicatif::ProgressBar::hidden();
        let c = train_observed(
            Pattern::Full,
            &settings,
            256,
            &bar,
            |rng| task.batch(rng, settings.batch, &Device::Cpu),
            &[10, 60],
            |step, _, _, seconds| {
                seen.push((step, seconds));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [10, 60]);
        assert!(seen[0].1 > 0.0 && seen[1].1 >= seen[0].1 && seen[1].1 <= c.seconds + 1e-6);
        assert_eq!(c.curve, a.curve);
        assert!(a.curve[2].1 < a.curve[0].1, "{:?}", a.curve);
        assert_eq!(a.parameters, crate::parameter_count(&a.vars));
    }

    /// A block that does not divide the sequence is refused; settings recorded before the
    /// block existed read back as the default block and are written the same way.
    #[test]
    fn the_block_is_checked_and_old_records_still_match() {
        let settings = TrainSettings {
            len: 32,
            width: 8,
            heads: 2,
            layers: 1,
            batch: 2,
            steps: 2,
            lr: 1e-3,
            warmup: 1,
            seed: 1,
            block: Some(5),
        };
        let task = RecallTask::new(settings.len, 8);
        let bar = indicatif::ProgressBar::hidden();
        let batch = |rng: &mut StdRng| task.batch(rng, 2, &Device::Cpu);
        let err = train(Pattern::Fixed, &settings, 256, &bar, batch)
            .err()
            .unwrap();
        assert!(err.to_string().contains("does not divide"), "{err}");
        let ok = TrainSettings {
            block: Some(4),
            ..settings.clone()
        };
        assert!(train(Pattern::CombinerAxial, &ok, 256, &bar, batch).is_ok());
        let old = r#"{"len":32,"width":8,"heads":2,"layers":1,"batch":2,"steps":2,"lr":0.001,"warmup":1,"seed":1}"#;
        let parsed: TrainSettings = serde_json::from_str(old).unwrap();
        let default = TrainSettings {
            block: None,
            ..settings
        };
        assert_eq!(parsed, default);
        assert_eq!(serde_json::to_string(&default).unwrap(), old);
    }

    #[test]
    fn json_lines_append_and_read_back() {
        let dir = std::env::temp_dir().join(format!("combiner-lines-{}", std::process::id()));
        let path = dir.join("sub/runs.jsonl");
        append_line(&path, &(1, "a")).unwrap();
        append_line(&path, &(2, "b")).unwrap();
        let back: Vec<(u32, String)> = read_lines(&path).unwrap();
        assert_eq!(back, vec![(1, "a".to_string()), (2, "b".to_string())]);
        assert!(
            read_lines::<(u32, String)>(&dir.join("none.jsonl"))
                .unwrap()
                .is_empty()
        );
    }
}
