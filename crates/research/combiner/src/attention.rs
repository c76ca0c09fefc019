//! Multi-head attention over any [`AttentionPlan`], and the dense attention matrix it
//! implies (for tests and figures).

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, linear_no_bias, ops::softmax};

use crate::plan::{AttentionPlan, ComponentPlan, PlanKind};

/// The probabilities one forward pass used, kept to rebuild the dense attention matrix.
#[derive(Debug)]
pub enum AttentionWeights {
    /// `(batch, heads, len, len)`.
    Dense(Tensor),
    /// Per component: slot probabilities `(batch, heads, len, slots)` and, per region
    /// group, the member weights of each region summary `(batch, heads, regions, size)`.
    Components(Vec<(Tensor, Vec<Tensor>)>),
}

/// Scaled queries, keys and values `(batch, heads, len, head_dim)` to outputs of the same
/// shape, with the probabilities used.
pub fn attend(
    plan: &AttentionPlan,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<(Tensor, AttentionWeights)> {
    match &plan.kind {
        PlanKind::Dense { mask } => {
            let mut logits = q.matmul(&k.t()?)?;
            if let Some(mask) = mask {
                logits = logits.broadcast_add(mask)?;
            }
            let p = softmax(&logits, D::Minus1)?;
            Ok((p.matmul(v)?, AttentionWeights::Dense(p)))
        }
        PlanKind::Components(components) => {
            let mut outs = Vec::with_capacity(components.len());
            let mut weights = Vec::with_capacity(components.len());
            for c in components {
                let (out, w) = attend_component(c, q, k, v)?;
                outs.push(out);
                weights.push(w);
            }
            let n = outs.len() as f64;
            let sum = outs
                .into_iter()
                .reduce(|a, b| (a + b).expect("component outputs share a shape"))
                .expect("a plan has at least one component");
            Ok(((sum / n)?, AttentionWeights::Components(weights)))
        }
    }
}

fn attend_component(
    c: &ComponentPlan,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<(Tensor, (Tensor, Vec<Tensor>))> {
    // candle's CPU matmul takes at most two batch dimensions: fold heads into the batch.
    let (b, h, len, dh) = q.dims4()?;
    let bh = b * h;
    let (q, k, v) = (
        q.reshape((bh, len, dh))?,
        k.reshape((bh, len, dh))?,
        v.reshape((bh, len, dh))?,
    );
    let mut keys = vec![k.clone()];
    let mut values = vec![v.clone()];
    let mut member_weights = Vec::with_capacity(c.groups.len());
    for g in &c.groups {
        let (r, s) = (g.regions.len(), g.size);
        let gather = |t: &Tensor| t.index_select(&g.index, 1)?.reshape((bh, r, s, dh));
        let (kg, qg, vg) = (gather(&k)?, gather(&q)?, gather(&v)?);
        // Region key and query: elementwise max over members. Padding repeats a member,
        // which leaves the max unchanged but not its gradient: candle's max backward
        // passes the whole gradient to every entry equal to the max, so the repeated
        // member would receive it twice. Pushing padding to -1e30 first keeps it out of
        // both.
        let pad = g.mask.reshape((1, r, s, 1))?;
        let key = kg.broadcast_add(&pad)?.max_keepdim(2)?;
        let query = qg.broadcast_add(&pad)?.max_keepdim(2)?;
        let logits = query
            .matmul(&kg.transpose(2, 3)?)?
            .broadcast_add(&g.mask.reshape((1, r, 1, s))?)?;
        let w = softmax(&logits, D::Minus1)?;
        values.push(w.matmul(&vg)?.reshape((bh, r, dh))?);
        keys.push(key.reshape((bh, r, dh))?);
        member_weights.push(w.reshape((b, h, r, s))?);
    }
    let table_k = Tensor::cat(&keys, 1)?;
    let table_v = Tensor::cat(&values, 1)?;
    let s = c.slots;
    let ks = table_k
        .index_select(&c.slot_index, 1)?
        .reshape((bh, len, s, dh))?;
    let vs = table_v
        .index_select(&c.slot_index, 1)?
        .reshape((bh, len, s, dh))?;
    let logits = q
        .reshape((bh, len, 1, dh))?
        .matmul(&ks.transpose(2, 3)?)?
        .broadcast_add(&c.slot_mask.reshape((1, len, 1, s))?)?;
    let p = softmax(&logits, D::Minus1)?;
    let out = p.matmul(&vs)?.reshape((b, h, len, dh))?;
    Ok((out, (p.reshape((b, h, len, s))?, member_weights)))
}

/// The dense `len x len` attention matrix of one batch item and head: entry (i, j) is
/// the total weight query i puts on value j, directly or through region summaries.
pub fn dense_matrix(
    plan: &AttentionPlan,
    weights: &AttentionWeights,
    batch: usize,
    head: usize,
) -> Result<Vec<Vec<f64>>> {
    let len = plan.len;
    let mut a = vec![vec![0.0; len]; len];
    match (weights, &plan.kind) {
        (AttentionWeights::Dense(p), _) => {
            let p: Vec<Vec<f32>> = p.get(batch)?.get(head)?.to_vec2()?;
            for (i, row) in p.iter().enumerate() {
                for (j, &w) in row.iter().enumerate() {
                    a[i][j] = w as f64;
                }
            }
        }
        (AttentionWeights::Components(ws), PlanKind::Components(components)) => {
            let scale = 1.0 / components.len() as f64;
            for (c, (p, member_weights)) in components.iter().zip(ws) {
                let p: Vec<Vec<f32>> = p.get(batch)?.get(head)?.to_vec2()?;
                // Table position -> (region id, its member weights).
                let mut region_at = std::collections::HashMap::new();
                for (g, w) in c.groups.iter().zip(member_weights) {
                    let w: Vec<Vec<f32>> = w.get(batch)?.get(head)?.to_vec2()?;
                    for (row, &id) in w.into_iter().zip(&g.regions) {
                        region_at.insert(c.table_position[id], (id, row));
                    }
                }
                for i in 0..len {
                    for (s, &w) in p[i].iter().enumerate() {
                        match c.slot_target[i * c.slots + s] {
                            None => {}
                            Some(t) if t < len => a[i][t] += scale * w as f64,
                            Some(t) => {
                                let (id, row) = &region_at[&t];
                                for (&j, &m) in c.partition.regions[*id].iter().zip(row) {
                                    a[i][j] += scale * (w * m) as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        (AttentionWeights::Components(_), PlanKind::Dense { .. }) => {
            candle_core::bail!("weights do not belong to this plan")
        }
    }
    Ok(a)
}

/// Multi-head self-attention with a fixed pattern: no biases, no parameters beyond the
/// four projections, so every pattern has the same parameter count.
#[derive(Debug)]
pub struct MultiHeadAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    heads: usize,
}

impl MultiHeadAttention {
    pub fn new(width: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        if !width.is_multiple_of(heads) {
            candle_core::bail!("width {width} is not a multiple of {heads} heads");
        }
        Ok(Self {
            query: linear_no_bias(width, width, vb.pp("query"))?,
            key: linear_no_bias(width, width, vb.pp("key"))?,
            value: linear_no_bias(width, width, vb.pp("value"))?,
            output: linear_no_bias(width, width, vb.pp("output"))?,
            heads,
        })
    }

    /// `x`: `(batch, len, width)` with `len == plan.len`.
    pub fn forward(&self, plan: &AttentionPlan, x: &Tensor) -> Result<Tensor> {
        self.forward_with_weights(plan, x).map(|(y, _)| y)
    }

    pub fn forward_with_weights(
        &self,
        plan: &AttentionPlan,
        x: &Tensor,
    ) -> Result<(Tensor, AttentionWeights)> {
        let (b, len, width) = x.dims3()?;
        if len != plan.len {
            candle_core::bail!("sequence of {len} given to a plan for {}", plan.len);
        }
        let dh = width / self.heads;
        let split = |t: Tensor| {
            t.reshape((b, len, self.heads, dh))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = (split(self.query.forward(x)?)? / (dh as f64).sqrt())?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let (y, w) = attend(plan, &q, &k, &v)?;
        let y = y.transpose(1, 2)?.reshape((b, len, width))?;
        Ok((self.output.forward(&y)?, w))
    }
}
