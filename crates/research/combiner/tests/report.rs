//! The committed report is what `combiner report` writes from the committed results.

/// Byte for byte, REPORT.md and (where the font they were drawn with is present) the
/// figures.
#[test]
fn the_committed_report_regenerates_from_the_committed_results() {
    figures::assert_report_regenerates(
        env!("CARGO_BIN_EXE_combiner"),
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results"),
        "cargo xtask combiner report --results crates/research/combiner/results --out crates/research/combiner/results",
    );
}
