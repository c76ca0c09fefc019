//! The committed report is what `combiner report` writes from the committed results.

use std::path::Path;
use std::process::Command;

/// Byte for byte, REPORT.md and (where the font they were drawn with is present) the
/// figures.
#[test]
fn the_committed_report_regenerates_from_the_committed_results() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let out = std::env::temp_dir().join(format!("combiner-report-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_combiner"))
        .arg("report")
        .arg("--results")
        .arg(&results)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let written = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    let committed = std::fs::read_to_string(results.join("REPORT.md")).unwrap();
    assert!(
        written == committed,
        "results/REPORT.md is stale: run `cargo xtask combiner report --results \
         crates/research/combiner/results --out crates/research/combiner/results`"
    );
    if figures::register_font() {
        for entry in std::fs::read_dir(&out).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "png") {
                let name = path.file_name().unwrap();
                assert!(
                    std::fs::read(&path).unwrap() == std::fs::read(results.join(name)).unwrap(),
                    "{name:?} is stale"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
