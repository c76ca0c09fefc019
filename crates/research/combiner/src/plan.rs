//! Index tensors for one attention pattern at one sequence length, built once.
//!
//! Every sparse or Combiner attention runs the same kernel ([`crate::attention`]):
//! 1. region summaries: for each region, the max-pooled key and the attention of the
//!    max-pooled query over the region's members as its value;
//! 2. a key table holding the L positions followed by the region summaries;
//! 3. per query, a fixed number of *slots* gathered from that table (direct keys and
//!    region keys), one softmax over them, and the weighted sum of their values.
//!
//! Regions are grouped by size (padded to the next power of two) so that every group is
//! one dense gather; padding points at a real member and is masked out of the region
//! softmax and of the max-pool (where a repeated member would otherwise take the max's
//! gradient twice).

use candle_core::{Device, Result, Tensor};

use crate::pattern::{Partition, Pattern};

/// Additive logit mask for padding: exp underflows to exactly 0.
pub(crate) const MASKED: f32 = -1e30;

/// Regions of similar size, padded to a common size.
#[derive(Debug)]
pub(crate) struct RegionGroup {
    /// Region ids (into [`Partition::regions`]) in table order.
    pub regions: Vec<usize>,
    /// Padded member count.
    pub size: usize,
    /// Member positions, `regions.len() * size`.
    pub index: Tensor,
    /// Additive mask over members, `(regions, size)`.
    pub mask: Tensor,
}

/// One partition's gathers and masks.
#[derive(Debug)]
pub(crate) struct ComponentPlan {
    pub partition: Partition,
    pub groups: Vec<RegionGroup>,
    /// Slots per query.
    pub slots: usize,
    /// Key-table index of every slot, `len * slots`.
    pub slot_index: Tensor,
    /// Additive mask over slots, `(len, slots)`.
    pub slot_mask: Tensor,
    /// The same indices on the CPU; `None` marks padding.
    pub slot_target: Vec<Option<usize>>,
    /// Key-table position of every region id.
    pub table_position: Vec<usize>,
}

#[derive(Debug)]
pub(crate) enum PlanKind {
    /// Dense attention with an optional additive causal mask `(len, len)`.
    Dense { mask: Option<Tensor> },
    /// The mean of the attentions of these partitions.
    Components(Vec<ComponentPlan>),
}

/// Everything an attention layer needs for one pattern and sequence length.
#[derive(Debug)]
pub struct AttentionPlan {
    pub pattern: Pattern,
    pub len: usize,
    pub block: usize,
    pub causal: bool,
    pub(crate) kind: PlanKind,
}

impl AttentionPlan {
    pub fn new(
        pattern: Pattern,
        len: usize,
        block: usize,
        causal: bool,
        device: &Device,
    ) -> Result<Self> {
        let kind = if pattern == Pattern::Full {
            let mask = if causal {
                let m: Vec<f32> = (0..len * len)
                    .map(|n| if n % len > n / len { MASKED } else { 0.0 })
                    .collect();
                Some(Tensor::from_vec(m, (len, len), device)?)
            } else {
                None
            };
            PlanKind::Dense { mask }
        } else {
            PlanKind::Components(
                pattern
                    .partitions(len, block, causal)
                    .into_iter()
                    .map(|p| ComponentPlan::new(p, device))
                    .collect::<Result<_>>()?,
            )
        };
        Ok(Self {
            pattern,
            len,
            block,
            causal,
            kind,
        })
    }

    /// A plan averaging the given partitions (all of one length and direction); used to
    /// look at one component of a mixture.
    pub fn from_partitions(
        pattern: Pattern,
        partitions: Vec<Partition>,
        device: &Device,
    ) -> Result<Self> {
        let first = partitions
            .first()
            .ok_or_else(|| candle_core::Error::Msg("no partitions".into()))?;
        let (len, causal) = (first.len, first.causal);
        Ok(Self {
            pattern,
            len,
            block: 0,
            causal,
            kind: PlanKind::Components(
                partitions
                    .into_iter()
                    .map(|p| ComponentPlan::new(p, device))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// The partitions this plan averages (empty for full attention).
    pub fn partitions(&self) -> Vec<&Partition> {
        match &self.kind {
            PlanKind::Dense { .. } => Vec::new(),
            PlanKind::Components(c) => c.iter().map(|c| &c.partition).collect(),
        }
    }
}

impl ComponentPlan {
    fn new(partition: Partition, device: &Device) -> Result<Self> {
        let len = partition.len;
        // Group regions by padded size.
        let mut by_size: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (id, members) in partition.regions.iter().enumerate() {
            by_size
                .entry(members.len().next_power_of_two())
                .or_default()
                .push(id);
        }
        let mut groups = Vec::new();
        let mut table_position = vec![0; partition.regions.len()];
        let mut next = len;
        for (size, regions) in by_size {
            let mut index = Vec::with_capacity(regions.len() * size);
            let mut mask = Vec::with_capacity(regions.len() * size);
            for &id in &regions {
                let members = &partition.regions[id];
                for s in 0..size {
                    index.push(*members.get(s).unwrap_or(&members[0]) as u32);
                    mask.push(if s < members.len() { 0.0 } else { MASKED });
                }
                table_position[id] = next;
                next += 1;
            }
            let r = regions.len();
            groups.push(RegionGroup {
                regions,
                size,
                index: Tensor::from_vec(index, r * size, device)?,
                mask: Tensor::from_vec(mask, (r, size), device)?,
            });
        }
        let slots = partition.max_terms();
        let mut slot_target = Vec::with_capacity(len * slots);
        for i in 0..len {
            let direct = partition.direct[i].iter().copied();
            let regions = partition.uses[i].iter().map(|&r| table_position[r]);
            let terms: Vec<usize> = direct.chain(regions).collect();
            for s in 0..slots {
                slot_target.push(terms.get(s).copied());
            }
        }
        let slot_index: Vec<u32> = slot_target.iter().map(|t| t.unwrap_or(0) as u32).collect();
        let slot_mask: Vec<f32> = slot_target
            .iter()
            .map(|t| if t.is_some() { 0.0 } else { MASKED })
            .collect();
        Ok(Self {
            partition,
            groups,
            slots,
            slot_index: Tensor::from_vec(slot_index, len * slots, device)?,
            slot_mask: Tensor::from_vec(slot_mask, (len, slots), device)?,
            slot_target,
            table_position,
        })
    }
}
