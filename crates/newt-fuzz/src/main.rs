//! `newt-fuzz <target> [--cases N] [--seed S] [--minutes M]` (`cargo xtask fuzz ...`):
//! runs cases of one target in worker processes, resumably, and prints the summary;
//! `newt-fuzz <target> --case K` replays one case in this process.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use newt_fuzz::runner::{self, RunPlan};
use newt_fuzz::targets::{Runner, Target};

#[derive(Parser)]
#[command(about = "Fuzz the readers of model files, plugin states, MIDI, control CSV and WAV")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// What to fuzz.
    #[arg(value_enum)]
    target: Option<Target>,
    /// Cases in the run.
    #[arg(long, default_value_t = 100_000)]
    cases: u64,
    /// Seed of the run (case k of seed s is always the same input).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Cases per worker process.
    #[arg(long)]
    chunk: Option<u64>,
    /// Stop after this many minutes (run again to resume).
    #[arg(long)]
    minutes: Option<f64>,
    /// Replay this one case here and print what it did.
    #[arg(long)]
    case: Option<u64>,
    /// Where runs are kept (default `out/fuzz`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Write docs/RELIABILITY.md from the run summaries in docs/fuzz.
    Report {
        #[arg(long, default_value = "docs/fuzz")]
        results: PathBuf,
        #[arg(long, default_value = "docs/RELIABILITY.md")]
        out: PathBuf,
    },
    /// Internal: run cases `[from, to)` and print the summary as JSON.
    Worker {
        #[arg(value_enum)]
        target: Target,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Some(Command::Report { results, out }) = &cli.command {
        let at = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                repo.join(p)
            }
        };
        newt_fuzz::report::write(&at(results), &at(out))?;
        println!("wrote {}", at(out).display());
        return Ok(());
    }
    if let Some(Command::Worker {
        target,
        seed,
        from,
        to,
    }) = cli.command
    {
        let mut runner = Runner::new(target)?;
        runner::start_watchdog(Duration::from_secs(target.time_limit_s()));
        let summary = runner::run_in_process(&mut runner, seed, from, to);
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    let Some(target) = cli.target else {
        anyhow::bail!("name a target: model, state-clap, state-vst3, midi, csv or wav");
    };
    if let Some(k) = cli.case {
        let mut runner = Runner::new(target)?;
        let input = runner.input(cli.seed, k);
        println!(
            "case {k} of seed {}: {} bytes, digest {:016x}",
            cli.seed,
            input.len(),
            newt_fuzz::targets::digest(&input)
        );
        if std::env::var_os("NEWT_FUZZ_SHOW").is_some() {
            println!("{}", String::from_utf8_lossy(&input));
        }
        println!("{:?}", runner.run(&input));
        return Ok(());
    }
    let plan = RunPlan {
        target,
        seed: cli.seed,
        cases: cli.cases,
        chunk: cli
            .chunk
            .unwrap_or(if target.is_plugin_state() { 50 } else { 20_000 }),
        time_box: cli.minutes.map(|m| Duration::from_secs_f64(m * 60.0)),
        out: cli.out.unwrap_or_else(|| runner::default_out(&repo)),
        exe: std::env::current_exe()?,
    };
    let s = runner::run(&plan)?;
    println!(
        "fuzz {}: {} cases in {:.0} s ({:.0} cases/s), seed {}: {} valid, rejected {:?}; {} findings",
        s.target,
        s.cases,
        s.seconds,
        s.cases as f64 / s.seconds.max(1e-9),
        s.seed,
        s.valid,
        s.rejected,
        s.findings.len()
    );
    for f in &s.findings {
        println!("  case {}: {}: {}", f.case, f.kind, f.message);
    }
    Ok(())
}
