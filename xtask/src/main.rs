//! Project commands. xtask's own are the build and product commands: `render`, `dist`,
//! `bundle`, `test`, `pitch`, `compare`, `bench`, `demo-midi`. Training, evaluation, data
//! and the companions' experiments live in their crates and are forwarded to their
//! binaries (`forward.rs`), so `cargo xtask train ...` and `cargo run --release -p
//! newt-train -- ...` are the same command.

mod bench;
mod bundle;
mod compare;
mod demo;
mod forward;
mod pitch;
mod render;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "NEWT project commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The arguments of a forwarded command, passed through untouched (`--help` included).
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
struct Forwarded {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
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
    /// How far apart two renderings sound: mean absolute difference of their frame
    /// log-spectra (dB) after aligning time and level.
    Compare(compare::CompareArgs),
    /// Benchmarks; `bench engine` prints `fastnewt_rtf=X mlp_rtf=Y poly16_48k_core_fraction=Z`.
    Bench {
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
    /// Regenerate assets/demo/demo.mid, the demo melody.
    DemoMidi {
        #[arg(long, default_value = "assets/demo/demo.mid")]
        out: std::path::PathBuf,
    },
    /// Which reference SoundFont instrument each render sounds like (`newt-eval timbre`).
    Timbre(Forwarded),
    /// Resynthesise held-out segments through the engine and score them (`newt-eval eval`).
    Eval(Forwarded),
    /// Whether each model plays worse outside its range map: docs/RANGE.md
    /// (`newt-eval range`).
    Range(Forwarded),
    /// Train a model from a folder of WAV files, NEWT or the DDSP baseline (`newt-train`).
    Train(Forwarded),
    /// Fetch or generate a data set into data/ (ignored by git): `instruments` and
    /// `synthetic` (`newt-data`), `images` (`image-data`), `text` (`combiner data`),
    /// `brown` (`debias data`).
    Data(Forwarded),
    /// The subspace companion (Larsen et al., ICLR 2022): `subspace sweep|quadratic|report`.
    Subspace(Forwarded),
    /// The ood companion (Zhang et al., ICML 2021): the `ood` binary.
    Ood(Forwarded),
    /// The combiner companion (Ren et al., NeurIPS 2021): `combiner scaling|lm|recall|report`.
    Combiner(Forwarded),
    /// The debias companion (Liang et al., ICML 2021): `debias train|run|report`.
    Debias(Forwarded),
    /// Fuzz the readers of model files, plugin states, MIDI, control CSV and WAV
    /// (`newt-fuzz <target> [--cases N] [--minutes M]`; resumable; see docs/RELIABILITY.md).
    Fuzz(Forwarded),
    /// Import the NEWT authors' checkpoints (assets/nws/checkpoints/{vn,fl,tpt}) into
    /// assets/models/{violin,flute,trumpet}-urmp.safetensors (`newt-import nws-all`).
    ImportNws(Forwarded),
}

fn main() -> anyhow::Result<()> {
    // Commands run from the workspace root whatever the caller's directory.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root)?;
    let forwarded = |name: &str, f: Forwarded| -> anyhow::Result<()> {
        let (what, rest) = match (name, f.args.split_first()) {
            ("data", Some((what, rest))) => (Some(what.as_str()), rest),
            _ => (None, f.args.as_slice()),
        };
        match forward::target(name, what) {
            Some(target) => forward::run(target, rest),
            None => anyhow::bail!(
                "cargo xtask data: say which data set (instruments, synthetic, images, text, brown)"
            ),
        }
    };
    match Cli::parse().command {
        Command::Render(args) => render::run(args),
        Command::Bundle { args } => bundle::bundle(args),
        Command::Test { args } => bundle::test(args),
        Command::Dist => bundle::dist(),
        Command::Pitch(args) => pitch::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Bench { what } => bench::run(what),
        Command::DemoMidi { out } => demo::write_demo_midi(&out),
        Command::Timbre(f) => forwarded("timbre", f),
        Command::Eval(f) => forwarded("eval", f),
        Command::Range(f) => forwarded("range", f),
        Command::Train(f) => forwarded("train", f),
        Command::Data(f) => forwarded("data", f),
        Command::Subspace(f) => forwarded("subspace", f),
        Command::Ood(f) => forwarded("ood", f),
        Command::Combiner(f) => forwarded("combiner", f),
        Command::Debias(f) => forwarded("debias", f),
        Command::ImportNws(f) => forwarded("import-nws", f),
        Command::Fuzz(f) => forwarded("fuzz", f),
    }
}
