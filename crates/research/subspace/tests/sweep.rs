//! The sweep end to end through the binary, on the committed 16-image Fashion-MNIST
//! slice: worker processes, the seed files they share, resumption, and a report that
//! regenerates byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;

use subspace::runs::read_records;

fn images_dir(root: &Path) -> PathBuf {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-data/tests/fixtures/fashion-mnist");
    let dir = root.join("images/fashion-mnist");
    std::fs::create_dir_all(&dir).unwrap();
    for kind in ["images-idx3", "labels-idx1"] {
        let file = fixture.join(format!("train-{kind}-ubyte.gz"));
        // The slice stands in for both splits.
        for split in ["train", "t10k"] {
            std::fs::copy(&file, dir.join(format!("{split}-{kind}-ubyte.gz"))).unwrap();
        }
    }
    root.join("images")
}

fn sweep(images: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_subspace"))
        .arg("sweep")
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .args([
            "--train", "16", "--test", "16", "--steps", "12", "--batch", "4",
        ])
        .args(["--seeds", "2", "--grid-seeds", "1", "--dims", "1,2"])
        .args(["--ticket-dims", "4", "--burn-in", "2", "--burn-in-max", "2"])
        .args([
            "--lottery-max",
            "2",
            "--sparse-from",
            "2",
            "--targets",
            "0.3",
        ])
        .args(["--workers", "2"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_small_sweep_runs_in_workers_resumes_and_reports_byte_for_byte() {
    let root = std::env::temp_dir().join(format!("subspace-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let images = images_dir(&root);
    let out = root.join("out");

    let first = sweep(&images, &out, &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let records = read_records(&out.join("results.jsonl")).unwrap();
    let keys: std::collections::BTreeSet<(String, usize, u64)> = records
        .iter()
        .map(|r| (r.method.clone(), r.d, r.seed))
        .collect();
    assert_eq!(keys.len(), records.len(), "no run recorded twice");
    // Seed 1: the full run and 2 random, 2 burn-in, 2 lottery and 1 ticket runs; seed 2:
    // its full run and whatever brackets the crossings at 0.3.
    for key in [
        ("full".to_string(), 20_490, 1),
        ("full".to_string(), 20_490, 2),
        ("random".to_string(), 1, 1),
        ("random".to_string(), 2, 1),
        ("burn-in-2".to_string(), 2, 1),
        ("lottery".to_string(), 2, 1),
        ("ticket".to_string(), 4, 1),
    ] {
        assert!(keys.contains(&key), "{key:?} missing from {keys:?}");
    }
    assert!(
        records
            .iter()
            .all(|r| (0.0..=1.0).contains(&r.train_accuracy))
    );
    let full = records.iter().find(|r| r.method == "full").unwrap();
    assert_eq!(
        full.end_in_lottery.iter().map(|c| c.0).collect::<Vec<_>>(),
        [1, 2]
    );
    for seed in [1, 2] {
        assert!(out.join(format!("seeds/seed-{seed}.safetensors")).exists());
    }

    // Started again, it has nothing left to do; with other settings it refuses.
    let again = sweep(&images, &out, &[]);
    assert!(again.status.success());
    assert_eq!(
        read_records(&out.join("results.jsonl")).unwrap().len(),
        records.len()
    );
    let other = sweep(&images, &out, &["--lr", "0.5"]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("other settings"));

    // The report, written twice from the same results, is the same bytes.
    let report = |dir: &Path| {
        let status = Command::new(env!("CARGO_BIN_EXE_subspace"))
            .arg("report")
            .arg("--results")
            .arg(&out)
            .arg("--out")
            .arg(dir)
            .args(["--targets", "0.2,0.3", "--target", "0.3"])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let (a, b) = (root.join("report-a"), root.join("report-b"));
    report(&a);
    report(&b);
    for file in [
        "REPORT.md",
        "success.png",
        "accuracy.png",
        "thresholds.png",
        "lottery.png",
    ] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(
            !x.is_empty() && x == y,
            "{file} differs between two reports"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// The committed report is what `subspace report` writes from the committed results,
/// byte for byte (the figures too, where the font they were drawn with is present).
#[test]
fn the_committed_report_regenerates_from_the_committed_results() {
    figures::assert_report_regenerates(
        env!("CARGO_BIN_EXE_subspace"),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("results"),
        "cargo xtask subspace report --results crates/research/subspace/results --out crates/research/subspace/results",
    );
}
