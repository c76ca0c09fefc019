//! The debias report: what `results.json` holds (every measured decoder's row, the
//! model, INLP and the bias direction), the trade-off figures and `REPORT.md`, drawn from
//! it alone so that `debias report` regenerates them byte for byte.

use std::path::Path;

use anyhow::Context;
use combiner::LmConfig;
use combiner::training::TrainSettings;
use figures::{Axis, Curve, line_chart};
use serde::{Deserialize, Serialize};

use crate::measures::{InlpSummary, mean_and_se};
use crate::runs::TEMPLATES;
use crate::smollm::LlamaConfig;

/// One measured decoder.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Row {
    /// "none", "INLP" or "A-INLP".
    pub(crate) method: String,
    /// INLP: alpha; A-INLP: the floor; none: 1.
    pub(crate) knob: f64,
    /// Ties the row to the model and settings it was measured with.
    pub(crate) fingerprint: String,
    pub(crate) kl_templates: f64,
    pub(crate) hellinger_templates: f64,
    pub(crate) kl_corpus: f64,
    pub(crate) hellinger_corpus: f64,
    /// Standard errors of the corpus means over pairs (absent in older records).
    #[serde(default)]
    pub(crate) kl_corpus_se: f64,
    #[serde(default)]
    pub(crate) hellinger_corpus_se: f64,
    pub(crate) perplexity: f64,
    /// Mean alpha over held-out positions.
    pub(crate) mean_alpha: f64,
    /// Mean lexicon compound score of the generations after "the woman ..." and
    /// "the man ...", and their difference.
    pub(crate) sentiment_female: f64,
    pub(crate) sentiment_male: f64,
    pub(crate) global_gap: f64,
    /// Standard error of the gap: over (template, sample) pairs of generations that drew
    /// the same random numbers when `gaps` is recorded, of independent samples before.
    pub(crate) global_gap_se: f64,
    /// Each corpus pair's Hellinger distance and each (template, sample)'s sentiment gap
    /// (woman - man), in the same order for every decoder, for paired comparisons
    /// (absent in older records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) hellinger_pairs: Vec<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) gaps: Vec<f32>,
    /// (prompt, continuation) for the first sample of the first four templates.
    pub(crate) examples: Vec<(String, String)>,
    pub(crate) seconds: f64,
}

/// Fractions of corpus pairs whose two contexts are both, or only one, bias-sensitive.
#[derive(Serialize, Deserialize)]
pub(crate) struct GateAgreement {
    pub(crate) both: f64,
    pub(crate) one: f64,
}

/// The training record without the vocabulary.
#[derive(Serialize, Deserialize)]
pub(crate) struct ModelSummary {
    pub(crate) config: LmConfig,
    pub(crate) settings: TrainSettings,
    pub(crate) parameters: usize,
    pub(crate) train_words: usize,
    pub(crate) held_out_words: usize,
    pub(crate) held_out_perplexity: f64,
    pub(crate) curve: Vec<(usize, f64)>,
    pub(crate) seconds: f64,
}

fn one() -> f64 {
    1.0
}

/// The model a run studied: trained here, or pretrained and read from a file.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum ModelRecord {
    Trained(ModelSummary),
    Pretrained(PretrainedSummary),
}

#[derive(Serialize, Deserialize)]
pub(crate) struct PretrainedSummary {
    pub(crate) name: String,
    /// Where the weights came from.
    pub(crate) source: String,
    pub(crate) config: LlamaConfig,
    pub(crate) parameters: usize,
}

/// The run's settings that the report states (the rest are in `model`).
#[derive(Serialize, Deserialize)]
pub(crate) struct ReportedSettings {
    pub(crate) iterations: usize,
    pub(crate) token_threshold: f64,
    pub(crate) band: f64,
    pub(crate) samples: usize,
    pub(crate) max_new: usize,
}

/// Everything the report and figures are drawn from (`results.json`).
#[derive(Serialize, Deserialize)]
pub(crate) struct Results {
    pub(crate) model: ModelRecord,
    /// Held-out tokens per word (Brown words and one sentence end each): the exponent
    /// that turns per-token perplexity into per-word perplexity (1 for the word model).
    #[serde(default = "one")]
    pub(crate) tokens_per_word: f64,
    /// Definitional pairs left out because a word is not a single token.
    #[serde(default)]
    pub(crate) definitional_pairs_dropped: Vec<(String, String)>,
    pub(crate) sentences_training: usize,
    pub(crate) sentences_held_out: usize,
    pub(crate) definitional_pairs: Vec<(String, String)>,
    pub(crate) frequency_cosine: f64,
    pub(crate) most_female: Vec<(String, f64)>,
    pub(crate) most_male: Vec<(String, f64)>,
    pub(crate) inlp: InlpSummary,
    pub(crate) held_out_sensitive_fraction: f64,
    pub(crate) sensitive_tokens: usize,
    pub(crate) corpus_pairs: usize,
    pub(crate) corpus_gate: GateAgreement,
    pub(crate) rows: Vec<Row>,
    pub(crate) settings: ReportedSettings,
}

/// The figures and REPORT.md in `dir` from `results`. A pretrained model's report sits
/// in a folder inside the word model's; it reads that `results.json` for the figure and
/// section comparing the two.
pub(crate) fn write_report(dir: &Path, results: &Results) -> anyhow::Result<()> {
    figures(dir, &results.rows)?;
    let word = match &results.model {
        ModelRecord::Pretrained(_) => match dir.parent().map(|p| p.join("results.json")) {
            Some(path) if path.exists() => Some(read_results(&path)?),
            _ => None,
        },
        ModelRecord::Trained(_) => None,
    };
    if let Some(word) = &word {
        both_models_figure(&dir.join("tradeoff_both.png"), word, results)?;
    }
    std::fs::write(dir.join("REPORT.md"), report(results, word.as_ref()))?;
    println!("report in {}", dir.display());
    Ok(())
}

fn read_results(path: &Path) -> anyhow::Result<Results> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (written by `debias run`)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `debias report`: the figures and REPORT.md from a committed results.json, and those
/// of SmolLM2 in `smollm2/` when its results are there.
pub(crate) fn report_only(dir: &Path) -> anyhow::Result<()> {
    write_report(dir, &read_results(&dir.join("results.json"))?)?;
    let inner = dir.join("smollm2");
    if inner.join("results.json").exists() {
        write_report(&inner, &read_results(&inner.join("results.json"))?)?;
    }
    Ok(())
}

/// Per-word perplexity from per-token: exp(nats per token * tokens per word).
fn per_word(r: &Results, per_token: f64) -> f64 {
    per_token.powf(r.tokens_per_word)
}

/// Local bias against per-word perplexity for both models, INLP and A-INLP each.
fn both_models_figure(path: &Path, word: &Results, smol: &Results) -> anyhow::Result<()> {
    let mut curves = Vec::new();
    for (k, (name, r)) in [("Brown word LM", word), ("SmolLM2-135M", smol)]
        .into_iter()
        .enumerate()
    {
        for (j, (method, label)) in [("INLP", "INLP"), ("A-INLP", "A-INLP (gated)")]
            .into_iter()
            .enumerate()
        {
            curves.push(Curve {
                label: format!("{name}: {label}"),
                points: curve_points(&r.rows, method, |x| x.hellinger_corpus)
                    .into_iter()
                    .map(|(p, h)| (per_word(r, p), h))
                    .collect(),
                dashed: j == 1,
                colour: Some(2 * k + j),
            });
        }
        curves.push(Curve {
            label: format!("{name}: A-INLP, paper rule"),
            points: r
                .rows
                .iter()
                .filter(|x| x.method == PAPER)
                .map(|x| (per_word(r, x.perplexity), x.hellinger_corpus))
                .collect(),
            dashed: false,
            colour: Some(4 + k),
        });
    }
    line_chart(
        path,
        "Local bias vs per-word perplexity, both language models",
        Axis {
            desc: "held-out perplexity per Brown word (log scale)",
            log2: true,
            range: None,
        },
        Axis {
            desc: "local bias: mean Hellinger distance (corpus pairs)",
            log2: false,
            range: None,
        },
        &curves,
    )
}

/// The report of a pretrained model; `word` is the Brown word model's results.
fn pretrained_report(r: &Results, p: &PretrainedSummary, word: Option<&Results>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let c = &p.config;
    let undebiased = r.rows.iter().find(|x| x.method == "none");
    let _ = writeln!(
        s,
        "# debias on {}: local and global bias, INLP and A-INLP\n",
        p.name
    );
    let _ = writeln!(
        s,
        "Generated by `cargo xtask debias run --lm smollm2`; regenerated from \
         `results.json` by `cargo xtask debias report`. Liang, Wu, Morency, Salakhutdinov, \
         *Towards Understanding and Mitigating Social Biases in Language Models*, ICML \
         2021, on a pretrained model read with candle.\n"
    );
    let _ = writeln!(s, "## Model and corpus\n");
    let _ = writeln!(
        s,
        "- Model: {} ({}; Apache-2.0), a llama decoder: {} layers, width {}, {} query heads \
         sharing {} key/value heads, SiLU-gated MLP of {}, vocabulary {} byte-level BPE \
         tokens, {} parameters (embedding tied to the output layer). Q4_1 weights expanded \
         to f32 at load. **It is the Instruct variant** (supervised and preference tuned \
         for chat), not the base model: it is read here as a plain text model, with no chat \
         template, as the paper reads GPT-2.",
        p.name, p.source, c.layers, c.width, c.heads, c.kv_heads, c.hidden, c.vocab, p.parameters
    );
    let _ = writeln!(
        s,
        "- Corpus: the Brown corpus as for the word model (every 20th sentence held out: \
         {} training, {} held-out sentences), written back as ordinary text (no space \
         before punctuation, `` and '' as double quotes, first letter capitalised), one \
         sentence per line. The held-out text is {:.3} tokens per Brown word (words plus \
         one sentence end).",
        r.sentences_training, r.sentences_held_out, r.tokens_per_word
    );
    if let Some(u) = undebiased {
        let _ = writeln!(
            s,
            "- Held-out perplexity, windows of 256 tokens: **{:.2} per token, {:.1} per \
             word**.\n",
            u.perplexity,
            per_word(r, u.perplexity)
        );
    }
    let _ = writeln!(
        s,
        "Gendered words and subword tokens: a definitional pair enters the bias direction \
         only when both of its words, with the leading space they have inside a sentence \
         and in the casing they have more often in the training text (\" she\", \
         \" Mary\"), are single tokens; {}. Counterfactual contexts swap whole words in \
         the text, each keeping its case (\"She\" -> \"He\"), and are tokenised \
         afterwards, so a word that splits into several tokens is swapped whole.\n",
        if r.definitional_pairs_dropped.is_empty() {
            "all 11 are".to_string()
        } else {
            format!(
                "left out: {}",
                r.definitional_pairs_dropped
                    .iter()
                    .map(|(f, m)| format!("{f}/{m}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    sections(r, &mut s);
    let pick = |method: &str, knob: f64| {
        r.rows
            .iter()
            .find(|x| x.method == method && (x.knob - knob).abs() < 1e-9)
    };
    let _ = writeln!(s, "## Statistical power\n");
    if let (Some(u), Some(full)) = (undebiased, pick("INLP", 0.0)) {
        let effect = full.global_gap - u.global_gap;
        // Paired by (template, sample) when both rows keep their gaps: the same prompts
        // and random numbers for both decoders.
        let n = u.gaps.len();
        let (se, how, shared) = if n >= 2 && full.gaps.len() == n {
            (
                paired_se(n, |k| full.gaps[k] as f64 - u.gaps[k] as f64),
                "paired by template and sample",
                ", the woman and the man prompt of each sample drawing the same random numbers",
            )
        } else {
            (
                (full.global_gap_se.powi(2) + u.global_gap_se.powi(2)).sqrt(),
                "as if independent",
                "",
            )
        };
        let _ = writeln!(
            s,
            "- Global bias: {} generations per template and gender ({} per gender){shared}. The \
             undebiased gap is {:+.3} +- {:.3}; full INLP moves it by {:+.3}. The standard \
             error of a gap is {:.3}, {} a third of that effect ({:.3}); the effect is {:.1} \
             standard errors of the difference ({:.3}, {how}).",
            r.settings.samples,
            r.settings.samples * TEMPLATES.len(),
            u.global_gap,
            u.global_gap_se,
            effect,
            u.global_gap_se,
            if u.global_gap_se < effect.abs() / 3.0 {
                "under"
            } else {
                "not under"
            },
            effect.abs() / 3.0,
            effect.abs() / se.max(1e-12),
            se
        );
        let _ = writeln!(
            s,
            "- Local bias: each corpus mean is over {} counterfactual pairs; its standard \
             error is in the table (undebiased: {:.4}). The A-INLP comparisons above give \
             each difference with its standard error.\n",
            r.corpus_pairs, u.hellinger_corpus_se
        );
    }
    if let Some(w) = word {
        let _ = writeln!(s, "## Beside the Brown word model\n");
        let _ = writeln!(
            s,
            "Perplexity per word puts both models on one axis: the word model's tokens are \
             Brown's words plus `<eos>`, so its per-token perplexity is already per word; \
             SmolLM2's is exp(mean nats per token x {:.3} tokens per word). The word model \
             still has the easier task: it predicts `<unk>` for every word outside its \
             5,000 and was trained on Brown itself.\n",
            r.tokens_per_word
        );
        let _ = writeln!(s, "![both models](tradeoff_both.png)\n");
        fn summary(x: &Results) -> (Option<&Row>, usize, usize) {
            let u = x.rows.iter().find(|y| y.method == "none");
            let compared: Vec<(f64, f64)> = x
                .rows
                .iter()
                .filter(|y| y.method != "none" && y.method != "INLP")
                .filter_map(|y| inlp_at(&x.rows, y.perplexity).map(|i| (y.hellinger_corpus, i)))
                .collect();
            let better = compared.iter().filter(|(a, i)| a < i).count();
            (u, better, compared.len())
        }
        let _ = writeln!(
            s,
            "| model | per-word perplexity | local bias (Hellinger, corpus) | INLP classifier accuracy before / after | A-INLP points below INLP's curve |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for (name, x) in [("Brown word LM", w), (p.name.as_str(), r)] {
            let (u, better, compared) = summary(x);
            if let Some(u) = u {
                let _ = writeln!(
                    s,
                    "| {name} | {:.1} | {:.4} | {:.3} / {:.3} | {better} of {compared} |",
                    per_word(x, u.perplexity),
                    u.hellinger_corpus,
                    x.inlp.test_accuracy_before,
                    x.inlp.test_accuracy_after
                );
            }
        }
        let _ = writeln!(s);
    }
    s
}

/// A-INLP with the paper's own alpha rule, max(1 - |bias|, 0.6) on bias-sensitive steps.
pub(crate) const PAPER: &str = "A-INLP (paper rule)";

pub(crate) fn order(method: &str) -> usize {
    match method {
        "none" => 0,
        "INLP" => 1,
        "A-INLP" => 2,
        _ => 3,
    }
}

/// Each method's points, the undebiased model first (alpha 1 is the same decoder).
fn curve_points(rows: &[Row], method: &str, y: impl Fn(&Row) -> f64) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r.method == "none" || r.method == method)
        .map(|r| (r.perplexity, y(r)))
        .collect()
}

fn figures(dir: &Path, rows: &[Row]) -> anyhow::Result<()> {
    type Metric = fn(&Row) -> f64;
    let charts: [(&str, &str, &str, Metric); 3] = [
        (
            "tradeoff.png",
            "Local bias vs perplexity (Brown, held-out counterfactual pairs)",
            "local bias: mean Hellinger distance",
            |r| r.hellinger_corpus,
        ),
        (
            "tradeoff_kl.png",
            "Local bias vs perplexity (Brown, held-out counterfactual pairs)",
            "local bias: mean KL(p_male || p_female), nats",
            |r| r.kl_corpus,
        ),
        (
            "global.png",
            "Global bias vs perplexity (template generations)",
            "global bias: |sentiment(woman) - sentiment(man)|",
            |r| r.global_gap.abs(),
        ),
    ];
    for (file, title, y, value) in charts {
        chart(&dir.join(file), title, y, value, rows)?;
    }
    // The low-cost end, where A-INLP lives: INLP only up to a little past A-INLP's reach.
    let undebiased = rows
        .iter()
        .find(|r| r.method == "none")
        .map_or(0.0, |r| r.perplexity);
    let reach = rows
        .iter()
        .filter(|r| r.method != "INLP")
        .map(|r| r.perplexity)
        .fold(undebiased, f64::max);
    let limit = undebiased + 1.5 * (reach - undebiased) + 0.5;
    let near: Vec<Row> = rows
        .iter()
        .filter(|r| r.perplexity <= limit)
        .cloned()
        .collect();
    chart(
        &dir.join("tradeoff_zoom.png"),
        "Local bias vs perplexity, the low-cost end",
        "local bias: mean Hellinger distance",
        |r| r.hellinger_corpus,
        &near,
    )
}

/// INLP and A-INLP curves (each starting at the undebiased model) and the paper-rule
/// point, `value` against perplexity.
fn chart(
    path: &Path,
    title: &str,
    y: &str,
    value: fn(&Row) -> f64,
    rows: &[Row],
) -> anyhow::Result<()> {
    let mut curves: Vec<Curve> = [
        ("INLP", "INLP: alpha 1 -> 0 at every step"),
        ("A-INLP", "A-INLP: alpha 1 -> 0 on bias-sensitive steps"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (m, label))| Curve {
        label: label.to_string(),
        points: curve_points(rows, m, value),
        dashed: i == 1,
        colour: Some(i),
    })
    .collect();
    curves.push(Curve {
        label: "A-INLP, paper rule: alpha = max(1 - |bias|, 0.6)".into(),
        points: rows
            .iter()
            .filter(|r| r.method == PAPER)
            .map(|r| (r.perplexity, value(r)))
            .collect(),
        dashed: false,
        colour: Some(2),
    });
    line_chart(
        path,
        title,
        Axis {
            desc: "held-out perplexity",
            log2: false,
            range: None,
        },
        Axis {
            desc: y,
            log2: false,
            range: None,
        },
        &curves,
    )
}

/// INLP's local bias at `perplexity`, interpolated along its curve (None outside it).
fn inlp_at(rows: &[Row], perplexity: f64) -> Option<f64> {
    inlp_at_by(rows, perplexity, |r| r.hellinger_corpus)
}

/// `value` along INLP's curve at `perplexity`, interpolated (None outside it).
fn inlp_at_by(rows: &[Row], perplexity: f64, value: impl Fn(&Row) -> f64) -> Option<f64> {
    inlp_bracket(rows, perplexity).map(|b| b.at(value(b.lo), value(b.hi)))
}

/// Where a perplexity falls on INLP's curve (the undebiased row is its alpha-1 end): the
/// rows on either side and how far along from the first.
struct Bracket<'a> {
    lo: &'a Row,
    hi: &'a Row,
    /// Perplexity above `lo`'s.
    along: f64,
    /// `hi`'s perplexity above `lo`'s.
    span: f64,
}

impl Bracket<'_> {
    /// A value interpolated between `lo`'s (`y0`) and `hi`'s (`y1`).
    fn at(&self, y0: f64, y1: f64) -> f64 {
        y0 + (y1 - y0) * self.along / self.span
    }
}

fn inlp_bracket(rows: &[Row], perplexity: f64) -> Option<Bracket<'_>> {
    let mut curve: Vec<&Row> = rows
        .iter()
        .filter(|r| r.method == "none" || r.method == "INLP")
        .collect();
    curve.sort_by(|x, y| x.perplexity.total_cmp(&y.perplexity));
    curve.windows(2).find_map(|w| {
        let (x0, x1) = (w[0].perplexity, w[1].perplexity);
        (x0 <= perplexity && perplexity <= x1).then(|| Bracket {
            lo: w[0],
            hi: w[1],
            along: perplexity - x0,
            span: (x1 - x0).max(1e-12),
        })
    })
}

/// Standard error of the mean of `n` paired differences `difference(i)`.
fn paired_se(n: usize, difference: impl Fn(usize) -> f64) -> f64 {
    let d: Vec<f64> = (0..n).map(difference).collect();
    mean_and_se(&d).1
}

/// Standard error of `row`'s corpus Hellinger minus INLP's at the same perplexity,
/// paired over the counterfactual pairs every decoder is measured on (None when a row
/// lacks its per-pair values).
fn paired_se_against_inlp(row: &Row, b: &Bracket) -> Option<f64> {
    let n = row.hellinger_pairs.len();
    let (lo, hi) = (&b.lo.hellinger_pairs, &b.hi.hellinger_pairs);
    (n >= 2 && lo.len() == n && hi.len() == n).then(|| {
        paired_se(n, |i| {
            row.hellinger_pairs[i] as f64 - b.at(lo[i] as f64, hi[i] as f64)
        })
    })
}

fn report(r: &Results, word: Option<&Results>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let m = match &r.model {
        ModelRecord::Trained(m) => m,
        ModelRecord::Pretrained(p) => return pretrained_report(r, p, word),
    };
    let _ = writeln!(
        s,
        "# debias: local and global bias of a Brown-corpus language model, INLP and A-INLP\n"
    );
    let _ = writeln!(
        s,
        "Generated by `cargo xtask debias run` (every figure below is from one run). \
         Liang, Wu, Morency, Salakhutdinov, *Towards Understanding and Mitigating Social \
         Biases in Language Models*, ICML 2021.\n"
    );
    let _ = writeln!(s, "## Model and corpus\n");
    let _ = writeln!(
        s,
        "- Corpus: the Brown corpus (1,161,192 words in 57,340 sentences as fetched by \
         `cargo xtask data brown`), every 20th sentence held out: {} training sentences \
         ({} tokens with `<eos>`), {} held-out sentences ({} tokens).",
        r.sentences_training, m.train_words, r.sentences_held_out, m.held_out_words
    );
    let _ = writeln!(
        s,
        "- Model: word-level pre-LN transformer (full causal attention), vocabulary {} \
         (lower-cased, `<unk>` and `<eos>` included), context {} words, width {}, {} layers, \
         {} heads, {} parameters.",
        m.config.vocab, m.config.len, m.config.width, m.config.layers, m.config.heads, m.parameters
    );
    let _ = writeln!(
        s,
        "- Training: {} AdamW steps of {} windows, peak learning rate {}, seed {}; \
         **{:.0} s** on this machine's 2 CPU cores; held-out perplexity **{:.1}**.\n",
        m.settings.steps,
        m.settings.batch,
        m.settings.lr,
        m.settings.seed,
        m.seconds,
        m.held_out_perplexity
    );
    sections(r, &mut s);
    s
}

/// The sections every report shares: bias direction, INLP, the results table and
/// figures, the A-INLP comparison, sample generations.
fn sections(r: &Results, s: &mut String) {
    use std::fmt::Write;
    let a = &r.settings;
    let pretrained = matches!(r.model, ModelRecord::Pretrained(_));
    let _ = writeln!(s, "## Bias direction and bias-sensitive tokens\n");
    let _ = writeln!(
        s,
        "First principal component of the output embeddings of {} definitional pairs ({}), \
         each pair centred on its mean. The embeddings are first centred and their \
         frequency direction (the covariance of each coordinate with log count) removed: \
         the male word is the more frequent in Brown in most pairs (he 9,548 against she \
         2,860; not mother/father or female/male), and the direction found \
         without that step has cosine {:+.2} with the frequency direction, which makes \
         frequent function words (\"the\", \",\", \"and\") look male. A token's bias is \
         the cosine of its cleaned output embedding with the direction (positive: female).\n",
        r.definitional_pairs.len(),
        r.definitional_pairs
            .iter()
            .map(|(f, m)| format!("{f}/{m}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.frequency_cosine
    );
    let list = |v: &[(String, f64)]| {
        v.iter()
            .map(|(w, b)| format!("{w} ({b:+.2})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "- Most female-leaning: {}", list(&r.most_female));
    let _ = writeln!(s, "- Most male-leaning: {}\n", list(&r.most_male));
    let _ = writeln!(
        s,
        "Bias-sensitive tokens: the {} tokens whose |cosine| is at least {} ({}). A \
         decoding step is bias-sensitive \
         when its bias, the sum over its top-p (p = 0.7) candidates of probability times \
         cosine for the bias-sensitive ones, renormalised by the nucleus mass, exceeds {} in \
         magnitude: {:.1}% of held-out steps.\n",
        r.sensitive_tokens,
        a.token_threshold,
        if pretrained {
            "of all 49,152 subword tokens, most of which never occur in Brown; the lists \
             above show only tokens seen at least 5 times in the training sentences"
        } else {
            "the output embeddings of a 1.7 M-parameter model are noisy, so words with no \
             gender meaning sit next to the gendered ones"
        },
        a.band,
        100.0 * r.held_out_sensitive_fraction
    );
    let i = &r.inlp;
    let _ = writeln!(s, "## INLP\n");
    let _ = writeln!(
        s,
        "Final hidden states of {} female and {} male contexts cut from training sentences \
         that mention one gender (split 60/20/20 into train, dev and test). Ridge \
         least-squares classifiers; rounds stop when the dev accuracy is within 0.01 of \
         chance (at most {}). **{} directions removed**; dev accuracy by round: {}. A fresh \
         classifier's test accuracy: **{:.3} before, {:.3} after** the projection.\n",
        i.examples_per_gender,
        i.examples_per_gender,
        a.iterations,
        i.directions_removed,
        i.dev_accuracies
            .iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        i.test_accuracy_before,
        i.test_accuracy_after
    );
    let _ = writeln!(s, "## Results\n");
    let _ = writeln!(
        s,
        "Local bias: mean over counterfactual pairs (male context first) of KL and Hellinger \
         between next-token distributions: {} template pairs (\"the man/woman was known \
         for\", ...) and {} held-out Brown contexts with every gendered word swapped. Global \
         bias: mean lexicon compound score (VADER's lexicon, a stand-in for the paper's \
         regard classifier) of {} top-p (0.9) generations of at most {} words per template \
         and gender; the gap is woman minus man. Perplexity: held-out, teacher-forced, \
         debiased at every position. INLP mixes h' = alpha h + (1 - alpha) P h at every \
         step. A-INLP keeps alpha = 1 on steps that are not bias-sensitive; on the others \
         the paper's rule uses max(1 - |bias|, 0.6), and the A-INLP curve uses the swept \
         alpha, so that INLP and A-INLP meet point by point on the same knob.\n",
        TEMPLATES.len(),
        r.corpus_pairs,
        a.samples,
        a.max_new
    );
    if pretrained {
        let _ = writeln!(
            s,
            "| decoder | KL templates | Hellinger templates | KL corpus | Hellinger corpus (+- s.e.) | perplexity per token | per word | mean alpha | sentiment woman | sentiment man | global gap (+- s.e.) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    } else {
        let _ = writeln!(
            s,
            "| decoder | KL templates | Hellinger templates | KL corpus | Hellinger corpus | perplexity | mean alpha | sentiment woman | sentiment man | global gap (+- s.e.) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    }
    for row in &r.rows {
        let name = match row.method.as_str() {
            "none" => "undebiased".to_string(),
            "INLP" => format!("INLP, alpha {}", row.knob),
            "A-INLP" => format!("A-INLP, alpha {}", row.knob),
            _ => "A-INLP, paper rule".to_string(),
        };
        if pretrained {
            let _ = writeln!(
                s,
                "| {name} | {:.4} | {:.4} | {:.4} | {:.4} +- {:.4} | {:.2} | {:.1} | {:.3} | {:+.3} | {:+.3} | {:+.3} +- {:.3} |",
                row.kl_templates,
                row.hellinger_templates,
                row.kl_corpus,
                row.hellinger_corpus,
                row.hellinger_corpus_se,
                row.perplexity,
                per_word(r, row.perplexity),
                row.mean_alpha,
                row.sentiment_female,
                row.sentiment_male,
                row.global_gap,
                row.global_gap_se
            );
            continue;
        }
        let _ = writeln!(
            s,
            "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.2} | {:.3} | {:+.3} | {:+.3} | {:+.3} +- {:.3} |",
            row.kl_templates,
            row.hellinger_templates,
            row.kl_corpus,
            row.hellinger_corpus,
            row.perplexity,
            row.mean_alpha,
            row.sentiment_female,
            row.sentiment_male,
            row.global_gap,
            row.global_gap_se
        );
    }
    let _ = writeln!(
        s,
        "\n![local bias vs perplexity](tradeoff.png)\n\n![the low-cost end](tradeoff_zoom.png)\n\n![KL](tradeoff_kl.png)\n\n![global bias](global.png)\n"
    );
    let pick = |method: &str, knob: f64| {
        r.rows
            .iter()
            .find(|x| x.method == method && (x.knob - knob).abs() < 1e-9)
    };
    let _ = writeln!(s, "## Does A-INLP give a better trade-off than INLP?\n");
    let mut better = 0;
    let mut compared = 0;
    for row in r
        .rows
        .iter()
        .filter(|x| x.method != "none" && x.method != "INLP")
    {
        if let Some(inlp) = inlp_at(&r.rows, row.perplexity) {
            compared += 1;
            if row.hellinger_corpus < inlp {
                better += 1;
            }
            if pretrained {
                // Paired over the counterfactual pairs when each row keeps its per-pair
                // values; otherwise as if independent, which overstates it.
                let bracket = inlp_bracket(&r.rows, row.perplexity);
                let paired = bracket
                    .as_ref()
                    .and_then(|b| paired_se_against_inlp(row, b));
                let (se, how) = match paired {
                    Some(se) => (
                        se,
                        format!("paired over {} pairs", row.hellinger_pairs.len()),
                    ),
                    None => (
                        (row.hellinger_corpus_se.powi(2)
                            + inlp_at_by(&r.rows, row.perplexity, |x| x.hellinger_corpus_se)
                                .unwrap_or(0.0)
                                .powi(2))
                        .sqrt(),
                        "as if independent".to_string(),
                    ),
                };
                let d = row.hellinger_corpus - inlp;
                let _ = writeln!(
                    s,
                    "- {} {}: perplexity {:.2}, Hellinger {:.4}; INLP at the same perplexity: {:.4} ({:+.1}%); difference {:+.4} +- {:.4} ({how}; z = {:+.1}).",
                    row.method,
                    row.knob,
                    row.perplexity,
                    row.hellinger_corpus,
                    inlp,
                    100.0 * (row.hellinger_corpus / inlp - 1.0),
                    d,
                    se,
                    d / se.max(1e-12)
                );
                continue;
            }
            let _ = writeln!(
                s,
                "- {} {}: perplexity {:.2}, Hellinger {:.4}; INLP at the same perplexity: {:.4} ({:+.1}%).",
                row.method,
                row.knob,
                row.perplexity,
                row.hellinger_corpus,
                inlp,
                100.0 * (row.hellinger_corpus / inlp - 1.0)
            );
        }
    }
    let _ = writeln!(
        s,
        "\n**{better} of {compared}** A-INLP points lie below the INLP curve (lower local \
         bias at equal perplexity, interpolated along INLP's alpha sweep).\n"
    );
    let _ = write!(
        s,
        "A-INLP decides per context: of the {} corpus pairs, {:.1}% have both contexts \
         bias-sensitive and {:.1}% only one.",
        r.corpus_pairs,
        100.0 * r.corpus_gate.both,
        100.0 * r.corpus_gate.one
    );
    let undebiased = pick("none", 1.0).map(|x| x.hellinger_corpus);
    let strongest = pick("A-INLP", 0.0).map(|x| x.hellinger_corpus);
    if let (Some(u), Some(a0)) = (undebiased, strongest)
        && a0 > u
    {
        let _ = write!(
            s,
            " At alpha 0, A-INLP's local bias ({a0:.4}) exceeds the undebiased model's \
             ({u:.4}): where only one side of a pair is projected, a strong projection moves \
             that side's distribution away from its counterfactual, which adds local bias \
             instead of removing it."
        );
    }
    let _ = writeln!(s, "\n");
    let _ = writeln!(
        s,
        "## Sample generations (first sample, same random numbers)\n"
    );
    for (title, row) in [
        ("undebiased", pick("none", 1.0)),
        ("INLP, alpha 0.5", pick("INLP", 0.5)),
        ("A-INLP, alpha 0.5", pick("A-INLP", 0.5)),
        ("A-INLP, paper rule", pick(PAPER, 0.6)),
        ("INLP, alpha 0 (fully projected)", pick("INLP", 0.0)),
    ] {
        let Some(row) = row else { continue };
        let _ = writeln!(s, "**{title}**\n");
        for (p, c) in &row.examples {
            let _ = writeln!(s, "- *{p}* {c}");
        }
        let _ = writeln!(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, knob: f64, perplexity: f64, hellinger: f64) -> Row {
        Row {
            method: method.into(),
            knob,
            fingerprint: String::new(),
            kl_templates: 0.0,
            hellinger_templates: 0.0,
            kl_corpus: 0.0,
            hellinger_corpus: hellinger,
            kl_corpus_se: 0.0,
            hellinger_corpus_se: 0.0,
            perplexity,
            mean_alpha: 1.0,
            sentiment_female: 0.0,
            sentiment_male: 0.0,
            global_gap: 0.0,
            global_gap_se: 0.0,
            hellinger_pairs: Vec::new(),
            gaps: Vec::new(),
            examples: Vec::new(),
            seconds: 0.0,
        }
    }

    #[test]
    fn inlp_curve_is_interpolated_from_the_undebiased_point() {
        let rows = [
            row("none", 1.0, 90.0, 0.10),
            row("INLP", 0.5, 100.0, 0.08),
            row("INLP", 0.0, 120.0, 0.07),
            row("A-INLP", 0.5, 95.0, 0.085),
        ];
        assert!((inlp_at(&rows, 95.0).unwrap() - 0.09).abs() < 1e-12);
        assert!((inlp_at(&rows, 110.0).unwrap() - 0.075).abs() < 1e-12);
        assert_eq!(inlp_at(&rows, 80.0), None);
        assert_eq!(inlp_at(&rows, 130.0), None);
    }

    fn results(model: ModelRecord, tokens_per_word: f64, rows: Vec<Row>) -> Results {
        Results {
            model,
            tokens_per_word,
            definitional_pairs_dropped: vec![("gal".into(), "guy".into())],
            sentences_training: 100,
            sentences_held_out: 5,
            definitional_pairs: vec![("woman".into(), "man".into())],
            frequency_cosine: -0.1,
            most_female: vec![(" she".into(), 0.5)],
            most_male: vec![(" he".into(), -0.5)],
            inlp: InlpSummary {
                examples_per_gender: 10,
                directions_removed: 3,
                dev_accuracies: vec![0.9, 0.6],
                test_accuracy_before: 0.9,
                test_accuracy_after: 0.55,
            },
            held_out_sensitive_fraction: 0.05,
            sensitive_tokens: 40,
            corpus_pairs: 1000,
            corpus_gate: GateAgreement {
                both: 0.1,
                one: 0.1,
            },
            rows,
            settings: ReportedSettings {
                iterations: 80,
                token_threshold: 0.2,
                band: 0.02,
                samples: 100,
                max_new: 20,
            },
        }
    }

    #[test]
    fn a_pretrained_report_gives_per_word_perplexity_power_and_the_word_model_beside_it() {
        // Four counterfactual pairs and four (template, sample) gaps per decoder, kept
        // when `paired`.
        let rows = |scale: f64, paired: bool| {
            let keep = |v: [f32; 4]| if paired { v.to_vec() } else { Vec::new() };
            let mut none = row("none", 1.0, 20.0 * scale, 0.20);
            none.hellinger_corpus_se = 0.004;
            none.hellinger_pairs = keep([0.19, 0.21, 0.18, 0.22]);
            none.global_gap = 0.01;
            none.global_gap_se = 0.01;
            none.gaps = keep([0.02, 0.0, 0.03, -0.01]);
            let mut inlp0 = row("INLP", 0.0, 40.0 * scale, 0.15);
            inlp0.hellinger_corpus_se = 0.004;
            inlp0.hellinger_pairs = keep([0.14, 0.16, 0.13, 0.17]);
            inlp0.global_gap = -0.08;
            inlp0.global_gap_se = 0.01;
            inlp0.gaps = keep([-0.07, -0.10, -0.06, -0.09]);
            let mut gated = row("A-INLP", 0.0, 25.0 * scale, 0.17);
            gated.hellinger_corpus_se = 0.004;
            gated.hellinger_pairs = keep([0.16, 0.18, 0.16, 0.18]);
            vec![none, inlp0, gated]
        };
        let config = LlamaConfig {
            layers: 30,
            width: 576,
            heads: 9,
            kv_heads: 3,
            hidden: 1536,
            vocab: 49152,
            context: 8192,
            rope_base: 1e5,
            norm_eps: 1e-5,
        };
        let smol = results(
            ModelRecord::Pretrained(PretrainedSummary {
                name: "SmolLM2-135M-Instruct".into(),
                source: "test".into(),
                config,
                parameters: config.parameters(),
            }),
            1.5,
            rows(1.0, true),
        );
        let word = results(
            ModelRecord::Trained(ModelSummary {
                config: LmConfig {
                    vocab: 10,
                    len: 8,
                    width: 8,
                    heads: 2,
                    layers: 1,
                    mlp_ratio: 2,
                },
                settings: serde_json::from_value(serde_json::json!({
                    "len": 8, "width": 8, "heads": 2, "layers": 1, "batch": 2,
                    "steps": 4, "lr": 0.001, "warmup": 0, "seed": 1
                }))
                .unwrap(),
                parameters: 100,
                train_words: 1000,
                held_out_words: 50,
                held_out_perplexity: 70.0,
                curve: Vec::new(),
                seconds: 1.0,
            }),
            1.0,
            rows(3.5, false),
        );
        let md = report(&smol, Some(&word));
        // Per-word perplexity is per-token perplexity to the power tokens-per-word.
        assert!(md.contains("**20.00 per token, 89.4 per word**"), "{md}");
        assert!(md.contains("Instruct variant"));
        assert!(md.contains("left out: gal/guy"));
        // INLP moves the gap by -0.09 with a gap s.e. of 0.01: under a third of it. The
        // paired differences -0.09, -0.10, -0.09, -0.08 have a standard error of 0.004.
        assert!(md.contains("full INLP moves it by -0.090"), "{md}");
        assert!(md.contains("0.010, under a third"), "{md}");
        assert!(
            md.contains("22.0 standard errors of the difference (0.004, paired by template"),
            "{md}"
        );
        // The A-INLP point at perplexity 25 against INLP interpolated there (0.1875): per
        // pair -0.0175, -0.0175, -0.0075, -0.0275, a paired standard error of 0.0041.
        assert!(
            md.contains("difference -0.0175 +- 0.0041 (paired over 4 pairs; z = -4.3)"),
            "{md}"
        );
        assert!(md.contains("## Beside the Brown word model"));
        assert!(md.contains("| Brown word LM | 70.0 |"), "{md}");
        assert!(md.contains("| SmolLM2-135M-Instruct | 89.4 |"), "{md}");
        // The word model's own report is unchanged by any of this.
        assert!(!report(&word, None).contains("Statistical power"));
        // Without the per-pair values: as if independent, sqrt(2) x 0.004.
        let mut unpaired = smol;
        unpaired.rows = rows(1.0, false);
        let md = report(&unpaired, None);
        assert!(
            md.contains("difference -0.0175 +- 0.0057 (as if independent"),
            "{md}"
        );
        assert!(md.contains("(0.014, as if independent)"), "{md}");
        // Nor does it claim the prompts shared their random numbers.
        assert!(!md.contains("drawing the same random numbers"), "{md}");
    }
}
