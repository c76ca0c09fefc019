//! `cargo xtask combiner report`: scaling, language-modelling and recall figures and
//! `REPORT.md` from the JSON-lines results of the other `combiner` commands.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::Pattern;
use clap::Args;

use crate::runs::ScalingPoint;
use crate::training::{TrainedRun, read_lines};
use figures::{Axis, Curve, category_grids, line_chart};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Where `scaling`, `lm` and `recall` wrote their results.
    #[arg(long, default_value = "out/combiner")]
    results: PathBuf,
    #[arg(long, default_value = "crates/research/combiner/results")]
    out: PathBuf,
    /// Slopes are fitted over L >= this (shorter passes are dominated by fixed costs).
    #[arg(long, default_value_t = 1024)]
    fit_from: usize,
}

/// Least-squares slope of ln y against ln x.
pub fn log_log_slope(points: &[(f64, f64)]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn colour(name: &str) -> Option<usize> {
    Pattern::ALL.iter().position(|p| p.name() == name)
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out)?;
    let scaling: Vec<ScalingPoint> = read_lines(&a.results.join("scaling.jsonl"))?;
    let lm: Vec<TrainedRun> = read_lines(&a.results.join("lm.jsonl"))?;
    let recall: Vec<TrainedRun> = read_lines(&a.results.join("recall.jsonl"))?;
    let mut md = String::new();
    writeln!(md, "# Combiner: measured results\n")?;
    writeln!(
        md,
        "Written by `cargo xtask combiner report` from `{}`. All runs on the CPU (2 cores).\n",
        a.results.display()
    )?;

    // What each pattern reaches.
    let (len, block) = (64, 8);
    let panels: Vec<(String, Vec<Vec<usize>>)> = Pattern::ALL
        .iter()
        .map(|&p| {
            // The mixture's first component is Combiner-Axial: show its second.
            let parts = p.partitions(len, block, true);
            let part = parts.last().expect("a pattern has a partition");
            let mut cells = vec![vec![0; len]; len];
            for i in 0..len {
                for &j in &part.direct[i] {
                    cells[i][j] = 1;
                }
                for &r in &part.uses[i] {
                    for &j in &part.regions[r] {
                        cells[i][j] = 2 + r;
                    }
                }
            }
            let label = if p == Pattern::CombinerMixture {
                format!("{} (2nd of 2)", p.name())
            } else {
                p.name().to_string()
            };
            (label, cells)
        })
        .collect();
    category_grids(
        &a.out.join("patterns.png"),
        "Causal attention at L = 64 (block 8): query rows, key columns",
        4,
        &panels,
    )?;
    writeln!(
        md,
        "## The patterns\n\nRow i is a query, column j a key (causal, L = 64, blocks and rows of 8). Dark blue: attended directly; light colours: reached through a region summary (one colour per region); white: never reached. The mixture averages Combiner-Axial (its first component) with the partition shown, which summarises earlier rows instead of columns.\n\n![patterns](patterns.png)\n"
    )?;

    // Scaling.
    if !scaling.is_empty() {
        let first = &scaling[0];
        writeln!(
            md,
            "## Cost of one forward+backward pass\n\nOne causal attention layer, width {}, {} heads, batch 1; each point in a fresh process. Slopes are least-squares fits of log time and log peak memory against log L for L >= {}.\n",
            first.width, first.heads, a.fit_from
        )?;
        let lens: Vec<usize> = {
            let mut l: Vec<usize> = scaling.iter().map(|p| p.len).collect();
            l.sort_unstable();
            l.dedup();
            l
        };
        write!(md, "| pattern | terms per query at its largest L |")?;
        for l in &lens {
            write!(md, " {l} |")?;
        }
        writeln!(md, " time slope | memory slope |")?;
        write!(md, "|---|---|")?;
        for _ in &lens {
            write!(md, "---|")?;
        }
        writeln!(md, "---|---|")?;
        let mut time_curves = Vec::new();
        let mut memory_curves = Vec::new();
        for p in Pattern::ALL {
            let pts: Vec<&ScalingPoint> =
                scaling.iter().filter(|s| s.pattern == p.name()).collect();
            if pts.is_empty() {
                continue;
            }
            let fit = |f: &dyn Fn(&ScalingPoint) -> f64| {
                let v: Vec<(f64, f64)> = pts
                    .iter()
                    .filter(|s| s.len >= a.fit_from)
                    .map(|s| (s.len as f64, f(s)))
                    .collect();
                log_log_slope(&v)
            };
            let (ts, ms) = (fit(&|s| s.seconds), fit(&|s| s.peak_mb));
            let terms = pts.iter().max_by_key(|s| s.len).map_or(0, |s| s.terms);
            write!(md, "| {} | {terms} |", p.name())?;
            for l in &lens {
                match pts.iter().find(|s| s.len == *l) {
                    Some(s) => write!(md, " {:.3} s, {:.0} MB |", s.seconds, s.peak_mb)?,
                    None => write!(md, " - |")?,
                }
            }
            let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
            writeln!(md, " {} | {} |", f(ts), f(ms))?;
            let c = colour(p.name());
            time_curves.push(Curve {
                label: format!("{} (slope {})", p.name(), f(ts)),
                points: pts.iter().map(|s| (s.len as f64, s.seconds)).collect(),
                dashed: !p.is_combiner() && p != Pattern::Full,
                colour: c,
            });
            memory_curves.push(Curve {
                label: format!("{} (slope {})", p.name(), f(ms)),
                points: pts
                    .iter()
                    .map(|s| (s.len as f64, s.peak_mb.max(1.0)))
                    .collect(),
                dashed: !p.is_combiner() && p != Pattern::Full,
                colour: c,
            });
        }
        let x = || Axis {
            desc: "sequence length L",
            log2: true,
            range: None,
        };
        line_chart(
            &a.out.join("scaling_time.png"),
            "Forward+backward time of one attention layer",
            x(),
            Axis {
                desc: "seconds",
                log2: true,
                range: None,
            },
            &time_curves,
        )?;
        line_chart(
            &a.out.join("scaling_memory.png"),
            "Peak memory of one forward+backward pass",
            x(),
            Axis {
                desc: "MB above the resident baseline",
                log2: true,
                range: None,
            },
            &memory_curves,
        )?;
        writeln!(
            md,
            "\n![time](scaling_time.png)\n![memory](scaling_memory.png)\n"
        )?;
        let missing: Vec<usize> = lens
            .iter()
            .copied()
            .filter(|l| !scaling.iter().any(|s| s.pattern == "full" && s.len == *l))
            .collect();
        if !missing.is_empty() {
            writeln!(
                md,
                "Full attention was not run at L = {missing:?}: its attention matrices exceed the memory budget (see `--memory-gb`).\n"
            )?;
        }
    }

    let training = |md: &mut String,
                    runs: &[TrainedRun],
                    title: &str,
                    score: &str,
                    file: &str|
     -> anyhow::Result<()> {
        let Some(first) = runs.first() else {
            return Ok(());
        };
        let s = &first.settings;
        writeln!(md, "## {title}\n")?;
        writeln!(
            md,
            "L = {}, width {}, {} heads, {} layer(s), batch {}, {} AdamW steps (lr {}, warm-up {}, cosine to a tenth), seed {}; {} parameters for every pattern.\n",
            s.len,
            s.width,
            s.heads,
            s.layers,
            s.batch,
            s.steps,
            s.lr,
            s.warmup,
            s.seed,
            first.parameters
        )?;
        writeln!(
            md,
            "| pattern | {score} | final training loss (nats) | training time |\n|---|---|---|---|"
        )?;
        let mut curves = Vec::new();
        for p in Pattern::ALL {
            if let Some(r) = runs.iter().rev().find(|r| r.pattern == p.name()) {
                let last = r.curve.last().map_or(f64::NAN, |c| c.1);
                writeln!(
                    md,
                    "| {} | {:.4} | {last:.3} | {:.0} s |",
                    r.pattern, r.score, r.seconds
                )?;
                curves.push(Curve {
                    label: r.pattern.clone(),
                    points: r.curve.iter().map(|&(x, y)| (x as f64, y)).collect(),
                    dashed: !p.is_combiner() && p != Pattern::Full,
                    colour: colour(&r.pattern),
                });
            }
        }
        line_chart(
            &a.out.join(file),
            &format!("{title}: training loss"),
            Axis {
                desc: "step",
                log2: false,
                range: None,
            },
            Axis {
                desc: "loss (nats per scored token)",
                log2: false,
                range: None,
            },
            &curves,
        )?;
        writeln!(md, "\n![training]({file})\n")?;
        Ok(())
    };
    training(
        &mut md,
        &lm,
        "Byte-level language modelling (gcide dictionary text)",
        "held-out bits per byte",
        "lm_training.png",
    )?;
    training(
        &mut md,
        &recall,
        "Long-range recall",
        "held-out accuracy",
        "recall_training.png",
    )?;
    let path = a.out.join("REPORT.md");
    std::fs::write(&path, md)?;
    println!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_power_law() {
        let pts: Vec<(f64, f64)> = [256.0, 1024.0, 4096.0]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x.powf(1.5)))
            .collect();
        assert!((super::log_log_slope(&pts).unwrap() - 1.5).abs() < 1e-9);
    }
}
