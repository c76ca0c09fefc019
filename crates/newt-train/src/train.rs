//! The training loop: recipes, batches, Adam with the published schedule and clipping,
//! validation, checkpoints that resume exactly, a progress bar, export to the model file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use newt_model::{
    FORMAT_VERSION, LoudnessMeasure, ModelMeta, NewtModel, Operators, RangeMap, SplitMix64,
};
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Segment};
use crate::ddsp::Ddsp;
use crate::loss::{PAPER_RESOLUTIONS, mrstft_loss};
use crate::model::{Conditioning, Newt, named_vars};
use crate::optim::{Adam, AdamConfig};
use crate::signal::{NOISE_FFT, harmonics, noise_spectra};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error(transparent)]
    Model(#[from] newt_model::ModelError),
    #[error("dataset segments are {found} frames long, the recipe needs {wanted}")]
    SegmentLength { found: usize, wanted: usize },
}

/// Which decoder sits on the control encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decoder {
    Newt,
    Ddsp,
}

/// Segment length, batch, steps and schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    pub name: &'static str,
    pub segment_frames: usize,
    pub batch: usize,
    pub steps: usize,
    pub adam: AdamConfig,
    pub valid_every: usize,
    pub checkpoint_every: usize,
}

impl Recipe {
    /// The published recipe: 4 s segments, batch 8, 120k steps (for a GPU).
    pub fn paper() -> Self {
        Self {
            name: "paper",
            segment_frames: 500,
            batch: 8,
            steps: 120_000,
            adam: AdamConfig::default(),
            valid_every: 1000,
            checkpoint_every: 1000,
        }
    }

    /// Sized for about an hour on two CPU cores: 1 s segments, batch 4, 3000 steps
    /// (about 1.1 s a step), the learning rate decaying 10x faster to match.
    pub fn cpu() -> Self {
        Self {
            name: "cpu",
            segment_frames: 125,
            batch: 4,
            steps: 3000,
            adam: AdamConfig {
                decay_every: 1000,
                // Without it the first steps throw the loss from 5 to 26 (violin).
                warmup_steps: 100,
                ..AdamConfig::default()
            },
            valid_every: 250,
            checkpoint_every: 100,
        }
    }

    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "paper" => Some(Self::paper()),
            "cpu" => Some(Self::cpu()),
            _ => None,
        }
    }
}

/// What `train` reports at the end.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainLog {
    pub decoder: Option<Decoder>,
    pub recipe: String,
    pub step: usize,
    /// Wall-clock seconds of the whole run (validation and checkpoints included).
    pub seconds: f64,
    /// Seconds spent in training steps alone (batch, forward, backward, update).
    #[serde(default)]
    pub step_seconds: f64,
    /// Seconds of the training steps spent making batches, in the forward pass (loss
    /// included), in the backward pass and in the optimiser update.
    #[serde(default)]
    pub phase_seconds: PhaseSeconds,
    /// `(step, training loss)` for every step.
    pub train: Vec<(usize, f32)>,
    /// `(step, held-out loss)` every `valid_every` steps and at the end.
    pub valid: Vec<(usize, f32)>,
    /// The lowest held-out loss whose weights are kept (`best.safetensors` in the
    /// checkpoint folder): `(step, loss)`. Only checks made by this code count; checks
    /// logged before a resume under an older version have no weights and are skipped.
    #[serde(default)]
    pub best: Option<(usize, f32)>,
}

/// Where the training steps' time went (seconds, summed over steps).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct PhaseSeconds {
    pub batch: f64,
    pub forward: f64,
    pub backward: f64,
    pub update: f64,
}

impl TrainLog {
    /// Mean seconds of one training step (validation and checkpoints excluded).
    pub fn seconds_per_step(&self) -> f64 {
        self.step_seconds / self.train.len().max(1) as f64
    }
}

/// The model a run trains: NEWT or the DDSP baseline.
pub enum Synth {
    Newt(Newt),
    Ddsp(Ddsp),
}

impl Synth {
    /// A fresh model of `decoder` from `seed`, with the fixed harmonic phases it renders
    /// with.
    pub fn new(
        decoder: Decoder,
        meta: &ModelMeta,
        seed: u64,
        device: &Device,
    ) -> candle_core::Result<(Self, Vec<f32>)> {
        Ok(match decoder {
            Decoder::Newt => {
                let m = Newt::new(meta.clone(), seed, device)?;
                let p = m.phases.clone();
                (Synth::Newt(m), p)
            }
            Decoder::Ddsp => (
                Synth::Ddsp(Ddsp::new(meta.clone(), seed, device)?),
                ddsp_phases(meta, seed),
            ),
        })
    }

    pub fn forward(&self, c: &Conditioning) -> candle_core::Result<Tensor> {
        match self {
            Synth::Newt(m) => m.forward(c),
            Synth::Ddsp(m) => m.forward(c),
        }
    }

    /// The trainable tensors by name, sorted.
    pub fn vars(&self) -> Vec<(String, Var)> {
        named_vars(match self {
            Synth::Newt(m) => &m.varmap,
            Synth::Ddsp(m) => &m.varmap,
        })
    }
}

/// The conditioning and target of a batch of segments; noise seeds from `noise_seed`.
pub fn batch(
    segments: &[&Segment],
    meta: &ModelMeta,
    phases: &[f32],
    noise_seed: u64,
    device: &Device,
) -> candle_core::Result<(Conditioning, Tensor)> {
    let (b, f, hop) = (segments.len(), segments[0].f0_hz.len(), meta.hop);
    let t = f * hop;
    let mut f0 = Vec::with_capacity(b * f);
    let mut loud = Vec::with_capacity(b * f);
    let mut harm = Vec::with_capacity(b * meta.n_harmonics * t);
    let mut noise = Vec::new();
    let mut audio = Vec::with_capacity(b * t);
    for (i, s) in segments.iter().enumerate() {
        let f0s: Vec<f32> = s
            .f0_hz
            .iter()
            .map(|v| crate::signal::sanitize_f0(*v, meta.sample_rate))
            .collect();
        harm.extend(harmonics(&f0s, meta.sample_rate, hop, phases));
        f0.extend(f0s);
        loud.extend(s.loudness_db.iter().map(|v| v.clamp(-120.0, 20.0)));
        noise.extend(noise_spectra(
            noise_seed.wrapping_mul(1000).wrapping_add(i as u64),
            f,
            hop,
        ));
        audio.extend_from_slice(&s.audio);
    }
    let cond = Conditioning {
        f0: Tensor::from_vec(f0, (b, f), device)?,
        loudness: Tensor::from_vec(loud, (b, f), device)?,
        harmonics: Tensor::from_vec(harm, (b, meta.n_harmonics, t), device)?,
        noise: Tensor::from_vec(noise, (b, f, NOISE_FFT / 2 + 1, 2), device)?,
    };
    Ok((cond, Tensor::from_vec(audio, (b, t), device)?))
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub recipe: Recipe,
    pub decoder: Decoder,
    pub steps: usize,
    pub seed: u64,
    /// Where checkpoints live; a run resumes from them when `resume` is set.
    pub checkpoint_dir: PathBuf,
    pub resume: bool,
    pub progress: bool,
    pub instrument: String,
}

/// The model a run produces: NEWT as a model file, the baseline as its loss log only.
pub struct Trained {
    pub model: Option<NewtModel>,
    pub log: TrainLog,
}

/// The model metadata a run on `dataset` writes (its z-scoring statistics).
pub fn meta_for(dataset: &Dataset, instrument: &str) -> ModelMeta {
    let s = dataset.stats;
    let measure = LoudnessMeasure::AWeightedDbfs;
    let range_map = dataset.range_map(measure).unwrap_or_else(|| {
        RangeMap::estimated(
            s.f0_mean_hz,
            s.f0_std_hz,
            s.loudness_mean_db,
            s.loudness_std_db,
            measure,
        )
    });
    ModelMeta {
        format_version: FORMAT_VERSION,
        sample_rate: dataset.sample_rate,
        hop: dataset.hop,
        n_harmonics: 101,
        n_shapers: 64,
        f0_mean_hz: dataset.stats.f0_mean_hz,
        f0_std_hz: dataset.stats.f0_std_hz,
        loudness_mean_db: dataset.stats.loudness_mean_db,
        loudness_std_db: dataset.stats.loudness_std_db,
        instrument: instrument.into(),
        provenance: String::new(),
        operators: Operators::Newt,
        loudness_measure: measure,
        source: String::new(),
        licence: String::new(),
        training_data: String::new(),
        training_steps: 0,
        range_map,
    }
}

/// The DDSP baseline's fixed harmonic phases (random, from the run's seed): what an
/// evaluation of its checkpoint must use again.
pub fn ddsp_phases(meta: &ModelMeta, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..meta.n_harmonics)
        .map(|_| rng.uniform(0.0, std::f32::consts::TAU))
        .collect()
}

/// Held-out loss over all validation segments with fixed noise.
fn validate(
    synth: &Synth,
    dataset: &Dataset,
    meta: &ModelMeta,
    phases: &[f32],
    batch_size: usize,
    device: &Device,
) -> candle_core::Result<f32> {
    let (mut total, mut n) = (0.0f64, 0usize);
    for (i, chunk) in dataset.valid.chunks(batch_size).enumerate() {
        let refs: Vec<&Segment> = chunk.iter().collect();
        let (cond, target) = batch(&refs, meta, phases, 1_000_000 + i as u64, device)?;
        let loss = mrstft_loss(&synth.forward(&cond)?.detach(), &target, &PAPER_RESOLUTIONS)?;
        total += loss.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        n += chunk.len();
    }
    Ok((total / n.max(1) as f64) as f32)
}

/// Trains on `dataset`; resumable; returns the model (NEWT) and the loss log.
pub fn train(dataset: &Dataset, opts: &TrainOptions) -> Result<Trained, TrainError> {
    let device = Device::Cpu;
    let recipe = opts.recipe;
    if let Some(s) = dataset.train.first()
        && s.f0_hz.len() != recipe.segment_frames
    {
        return Err(TrainError::SegmentLength {
            found: s.f0_hz.len(),
            wanted: recipe.segment_frames,
        });
    }
    let meta = meta_for(dataset, &opts.instrument);
    let (synth, phases) = Synth::new(opts.decoder, &meta, opts.seed, &device)?;
    let vars = synth.vars();
    let mut adam = Adam::new(vars.clone(), recipe.adam)?;
    let mut log = TrainLog {
        decoder: Some(opts.decoder),
        recipe: recipe.name.into(),
        ..TrainLog::default()
    };
    let ckpt = Checkpoint::new(&opts.checkpoint_dir);
    if opts.resume && ckpt.exists() {
        log = ckpt.load(&vars, &mut adam, &device)?;
    }

    let bar = if opts.progress {
        let bar = indicatif::ProgressBar::new(opts.steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps {msg} ({elapsed} / eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{:?} {}", opts.decoder, recipe.name));
        bar.set_position(log.step as u64);
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let seconds_before = log.seconds;
    while log.step < opts.steps {
        // Batches depend only on (seed, step): a resumed run sees the same data.
        let step_started = Instant::now();
        let mut rng = SplitMix64::new(opts.seed ^ (log.step as u64).wrapping_mul(0x9E37_79B9));
        let picks: Vec<&Segment> = (0..recipe.batch)
            .map(|_| &dataset.train[(rng.next_u64() % dataset.train.len() as u64) as usize])
            .collect();
        let (cond, target) = batch(&picks, &meta, &phases, log.step as u64, &device)?;
        let batched = Instant::now();
        let loss = mrstft_loss(&synth.forward(&cond)?, &target, &PAPER_RESOLUTIONS)?;
        let value = loss.to_scalar::<f32>()?;
        let forwarded = Instant::now();
        let grads = loss.backward()?;
        let backwarded = Instant::now();
        adam.step(&grads)?;
        drop(grads);
        let phases_of_step = &mut log.phase_seconds;
        phases_of_step.batch += (batched - step_started).as_secs_f64();
        phases_of_step.forward += (forwarded - batched).as_secs_f64();
        phases_of_step.backward += (backwarded - forwarded).as_secs_f64();
        phases_of_step.update += backwarded.elapsed().as_secs_f64();
        log.step_seconds += step_started.elapsed().as_secs_f64();
        log.step += 1;
        log.train.push((log.step, value));
        bar.set_position(log.step as u64);
        bar.set_message(format!("loss {value:.3}"));
        let last = log.step == opts.steps;
        if log.step.is_multiple_of(recipe.valid_every) || last {
            let v = validate(&synth, dataset, &meta, &phases, recipe.batch, &device)?;
            bar.println(format!(
                "step {}: train {value:.4}, held-out {v:.4}",
                log.step
            ));
            record_validation(&ckpt, &vars, &mut log, v)?;
        }
        if log.step.is_multiple_of(recipe.checkpoint_every) || last {
            log.seconds = seconds_before + started.elapsed().as_secs_f64();
            ckpt.save(&vars, &adam, &log)?;
        }
    }
    bar.finish_and_clear();
    // A run stopped early (or resumed at its last step) still ends with a check.
    if log.step > 0 && log.valid.last().map(|v| v.0) != Some(log.step) {
        let v = validate(&synth, dataset, &meta, &phases, recipe.batch, &device)?;
        record_validation(&ckpt, &vars, &mut log, v)?;
        ckpt.save(&vars, &adam, &log)?;
    }
    log.seconds = seconds_before + started.elapsed().as_secs_f64();
    // The exported model is the best checked one: the loss on real timbres jumps
    // between checks, and the last step is not always a good one.
    if let Some((best_step, _)) = log.best
        && best_step != log.step
    {
        ckpt.load_best(&vars, &device)?;
    }
    let model = match &synth {
        Synth::Newt(m) => {
            let (selected_step, selected_loss) = log
                .best
                .unwrap_or_else(|| log.valid.last().copied().unwrap_or((log.step, f32::NAN)));
            let provenance = format!(
                "newt-train {} recipe, {} steps, {:.1} min, weights of step {} (best held-out MR-STFT loss {:.4})",
                recipe.name,
                log.step,
                log.seconds / 60.0,
                selected_step,
                selected_loss
            );
            Some(m.to_model(&opts.instrument, &provenance)?)
        }
        Synth::Ddsp(_) => None,
    };
    Ok(Trained { model, log })
}

/// Logs a held-out loss; when it is the lowest so far, keeps those weights.
fn record_validation(
    ckpt: &Checkpoint,
    vars: &[(String, Var)],
    log: &mut TrainLog,
    loss: f32,
) -> Result<(), TrainError> {
    log.valid.push((log.step, loss));
    if log.best.is_none_or(|(_, best)| loss < best) {
        ckpt.save_best(vars)?;
        log.best = Some((log.step, loss));
    }
    Ok(())
}

/// The file in a checkpoint folder with the weights of the best held-out check.
pub const BEST_WEIGHTS: &str = "best.safetensors";

/// Weights plus Adam state in one safetensors file, the log as JSON, and the weights of
/// the best held-out check (`best.safetensors`).
struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn exists(&self) -> bool {
        self.dir.join("state.json").exists() && self.dir.join("weights.safetensors").exists()
    }

    fn err(&self, reason: impl ToString) -> TrainError {
        TrainError::Checkpoint {
            path: self.dir.clone(),
            reason: reason.to_string(),
        }
    }

    fn save(&self, vars: &[(String, Var)], adam: &Adam, log: &TrainLog) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.err(e))?;
        let mut tensors: HashMap<String, Tensor> = adam.state();
        for (name, v) in vars {
            tensors.insert(name.clone(), v.as_tensor().clone());
        }
        // Write then rename: a crash never leaves a half-written checkpoint.
        let tmp = self.dir.join("weights.safetensors.partial");
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, self.dir.join("weights.safetensors")).map_err(|e| self.err(e))?;
        let json = serde_json::to_string(log).map_err(|e| self.err(e))?;
        std::fs::write(self.dir.join("state.json.partial"), json).map_err(|e| self.err(e))?;
        std::fs::rename(
            self.dir.join("state.json.partial"),
            self.dir.join("state.json"),
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes the model weights alone to `best.safetensors` (write, then rename).
    fn save_best(&self, vars: &[(String, Var)]) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.err(e))?;
        let tensors: HashMap<String, Tensor> = vars
            .iter()
            .map(|(name, v)| (name.clone(), v.as_tensor().clone()))
            .collect();
        let tmp = self.dir.join("best.safetensors.partial");
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, self.dir.join(BEST_WEIGHTS)).map_err(|e| self.err(e))
    }

    /// Sets `vars` to the weights of the best held-out check.
    fn load_best(&self, vars: &[(String, Var)], device: &Device) -> Result<(), TrainError> {
        let tensors = candle_core::safetensors::load(self.dir.join(BEST_WEIGHTS), device)?;
        for (name, v) in vars {
            let t = tensors
                .get(name)
                .ok_or_else(|| self.err(format!("{BEST_WEIGHTS} lacks {name}")))?;
            v.set(t)?;
        }
        Ok(())
    }

    fn load(
        &self,
        vars: &[(String, Var)],
        adam: &mut Adam,
        device: &Device,
    ) -> Result<TrainLog, TrainError> {
        let log: TrainLog = serde_json::from_slice(
            &std::fs::read(self.dir.join("state.json")).map_err(|e| self.err(e))?,
        )
        .map_err(|e| self.err(e))?;
        let tensors = candle_core::safetensors::load(self.dir.join("weights.safetensors"), device)?;
        for (name, v) in vars {
            let t = tensors
                .get(name)
                .ok_or_else(|| self.err(format!("lacks {name}")))?;
            v.set(t)?;
        }
        adam.restore(&tensors, log.step);
        Ok(log)
    }
}
