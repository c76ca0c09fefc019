//! SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) read from its GGUF file and run with
//! candle: a llama decoder (30 layers, width 576, 9 query heads sharing 3 key/value
//! heads, SiLU-gated MLP of 1,536, RMS norm, interleaved rotary embeddings with base
//! 100,000) whose output layer is its token embedding. Unlike `candle-transformers`'
//! quantized llama, it gives the final hidden state at every position and the output
//! layer on its own, which is what INLP and A-INLP need.
//!
//! The weights are the file's Q4_1 (Q8_0 for the embedding) blocks. [`Precision`] says
//! whether each matmul runs on the blocks (candle's quantized kernels, 8-bit activations)
//! or on the blocks expanded to f32 once at load (the same weights; batched matmuls are
//! then ordinary f32 GEMMs, several times faster on a CPU for many positions at once).
//!
//! The tokenizer is the byte-level BPE in the file's metadata (`tokenizer.ggml.*`),
//! built by candle's `TokenizerFromGguf` and given SmolLM's own pre-tokenizer (digits one
//! by one, then GPT-2's byte-level split), which candle's builder does not know.

use std::path::Path;

use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::quantized::{QMatMul, gguf_file};
use candle_core::{DType, Device, Module, Tensor};
use tokenizers::Tokenizer;

use crate::lm::{LanguageModel, LmError, Result, Sampling};

/// How the Q4_1 weight blocks are multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// candle's quantized matmul on the blocks themselves.
    Quantized,
    /// The blocks expanded to f32 at load (about 0.6 GB); identical weights.
    Expanded,
}

/// The hyper-parameters read from `llama.*` metadata.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlamaConfig {
    pub layers: usize,
    pub width: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub hidden: usize,
    pub vocab: usize,
    pub context: usize,
    pub rope_base: f32,
    pub norm_eps: f64,
}

struct Layer {
    attn_norm: Tensor,
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    o: QMatMul,
    ffn_norm: Tensor,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

/// Keys and values of every layer for the positions read so far, `(batch, kv_heads,
/// positions, head_dim)` each.
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    positions: usize,
}

pub struct SmolLm {
    pub config: LlamaConfig,
    tokenizer: Tokenizer,
    /// Token embedding, `(vocab, width)`, f32; also the output layer.
    embedding: Tensor,
    layers: Vec<Layer>,
    output_norm: Tensor,
    /// Rotary tables `(context, head_dim / 2)`.
    cos: Tensor,
    sin: Tensor,
    end: u32,
    /// Token ids never sampled: the special tokens (`<|im_start|>` and the like).
    specials: Vec<u32>,
    /// Tokens that end a generation: the end token and those holding a line break.
    stops: Vec<u32>,
    /// The longest context [`LanguageModel::last_hidden`] reads, in tokens.
    max_len: usize,
}

/// Positions processed per forward pass when reading a stream.
const WINDOW: usize = 256;
/// Contexts per forward pass.
const CHUNK: usize = 32;

fn metadata<'a>(content: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| LmError::Format(format!("no `{key}` in the GGUF metadata")))
}

fn number(content: &gguf_file::Content, key: &str) -> Result<usize> {
    Ok(metadata(content, key)?.to_u32()? as usize)
}

impl SmolLm {
    /// Reads the GGUF file at `path`. A file that is not a llama GGUF with a byte-level
    /// BPE tokenizer is an error that says which part is missing.
    pub fn load(path: &Path, precision: Precision) -> Result<Self> {
        let io = |source| LmError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| LmError::Format(format!("{} is not a GGUF file: {e}", path.display())))?;
        let architecture = metadata(&content, "general.architecture")?.to_string()?;
        if architecture != "llama" {
            return Err(LmError::Format(format!(
                "{} holds a `{architecture}` model, not llama",
                path.display()
            )));
        }
        let config = LlamaConfig {
            layers: number(&content, "llama.block_count")?,
            width: number(&content, "llama.embedding_length")?,
            heads: number(&content, "llama.attention.head_count")?,
            kv_heads: number(&content, "llama.attention.head_count_kv")?,
            hidden: number(&content, "llama.feed_forward_length")?,
            vocab: metadata(&content, "tokenizer.ggml.tokens")?.to_vec()?.len(),
            context: number(&content, "llama.context_length")?,
            rope_base: metadata(&content, "llama.rope.freq_base")?.to_f32()?,
            norm_eps: metadata(&content, "llama.attention.layer_norm_rms_epsilon")?.to_f32()?
                as f64,
        };
        if config.heads == 0
            || config.kv_heads == 0
            || !config.heads.is_multiple_of(config.kv_heads)
        {
            return Err(LmError::Format(format!(
                "{} heads cannot share {} key/value heads",
                config.heads, config.kv_heads
            )));
        }
        let dev = Device::Cpu;
        let mut tensor = |name: &str| content.tensor(&mut file, name, &dev);
        let matmul = |t: candle_core::quantized::QTensor| -> Result<QMatMul> {
            Ok(match precision {
                Precision::Quantized => QMatMul::from_qtensor(t)?,
                Precision::Expanded => QMatMul::Tensor(t.dequantize(&dev)?),
            })
        };
        let embedding = tensor("token_embd.weight")?.dequantize(&dev)?;
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let mut get = |part: &str| tensor(&format!("blk.{i}.{part}.weight"));
            layers.push(Layer {
                attn_norm: get("attn_norm")?.dequantize(&dev)?,
                q: matmul(get("attn_q")?)?,
                k: matmul(get("attn_k")?)?,
                v: matmul(get("attn_v")?)?,
                o: matmul(get("attn_output")?)?,
                ffn_norm: get("ffn_norm")?.dequantize(&dev)?,
                gate: matmul(get("ffn_gate")?)?,
                up: matmul(get("ffn_up")?)?,
                down: matmul(get("ffn_down")?)?,
            });
        }
        let output_norm = tensor("output_norm.weight")?.dequantize(&dev)?;
        if content.tensor_infos.contains_key("output.weight") {
            return Err(LmError::Format(
                "this model has its own output layer; only tied embeddings are supported".into(),
            ));
        }
        if embedding.dims2()? != (config.vocab, config.width) {
            return Err(LmError::Format(format!(
                "token embedding {:?} does not match vocabulary {} x width {}",
                embedding.dims(),
                config.vocab,
                config.width
            )));
        }
        let (cos, sin) = rotary_tables(&config, &dev)?;
        let tokenizer = smollm_tokenizer(&content)?;
        let end = number(&content, "tokenizer.ggml.eos_token_id")? as u32;
        // The chat end (`<|im_end|>`, the file's end token) and the end of a plain text:
        // either ends a continuation.
        let text_end = tokenizer.token_to_id("<|endoftext|>");
        let types = metadata(&content, "tokenizer.ggml.token_type")?.to_vec()?;
        // llama.cpp's token types: 1 normal, 3 control, 4 user-defined.
        let specials = types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.to_i32().is_ok_and(|t| t != 1))
            .map(|(i, _)| i as u32)
            .filter(|&i| i != end && Some(i) != text_end)
            .collect();
        let mut stops: Vec<u32> = (0..config.vocab as u32)
            .filter(|&i| {
                tokenizer
                    .decode(&[i], false)
                    .is_ok_and(|t| t.contains('\n'))
            })
            .collect();
        stops.push(end);
        stops.extend(text_end.filter(|&t| t != end));
        Ok(Self {
            config,
            tokenizer,
            stops,
            embedding,
            layers,
            output_norm,
            cos,
            sin,
            end,
            specials,
            max_len: 128,
        })
    }

    fn head_dim(&self) -> usize {
        self.config.width / self.config.heads
    }

    /// An empty cache for `batch` sequences.
    pub fn cache(&self) -> KvCache {
        KvCache {
            layers: vec![None; self.config.layers],
            positions: 0,
        }
    }

    /// Final hidden states (after the output norm), `(batch, t, width)`, of `tokens`
    /// `(batch, t)` placed after the cache's positions; the cache then holds them too.
    /// Attention is causal, so a row's padding after its last token changes nothing
    /// before it.
    // Inference only: nothing here is ever differentiated, so candle's fused kernels
    // (which record no backward pass) are the right ones.
    #[allow(clippy::disallowed_methods)]
    pub fn forward(&self, tokens: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        let start = cache.positions;
        if start + t > self.config.context {
            return Err(LmError::Format(format!(
                "{} positions exceed the model's context of {}",
                start + t,
                self.config.context
            )));
        }
        let (heads, kv_heads, hd) = (self.config.heads, self.config.kv_heads, self.head_dim());
        let eps = self.config.norm_eps as f32;
        let cos = self.cos.narrow(0, start, t)?;
        let sin = self.sin.narrow(0, start, t)?;
        let total = start + t;
        // Row i may read columns j <= start + i.
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| {
                (0..total).map(move |j| {
                    if j > start + i {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (1, 1, t, total), &Device::Cpu)?;
        let mut x = self
            .embedding
            .index_select(&tokens.flatten_all()?, 0)?
            .reshape((b, t, self.config.width))?;
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, eps)?;
            let split = |m: &QMatMul, n: usize| -> Result<Tensor> {
                Ok(m.forward(&h)?
                    .reshape((b, t, n, hd))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let q = candle_nn::rotary_emb::rope_i(&split(&layer.q, heads)?, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&split(&layer.k, kv_heads)?, &cos, &sin)?;
            let v = split(&layer.v, kv_heads)?;
            let (k, v) = match slot.take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                None => (k, v),
            };
            *slot = Some((k.clone(), v.clone()));
            // Grouped queries: the `heads / kv_heads` query heads of a group read one
            // key/value head, as (b, kv_heads, group * t, hd) against (b, kv_heads, total, hd).
            let group = heads / kv_heads;
            let q = q.reshape((b, kv_heads, group * t, hd))?;
            let scores = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?
                .reshape((b, kv_heads, group, t, total))?
                .broadcast_add(&mask.unsqueeze(0)?)?;
            let weights = candle_nn::ops::softmax_last_dim(&scores)?.reshape((
                b,
                kv_heads,
                group * t,
                total,
            ))?;
            let y = weights
                .matmul(&v)?
                .reshape((b, heads, t, hd))?
                .transpose(1, 2)?
                .reshape((b, t, self.config.width))?;
            x = (x + layer.o.forward(&y)?)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, eps)?;
            let gated =
                (candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&gated)?)?;
        }
        cache.positions = total;
        Ok(candle_nn::ops::rms_norm(&x, &self.output_norm, eps)?)
    }

    /// The tokens of `text` exactly as written (no start token: SmolLM2 adds none).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| LmError::Format(format!("tokenizing: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids` (special tokens dropped).
    pub fn detokenize(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| LmError::Format(format!("detokenizing: {e}")))
    }
}

fn rotary_tables(config: &LlamaConfig, dev: &Device) -> Result<(Tensor, Tensor)> {
    let hd = config.width / config.heads;
    let inverse: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / config.rope_base.powf(2.0 * i as f32 / hd as f32))
        .collect();
    let mut angles = Vec::with_capacity(config.context * hd / 2);
    for p in 0..config.context {
        angles.extend(inverse.iter().map(|f| p as f32 * f));
    }
    let angles = Tensor::from_vec(angles, (config.context, hd / 2), dev)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// The GGUF's byte-level BPE with the pre-tokenizer its `tokenizer.ggml.pre` names.
/// SmolLM's (`smollm`) splits digits one by one before GPT-2's byte-level split (its
/// `tokenizer.json`; llama.cpp's `LLAMA_VOCAB_PRE_TYPE_SMOLLM` does the same); candle's
/// builder knows only GPT-2's, so it is set here.
fn smollm_tokenizer(content: &gguf_file::Content) -> Result<Tokenizer> {
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    let mut tokenizer = Tokenizer::from_gguf(content)?;
    let pre = metadata(content, "tokenizer.ggml.pre")?
        .to_string()?
        .clone();
    match pre.as_str() {
        "smollm" => {
            tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])));
        }
        "gpt2" | "default" => {}
        other => {
            return Err(LmError::Format(format!(
                "pre-tokenizer `{other}` is not supported (smollm and gpt2 are)"
            )));
        }
    }
    Ok(tokenizer)
}

impl LanguageModel for SmolLm {
    fn width(&self) -> usize {
        self.config.width
    }

    fn vocab(&self) -> usize {
        self.config.vocab
    }

    fn max_len(&self) -> usize {
        self.max_len
    }

    fn end(&self) -> u32 {
        self.end
    }

    fn never_sampled(&self) -> &[u32] {
        &self.specials
    }

    fn encode_words(&self, words: &[&str]) -> Result<Vec<u32>> {
        self.tokenize(&crate::corpus::natural_text(words))
    }

    fn encode_sentences(&self, sentences: &[String]) -> Result<Vec<u32>> {
        let mut stream = Vec::new();
        for s in sentences {
            let words: Vec<&str> = s.split_whitespace().collect();
            let mut line = crate::corpus::natural_text(&words);
            line.push('\n');
            stream.extend(self.tokenize(&line)?);
        }
        Ok(stream)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.detokenize(ids)
    }

    fn token_text(&self, id: u32) -> String {
        self.tokenizer
            .id_to_token(id)
            .map(|t| t.replace('\u{120}', " "))
            .unwrap_or_default()
    }

    /// The word with its leading space, as inside a sentence.
    fn word_token(&self, word: &str) -> Option<u32> {
        match self.tokenize(&format!(" {word}")).ok()?.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The end token and every token holding a line break: a continuation is one line.
    fn stops(&self) -> Vec<u32> {
        self.stops.clone()
    }

    fn last_hidden(&self, contexts: &[Vec<u32>]) -> Result<Tensor> {
        let mut parts = Vec::new();
        // Contexts of similar length share a pass: sorted by length, padded to the
        // longest of each chunk (after the context, where causal attention ignores it).
        let mut order: Vec<usize> = (0..contexts.len()).collect();
        order.sort_by_key(|&i| contexts[i].len());
        let mut rows = vec![0u32; contexts.len()];
        let mut next = 0u32;
        for chunk in order.chunks(CHUNK) {
            let tails: Vec<&[u32]> = chunk
                .iter()
                .map(|&i| {
                    let c = &contexts[i];
                    assert!(!c.is_empty(), "a context holds at least one token");
                    &c[c.len().saturating_sub(self.max_len)..]
                })
                .collect();
            let len = tails.iter().map(|t| t.len()).max().unwrap_or(1);
            let mut tokens = Vec::with_capacity(chunk.len() * len);
            let mut last = Vec::with_capacity(chunk.len());
            for (row, tail) in tails.iter().enumerate() {
                tokens.extend_from_slice(tail);
                tokens.extend(std::iter::repeat_n(self.end, len - tail.len()));
                last.push((row * len + tail.len() - 1) as u32);
            }
            let tokens = Tensor::from_vec(tokens, (chunk.len(), len), &Device::Cpu)?;
            let hidden = self.forward(&tokens, &mut self.cache())?;
            let flat = hidden.reshape((chunk.len() * len, self.width()))?;
            let last = Tensor::from_vec(last, chunk.len(), &Device::Cpu)?;
            parts.push(flat.index_select(&last, 0)?);
            for &i in chunk {
                rows[i] = next;
                next += 1;
            }
        }
        let sorted = Tensor::cat(&parts, 0)?;
        let rows = Tensor::from_vec(rows, contexts.len(), &Device::Cpu)?;
        Ok(sorted.index_select(&rows, 0)?)
    }

    fn stream_hidden(&self, stream: &[u32]) -> Result<(Tensor, Vec<u32>)> {
        let windows = stream.len().saturating_sub(1) / WINDOW;
        let mut parts = Vec::new();
        let mut targets = Vec::with_capacity(windows * WINDOW);
        const PER_PASS: usize = 4;
        for first in (0..windows).step_by(PER_PASS) {
            let count = (windows - first).min(PER_PASS);
            let start = first * WINDOW;
            let tokens = stream[start..start + count * WINDOW].to_vec();
            targets.extend_from_slice(&stream[start + 1..start + count * WINDOW + 1]);
            let tokens = Tensor::from_vec(tokens, (count, WINDOW), &Device::Cpu)?;
            let hidden = self.forward(&tokens, &mut self.cache())?;
            parts.push(hidden.reshape((count * WINDOW, self.width()))?);
        }
        Ok((Tensor::cat(&parts, 0)?, targets))
    }

    fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(hidden.matmul(&self.embedding.t()?)?)
    }

    fn output_embeddings(&self) -> Result<nalgebra::DMatrix<f64>> {
        let (rows, cols) = self.embedding.dims2()?;
        let values = self
            .embedding
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok(nalgebra::DMatrix::from_row_slice(rows, cols, &values))
    }

    /// Top-p continuations with a key/value cache: each prompt's own cache, stepped one
    /// token at a time, `CHUNK` prompts of equal length together.
    fn generate(
        &self,
        prompts: &[Vec<u32>],
        debiaser: Option<&crate::debiaser::Debiaser>,
        sampling: Sampling,
    ) -> Result<Vec<Vec<u32>>> {
        let mut generated = vec![Vec::new(); prompts.len()];
        // Prompts grouped by length so that a group shares one batched cache.
        let mut order: Vec<usize> = (0..prompts.len()).collect();
        order.sort_by_key(|&i| (prompts[i].len(), i));
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for i in order {
            match groups.last_mut() {
                Some(g) if g.len() < CHUNK && prompts[g[0]].len() == prompts[i].len() => g.push(i),
                _ => groups.push(vec![i]),
            }
        }
        for group in groups {
            let len = prompts[group[0]].len();
            let tokens: Vec<u32> = group.iter().flat_map(|&i| prompts[i].clone()).collect();
            let tokens = Tensor::from_vec(tokens, (group.len(), len), &Device::Cpu)?;
            let mut cache = self.cache();
            let hidden = self.forward(&tokens, &mut cache)?;
            let mut last = hidden.narrow(1, len - 1, 1)?.squeeze(1)?;
            let mut sampler = crate::lm::Sampler::new(self, &group, sampling);
            for step in 0..sampling.max_new {
                let probs = self.next_token_probs(&last, debiaser)?;
                let next = sampler.draw(&group, &probs, &mut generated);
                if sampler.all_done() || step + 1 == sampling.max_new {
                    break;
                }
                // Finished rows keep stepping (on the end token) so the batch stays whole.
                let next = Tensor::from_vec(next, (group.len(), 1), &Device::Cpu)?;
                last = self.forward(&next, &mut cache)?.squeeze(1)?;
            }
        }
        Ok(generated)
    }
}

impl LlamaConfig {
    /// Parameters, embeddings counted once (they are tied).
    pub fn parameters(&self) -> usize {
        let hd = self.width / self.heads;
        let attention = self.width * self.width * 2 + 2 * self.width * self.kv_heads * hd;
        let mlp = 3 * self.width * self.hidden;
        self.vocab * self.width + self.layers * (attention + mlp + 2 * self.width) + self.width
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use gguf_file::Value;

    /// The largest absolute difference between two tensors of one shape.
    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// GPT-2's printable stand-in for each byte (byte-level BPE's alphabet).
    fn byte_chars() -> Vec<char> {
        let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~')).collect();
        printable.extend(u32::from('¡')..=u32::from('¬'));
        printable.extend(u32::from('®')..=u32::from('ÿ'));
        let mut chars = vec!['\0'; 256];
        let mut extra = 0;
        for b in 0..256u32 {
            let c = if printable.contains(&b) {
                b
            } else {
                extra += 1;
                255 + extra
            };
            chars[b as usize] = char::from_u32(c).unwrap();
        }
        chars
    }

    /// A one-layer llama GGUF with SmolLM's metadata layout: three special tokens, the
    /// 256 bytes, and the merges "Ġ t", "h e", "Ġt he".
    fn tiny_gguf(path: &Path) {
        let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        tokens.extend(byte_chars().iter().map(|c| c.to_string()));
        tokens.extend(["Ġt", "he", "Ġthe"].iter().map(|t| t.to_string()));
        let vocab = tokens.len();
        let types: Vec<Value> = (0..vocab)
            .map(|i| Value::I32(if i < 3 { 3 } else { 1 }))
            .collect();
        let strings =
            |v: &[&str]| Value::Array(v.iter().map(|s| Value::String(s.to_string())).collect());
        let metadata: Vec<(&str, Value)> = vec![
            ("general.architecture", Value::String("llama".into())),
            ("llama.block_count", Value::U32(1)),
            ("llama.embedding_length", Value::U32(8)),
            ("llama.attention.head_count", Value::U32(2)),
            ("llama.attention.head_count_kv", Value::U32(1)),
            ("llama.feed_forward_length", Value::U32(16)),
            ("llama.context_length", Value::U32(64)),
            ("llama.rope.freq_base", Value::F32(10_000.0)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("smollm".into())),
            (
                "tokenizer.ggml.tokens",
                Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
            ),
            ("tokenizer.ggml.token_type", Value::Array(types)),
            ("tokenizer.ggml.merges", strings(&["Ġ t", "h e", "Ġt he"])),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ];
        let dev = Device::Cpu;
        let random = |rows: usize, cols: usize| {
            let t = Tensor::randn(0f32, 0.5, (rows, cols), &dev).unwrap();
            QTensor::quantize(&t, GgmlDType::F32).unwrap()
        };
        let ones = || {
            QTensor::quantize(&Tensor::ones(8, DType::F32, &dev).unwrap(), GgmlDType::F32).unwrap()
        };
        let tensors = vec![
            ("token_embd.weight", random(vocab, 8)),
            ("blk.0.attn_norm.weight", ones()),
            ("blk.0.attn_q.weight", random(8, 8)),
            ("blk.0.attn_k.weight", random(4, 8)),
            ("blk.0.attn_v.weight", random(4, 8)),
            ("blk.0.attn_output.weight", random(8, 8)),
            ("blk.0.ffn_norm.weight", ones()),
            ("blk.0.ffn_gate.weight", random(16, 8)),
            ("blk.0.ffn_up.weight", random(16, 8)),
            ("blk.0.ffn_down.weight", random(8, 16)),
            ("output_norm.weight", ones()),
        ];
        let mut file = std::fs::File::create(path).unwrap();
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (*k, v)).collect();
        gguf_file::write(&mut file, &metadata, &tensors).unwrap();
    }

    fn tiny() -> SmolLm {
        let path = std::env::temp_dir().join(format!(
            "debias-tiny-{}-{:?}.gguf",
            std::process::id(),
            std::thread::current().id()
        ));
        tiny_gguf(&path);
        let lm = SmolLm::load(&path, Precision::Expanded).unwrap();
        std::fs::remove_file(&path).unwrap();
        lm
    }

    #[test]
    fn tokenizing_then_detokenizing_gives_the_text_back() {
        let lm = tiny();
        for text in [
            "the theory, then 1984!",
            "  two  spaces\nand a line\r\n",
            "Grüße, 東京 — naïve café ☕",
            "",
        ] {
            let ids = lm.tokenize(text).unwrap();
            assert_eq!(lm.detokenize(&ids).unwrap(), text, "{ids:?}");
        }
        // The merges apply inside words that start with a space, and digits split one
        // by one (SmolLM's pre-tokenizer).
        let the = lm.word_token("the").unwrap();
        assert_eq!(lm.token_text(the), " the");
        assert_eq!(lm.tokenize(" the").unwrap(), vec![the]);
        assert_eq!(lm.tokenize("42").unwrap().len(), 2);
        assert_eq!(lm.word_token("then"), None);
    }

    #[test]
    fn either_end_token_ends_a_continuation_and_other_specials_are_never_drawn() {
        let lm = tiny();
        // The file's end token is `<|im_end|>` (2); `<|endoftext|>` (0) ends plain text
        // and must not be zeroed out of the distribution.
        assert_eq!(lm.end(), 2);
        assert!(lm.stops().contains(&0) && lm.stops().contains(&2));
        assert_eq!(lm.never_sampled(), &[1]);
    }

    #[test]
    fn the_cache_gives_the_same_states_as_one_pass() {
        let lm = tiny();
        let tokens: Vec<u32> = lm.tokenize("the cat sat on the mat").unwrap();
        let n = tokens.len();
        let all = Tensor::from_vec(tokens.clone(), (1, n), &Device::Cpu).unwrap();
        let whole = lm.forward(&all, &mut lm.cache()).unwrap();
        let mut cache = lm.cache();
        let first = Tensor::from_vec(tokens[..4].to_vec(), (1, 4), &Device::Cpu).unwrap();
        let rest = Tensor::from_vec(tokens[4..].to_vec(), (1, n - 4), &Device::Cpu).unwrap();
        let a = lm.forward(&first, &mut cache).unwrap();
        let b = lm.forward(&rest, &mut cache).unwrap();
        let stepped = Tensor::cat(&[a, b], 1).unwrap();
        let diff = max_abs_diff(&whole, &stepped);
        assert!(diff < 1e-4, "{diff}");
    }

    #[test]
    fn last_hidden_ignores_padding_and_generation_matches_rereading() {
        let lm = tiny();
        let contexts = vec![
            lm.tokenize("the man").unwrap(),
            lm.tokenize("the woman was").unwrap(),
            lm.tokenize("a").unwrap(),
        ];
        let batched = lm.last_hidden(&contexts).unwrap();
        for (i, c) in contexts.iter().enumerate() {
            let one = lm.last_hidden(std::slice::from_ref(c)).unwrap();
            let diff = max_abs_diff(&batched.get(i).unwrap(), &one.get(0).unwrap());
            assert!(diff < 1e-4, "context {i}: {diff}");
        }
        // The cached generation draws what reading each longer context afresh draws.
        let sampling = Sampling {
            top_p: 0.95,
            max_new: 6,
            seed: 7,
            shared: 1,
        };
        let prompts = vec![
            contexts[0].clone(),
            contexts[0].clone(),
            contexts[1].clone(),
        ];
        let cached = lm.generate(&prompts, None, sampling).unwrap();
        let rows: Vec<usize> = (0..prompts.len()).collect();
        let mut sampler = crate::lm::Sampler::new(&lm, &rows, sampling);
        let mut reread = vec![Vec::new(); prompts.len()];
        let mut open = vec![true; prompts.len()];
        for _ in 0..sampling.max_new {
            for i in 0..prompts.len() {
                if !open[i] {
                    continue;
                }
                let mut c = prompts[i].clone();
                c.extend(&reread[i]);
                let h = lm.last_hidden(&[c]).unwrap();
                let p = lm.next_token_probs(&h, None).unwrap();
                match sampler.draw_row(i, &p[0]) {
                    Some(t) => reread[i].push(t),
                    None => open[i] = false,
                }
            }
        }
        assert_eq!(cached, reread);
        assert!(cached.iter().any(|g| !g.is_empty()));
    }

    #[test]
    fn a_file_that_is_not_gguf_is_a_clear_error() {
        let path = std::env::temp_dir().join(format!("debias-not-gguf-{}", std::process::id()));
        std::fs::write(&path, b"GGUF but not really").unwrap();
        let err = SmolLm::load(&path, Precision::Quantized).err().unwrap();
        assert!(matches!(err, LmError::Format(_)), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = SmolLm::load(&path, Precision::Quantized).err().unwrap();
        assert!(matches!(err, LmError::Io { .. }), "{err}");
    }

    #[test]
    fn smollm2_has_135m_parameters() {
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
        let p = config.parameters();
        assert!((134_000_000..136_000_000).contains(&p), "{p}");
    }

    /// The real file, when `debias data --smollm2` has fetched it: its tokenizer round
    /// trip and a held-out-like sentence scored with a sane perplexity.
    #[test]
    fn smollm2_reads_and_predicts_english_when_present() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../data/models")
            .join(crate::corpus::SMOLLM2_FILE);
        if !path.exists() {
            eprintln!("skipped: {} is not fetched", path.display());
            return;
        }
        let lm = SmolLm::load(&path, Precision::Expanded).unwrap();
        let text = "The jury said it did find that many of Georgia's registration and election laws are outmoded.\n";
        let ids = lm.tokenize(text).unwrap();
        assert_eq!(lm.detokenize(&ids).unwrap(), text);
        let t = Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu).unwrap();
        let h = lm.forward(&t, &mut lm.cache()).unwrap().squeeze(0).unwrap();
        let n = ids.len() - 1;
        let logp = lm
            .target_log_probs(&h.narrow(0, 0, n).unwrap(), &ids[1..], None)
            .unwrap();
        let ppl = (-logp.iter().map(|&x| x as f64).sum::<f64>() / n as f64).exp();
        // A uniform guess is 49,152; a working model reads this sentence far better.
        assert!(ppl < 200.0, "perplexity {ppl}");
    }
}
