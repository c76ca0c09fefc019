//! The commands that live in other crates, forwarded: `cargo xtask train ...` runs
//! `cargo run --release -p newt-train --bin newt-train -- ...`, and so on. The build tool
//! stays small (no candle, plotters or companion crate in its build) while the README's
//! commands keep working; each crate's binary is the real command line.

use std::process::Command;

use anyhow::Context;

/// Where a forwarded command goes: a binary of a workspace package, with the leading
/// arguments that select its subcommand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    pub package: &'static str,
    pub bin: &'static str,
    pub leading: &'static [&'static str],
}

/// The binary that runs `cargo xtask <command> [<what>]`, or `None` for xtask's own
/// commands. `data` is the one command whose first argument picks the crate.
pub fn target(command: &str, what: Option<&str>) -> Option<Target> {
    let to = |package, bin, leading| {
        Some(Target {
            package,
            bin,
            leading,
        })
    };
    match (command, what) {
        ("train", _) => to("newt-train", "newt-train", &[]),
        ("import-nws", _) => to("newt-train", "newt-import", &["nws-all"]),
        ("eval", _) => to("newt-eval", "newt-eval", &["eval"]),
        ("timbre", _) => to("newt-eval", "newt-eval", &["timbre"]),
        ("range", _) => to("newt-eval", "newt-eval", &["range"]),
        ("subspace", _) => to("subspace", "subspace", &[]),
        ("ood", _) => to("ood", "ood", &[]),
        ("combiner", _) => to("combiner", "combiner", &[]),
        ("debias", _) => to("debias", "debias", &[]),
        ("fuzz", _) => to("newt-fuzz", "newt-fuzz", &[]),
        ("data", Some("instruments")) => to("newt-data", "newt-data", &["instruments"]),
        ("data", Some("synthetic")) => to("newt-data", "newt-data", &["synthetic"]),
        ("data", Some("images")) => to("image-data", "image-data", &[]),
        ("data", Some("text")) => to("combiner", "combiner", &["data"]),
        ("data", Some("brown")) => to("debias", "debias", &["data"]),
        _ => None,
    }
}

/// Runs `target` with `args` through cargo (release build) and exits with its status.
pub fn run(target: Target, args: &[String]) -> anyhow::Result<()> {
    let status = Command::new(crate::bundle::cargo())
        .args(["run", "--quiet", "--release", "-p", target.package])
        .args(["--bin", target.bin, "--"])
        .args(target.leading)
        .args(args)
        .status()
        .with_context(|| format!("starting cargo run -p {}", target.package))?;
    std::process::exit(status.code().unwrap_or(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_sets_go_to_the_crate_that_owns_them() {
        assert_eq!(
            target("data", Some("images")).unwrap().package,
            "image-data"
        );
        assert_eq!(target("data", Some("brown")).unwrap().leading, &["data"]);
        assert_eq!(target("data", Some("text")).unwrap().package, "combiner");
        assert_eq!(target("data", Some("nonsense")), None);
        assert_eq!(target("render", None), None);
        assert_eq!(
            target("timbre", Some("a.wav")).unwrap().leading,
            &["timbre"]
        );
    }

    #[test]
    fn every_forwarded_package_is_a_workspace_member_with_that_binary() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        for (c, w) in [
            ("train", None),
            ("import-nws", None),
            ("eval", None),
            ("timbre", None),
            ("range", None),
            ("subspace", None),
            ("ood", None),
            ("combiner", None),
            ("debias", None),
            ("fuzz", None),
            ("data", Some("instruments")),
            ("data", Some("images")),
        ] {
            let t = target(c, w).unwrap();
            let dir = manifest
                .lines()
                .find_map(|l| {
                    let l = l.trim().trim_end_matches(',').trim_matches('"');
                    l.ends_with(&format!("/{}", t.package))
                        .then(|| root.join(l))
                })
                .unwrap_or_else(|| panic!("{} is not a workspace member", t.package));
            let main = dir.join("src/main.rs");
            let bin = dir.join(format!("src/bin/{}.rs", t.bin));
            assert!(
                (t.bin == t.package && main.exists()) || bin.exists(),
                "{} has no binary {}",
                t.package,
                t.bin
            );
        }
    }
}
