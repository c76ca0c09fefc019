//! The committed report is what `debias report` writes from the committed results.

use std::path::Path;
use std::process::Command;

/// Byte for byte, REPORT.md and (where the font they were drawn with is present) the
/// figures, of the word model and, when its results are committed, of SmolLM2.
#[test]
fn the_committed_report_regenerates_from_the_committed_results() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let out = std::env::temp_dir().join(format!("debias-report-{}", std::process::id()));
    // `debias report` writes beside results.json, so it runs on a copy.
    let models = ["", "smollm2"];
    for model in models {
        let from = results.join(model).join("results.json");
        if from.exists() {
            std::fs::create_dir_all(out.join(model)).unwrap();
            std::fs::copy(&from, out.join(model).join("results.json")).unwrap();
        }
    }
    let status = Command::new(env!("CARGO_BIN_EXE_debias"))
        .arg("report")
        .arg("--results")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    for model in models {
        if results.join(model).join("results.json").exists() {
            figures::assert_same_report(
                &out.join(model),
                &results.join(model),
                "cargo xtask debias report",
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
