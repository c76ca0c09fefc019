//! A small pre-LayerNorm transformer language model whose attention is any [`Pattern`].

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, VarMap, embedding, linear, ops::log_softmax};

use grad_layers::{LayerNorm, layer_norm};

use crate::attention::MultiHeadAttention;
use crate::plan::AttentionPlan;

/// Shape of a [`TransformerLm`]. Attention adds no parameters, so every pattern has the
/// same parameter count for the same config.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LmConfig {
    /// Vocabulary size (256 for bytes).
    pub vocab: usize,
    /// Maximum sequence length (learned positions).
    pub len: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    /// Hidden width of each feed-forward block, as a multiple of `width`.
    pub mlp_ratio: usize,
}

#[derive(Debug)]
struct Block {
    norm1: LayerNorm,
    attention: MultiHeadAttention,
    norm2: LayerNorm,
    up: Linear,
    down: Linear,
}

impl Block {
    fn new(c: &LmConfig, vb: VarBuilder) -> Result<Self> {
        let hidden = c.width * c.mlp_ratio;
        Ok(Self {
            norm1: layer_norm(c.width, vb.pp("norm1"))?,
            attention: MultiHeadAttention::new(c.width, c.heads, vb.pp("attention"))?,
            norm2: layer_norm(c.width, vb.pp("norm2"))?,
            up: linear(c.width, hidden, vb.pp("up"))?,
            down: linear(hidden, c.width, vb.pp("down"))?,
        })
    }

    fn forward(&self, plan: &AttentionPlan, x: &Tensor) -> Result<Tensor> {
        let x = (x + self.attention.forward(plan, &self.norm1.forward(x)?)?)?;
        let h = self.up.forward(&self.norm2.forward(&x)?)?.gelu()?;
        x + self.down.forward(&h)?
    }
}

/// Token and position embeddings, `layers` blocks, a final norm and the output layer.
#[derive(Debug)]
pub struct TransformerLm {
    pub config: LmConfig,
    tokens: Embedding,
    positions: Embedding,
    blocks: Vec<Block>,
    norm: LayerNorm,
    output: Linear,
}

impl TransformerLm {
    pub fn new(config: LmConfig, vb: VarBuilder) -> Result<Self> {
        let blocks = (0..config.layers)
            .map(|l| Block::new(&config, vb.pp(format!("block{l}"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            tokens: embedding(config.vocab, config.width, vb.pp("tokens"))?,
            positions: embedding(config.len, config.width, vb.pp("positions"))?,
            blocks,
            norm: layer_norm(config.width, vb.pp("norm"))?,
            output: linear(config.width, config.vocab, vb.pp("output"))?,
            config,
        })
    }

    /// A freshly initialised model and the variables that hold its parameters.
    pub fn init(config: LmConfig, device: &Device) -> Result<(Self, VarMap)> {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, device);
        Ok((Self::new(config, vb)?, vars))
    }

    /// A model whose initial weights depend only on `seed` (candle's own initialisers draw
    /// from an unseeded generator): embeddings N(0, 1), linear weights N(0, 2 / fan_in),
    /// linear biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), norms gain 1 and bias 0.
    pub fn init_seeded(config: LmConfig, device: &Device, seed: u64) -> Result<(Self, VarMap)> {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let (model, vars) = Self::init(config, device)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let data = vars.data().lock().expect("var map lock");
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        let normal = move |rng: &mut StdRng| {
            // Box-Muller.
            let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        for name in names {
            let var = &data[name];
            let dims = var.dims().to_vec();
            let n = var.elem_count();
            let values: Vec<f32> = if name.contains("norm") {
                continue;
            } else if name.starts_with("tokens") || name.starts_with("positions") {
                (0..n).map(|_| normal(&mut rng) as f32).collect()
            } else if dims.len() == 2 {
                let std = (2.0 / dims[1] as f64).sqrt();
                (0..n).map(|_| (std * normal(&mut rng)) as f32).collect()
            } else {
                // A bias: fan-in is the width of the layer's input, found from its weight.
                let weight = name.replace("bias", "weight");
                let fan_in = data.get(&weight).map_or(dims[0], |w| w.dims()[1]);
                let bound = 1.0 / (fan_in as f64).sqrt();
                (0..n)
                    .map(|_| rng.random_range(-bound..bound) as f32)
                    .collect()
            };
            var.set(&Tensor::from_vec(values, dims, device)?)?;
        }
        drop(data);
        Ok((model, vars))
    }

    /// Token ids `(batch, len)` (u32) to next-token logits `(batch, len, vocab)`.
    pub fn forward(&self, plan: &AttentionPlan, tokens: &Tensor) -> Result<Tensor> {
        self.logits(&self.hidden_states(plan, tokens)?)
    }

    /// Logits `(batch, len, vocab)` from final hidden states `(batch, len, width)`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.output.forward(hidden)
    }

    /// The output layer: logits = W h + b, W `(vocab, width)` (its rows are the output
    /// token embeddings).
    pub fn output_layer(&self) -> &Linear {
        &self.output
    }

    /// The final hidden states `(batch, len, width)`: after the last block and the final
    /// norm, before the output layer (what A-INLP projects).
    pub fn hidden_states(&self, plan: &AttentionPlan, tokens: &Tensor) -> Result<Tensor> {
        let (_, len) = tokens.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, tokens.device())?;
        let mut x = self
            .tokens
            .forward(tokens)?
            .broadcast_add(&self.positions.forward(&positions)?)?;
        for block in &self.blocks {
            x = block.forward(plan, &x)?;
        }
        self.norm.forward(&x)
    }

    /// Mean cross-entropy in nats of `targets` `(batch, len)` under `logits`, counting
    /// only positions where `weights` `(batch, len)` is 1.
    pub fn loss(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
        let logp = log_softmax(logits, D::Minus1)?;
        let picked = logp
            .gather(&targets.unsqueeze(D::Minus1)?, D::Minus1)?
            .squeeze(D::Minus1)?;
        let total = (picked * weights)?.sum_all()?;
        let count = weights.sum_all()?;
        total.neg()? / count
    }
}

/// The number of scalar parameters in `vars`.
pub fn parameter_count(vars: &VarMap) -> usize {
    vars.all_vars().iter().map(|v| v.elem_count()).sum()
}
