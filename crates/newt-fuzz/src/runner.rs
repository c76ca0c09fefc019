//! Running cases: in process (panics caught, a watchdog for hangs) and, for a whole run,
//! in worker processes under a memory limit, chunk by chunk, replaying a chunk whose
//! worker died one case per process to name the cases that kill it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::targets::{Outcome, Runner, Target};

/// A case that did not end in a typed error or a valid result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub case: u64,
    /// `panic`, `hang`, `allocation` (the memory limit refused one) or `abort`.
    pub kind: String,
    pub message: String,
}

/// What a run (or a part of one) did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub target: String,
    pub seed: u64,
    /// Cases run: `[0, cases)`.
    pub cases: u64,
    pub valid: u64,
    /// Typed errors by kind.
    pub rejected: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    /// Wall-clock seconds spent, over every session of a resumed run.
    pub seconds: f64,
}

impl Summary {
    fn add(&mut self, other: &Summary) {
        self.cases += other.cases;
        self.valid += other.valid;
        for (k, n) in &other.rejected {
            *self.rejected.entry(k.clone()).or_default() += n;
        }
        self.findings.extend(other.findings.iter().cloned());
    }
}

/// When the process's clock started, the case running and when it began (milliseconds
/// since the origin, plus one; 0: no case running).
static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
static CASE_STARTED_MS: AtomicU64 = AtomicU64::new(0);
static CASE_RUNNING: AtomicU64 = AtomicU64::new(u64::MAX);

fn millis_since_origin() -> u64 {
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// In a worker process (one target), before its cases: aborts the process when a case
/// runs past `limit`. A hang is a finding, and the parent names the case by replaying its
/// chunk. Not for a process that runs cases of several targets at once (a test binary).
pub fn start_watchdog(limit: Duration) {
    millis_since_origin();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let started = CASE_STARTED_MS.load(Ordering::SeqCst);
            if started != 0
                && millis_since_origin().saturating_sub(started) > limit.as_millis() as u64
            {
                let case = CASE_RUNNING.load(Ordering::SeqCst);
                eprintln!(
                    "newt-fuzz: FINDING hang: case {case} ran past {} s",
                    limit.as_secs()
                );
                std::process::abort();
            }
        }
    });
}

/// Cases `[from, to)` of `seed` in this process (a worker first calls
/// [`start_watchdog`]).
pub fn run_in_process(runner: &mut Runner, seed: u64, from: u64, to: u64) -> Summary {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let mut summary = Summary {
        target: runner.target.name().into(),
        seed,
        ..Summary::default()
    };
    for k in from..to {
        let input = runner.input(seed, k);
        CASE_RUNNING.store(k, Ordering::SeqCst);
        CASE_STARTED_MS.store(millis_since_origin(), Ordering::SeqCst);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(&input)));
        CASE_STARTED_MS.store(0, Ordering::SeqCst);
        summary.cases += 1;
        match result {
            Ok(Outcome::Valid) => summary.valid += 1,
            Ok(Outcome::Rejected(kind)) => *summary.rejected.entry(kind).or_default() += 1,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                summary.findings.push(Finding {
                    case: k,
                    kind: "panic".into(),
                    message,
                });
            }
        }
    }
    std::panic::set_hook(quiet);
    summary.seconds = start.elapsed().as_secs_f64();
    summary
}

/// How a whole run goes.
#[derive(Clone, Debug)]
pub struct RunPlan {
    pub target: Target,
    pub seed: u64,
    pub cases: u64,
    /// Cases per worker process.
    pub chunk: u64,
    /// Stop (resumably) after this long.
    pub time_box: Option<Duration>,
    /// Where progress, the summary and the inputs of findings go.
    pub out: PathBuf,
    /// The `newt-fuzz` binary that runs the workers.
    pub exe: PathBuf,
}

fn state_path(plan: &RunPlan) -> PathBuf {
    plan.out
        .join(format!("{}-seed{}.json", plan.target.name(), plan.seed))
}

/// Runs `plan` in worker processes, resuming from its saved state; returns the summary
/// (also saved after every chunk).
pub fn run(plan: &RunPlan) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&plan.out)?;
    let path = state_path(plan);
    let mut total: Summary = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| Summary {
            target: plan.target.name().into(),
            seed: plan.seed,
            ..Summary::default()
        });
    if total.cases > 0 {
        eprintln!(
            "resuming {} at case {} ({:.0} s so far)",
            path.display(),
            total.cases,
            total.seconds
        );
    }
    let bar = indicatif::ProgressBar::new(plan.cases);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:40} {pos}/{len} cases ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(plan.target.name());
    bar.set_position(total.cases.min(plan.cases));
    let session = Instant::now();
    let mut last_save = total.seconds;
    while total.cases < plan.cases {
        if plan.time_box.is_some_and(|t| session.elapsed() >= t) {
            bar.println("time box reached: run again to resume");
            break;
        }
        let from = total.cases;
        let to = (from + plan.chunk).min(plan.cases);
        let t0 = Instant::now();
        let part = match worker(plan, from, to) {
            Ok(part) => part,
            Err(died) => replay(plan, from, to, &died, &bar)?,
        };
        total.add(&part);
        total.seconds = last_save + t0.elapsed().as_secs_f64();
        last_save = total.seconds;
        bar.set_position(total.cases);
        bar.set_message(format!("{} findings", total.findings.len()));
        std::fs::write(&path, serde_json::to_vec_pretty(&total)?)?;
    }
    bar.finish();
    Ok(total)
}

/// Runs cases `[from, to)` in a worker process under the target's memory limit. `Err`
/// holds the worker's stderr when it did not finish.
fn worker(plan: &RunPlan, from: u64, to: u64) -> Result<Summary, String> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {} && exec \"$0\" worker \"$@\"",
            plan.target.memory_limit_kib()
        ))
        .arg(&plan.exe)
        .args([
            plan.target.name(),
            "--seed",
            &plan.seed.to_string(),
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(stderr);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Summary>(l).ok())
        .ok_or(stderr)
}

/// A worker died in `[from, to)`: every case again, one process each; those that kill
/// their process are findings, their inputs saved.
fn replay(
    plan: &RunPlan,
    from: u64,
    to: u64,
    died: &str,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Summary> {
    bar.println(format!(
        "a worker died in cases {from}..{to}: replaying them one by one ({})",
        last_line(died)
    ));
    let mut part = Summary::default();
    for k in from..to {
        match worker(plan, k, k + 1) {
            Ok(one) => part.add(&one),
            Err(stderr) if k == from && worker(plan, 0, 1).is_err() => {
                // Even the first seed fails: the workers cannot run at all (a missing
                // bundle or seed file), which is not a finding about the input.
                anyhow::bail!("the workers fail on every case: {}", last_line(&stderr));
            }
            Err(stderr) => {
                let kind = if stderr.contains("memory allocation of") {
                    "allocation"
                } else if stderr.contains("FINDING hang") {
                    "hang"
                } else {
                    "abort"
                };
                let finding = Finding {
                    case: k,
                    kind: kind.into(),
                    message: last_line(&stderr).into(),
                };
                save_input(plan, k)?;
                bar.println(format!("FINDING case {k}: {kind}: {}", finding.message));
                part.cases += 1;
                part.findings.push(finding);
            }
        }
    }
    Ok(part)
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// Writes case `k`'s input next to the run's state, for a regression test.
fn save_input(plan: &RunPlan, k: u64) -> anyhow::Result<()> {
    let runner = Runner::new(plan.target)?;
    let path = plan.out.join(format!(
        "{}-seed{}-case{k}.bin",
        plan.target.name(),
        plan.seed
    ));
    std::fs::File::create(&path)?.write_all(&runner.input(plan.seed, k))?;
    Ok(())
}

/// Where `newt-fuzz` keeps its runs by default.
pub fn default_out(repo: &Path) -> PathBuf {
    repo.join("out/fuzz")
}
