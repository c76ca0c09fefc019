//! Project commands: `cargo xtask render`, `cargo xtask bundle newt --release`,
//! `cargo xtask test`, `cargo xtask bench engine`, `cargo xtask train`, `cargo xtask eval`,
//! `cargo xtask timbre`, `cargo xtask pitch`, `cargo xtask data`, `cargo xtask demo-midi`
//! (regenerates the committed demo melody).

mod bench;
mod bundle;
mod combiner;
mod combiner_report;
mod compare;
mod debias;
mod demo;
mod eval;
mod fetch;
mod images;
mod instruments;
mod midi;
mod ood;
mod pitch;
mod plot;
mod quality;
mod render;
mod subspace;
mod subspace_report;
mod synthetic;
mod text;
mod timbre;
mod training;
mod wav;

use clap::{Parser, Subcommand};

// Training allocates and frees tensors of tens of MB every step; glibc returns each one to
// the OS and page-faults it back (a third of the CPU time went to the kernel), mimalloc
// keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "xtask", about = "NEWT project commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render a controls CSV (f0_hz,loudness_db per frame), a monophonic MIDI file or a
    /// recording (timbre transfer) to WAV. With no input, renders the bundled demo melody.
    Render(render::RenderArgs),
    /// The main job: render the demo with the default model, bundle the plugin (CLAP,
    /// VST3) and build the standalone app.
    Dist,
    /// Bundle plugins (nice-plug's bundler): `bundle newt --release` writes
    /// `target/bundled/newt.clap` and `target/bundled/newt.vst3`.
    Bundle {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The whole test suite: bundles the plugin (release, and a debug build with
    /// allocation checks for the host tests), then `cargo test --workspace`.
    Test {
        /// Extra arguments for `cargo test` (after `--workspace`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Pitch and level of a WAV recording, optionally checked against an expected pitch
    /// or, note by note, against the MIDI file it was rendered from.
    Pitch(pitch::PitchArgs),
    /// Which reference SoundFont instrument each render sounds like (harmonic profiles).
    Timbre(timbre::TimbreArgs),
    /// How far apart two renderings sound: mean absolute difference of their frame
    /// log-spectra (dB) after aligning time and level.
    Compare(compare::CompareArgs),
    /// Benchmarks; `bench engine` prints `fastnewt_rtf=X mlp_rtf=Y poly16_48k_core_fraction=Z`.
    Bench {
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
    /// Resynthesise held-out segments through the engine and score them.
    Eval(eval::EvalArgs),
    /// Train a model from a folder of WAV files (NEWT, or the DDSP baseline).
    Train(training::TrainArgs),
    /// Fetch or generate data sets into data/ (ignored by git).
    Data {
        #[command(subcommand)]
        what: DataWhat,
    },
    /// The subspace companion (Larsen et al., ICLR 2022): sweeps, the quadratic well,
    /// the report.
    Subspace {
        #[command(subcommand)]
        what: subspace::SubspaceWhat,
    },
    /// The ood companion (Zhang et al., ICML 2021): known densities, a density model on
    /// Fashion-MNIST scored against MNIST, figures and REPORT.md.
    Ood(ood::OodArgs),
    /// The combiner companion (Ren et al., NeurIPS 2021): scaling, language modelling,
    /// long-range recall, the report.
    Combiner {
        #[command(subcommand)]
        what: combiner::CombinerWhat,
    },
    /// The debias companion (Liang et al., ICML 2021): a Brown-corpus language model,
    /// its local and global gender bias, INLP and A-INLP, the alpha sweep and report.
    Debias {
        #[command(subcommand)]
        what: debias::DebiasWhat,
    },
    /// Import the NEWT authors' checkpoints (assets/nws/checkpoints/{vn,fl,tpt}) into
    /// assets/models/{violin,flute,trumpet}-urmp.safetensors (= `newt-import nws-all`).
    ImportNws {
        #[arg(long, default_value = "assets/nws/checkpoints")]
        from: std::path::PathBuf,
        #[arg(long, default_value = "assets/models")]
        out_dir: std::path::PathBuf,
    },
    /// Regenerate assets/demo/demo.mid, the demo melody.
    DemoMidi {
        #[arg(long, default_value = "assets/demo/demo.mid")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum DataWhat {
    /// Violin, flute, trumpet, cello and alto saxophone phrases rendered from the FluidR3
    /// SoundFont with ground-truth pitch and loudness (data/instruments).
    Instruments(instruments::InstrumentsArgs),
    /// Fashion-MNIST and MNIST as IDX files (data/images), for the subspace and ood
    /// companions.
    Images(images::ImagesArgs),
    /// The 1913 Webster dictionary text (Debian dict-gcide) for byte-level language
    /// modelling (data/text), for the combiner companion.
    Text(text::TextArgs),
    /// The Brown corpus, gender word lists and VADER's lexicon (data/text), for the
    /// debias companion.
    Brown(text::TextArgs),
    /// A synthetic monophonic instrument (WAV files, 44.1 kHz), for tests and CPU runs.
    Synthetic {
        #[arg(long, default_value = "data/synthetic")]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn main() -> anyhow::Result<()> {
    // Commands run from the workspace root whatever the caller's directory.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root)?;
    match Cli::parse().command {
        Command::Render(args) => render::run(args),
        Command::Bundle { args } => bundle::bundle(args),
        Command::Test { args } => bundle::test(args),
        Command::Dist => bundle::dist(),
        Command::Pitch(args) => pitch::run(args),
        Command::Timbre(args) => timbre::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Bench { what } => bench::run(what),
        Command::DemoMidi { out } => demo::write_demo_midi(&out),
        Command::ImportNws { from, out_dir } => {
            for (path, model) in newt_train::import::import_nws_all(&from, &out_dir)? {
                println!("{}: {}", path.display(), model.meta.instrument);
            }
            Ok(())
        }
        Command::Train(args) => training::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Subspace { what } => subspace::run(what),
        Command::Ood(args) => ood::run(args),
        Command::Combiner { what } => combiner::run(what),
        Command::Debias { what } => debias::run(what),
        Command::Data { what } => match what {
            DataWhat::Instruments(args) => instruments::run(args),
            DataWhat::Images(args) => images::run(args),
            DataWhat::Text(args) => text::run(args),
            DataWhat::Brown(args) => text::brown(args),
            DataWhat::Synthetic { out, minutes, seed } => {
                synthetic::write_synthetic(&out, minutes, seed)
            }
        },
    }
}
