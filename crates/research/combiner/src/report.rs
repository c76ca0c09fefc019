//! `cargo xtask combiner report`: scaling, language-modelling and recall figures and
//! `REPORT.md` from the JSON-lines results of the other `combiner` commands.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::Pattern;
use clap::Args;

use crate::images::ImageRun;
use crate::runs::ScalingPoint;
use crate::training::{TrainSettings, TrainedRun, read_lines};
use figures::{Axis, Curve, Panel, category_grids, line_chart, line_charts};

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
        "Written by `cargo xtask combiner report` from the result files beside it \
         (`scaling.jsonl`, `lm.jsonl`, `recall.jsonl`, `images.jsonl`). All runs on the CPU \
         (2 cores).\n"
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
        // The latest settings (any seed) are the ones reported.
        let Some(last) = runs.last() else {
            return Ok(());
        };
        let same = |r: &TrainedRun| {
            TrainSettings {
                seed: last.settings.seed,
                ..r.settings.clone()
            } == last.settings
        };
        let runs: Vec<&TrainedRun> = runs.iter().filter(|r| same(r)).collect();
        let first = runs[0];
        let mut seeds: Vec<u64> = runs.iter().map(|r| r.settings.seed).collect();
        seeds.sort();
        seeds.dedup();
        let s = &first.settings;
        writeln!(md, "## {title}\n")?;
        writeln!(
            md,
            "L = {}, width {}, {} heads, {} layer(s), batch {}, {} AdamW steps (lr {}, warm-up {}, cosine to a tenth), seed(s) {:?}; {} parameters for every pattern.\n",
            s.len,
            s.width,
            s.heads,
            s.layers,
            s.batch,
            s.steps,
            s.lr,
            s.warmup,
            seeds,
            first.parameters
        )?;
        writeln!(
            md,
            "| pattern | seeds | {score} (+- spread) | final training loss (nats) | training time |\n|---|---|---|---|---|"
        )?;
        let mut curves = Vec::new();
        let mut ranked = Vec::new();
        for p in Pattern::ALL {
            let mine: Vec<&TrainedRun> = runs
                .iter()
                .copied()
                .filter(|r| r.pattern == p.name())
                .collect();
            let Some(r) = mine.first() else { continue };
            let (m, spread) = mean_and_spread(&mine.iter().map(|r| r.score).collect::<Vec<_>>());
            let last = mine
                .iter()
                .map(|r| r.curve.last().map_or(f64::NAN, |c| c.1))
                .sum::<f64>()
                / mine.len() as f64;
            let seconds = mine.iter().map(|r| r.seconds).sum::<f64>() / mine.len() as f64;
            writeln!(
                md,
                "| {} | {} | {} | {last:.3} | {seconds:.0} s |",
                r.pattern,
                mine.len(),
                match spread {
                    Some(sp) => format!("{m:.4} +- {sp:.4}"),
                    None => format!("{m:.4}"),
                }
            )?;
            ranked.push((p.name(), m, spread));
            curves.push(Curve {
                label: r.pattern.clone(),
                points: r.curve.iter().map(|&(x, y)| (x as f64, y)).collect(),
                dashed: !p.is_combiner() && p != Pattern::Full,
                colour: colour(&r.pattern),
            });
        }
        if seeds.len() > 1 {
            // Best first (low bits, high accuracy), and whether each neighbour is apart by
            // more than their combined spread.
            let higher_is_better = score.contains("accuracy");
            ranked.sort_by(|x, y| {
                if higher_is_better {
                    y.1.total_cmp(&x.1)
                } else {
                    x.1.total_cmp(&y.1)
                }
            });
            let mut order = ranked[0].0.to_string();
            for w in ranked.windows(2) {
                let both = match (w[0].2, w[1].2) {
                    (Some(a), Some(b)) => (a * a + b * b).sqrt(),
                    _ => f64::INFINITY,
                };
                let sep = if (w[1].1 - w[0].1).abs() > both {
                    " > "
                } else {
                    " ~ "
                };
                order.push_str(sep);
                order.push_str(w[1].0);
            }
            writeln!(
                md,
                "\nOrder, best first: {order} (`>`: apart by more than the two patterns' combined seed spread; `~`: within it). Curves: the first seed.\n"
            )?;
            // Each Combiner against its sparse base, judged like the image runs.
            let stat = |p: Pattern| {
                ranked
                    .iter()
                    .find(|r| r.0 == p.name())
                    .map(|r| (r.1, r.2.map(|s| (s, false))))
            };
            let mut pairs = String::new();
            for c in Pattern::PAIRED {
                let sparse = c.sparse_counterpart();
                if let (Some((ms, ss)), Some((mc, sc))) = (stat(sparse), stat(c)) {
                    let (d, spread) = (mc - ms, combined(ss, sc));
                    let per_seed = per_seed_differences(&runs, &seeds, sparse, c);
                    let (dp, paired) = mean_and_spread(&per_seed);
                    let paired = paired.map(|sp| (sp, false));
                    let sign = if higher_is_better { -1.0 } else { 1.0 };
                    writeln!(
                        pairs,
                        "| {} | {} | {d:+.4}{} | {} | {dp:+.4}{} ({} seeds) | {} |",
                        sparse.name(),
                        c.name(),
                        plus_minus(spread, 4),
                        verdict(sign * d, spread),
                        plus_minus(paired, 4),
                        per_seed.len(),
                        verdict(sign * dp, paired)
                    )?;
                }
            }
            if !pairs.is_empty() {
                writeln!(
                    md,
                    "| sparse pattern | its Combiner | Combiner - sparse, equal steps | verdict (outside twice the combined spread) | paired by seed: mean +- spread of the per-seed differences | verdict (outside twice that spread) |\n|---|---|---|---|---|---|\n{pairs}"
                )?;
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
    let images: Vec<ImageRun> = read_lines(&a.results.join("images.jsonl"))?;
    images_section(&mut md, &images, &a.out)?;
    let path = a.out.join("REPORT.md");
    std::fs::write(&path, md)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The paper's CIFAR-10 bits/dim (6 layers, Ren et al. 2021, Table 2) where it gives one.
fn paper_cifar10(p: Pattern) -> Option<f64> {
    match p {
        Pattern::Fixed => Some(3.408),
        Pattern::CombinerFixed => Some(3.321),
        Pattern::Axial => Some(3.666),
        Pattern::CombinerAxial => Some(3.050),
        Pattern::CombinerMixture => Some(3.040),
        _ => None,
    }
}

/// `b`'s score minus `a`'s for each of `seeds` that both were trained with. A seed fixes
/// the initial weights and the data order for every pattern, so these differences pair
/// out what the two runs of a seed share.
fn per_seed_differences(runs: &[&TrainedRun], seeds: &[u64], a: Pattern, b: Pattern) -> Vec<f64> {
    let score = |p: Pattern, seed: u64| {
        runs.iter()
            .find(|r| r.pattern == p.name() && r.settings.seed == seed)
            .map(|r| r.score)
    };
    seeds
        .iter()
        .filter_map(|&seed| Some(score(b, seed)? - score(a, seed)?))
        .collect()
}

/// Mean and spread of a pattern's seeds: the sample standard deviation from 3 seeds on,
/// half the range for 2, none for 1.
pub fn mean_and_spread(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    let spread = match n {
        0 | 1 => None,
        2 => Some((values[0] - values[1]).abs() / 2.0),
        _ => Some((values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()),
    };
    (mean, spread)
}

/// The seed spread pooled over the patterns trained with several seeds (the root mean
/// square of their spreads): the estimate a pattern trained with one seed is judged with.
pub fn pooled_spread(spreads: &[f64]) -> Option<f64> {
    (!spreads.is_empty())
        .then(|| (spreads.iter().map(|s| s * s).sum::<f64>() / spreads.len() as f64).sqrt())
}

/// A pattern's own seed spread, or else the pooled estimate (`true`: estimated).
fn spread_or_pooled(own: Option<f64>, pooled: Option<f64>) -> Option<(f64, bool)> {
    own.map(|s| (s, false)).or(pooled.map(|s| (s, true)))
}

/// A run's held-out bits/dim after `seconds` of training, interpolated between its
/// scores; its final score once training has ended (None before its first score).
pub fn bpd_at_seconds(run: &ImageRun, seconds: f64) -> Option<f64> {
    let &(_, last, final_bpd) = run.held_out.last()?;
    if seconds >= last {
        return Some(final_bpd);
    }
    run.held_out.windows(2).find_map(|w| {
        let ((_, t0, b0), (_, t1, b1)) = (w[0], w[1]);
        (t0 <= seconds && seconds <= t1)
            .then(|| b0 + (b1 - b0) * (seconds - t0) / (t1 - t0).max(1e-12))
    })
}

/// "a +- s", "a +- s (est.)" for a pooled estimate, or "a" when there is no spread.
fn with_spread(mean: f64, spread: Option<(f64, bool)>) -> String {
    match spread {
        Some((s, false)) => format!("{mean:.3} +- {s:.3}"),
        Some((s, true)) => format!("{mean:.3} +- {s:.3} (est.)"),
        None => format!("{mean:.3}"),
    }
}

/// " +- s" to `digits` decimals, or nothing when there is no spread.
fn plus_minus(spread: Option<(f64, bool)>, digits: usize) -> String {
    spread.map_or(String::new(), |(s, _)| format!(" +- {s:.digits$}"))
}

/// The combined spread of two independent means, estimated when either part is.
fn combined(a: Option<(f64, bool)>, b: Option<(f64, bool)>) -> Option<(f64, bool)> {
    Some(((a?.0.powi(2) + b?.0.powi(2)).sqrt(), a?.1 || b?.1))
}

/// Whether a Combiner - sparse difference `d` (bits/dim) is outside twice their combined
/// spread.
fn verdict(d: f64, spread: Option<(f64, bool)>) -> &'static str {
    match spread {
        Some((sp, false)) if d < -2.0 * sp => "better",
        Some((sp, false)) if d > 2.0 * sp => "worse",
        Some((_, false)) => "within the spread",
        Some((sp, true)) if d < -2.0 * sp => "better (estimated spread)",
        Some((sp, true)) if d > 2.0 * sp => "worse (estimated spread)",
        Some((_, true)) => "within the (estimated) spread",
        None if d < 0.0 => "better (one seed)",
        None => "worse (one seed)",
    }
}

/// Autoregressive Fashion-MNIST pixels: the table beside the paper's CIFAR-10 rows, the
/// comparisons at equal steps and equal training time, the curves.
fn images_section(md: &mut String, runs: &[ImageRun], out: &std::path::Path) -> anyhow::Result<()> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let s = &first.settings;
    let by =
        |p: Pattern| -> Vec<&ImageRun> { runs.iter().filter(|r| r.pattern == p.name()).collect() };
    writeln!(
        md,
        "## Image density: Fashion-MNIST pixels
"
    )?;
    writeln!(
        md,
        "Each 28 x 28 image is a sequence of {} pixels in raster order after a start token; a \
         256-way softmax per pixel; test bits/dim over the first {} test images. The same \
         transformer for every pattern: width {}, {} heads, {} layer(s), batch {}, {} AdamW \
         steps (lr {}, warm-up {}, cosine to a tenth), {} parameters, blocks and rows of {} \
         (one image row). Each (pattern, seed) trains in its own process, two at a time, \
         each on one core, so seconds compare across patterns. The paper's figures are \
         CIFAR-10 (32 x 32 x 3 = 3,072 positions, 6 layers, far longer training): they are \
         beside ours for their ordering, not their values.\n",
        s.len,
        first.eval_images,
        s.width,
        s.heads,
        s.layers,
        s.batch,
        s.steps,
        s.lr,
        s.warmup,
        first.parameters,
        s.block.unwrap_or(0)
    )?;
    writeln!(
        md,
        "| pattern | seeds | test bits/dim (+- spread) | seconds per step | peak MB | paper, CIFAR-10 |\n|---|---|---|---|---|---|"
    )?;
    let final_bpd =
        |v: &[&ImageRun]| mean_and_spread(&v.iter().map(|r| r.bits_per_dim).collect::<Vec<_>>());
    let several: Vec<f64> = Pattern::ALL
        .iter()
        .filter_map(|&p| final_bpd(&by(p)).1)
        .collect();
    let pooled = pooled_spread(&several);
    for p in Pattern::ALL {
        let rs = by(p);
        if rs.is_empty() {
            continue;
        }
        let (m, sp) = final_bpd(&rs);
        let sps = rs.iter().map(|r| r.seconds_per_step).sum::<f64>() / rs.len() as f64;
        let mb = rs.iter().map(|r| r.peak_mb).fold(0.0, f64::max);
        writeln!(
            md,
            "| {} | {} | {} | {sps:.2} | {mb:.0} | {} |",
            p.name(),
            rs.len(),
            with_spread(m, spread_or_pooled(sp, pooled)),
            paper_cifar10(p).map_or("-".into(), |v| format!("{v:.3}"))
        )?;
    }
    writeln!(
        md,
        "\nSpread: half the range of two seeds, the standard deviation of three or more. {}\n",
        match pooled {
            Some(p) => format!(
                "A pattern trained with one seed is given the spread pooled over the {} \
                 pattern(s) trained with more (the root mean square of their spreads: {p:.3} \
                 bits/dim), marked est.",
                several.len()
            ),
            None => "Every pattern has one seed, so no spread is known.".into(),
        }
    )?;
    writeln!(
        md,
        "| sparse pattern | its Combiner | equal steps: Combiner - sparse (bits/dim) | equal training time: Combiner - sparse | verdict |\n|---|---|---|---|---|"
    )?;
    for c in Pattern::PAIRED {
        let sparse = c.sparse_counterpart();
        let (rs, rc) = (by(sparse), by(c));
        if rs.is_empty() || rc.is_empty() {
            continue;
        }
        let (ms, ss) = final_bpd(&rs);
        let (mc, sc) = final_bpd(&rc);
        let ss = spread_or_pooled(ss, pooled);
        let steps_spread = combined(ss, spread_or_pooled(sc, pooled));
        // Equal time: the cheaper pattern's mean training seconds are the budget; the
        // dearer one is read at that budget, between its quarterly scores.
        let mean_seconds =
            |v: &[&ImageRun]| v.iter().map(|r| r.seconds).sum::<f64>() / v.len() as f64;
        let budget = mean_seconds(&rs).min(mean_seconds(&rc));
        let at = |v: &[&ImageRun]| -> Option<(f64, Option<f64>)> {
            let at: Vec<f64> = v.iter().filter_map(|r| bpd_at_seconds(r, budget)).collect();
            (at.len() == v.len()).then(|| mean_and_spread(&at))
        };
        let timed = at(&rs).zip(at(&rc)).map(|((s, s_sp), (c, c_sp))| {
            let sp = combined(
                spread_or_pooled(s_sp, pooled),
                spread_or_pooled(c_sp, pooled),
            );
            (c - s, sp)
        });
        writeln!(
            md,
            "| {} | {} | {:+.3}{} | {} | at equal steps {}; at equal time {} |",
            sparse.name(),
            c.name(),
            mc - ms,
            plus_minus(steps_spread, 3),
            timed.map_or("not reached".into(), |(d, sp)| format!(
                "{d:+.3}{} after {budget:.0} s",
                plus_minus(sp, 3)
            )),
            verdict(mc - ms, steps_spread),
            timed.map_or("-", |(d, sp)| verdict(d, sp))
        )?;
    }
    writeln!(
        md,
        "\nEqual training time: the faster pattern's final score against the slower one's \
         held-out score after the same seconds of training (the faster one's mean training \
         time), interpolated between its quarterly scores. The slower run is then part-way \
         through its learning-rate schedule, which a run sized to that budget would have \
         finished, so this is a bound against the slower pattern. Verdicts: better or worse \
         when the difference exceeds twice the combined spread of the two patterns' seeds.\n"
    )?;
    // Curves: each pattern's seed mean of held-out bits/dim against steps and seconds.
    let mean_curve = |rs: &[&ImageRun], x: &dyn Fn(&(usize, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        let n = rs.iter().map(|r| r.held_out.len()).min().unwrap_or(0);
        (0..n)
            .map(|i| {
                let k = rs.len() as f64;
                (
                    rs.iter().map(|r| x(&r.held_out[i])).sum::<f64>() / k,
                    rs.iter().map(|r| r.held_out[i].2).sum::<f64>() / k,
                )
            })
            .collect()
    };
    let curves = |x: &dyn Fn(&(usize, f64, f64)) -> f64| -> Vec<Curve> {
        Pattern::ALL
            .iter()
            .filter(|p| !by(**p).is_empty())
            .map(|&p| Curve {
                label: p.name().into(),
                points: mean_curve(&by(p), x),
                dashed: !p.is_combiner() && p != Pattern::Full,
                colour: colour(p.name()),
            })
            .collect()
    };
    let y = || Axis {
        desc: "test bits/dim",
        log2: false,
        range: None,
    };
    line_charts(
        &out.join("images_bpd.png"),
        "Fashion-MNIST pixel density: held-out bits/dim (mean over seeds)",
        2,
        &[
            Panel {
                title: "at equal steps".into(),
                x: Axis {
                    desc: "training step",
                    log2: false,
                    range: None,
                },
                y: y(),
                curves: curves(&|h| h.0 as f64),
            },
            Panel {
                title: "at equal training time".into(),
                x: Axis {
                    desc: "training seconds (one core)",
                    log2: false,
                    range: None,
                },
                y: y(),
                curves: curves(&|h| h.1),
            },
        ],
    )?;
    writeln!(md, "![held-out bits/dim](images_bpd.png)\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_half_the_range_of_two_and_the_deviation_of_more() {
        assert_eq!(mean_and_spread(&[3.0]), (3.0, None));
        assert_eq!(
            mean_and_spread(&[3.0, 3.4]),
            (3.2, Some(0.19999999999999996))
        );
        let (m, s) = mean_and_spread(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s.unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn differences_pair_the_runs_of_each_seed() {
        let run = |pattern: Pattern, seed: u64, score: f64| TrainedRun {
            pattern: pattern.name().to_string(),
            settings: serde_json::from_value(serde_json::json!({
                "len": 8, "width": 8, "heads": 2, "layers": 1, "batch": 2,
                "steps": 4, "lr": 0.001, "warmup": 0, "seed": seed
            }))
            .unwrap(),
            parameters: 1,
            curve: Vec::new(),
            score,
            seconds: 1.0,
        };
        let runs = [
            run(Pattern::Axial, 1, 3.0),
            run(Pattern::Axial, 2, 3.2),
            run(Pattern::Axial, 3, 3.1),
            run(Pattern::CombinerAxial, 1, 3.1),
            run(Pattern::CombinerAxial, 2, 3.25),
        ];
        let runs: Vec<&TrainedRun> = runs.iter().collect();
        let d = per_seed_differences(&runs, &[1, 2, 3], Pattern::Axial, Pattern::CombinerAxial);
        // Seed 3 has no Combiner run. Unpaired, the seeds' spread (0.1 and 0.075) would
        // hide a difference that every seed shows.
        assert_eq!(d.len(), 2);
        assert!(
            (d[0] - 0.1).abs() < 1e-12 && (d[1] - 0.05).abs() < 1e-12,
            "{d:?}"
        );
        let (m, sp) = mean_and_spread(&d);
        assert_eq!(verdict(m, sp.map(|s| (s, false))), "worse");
    }

    #[test]
    fn one_seed_patterns_are_judged_with_the_pooled_spread() {
        // Spreads 0.03 and 0.04 pool to their root mean square.
        let pooled = pooled_spread(&[0.03, 0.04]).unwrap();
        assert!((pooled - (0.00125f64).sqrt()).abs() < 1e-12);
        assert_eq!(pooled_spread(&[]), None);
        assert_eq!(spread_or_pooled(Some(0.01), Some(0.5)), Some((0.01, false)));
        assert_eq!(spread_or_pooled(None, Some(0.5)), Some((0.5, true)));
        // Two estimated spreads of 0.03 combine to 0.042: a difference of 0.1 is outside
        // twice that, one of 0.05 is not.
        let both = combined(Some((0.03, true)), Some((0.03, false)));
        assert_eq!(verdict(-0.1, both), "better (estimated spread)");
        assert_eq!(verdict(0.1, both), "worse (estimated spread)");
        assert_eq!(verdict(-0.05, both), "within the (estimated) spread");
        assert_eq!(verdict(-0.05, Some((0.01, false))), "better");
        assert_eq!(verdict(0.05, None), "worse (one seed)");
    }

    #[test]
    fn held_out_score_is_interpolated_in_training_time() {
        let run: ImageRun = serde_json::from_value(serde_json::json!({
            "pattern": "axial",
            "settings": {"len": 784, "width": 8, "heads": 2, "layers": 1, "batch": 2,
                "steps": 4, "lr": 0.001, "warmup": 0, "seed": 1, "block": 28},
            "train_images": 10, "eval_images": 2, "parameters": 100, "curve": [],
            "held_out": [[1, 10.0, 5.0], [2, 20.0, 4.0], [4, 40.0, 3.0]],
            "bits_per_dim": 3.0, "seconds": 40.0, "seconds_per_step": 10.0, "peak_mb": 1.0
        }))
        .unwrap();
        assert_eq!(bpd_at_seconds(&run, 15.0), Some(4.5));
        assert_eq!(bpd_at_seconds(&run, 30.0), Some(3.5));
        assert_eq!(bpd_at_seconds(&run, 5.0), None);
        assert_eq!(bpd_at_seconds(&run, 41.0), Some(3.0));
    }

    #[test]
    fn slope_of_a_power_law() {
        let pts: Vec<(f64, f64)> = [256.0, 1024.0, 4096.0]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x.powf(1.5)))
            .collect();
        assert!((super::log_log_slope(&pts).unwrap() - 1.5).abs() < 1e-9);
    }
}
