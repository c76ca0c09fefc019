//! Attention patterns as explicit partitions of each query's allowed keys.
//!
//! A [`Partition`] says, for every query position i, which key positions it attends to
//! directly and which *regions* it attends to through a region summary. Combiner
//! partitions cover every allowed position exactly once (so attention is "full"); the
//! sparse baselines have direct sets only. Everything here is plain index bookkeeping:
//! [`crate::plan::AttentionPlan`] turns it into tensors once per sequence length.

use std::collections::HashMap;

/// Every attention layer this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Dense softmax attention over every allowed position: O(L^2).
    Full,
    /// Sparse Fixed (Child et al.): own block plus the last position of every other block.
    Fixed,
    /// Sparse Logsparse: self plus the last position of each dyadic region.
    Logsparse,
    /// Sparse Axial (Ho et al.): own row plus own column of a row-major grid.
    Axial,
    /// Own block directly, every other block through its summary: O(L sqrt L).
    CombinerFixed,
    /// Self (and its neighbour) directly, a dyadic tiling of the rest: O(L log L).
    CombinerLogsparse,
    /// Axial support directly, every other column (restricted to the allowed rows)
    /// through its summary: O(L sqrt L).
    CombinerAxial,
    /// The mean of two Combiner-Axial attentions with different partitions: other
    /// columns summarised (vertical) and other rows summarised (horizontal).
    CombinerMixture,
}

impl Pattern {
    /// The Combiners built on one sparse pattern each (`sparse_counterpart`), compared
    /// with it in pairs.
    pub const PAIRED: [Pattern; 3] = [
        Pattern::CombinerFixed,
        Pattern::CombinerAxial,
        Pattern::CombinerLogsparse,
    ];

    pub const ALL: [Pattern; 8] = [
        Pattern::Full,
        Pattern::Fixed,
        Pattern::Logsparse,
        Pattern::Axial,
        Pattern::CombinerFixed,
        Pattern::CombinerLogsparse,
        Pattern::CombinerAxial,
        Pattern::CombinerMixture,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Full => "full",
            Pattern::Fixed => "fixed",
            Pattern::Logsparse => "logsparse",
            Pattern::Axial => "axial",
            Pattern::CombinerFixed => "combiner-fixed",
            Pattern::CombinerLogsparse => "combiner-logsparse",
            Pattern::CombinerAxial => "combiner-axial",
            Pattern::CombinerMixture => "combiner-mixture",
        }
    }

    pub fn from_name(name: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn is_combiner(self) -> bool {
        matches!(
            self,
            Pattern::CombinerFixed
                | Pattern::CombinerLogsparse
                | Pattern::CombinerAxial
                | Pattern::CombinerMixture
        )
    }

    /// The sparse pattern a Combiner variant is built on (itself for the others).
    pub fn sparse_counterpart(self) -> Pattern {
        match self {
            Pattern::CombinerFixed => Pattern::Fixed,
            Pattern::CombinerLogsparse => Pattern::Logsparse,
            Pattern::CombinerAxial | Pattern::CombinerMixture => Pattern::Axial,
            other => other,
        }
    }

    /// The partitions whose attentions are averaged: one for every pattern except
    /// Combiner-Mixture (two) and full attention (one direct set per query).
    ///
    /// `block` is the block size of Fixed and the row length of the Axial grid; it must
    /// divide `len`.
    pub fn partitions(self, len: usize, block: usize, causal: bool) -> Vec<Partition> {
        match self {
            Pattern::Full => vec![Partition::full(len, causal)],
            Pattern::Fixed => vec![Partition::fixed(len, block, causal, false)],
            Pattern::CombinerFixed => vec![Partition::fixed(len, block, causal, true)],
            Pattern::Logsparse => vec![Partition::logsparse(len, causal, false)],
            Pattern::CombinerLogsparse => vec![Partition::logsparse(len, causal, true)],
            Pattern::Axial => vec![Partition::axial(len, block, causal, None)],
            Pattern::CombinerAxial => {
                vec![Partition::axial(
                    len,
                    block,
                    causal,
                    Some(Summarise::Columns),
                )]
            }
            Pattern::CombinerMixture => vec![
                Partition::axial(len, block, causal, Some(Summarise::Columns)),
                Partition::axial(len, block, causal, Some(Summarise::Rows)),
            ],
        }
    }
}

/// The block (Fixed) and row (Axial) size used for a sequence of `len`: the power of two
/// nearest sqrt(len) that divides it, which balances direct and region terms.
pub fn default_block(len: usize) -> usize {
    let log_len = (len as f64).log2();
    let mut best = 1;
    let mut b = 1;
    while b <= len {
        // |log2 b - log2(len) / 2|, doubled; ties keep the smaller block.
        let cost = |b: usize| (2.0 * (b as f64).log2() - log_len).abs();
        if len.is_multiple_of(b) && cost(b) < cost(best) {
            best = b;
        }
        b *= 2;
    }
    best
}

/// Which regions Combiner-Axial summarises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summarise {
    /// Every other column, restricted to the allowed rows ("axial-vertical").
    Columns,
    /// Every other row, without the query's column ("axial-horizontal").
    Rows,
}

/// Direct sets and regions for every query position of one sequence length.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub len: usize,
    pub causal: bool,
    /// Positions query i attends to directly, ascending.
    pub direct: Vec<Vec<usize>>,
    /// Member positions of every region, ascending.
    pub regions: Vec<Vec<usize>>,
    /// Regions query i attends to through their summaries.
    pub uses: Vec<Vec<usize>>,
}

/// Collects regions, giving each distinct member set one id.
struct RegionTable {
    ids: HashMap<Vec<usize>, usize>,
    regions: Vec<Vec<usize>>,
}

impl RegionTable {
    fn new() -> Self {
        Self {
            ids: HashMap::new(),
            regions: Vec::new(),
        }
    }

    fn id(&mut self, members: Vec<usize>) -> usize {
        if let Some(&id) = self.ids.get(&members) {
            return id;
        }
        let id = self.regions.len();
        self.regions.push(members.clone());
        self.ids.insert(members, id);
        id
    }
}

impl Partition {
    fn assemble(
        len: usize,
        causal: bool,
        mut direct: Vec<Vec<usize>>,
        table: RegionTable,
        uses: Vec<Vec<usize>>,
    ) -> Self {
        for d in &mut direct {
            d.sort_unstable();
            d.dedup();
        }
        Self {
            len,
            causal,
            direct,
            regions: table.regions,
            uses,
        }
    }

    /// Whether query i may see key j at all.
    pub fn allowed(&self, i: usize, j: usize) -> bool {
        !self.causal || j <= i
    }

    /// Full attention: every allowed position is direct.
    pub fn full(len: usize, causal: bool) -> Self {
        let direct = (0..len)
            .map(|i| (0..if causal { i + 1 } else { len }).collect())
            .collect();
        Self::assemble(
            len,
            causal,
            direct,
            RegionTable::new(),
            vec![Vec::new(); len],
        )
    }

    /// Fixed blocks of `block` positions. Sparse: own block plus the last position of
    /// every other (allowed) block. Combiner: own block directly, every other allowed
    /// block as a region.
    pub fn fixed(len: usize, block: usize, causal: bool, combiner: bool) -> Self {
        assert!(
            block > 0 && len.is_multiple_of(block),
            "block {block} must divide {len}"
        );
        let blocks = len / block;
        let mut table = RegionTable::new();
        let mut direct = Vec::with_capacity(len);
        let mut uses = Vec::with_capacity(len);
        for i in 0..len {
            let own = i / block;
            let end = if causal { i + 1 } else { (own + 1) * block };
            let mut d: Vec<usize> = (own * block..end).collect();
            let mut u = Vec::new();
            for c in (0..blocks).filter(|&c| c != own && (!causal || c < own)) {
                if combiner {
                    u.push(table.id((c * block..(c + 1) * block).collect()));
                } else {
                    d.push(c * block + block - 1);
                }
            }
            direct.push(d);
            uses.push(u);
        }
        Self::assemble(len, causal, direct, table, uses)
    }

    /// Dyadic (Fenwick) tiling of the prefix [0, i]: self and i - 1 (when i is odd)
    /// directly, then for each set bit l >= 1 of i the aligned chunk of 2^l positions
    /// ending where the previous one starts. Sparse keeps the last position of each
    /// chunk. Bidirectional mirrors it on the suffix.
    pub fn logsparse(len: usize, causal: bool, combiner: bool) -> Self {
        let mut table = RegionTable::new();
        let mut direct = Vec::with_capacity(len);
        let mut uses = Vec::with_capacity(len);
        // The prefix tiling of query i over [0, i] (self included as a direct term).
        let prefix = |i: usize| -> (Vec<usize>, Vec<Vec<usize>>) {
            let mut d = vec![i];
            let mut chunks = Vec::new();
            if i & 1 == 1 {
                d.push(i - 1);
            }
            let mut l = 1;
            while (1usize << l) <= i {
                if (i >> l) & 1 == 1 {
                    let end = (i >> l) << l;
                    chunks.push((end - (1 << l)..end).collect());
                }
                l += 1;
            }
            (d, chunks)
        };
        for i in 0..len {
            let (mut d, mut chunks) = prefix(i);
            if !causal {
                // The same tiling of the reversed sequence covers [i, len).
                let (rd, rchunks) = prefix(len - 1 - i);
                d.extend(rd.into_iter().map(|j| len - 1 - j));
                chunks.extend(rchunks.into_iter().map(|c: Vec<usize>| {
                    let mut c: Vec<usize> = c.into_iter().map(|j| len - 1 - j).collect();
                    c.sort_unstable();
                    c
                }));
            }
            let mut u = Vec::new();
            for chunk in chunks {
                if combiner {
                    u.push(table.id(chunk));
                } else {
                    // The chunk's position nearest the query.
                    let nearest = if chunk[0] < i {
                        *chunk.last().unwrap()
                    } else {
                        chunk[0]
                    };
                    d.push(nearest);
                }
            }
            direct.push(d);
            uses.push(u);
        }
        Self::assemble(len, causal, direct, table, uses)
    }

    /// A row-major grid with rows of `row` positions. Direct: own row and own column
    /// (allowed parts). `summarise` adds the Combiner regions: `Columns` summarises each
    /// other column over the allowed rows other than the query's; `Rows` summarises each
    /// other allowed row without the query's column. `None` is sparse Axial.
    pub fn axial(len: usize, row: usize, causal: bool, summarise: Option<Summarise>) -> Self {
        assert!(
            row > 0 && len.is_multiple_of(row),
            "row {row} must divide {len}"
        );
        let rows = len / row;
        let at = |r: usize, c: usize| r * row + c;
        let mut table = RegionTable::new();
        let mut direct = Vec::with_capacity(len);
        let mut uses = Vec::with_capacity(len);
        for i in 0..len {
            let (r, c) = (i / row, i % row);
            let row_end = if causal { c + 1 } else { row };
            let col_end = if causal { r } else { rows };
            let mut d: Vec<usize> = (0..row_end).map(|c2| at(r, c2)).collect();
            d.extend((0..col_end).filter(|&r2| r2 != r).map(|r2| at(r2, c)));
            let mut u = Vec::new();
            match summarise {
                None => {}
                Some(Summarise::Columns) => {
                    for c2 in (0..row).filter(|&c2| c2 != c) {
                        let members: Vec<usize> = (0..col_end)
                            .filter(|&r2| r2 != r)
                            .map(|r2| at(r2, c2))
                            .collect();
                        if !members.is_empty() {
                            u.push(table.id(members));
                        }
                    }
                }
                Some(Summarise::Rows) => {
                    for r2 in (0..col_end).filter(|&r2| r2 != r) {
                        let members: Vec<usize> = (0..row)
                            .filter(|&c2| c2 != c)
                            .map(|c2| at(r2, c2))
                            .collect();
                        if !members.is_empty() {
                            u.push(table.id(members));
                        }
                    }
                }
            }
            direct.push(d);
            uses.push(u);
        }
        Self::assemble(len, causal, direct, table, uses)
    }

    /// Every position query i reaches, directly or through a region, with multiplicity.
    pub fn coverage(&self, i: usize) -> Vec<usize> {
        let mut all = self.direct[i].clone();
        for &r in &self.uses[i] {
            all.extend_from_slice(&self.regions[r]);
        }
        all.sort_unstable();
        all
    }

    /// The most terms (direct keys plus regions) any query has: the per-query cost.
    pub fn max_terms(&self) -> usize {
        (0..self.len)
            .map(|i| self.direct[i].len() + self.uses[i].len())
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed_set(p: &Partition, i: usize) -> Vec<usize> {
        (0..p.len).filter(|&j| p.allowed(i, j)).collect()
    }

    #[test]
    fn combiner_partitions_cover_every_allowed_position_exactly_once() {
        for causal in [true, false] {
            for len in [16, 36, 64] {
                let block = default_block(len);
                for pattern in Pattern::ALL.into_iter().filter(|p| p.is_combiner()) {
                    for part in pattern.partitions(len, block, causal) {
                        for i in 0..len {
                            assert_eq!(
                                part.coverage(i),
                                allowed_set(&part, i),
                                "{} len {len} causal {causal} query {i}",
                                pattern.name()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sparse_patterns_match_their_definitions() {
        // Causal Logsparse at i = 13 = 0b1101: self, 12, and the ends of [8, 12), [0, 8).
        let p = Partition::logsparse(16, true, false);
        assert_eq!(p.direct[13], vec![7, 11, 12, 13]);
        // Causal Fixed, block 4, query 9: own block up to 9, then 3 and 7.
        let p = Partition::fixed(16, 4, true, false);
        assert_eq!(p.direct[9], vec![3, 7, 8, 9]);
        // Causal Axial, rows of 4, query 9 = (2, 1): row 2 up to column 1, column 1 above.
        let p = Partition::axial(16, 4, true, None);
        assert_eq!(p.direct[9], vec![1, 5, 8, 9]);
        for part in [p, Partition::fixed(16, 4, false, false)] {
            assert!(part.uses.iter().all(Vec::is_empty));
        }
    }

    #[test]
    fn per_query_terms_grow_like_sqrt_and_log() {
        let terms = |p: Pattern, len: usize| {
            p.partitions(len, default_block(len), true)[0].max_terms() as f64
        };
        for p in [Pattern::CombinerFixed, Pattern::CombinerAxial] {
            let ratio = terms(p, 4096) / terms(p, 256);
            assert!((3.0..5.0).contains(&ratio), "{}: {ratio}", p.name());
        }
        let ratio =
            terms(Pattern::CombinerLogsparse, 4096) / terms(Pattern::CombinerLogsparse, 256);
        assert!(ratio < 1.6, "logsparse: {ratio}");
        assert_eq!(default_block(1024), 32);
        assert_eq!(default_block(2048), 32);
        assert_eq!(default_block(12), 4);
    }
}
