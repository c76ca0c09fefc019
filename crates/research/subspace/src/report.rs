//! `cargo xtask subspace report`: figures (PNG) and REPORT.md from a sweep's
//! `results.jsonl` and the quadratic well's `quadratic.json`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::threshold::success_curve;
use anyhow::{Context, bail};
use clap::Args;

use crate::runs::{QuadraticResult, RunRecord, SweepSettings, read_records, runs_of, threshold_of};
use figures::{Axis, Curve, line_chart};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The sweep's folder (settings.json, results.jsonl, quadratic.json).
    #[arg(long, default_value = "out/subspace")]
    results: PathBuf,
    /// Where REPORT.md and the figures go.
    #[arg(long, default_value = "out/subspace")]
    out: PathBuf,
    /// Target train accuracies of the threshold table.
    #[arg(long, value_delimiter = ',', default_value = "0.6,0.7,0.8,0.9,0.95")]
    targets: Vec<f64>,
    /// The target of the success-probability figure.
    #[arg(long, default_value_t = 0.8)]
    target: f64,
    /// The command that produced the results, quoted in the report.
    #[arg(long, default_value = "cargo xtask subspace sweep")]
    command: String,
}

/// Conv-2's parameter count.
const D: usize = 20_490;

/// Methods in the order of the tables: random, burn-in by t, lottery, ticket.
fn methods(records: &[RunRecord]) -> Vec<String> {
    let present: BTreeSet<&str> = records.iter().map(|r| r.method.as_str()).collect();
    let mut burn_in: Vec<(usize, &str)> = present
        .iter()
        .filter_map(|m| Some((m.strip_prefix("burn-in-")?.parse().ok()?, *m)))
        .collect();
    burn_in.sort();
    let mut out = vec!["random".to_string()];
    out.extend(burn_in.into_iter().map(|(_, m)| m.to_string()));
    out.extend(["lottery".to_string(), "ticket".to_string()]);
    out.retain(|m| present.contains(m.as_str()));
    out
}

/// Mean and (population) standard deviation.
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn by_d(records: &[RunRecord], method: &str, test: bool) -> Vec<(usize, Vec<f64>)> {
    let dims: BTreeSet<usize> = records
        .iter()
        .filter(|r| r.method == method)
        .map(|r| r.d)
        .collect();
    dims.into_iter()
        .map(|d| {
            let values = records
                .iter()
                .filter(|r| r.method == method && r.d == d)
                .map(|r| {
                    if test {
                        r.test_accuracy
                    } else {
                        r.train_accuracy
                    }
                })
                .collect();
            (d, values)
        })
        .collect()
}

fn percent_of_d(d: usize) -> String {
    let p = 100.0 * d as f64 / D as f64;
    if p < 1.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A threshold as "d (% of D)"; at the grid's smallest d it is only an upper bound.
fn threshold_cell(t: Option<usize>, smallest: usize) -> String {
    match t {
        Some(d) if d == smallest => format!("<= {d} ({})", percent_of_d(d)),
        Some(d) => format!("{d} ({})", percent_of_d(d)),
        None => "> grid".into(),
    }
}

fn method_desc(method: &str) -> String {
    match method {
        "random" => "random subspace".into(),
        "lottery" => "lottery subspace".into(),
        "ticket" => "lottery ticket (d weights kept)".into(),
        m => m
            .strip_prefix("burn-in-")
            .map_or(m.to_string(), |t| format!("burn-in subspace, t = {t}")),
    }
}

pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let records = read_records(&args.results.join("results.jsonl"))?;
    if records.is_empty() {
        bail!(
            "no results in {} (run `cargo xtask subspace sweep` first)",
            args.results.display()
        );
    }
    let settings: SweepSettings = serde_json::from_str(
        &std::fs::read_to_string(args.results.join("settings.json"))
            .context("reading settings.json")?,
    )?;
    std::fs::create_dir_all(&args.out)?;
    let methods = methods(&records);
    let full: Vec<f64> = records
        .iter()
        .filter(|r| r.method == "full")
        .map(|r| r.train_accuracy)
        .collect();
    let full_test: Vec<f64> = records
        .iter()
        .filter(|r| r.method == "full")
        .map(|r| r.test_accuracy)
        .collect();
    let seeds: BTreeSet<u64> = records.iter().map(|r| r.seed).collect();
    let hours = records.iter().map(|r| r.seconds).sum::<f64>() / 3600.0;

    let mut md = String::new();
    writeln!(
        md,
        "# Training dimension of Conv-2 (Larsen et al., ICLR 2022), measured\n\n\
         Written by `cargo xtask subspace report` from `results.jsonl` (one line per run).\n\n\
         ## Scale and command\n\n\
         - Command: `{}`\n\
         - Data: {} training images ({}) for training and for the success criterion, {} \
         test images for test accuracy.\n\
         - Model: Conv-2 (3x3 conv 16 and 32 channels, ReLU, 2x2 average pooling, one \
         dense layer), D = {D}.\n\
         - Every run: {} Adam steps of {} examples ({:.1} epochs); learning rate {} in the \
         full space and for tickets, {} for subspace coordinates; {} basis.\n\
         - {} seeds; {} runs; summed wall time {hours:.2} h on this machine (2 cores, \
         CPU).\n\
         - Full-space training reaches train accuracy {:.3} (test {:.3}), mean over \
         seeds.\n",
        args.command,
        settings.train,
        settings.data,
        settings.test,
        settings.steps,
        settings.batch,
        (settings.steps * settings.batch) as f64 / settings.train as f64,
        settings.lr,
        settings.subspace_lr,
        settings.basis,
        seeds.len(),
        records.len(),
        mean_sd(&full).0,
        mean_sd(&full_test).0,
    )?;

    // Accuracy by d.
    let dims: BTreeSet<usize> = records
        .iter()
        .filter(|r| r.method != "full")
        .map(|r| r.d)
        .collect();
    let smallest = dims.first().copied().unwrap_or(0);
    writeln!(
        md,
        "## Train accuracy by training dimension (mean +- sd over seeds)\n"
    )?;
    table_header(&mut md, &["d", "% of D"], &methods)?;
    for &d in &dims {
        write!(md, "| {d} | {} |", percent_of_d(d))?;
        for m in &methods {
            let values: Vec<f64> = records
                .iter()
                .filter(|r| &r.method == m && r.d == d)
                .map(|r| r.train_accuracy)
                .collect();
            if values.is_empty() {
                write!(md, " |")?;
            } else {
                let (mean, sd) = mean_sd(&values);
                write!(md, " {mean:.3} +- {sd:.3} |")?;
            }
        }
        writeln!(md)?;
    }

    // Success probability and thresholds.
    writeln!(
        md,
        "\n## Success probability at train accuracy >= {} \
         (share of seeds)\n\n![success](success.png)\n",
        args.target
    )?;
    table_header(&mut md, &["d"], &methods)?;
    for &d in &dims {
        write!(md, "| {d} |")?;
        for m in &methods {
            let curve = success_curve(&runs_of(&records, m), args.target);
            match curve.iter().find(|c| c.0 == d) {
                Some((_, p)) => write!(md, " {p:.2} |")?,
                None => write!(md, " |")?,
            }
        }
        writeln!(md)?;
    }
    writeln!(
        md,
        "\n## Threshold training dimension (smallest d from which at least half the \
         seeds reach the target), d and % of D\n\n![thresholds](thresholds.png)\n"
    )?;
    table_header(&mut md, &["target train accuracy"], &methods)?;
    for &target in &args.targets {
        write!(md, "| {target} |")?;
        for m in &methods {
            write!(
                md,
                " {} |",
                threshold_cell(threshold_of(&records, m, target), smallest)
            )?;
        }
        writeln!(md)?;
    }
    writeln!(
        md,
        "\n\"> grid\": not reached at the largest d of the sweep. The grid doubles d, so a \
         threshold is known to within a factor of 2.\n"
    )?;

    // Reference points of COMPANIONS.md.
    let test_at = |method: &str, d: usize| -> String {
        let values: Vec<f64> = records
            .iter()
            .filter(|r| r.method == method && r.d == d)
            .map(|r| r.test_accuracy)
            .collect();
        if values.is_empty() {
            "not run".into()
        } else {
            let (mean, sd) = mean_sd(&values);
            format!("{mean:.3} +- {sd:.3}")
        }
    };
    writeln!(
        md,
        "## Beside the reference runs (authors' code, Conv-2 on MNIST, D = 20,490, 5 \
         epochs of 60,000 images)\n\n\
         | point | reference test accuracy | measured here (test, mean +- sd) |\n\
         |---|---|---|\n\
         | random subspace, d = 512 (2.5% of D) | ~0.95 | {} |\n\
         | burn-in t = 256, d = 8 (0.04% of D) | 0.97 | {} |\n\
         | lottery subspace, d = 32 (0.16% of D) | 0.97 | {} |\n\
         | full space | | {:.3} |\n",
        test_at("random", 512),
        test_at("burn-in-256", 8),
        test_at("lottery", 32),
        mean_sd(&full_test).0
    )?;

    // Lottery subspace against lottery ticket at equal compression.
    writeln!(
        md,
        "## Lottery subspace against lottery ticket at equal compression D/d\n\n\
         ![lottery](lottery.png)\n\n\
         | d | compression D/d | random subspace | lottery subspace | lottery ticket |\n\
         |---|---|---|---|---|"
    )?;
    for &d in &dims {
        let mean_of = |m: &str| {
            let v: Vec<f64> = records
                .iter()
                .filter(|r| r.method == m && r.d == d)
                .map(|r| r.train_accuracy)
                .collect();
            if v.is_empty() {
                String::new()
            } else {
                format!("{:.3}", mean_sd(&v).0)
            }
        };
        writeln!(
            md,
            "| {d} | {:.0} | {} | {} | {} |",
            D as f64 / d as f64,
            mean_of("random"),
            mean_of("lottery"),
            mean_of("ticket")
        )?;
    }

    // The claims, checked on these numbers.
    let threshold = |m: &str| threshold_of(&records, m, args.target);
    let burn_in_thresholds: Vec<(String, Option<usize>)> = methods
        .iter()
        .filter(|m| *m == "random" || m.starts_with("burn-in-"))
        .map(|m| (m.clone(), threshold(m)))
        .collect();
    let rank = |t: Option<usize>| t.unwrap_or(usize::MAX);
    let falls_with_burn_in = burn_in_thresholds
        .windows(2)
        .all(|w| rank(w[1].1) <= rank(w[0].1));
    let rises_with_target = methods.iter().all(|m| {
        args.targets
            .windows(2)
            .all(|w| rank(threshold_of(&records, m, w[0])) <= rank(threshold_of(&records, m, w[1])))
    });
    let (lottery_at, random_at): (Vec<usize>, Vec<usize>) = args
        .targets
        .iter()
        .map(|t| {
            (
                rank(threshold_of(&records, "lottery", *t)),
                rank(threshold_of(&records, "random", *t)),
            )
        })
        .unzip();
    let lottery_beats_random = lottery_at.iter().zip(&random_at).all(|(l, r)| l <= r)
        && lottery_at.iter().zip(&random_at).any(|(l, r)| l < r);
    let random_curve = success_curve(&runs_of(&records, "random"), args.target);
    let transition: Vec<String> = random_curve
        .iter()
        .map(|(d, p)| format!("{d}: {p:.2}"))
        .collect();
    writeln!(
        md,
        "\n## The paper's claims, checked on these runs (target {})\n\n\
         | claim | measured | holds |\n|---|---|---|\n\
         | sharp 0-to-1 transition of success with d (random) | {} | {} |\n\
         | threshold falls with burn-in | {} | {} |\n\
         | threshold rises with the target (every method) | see the threshold table | {} |\n\
         | lottery subspaces beat random ones (threshold, every target) | lottery {}, random {} | {} |\n",
        args.target,
        transition.join(", "),
        yes(random_curve.first().is_some_and(|c| c.1 == 0.0)
            && random_curve.last().is_some_and(|c| c.1 == 1.0)),
        burn_in_thresholds
            .iter()
            .map(|(m, t)| format!("{m} {}", t.map_or("> grid".into(), |d| d.to_string())))
            .collect::<Vec<_>>()
            .join(", "),
        yes(falls_with_burn_in),
        yes(rises_with_target),
        threshold_cell(threshold("lottery"), smallest),
        threshold_cell(threshold("random"), smallest),
        yes(lottery_beats_random),
    )?;

    figures(&args, &records, &methods)?;
    let quadratic_path = args.results.join("quadratic.json");
    if quadratic_path.exists() {
        let result: QuadraticResult =
            serde_json::from_str(&std::fs::read_to_string(&quadratic_path)?)?;
        quadratic_section(&mut md, &result, &args.out)?;
    } else {
        writeln!(
            md,
            "## Quadratic well\n\nNot run (`cargo xtask subspace quadratic`)."
        )?;
    }
    let path = args.out.join("REPORT.md");
    std::fs::write(&path, md)?;
    println!("wrote {} and its figures", path.display());
    Ok(())
}

/// A markdown table's header: the `first` columns, then one per method.
fn table_header(md: &mut String, first: &[&str], methods: &[String]) -> std::fmt::Result {
    let names: Vec<&str> = first
        .iter()
        .copied()
        .chain(methods.iter().map(String::as_str))
        .collect();
    writeln!(md, "| {} |", names.join(" | "))?;
    writeln!(md, "|{}", "---|".repeat(names.len()))
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn figures(args: &ReportArgs, records: &[RunRecord], methods: &[String]) -> anyhow::Result<()> {
    let full_mean = mean_sd(
        &records
            .iter()
            .filter(|r| r.method == "full")
            .map(|r| r.train_accuracy)
            .collect::<Vec<_>>(),
    )
    .0;
    let curves = |f: &dyn Fn(&str) -> Vec<(f64, f64)>| -> Vec<Curve> {
        methods
            .iter()
            .map(|m| Curve {
                label: method_desc(m),
                points: f(m),
                dashed: false,
                colour: None,
            })
            .collect()
    };
    let d_axis = Axis {
        desc: "training dimension d",
        log2: true,
        range: None,
    };
    let success = curves(&|m| {
        success_curve(&runs_of(records, m), args.target)
            .into_iter()
            .map(|(d, p)| (d as f64, p))
            .collect()
    });
    line_chart(
        &args.out.join("success.png"),
        &format!(
            "Conv-2: success probability (train accuracy >= {})",
            args.target
        ),
        Axis { ..d_axis },
        Axis {
            desc: "success probability",
            log2: false,
            range: Some((-0.02, 1.02)),
        },
        &success,
    )?;
    let mut accuracy = curves(&|m| {
        by_d(records, m, false)
            .into_iter()
            .map(|(d, v)| (d as f64, mean_sd(&v).0))
            .collect()
    });
    let dims: Vec<f64> = records
        .iter()
        .filter(|r| r.method != "full")
        .map(|r| r.d as f64)
        .collect();
    let (lo, hi) = dims
        .iter()
        .fold((f64::INFINITY, 0f64), |(a, b), d| (a.min(*d), b.max(*d)));
    accuracy.push(Curve {
        label: "full space".into(),
        points: vec![(lo, full_mean), (hi, full_mean)],
        dashed: true,
        colour: None,
    });
    line_chart(
        &args.out.join("accuracy.png"),
        "Conv-2: train accuracy against training dimension (mean over seeds)",
        Axis {
            desc: "training dimension d",
            log2: true,
            range: None,
        },
        Axis {
            desc: "train accuracy",
            log2: false,
            range: Some((0.0, 1.0)),
        },
        &accuracy,
    )?;
    // Thresholds: target on x, threshold d on a log2 y axis.
    let thresholds: Vec<Curve> = methods
        .iter()
        .map(|m| Curve {
            label: method_desc(m),
            points: args
                .targets
                .iter()
                .filter_map(|t| Some((*t, threshold_of(records, m, *t)? as f64)))
                .collect(),
            dashed: false,
            colour: None,
        })
        .filter(|c| !c.points.is_empty())
        .collect();
    line_chart(
        &args.out.join("thresholds.png"),
        "Threshold training dimension against target train accuracy",
        Axis {
            desc: "target train accuracy",
            log2: false,
            range: None,
        },
        Axis {
            desc: "threshold training dimension",
            log2: true,
            range: None,
        },
        &thresholds,
    )?;
    let lottery: Vec<Curve> = ["random", "lottery", "ticket"]
        .iter()
        .map(|m| Curve {
            label: method_desc(m),
            points: by_d(records, m, false)
                .into_iter()
                .map(|(d, v)| (D as f64 / d as f64, mean_sd(&v).0))
                .collect(),
            dashed: false,
            colour: None,
        })
        .collect();
    line_chart(
        &args.out.join("lottery.png"),
        "Lottery subspace against lottery ticket at equal compression",
        Axis {
            desc: "compression ratio D/d",
            log2: true,
            range: None,
        },
        Axis {
            desc: "train accuracy",
            log2: false,
            range: Some((0.0, 1.0)),
        },
        &lottery,
    )?;
    Ok(())
}

fn quadratic_section(md: &mut String, q: &QuadraticResult, out: &Path) -> anyhow::Result<()> {
    writeln!(
        md,
        "## Quadratic well: empirical success against Gordon's escape\n\n\
         Loss 1/2 (theta - theta*)^T H (theta - theta*), D = {}, Hessian eigenvalues \
         log-spaced from 0.1 to 10, theta* at distance 1 from theta0. Success: a random \
         d-dimensional subspace through theta0 reaches loss <= eps (exact, by least \
         squares); {} subspaces per d. Gordon's escape predicts the threshold D - w^2, \
         w the Gaussian width of the sublevel set projected on the unit sphere around \
         theta0 ({} Monte Carlo samples, each maximum by projected gradient ascent). \
         Command: `cargo xtask subspace quadratic`.\n\n\
         ![quadratic](quadratic.png)\n\n\
         | eps | width w | Gordon D - w^2 | empirical threshold | difference (% of D) |\n\
         |---|---|---|---|---|",
        q.dim, q.trials, q.width_samples
    )?;
    for w in &q.wells {
        let empirical = w
            .empirical_threshold
            .map_or("> D".to_string(), |d| d.to_string());
        let diff = w.empirical_threshold.map_or(String::from("-"), |d| {
            format!(
                "{:+.1}",
                100.0 * (d as f64 - w.gordon_threshold) / q.dim as f64
            )
        });
        writeln!(
            md,
            "| {} | {:.2} | {:.1} | {empirical} | {diff} |",
            w.eps, w.width, w.gordon_threshold
        )?;
    }
    let mut curves: Vec<Curve> = Vec::new();
    for (i, w) in q.wells.iter().enumerate() {
        curves.push(Curve {
            label: format!("eps = {}: measured", w.eps),
            points: w.curve.iter().map(|(d, p)| (*d as f64, *p)).collect(),
            dashed: false,
            colour: Some(i),
        });
        curves.push(Curve {
            label: format!("eps = {}: Gordon D - w^2", w.eps),
            points: vec![(w.gordon_threshold, 0.0), (w.gordon_threshold, 1.0)],
            dashed: true,
            colour: Some(i),
        });
    }
    line_chart(
        &out.join("quadratic.png"),
        "Quadratic well: success probability and Gordon's escape threshold",
        Axis {
            desc: "training dimension d",
            log2: false,
            range: Some((0.0, q.dim as f64 + 1.0)),
        },
        Axis {
            desc: "success probability",
            log2: false,
            range: Some((-0.02, 1.02)),
        },
        &curves,
    )?;
    Ok(())
}
