//! `cargo xtask bench engine`: real-time factors of the engine, measured in one run so
//! that their ratios hold on a shared, noisy machine.

use std::time::Instant;

use clap::Subcommand;
use newt_engine::kernels::{KernelLevel, instruction_set, set_kernel_level};
use newt_engine::offline::frames_to_host_samples;
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, EventKind, FrameControls, ShaperPath, TimedEvent,
    VoiceMode, controls_to_events, render_to_vec,
};
use newt_model::NewtModel;

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Prints `fastnewt_rtf=X mlp_rtf=Y poly16_48k_core_fraction=Z`.
    Engine {
        /// Seconds of audio per measurement.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
        /// Repetitions; the median is reported.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Host block size in samples for the single-voice runs (at the model rate).
        #[arg(long, default_value_t = 512)]
        block: usize,
        /// Run only the FastNEWT single-voice measurement (for profiling).
        #[arg(long)]
        fast_only: bool,
        /// Measure the kernels' baseline, AVX2 and (where the CPU has it) AVX-512 versions
        /// side by side, interleaved in one run.
        #[arg(long)]
        compare: bool,
    },
}

pub fn run(what: BenchWhat) -> anyhow::Result<()> {
    match what {
        BenchWhat::Engine {
            seconds,
            repeats,
            block,
            fast_only,
            compare,
        } => engine(seconds, repeats, block, fast_only, compare),
    }
}

/// A phrase of controls: f0 wandering over 196-880 Hz (violin range) with vibrato,
/// loudness swelling; the cost of the exciter depends on f0 (harmonics below Nyquist).
pub fn bench_controls(frames: usize) -> Vec<FrameControls> {
    (0..frames)
        .map(|f| {
            let t = f as f32 * 0.008;
            let semis = 12.0 * (0.5 + 0.5 * (0.37 * t).sin()) + 7.0 * (0.11 * t).sin().abs();
            let vibrato = 0.2 * (std::f32::consts::TAU * 5.5 * t).sin();
            FrameControls {
                f0_hz: 196.0 * ((semis + 7.0 * (0.05 * t).sin().abs() + vibrato) / 12.0).exp2(),
                loudness_db: -35.0 + 12.0 * (0.7 * t).sin(),
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds of compute for one render of `seconds` of audio, single voice, driven by
/// controls at the model rate, host blocks of `block` samples.
fn single_voice(
    model: &NewtModel,
    shaper: ShaperPath,
    seconds: f64,
    block: usize,
) -> anyhow::Result<(f64, f64)> {
    let (sr, hop) = (model.meta.sample_rate, model.meta.hop);
    let frames = (seconds * sr as f64 / hop as f64) as usize;
    let controls = bench_controls(frames);
    let events = controls_to_events(&controls, sr, hop, sr);
    let len = frames_to_host_samples(frames, sr, hop, sr);
    let config = EngineConfig {
        host_sample_rate: sr,
        max_block: block.max(1),
        voices: 1,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model.clone(), config)?;
    let mut params = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    params.voice.shaper = shaper;
    let start = Instant::now();
    let out = render_to_vec(&mut engine, &events, &params, len, block);
    let took = start.elapsed().as_secs_f64();
    std::hint::black_box(out);
    Ok((took, len as f64 / sr as f64))
}

/// 16 voices held (poly mode) at a 48 kHz host rate, host block 512.
fn poly16(model: &NewtModel, seconds: f64) -> anyhow::Result<(f64, f64)> {
    let rate = 48_000u32;
    let config = EngineConfig {
        host_sample_rate: rate,
        max_block: 512,
        voices: 16,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model.clone(), config)?;
    let params = EngineParams {
        mode: VoiceMode::Poly,
        ..EngineParams::default()
    };
    // Two octaves of a stacked chord from G3: every voice sounding for the whole run.
    let events: Vec<TimedEvent> = (0..16u8)
        .map(|v| TimedEvent {
            sample: v as u64 * 7,
            kind: EventKind::NoteOn {
                note: 55 + (v * 5) % 26,
                velocity: 0.7,
            },
        })
        .collect();
    let len = (seconds * rate as f64) as usize;
    let start = Instant::now();
    let out = render_to_vec(&mut engine, &events, &params, len, 512);
    let took = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        engine.active_voices() == 16,
        "only {} voices sounded",
        engine.active_voices()
    );
    std::hint::black_box(out);
    Ok((took, seconds))
}

/// The three figures of one kernel version: FastNEWT and MLP real-time factors of one
/// voice, and the share of a core that 16 voices at 48 kHz take.
#[derive(Default)]
struct Figures {
    fast: Vec<f64>,
    mlp: Vec<f64>,
    poly: Vec<f64>,
}

impl Figures {
    fn measure(
        &mut self,
        model: &NewtModel,
        seconds: f64,
        block: usize,
        fast_only: bool,
    ) -> anyhow::Result<()> {
        let (t, a) = single_voice(model, ShaperPath::Table, seconds, block)?;
        self.fast.push(t / a);
        if !fast_only {
            // The MLP path renders a quarter of the audio.
            let (t, a) = single_voice(model, ShaperPath::Mlp, (seconds / 4.0).max(1.0), block)?;
            self.mlp.push(t / a);
            let (t, a) = poly16(model, seconds)?;
            self.poly.push(t / a);
        }
        Ok(())
    }
}

fn engine(
    seconds: f64,
    repeats: usize,
    block: usize,
    fast_only: bool,
    compare: bool,
) -> anyhow::Result<()> {
    let (model, name) = crate::render::default_model()?;
    let cpu = CpuInfo::read();
    eprintln!(
        "model: {name}; {seconds} s of audio per run, median of {repeats}; one thread; single voice at the model rate in blocks of {block}"
    );
    eprintln!("CPU: {}", cpu.describe());
    let repeats = repeats.max(1);
    let mut levels = vec![KernelLevel::Best];
    if compare {
        levels = vec![KernelLevel::Baseline, KernelLevel::Avx2];
        if instruction_set(KernelLevel::Best) != instruction_set(KernelLevel::Avx2) {
            levels.push(KernelLevel::Best);
        }
    }
    let mut figures: Vec<Figures> = levels.iter().map(|_| Figures::default()).collect();
    // Interleaved so that machine noise hits every figure and version alike.
    for _ in 0..repeats {
        for (level, f) in levels.iter().zip(&mut figures) {
            set_kernel_level(*level);
            f.measure(&model, seconds, block, fast_only)?;
        }
    }
    set_kernel_level(KernelLevel::Best);
    let work = Work::of(&model);
    let last = levels.len() - 1;
    for (i, (level, f)) in levels.iter().zip(figures).enumerate() {
        let isa = instruction_set(*level);
        if fast_only {
            println!("fastnewt_rtf={:.5} kernels={isa}", median(f.fast));
            continue;
        }
        let (fast, mlp, poly) = (median(f.fast), median(f.mlp), median(f.poly));
        if !compare {
            eprintln!("MLP / FastNEWT cost ratio: {:.1}", mlp / fast);
        }
        println!(
            "fastnewt_rtf={fast:.5} mlp_rtf={mlp:.5} poly16_48k_core_fraction={poly:.4} kernels={isa}"
        );
        if i == last {
            eprintln!("{}", work.roofline(fast, mlp, isa, &cpu));
        }
    }
    Ok(())
}

/// The CPU, as /proc/cpuinfo names it.
struct CpuInfo {
    model: String,
    family_model: String,
    mhz: Option<f64>,
}

impl CpuInfo {
    fn read() -> Self {
        let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |key: &str| {
            text.lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        Self {
            model: field("model name").unwrap_or_else(|| "unknown".into()),
            family_model: format!(
                "family {} model {}",
                field("cpu family").unwrap_or_default(),
                field("model").unwrap_or_default()
            ),
            mhz: field("cpu MHz").and_then(|v| v.parse().ok()),
        }
    }

    fn describe(&self) -> String {
        let clock = self.mhz.map_or("clock unknown".to_string(), |m| {
            format!("{:.2} GHz", m / 1e3)
        });
        format!(
            "{} ({}, {clock}); kernels: {} (best on this CPU)",
            self.model,
            self.family_model,
            instruction_set(KernelLevel::Best)
        )
    }
}

/// The arithmetic of one voice per second of audio at the model rate, counted from the
/// model's shapes and the benchmark's controls.
struct Work {
    /// Multiply-adds of the frame networks (GRU, projection, FiLM and noise nets).
    nets: f64,
    /// Multiply-adds of the harmonic mixer (harmonics below Nyquist only).
    mixer: f64,
    /// Multiply-adds around each shaper (FiLM in and out, interpolation, output mix).
    shapers: f64,
    /// Multiply-adds of the noise filter (256 taps a sample).
    noise: f64,
    /// FastNEWT table reads (one 8-byte entry per shaper and sample).
    table_reads: f64,
    /// The exact path's extra multiply-adds (its MLP layers) and sines.
    mlp_madds: f64,
    mlp_sines: f64,
}

impl Work {
    fn of(model: &NewtModel) -> Self {
        let m = &model.meta;
        let w = &model.weights;
        let rate = m.sample_rate as f64;
        let frames = rate / m.hop as f64;
        let dense = |l: &newt_model::Linear| (l.in_dim * l.out_dim) as f64;
        let net = |c: &newt_model::ControlMlp| {
            c.layers.iter().map(|(l, _)| dense(l)).sum::<f64>() + dense(&c.out)
        };
        let gru = (3 * w.gru.hidden * (w.gru.input + w.gru.hidden)) as f64;
        let nets = frames * (gru + dense(&w.proj) + net(&w.film) + net(&w.noise));
        // Harmonics below Nyquist over the benchmark's phrase.
        let controls = bench_controls(frames as usize);
        let nyquist = 0.5 * rate;
        let harmonics = controls
            .iter()
            .map(|c| {
                ((nyquist / c.f0_hz.max(1.0) as f64).ceil() - 1.0).clamp(0.0, m.n_harmonics as f64)
            })
            .sum::<f64>()
            / controls.len().max(1) as f64;
        let per_shaper_sample = rate * m.n_shapers as f64;
        let width = newt_model::SHAPER_WIDTH as f64;
        Self {
            nets,
            mixer: rate * harmonics * m.n_shapers as f64,
            shapers: per_shaper_sample * 6.0,
            noise: rate * 256.0,
            table_reads: per_shaper_sample,
            mlp_madds: per_shaper_sample * (width + 2.0 * width * width + width),
            mlp_sines: per_shaper_sample * (3.0 * width + 1.0),
        }
    }

    /// One line: the work, what the measured real-time factors make of it per second,
    /// and that as a share of the core's multiply-add peak (two FMA pipes of the vector
    /// width; the clock as /proc/cpuinfo reports it).
    fn roofline(&self, fast_rtf: f64, mlp_rtf: f64, isa: &str, cpu: &CpuInfo) -> String {
        let common = self.nets + self.mixer + self.shapers + self.noise;
        let lanes = match isa {
            "AVX-512" => 16.0,
            "AVX2+FMA" => 8.0,
            _ => 4.0,
        };
        let peak = cpu.mhz.map(|m| m * 1e6 * lanes * 2.0);
        let share = |madds: f64, rtf: f64| {
            peak.map_or(String::new(), |p| {
                format!(" = {:.1}% of peak", 100.0 * madds / rtf / p)
            })
        };
        format!(
            "roofline per second of audio, one voice: {:.1} M multiply-adds (nets {:.1}, harmonic mixer {:.1}, shaper FiLM and mix {:.1}, noise filter {:.1}), {:.2} M table reads; the exact path adds {:.1} M multiply-adds and {:.1} M sines. \
             FastNEWT: {:.2} G multiply-adds/s{}; MLP: {:.2} G multiply-adds/s{} (a sine counted as 10); peak {}",
            common / 1e6,
            self.nets / 1e6,
            self.mixer / 1e6,
            self.shapers / 1e6,
            self.noise / 1e6,
            self.table_reads / 1e6,
            self.mlp_madds / 1e6,
            self.mlp_sines / 1e6,
            common / fast_rtf / 1e9,
            share(common, fast_rtf),
            (common + self.mlp_madds + 10.0 * self.mlp_sines) / mlp_rtf / 1e9,
            share(common + self.mlp_madds + 10.0 * self.mlp_sines, mlp_rtf),
            peak.map_or("unknown (no clock)".to_string(), |p| format!(
                "{:.1} G multiply-adds/s ({isa}: {} lanes x 2 FMA pipes)",
                p / 1e9,
                lanes as u32
            )),
        )
    }
}
