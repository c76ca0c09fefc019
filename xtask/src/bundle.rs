//! `cargo xtask bundle` (nice-plug's bundler) and `cargo xtask test` (bundles, then the
//! workspace tests, which host the bundles).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

pub fn bundle(args: Vec<String>) -> anyhow::Result<()> {
    nice_plug_xtask::main_with_args(
        "cargo xtask",
        std::iter::once("bundle".to_string()).chain(args),
    )
}

/// Folder (under `target/bundled`) of the debug build with allocation checks.
const ALLOC_CHECKED: &str = "alloc-checked";

pub fn test(extra: Vec<String>) -> anyhow::Result<()> {
    let bundled = Path::new("target/bundled");
    // A debug build that aborts on any allocation in `process`, kept aside...
    bundle(vec![
        "newt".into(),
        "--features".into(),
        "assert_process_allocs".into(),
    ])?;
    let checked = bundled.join(ALLOC_CHECKED);
    std::fs::create_dir_all(&checked)?;
    std::fs::copy(bundled.join("newt.clap"), checked.join("newt.clap"))
        .context("copying the allocation-checked CLAP bundle")?;
    // ...then the release bundles the tests host.
    bundle(vec!["newt".into(), "--release".into()])?;
    run(
        Command::new(cargo())
            .args(["test", "--workspace"])
            .args(&extra),
        "cargo test --workspace",
    )?;
    // The standalone app under a JACK dummy server, driven by MIDI, recorded.
    run(
        &mut Command::new("plugin/standalone/scripts/jack-smoke.sh"),
        "the standalone JACK smoke test",
    )
}

/// The main job: the demo rendered with the default model, the plugin bundled, the
/// standalone app built.
pub fn dist() -> anyhow::Result<()> {
    crate::render::run(crate::render::RenderArgs::default_demo())?;
    bundle(vec!["newt".into(), "--release".into()])?;
    run(
        Command::new(cargo()).args(["build", "--release", "-p", "newt-standalone"]),
        "building the standalone app",
    )?;
    println!(
        "plugins: target/bundled/newt.clap, target/bundled/newt.vst3; standalone: target/release/newt-standalone"
    );
    Ok(())
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
