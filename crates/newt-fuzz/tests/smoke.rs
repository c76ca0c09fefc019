//! The short, seeded fuzz run CI makes: a few thousand cases of each reader and a few
//! dozen plugin-state restores through the real CLAP and VST3 entry points (the bundles
//! come from `cargo xtask test`). Every case must end in a typed error or a valid result;
//! each target must see both, so that the mutations really reach past the seeds.

use std::time::Duration;

use newt_fuzz::runner::{self, RunPlan};
use newt_fuzz::targets::{ALL, Runner, Target};

fn smoke(target: Target, cases: u64) {
    let mut runner = Runner::new(target).unwrap();
    let seeds = runner.seeds.len() as u64;
    let seeds_only = runner::run_in_process(&mut runner, 11, 0, seeds);
    assert_eq!(
        seeds_only.valid, seeds,
        "{target:?}: a seed is not valid: {seeds_only:?}"
    );
    let s = runner::run_in_process(&mut runner, 11, 0, cases);
    println!(
        "{}: {} cases in {:.2} s: {} valid, rejected {:?}",
        s.target, s.cases, s.seconds, s.valid, s.rejected
    );
    assert!(s.findings.is_empty(), "{target:?}: {:?}", s.findings);
    assert!(
        s.valid > seeds && !s.rejected.is_empty(),
        "{target:?}: {s:?}"
    );
}

#[test]
fn every_reader_survives_a_seeded_smoke_run() {
    for target in ALL.into_iter().filter(|t| !t.is_plugin_state()) {
        smoke(target, 3_000);
    }
}

#[test]
fn plugin_states_restore_or_are_refused_in_both_formats() {
    smoke(Target::StateClap, 60);
    smoke(Target::StateVst3, 60);
}

/// Case `k` of seed `s` is the same input in every process: the seeds themselves do not
/// depend on the process (a `HashMap`'s order once made the model seed's header differ).
#[test]
fn cases_are_the_same_input_in_every_process() {
    for target in ALL.into_iter().filter(|t| !t.is_plugin_state()) {
        let runner = Runner::new(target).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_newt-fuzz"))
            .args([target.name(), "--case", "5000", "--seed", "4"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let here = newt_fuzz::targets::digest(&runner.input(4, 5000));
        assert!(
            stdout.contains(&format!("digest {here:016x}")),
            "{target:?}: this process made {here:016x}, another printed:\n{stdout}"
        );
    }
}

/// The whole run as `cargo xtask fuzz` makes it: worker processes under the memory limit,
/// the summary saved after each chunk, and a second call resuming where the first stopped.
#[test]
fn runs_in_workers_and_resumes() {
    let out = std::env::temp_dir().join(format!("newt-fuzz-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let plan = |cases| RunPlan {
        target: Target::Csv,
        seed: 3,
        cases,
        chunk: 500,
        time_box: Some(Duration::from_secs(600)),
        out: out.clone(),
        exe: env!("CARGO_BIN_EXE_newt-fuzz").into(),
    };
    let first = runner::run(&plan(1_000)).unwrap();
    assert_eq!(first.cases, 1_000);
    let second = runner::run(&plan(1_500)).unwrap();
    assert_eq!(second.cases, 1_500);
    assert!(second.valid + second.rejected.values().sum::<u64>() == 1_500);
    // The same cases give the same outcomes: run in process, the first 1,000 agree.
    let mut runner = Runner::new(Target::Csv).unwrap();
    let again = runner::run_in_process(&mut runner, 3, 0, 1_000);
    assert_eq!(
        (again.valid, &again.rejected),
        (first.valid, &first.rejected)
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// The committed report is what `cargo xtask fuzz report` writes from the committed
/// summaries, byte for byte.
#[test]
fn the_reliability_report_regenerates_from_its_results() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let written = newt_fuzz::report::from_results(&repo.join("docs/fuzz")).unwrap();
    let committed = std::fs::read_to_string(repo.join("docs/RELIABILITY.md")).unwrap();
    assert!(
        written == committed,
        "docs/RELIABILITY.md is stale: run `cargo xtask fuzz report`"
    );
}
