//! Project commands: `cargo xtask render`, `cargo xtask bench engine`,
//! `cargo xtask demo-midi` (regenerates the committed demo melody).

mod bench;
mod demo;
mod midi;
mod render;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "NEWT project commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render a controls CSV (f0_hz,loudness_db per frame) or a monophonic MIDI file to
    /// WAV. With no input, renders the bundled demo melody.
    Render(render::RenderArgs),
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
}

fn main() -> anyhow::Result<()> {
    // Commands run from the workspace root whatever the caller's directory.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root)?;
    match Cli::parse().command {
        Command::Render(args) => render::run(args),
        Command::Bench { what } => bench::run(what),
        Command::DemoMidi { out } => demo::write_demo_midi(&out),
    }
}
