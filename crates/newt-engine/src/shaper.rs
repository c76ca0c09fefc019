//! FastNEWT: each learned shaper (input scale included) sampled on a grid and read back
//! by linear interpolation, with the exact sine-MLP path kept as the reference.

use newt_model::ShaperBank;

/// Which implementation of the 64 shapers a voice runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShaperPath {
    /// FastNEWT lookup tables (the real-time default).
    #[default]
    Table,
    /// The exact sine MLPs (reference; about 50 times slower).
    Mlp,
}

/// Grid of a FastNEWT table: `size` points spanning `[lo, hi]` of the shaper input (after
/// FiLM, before the learned input scale). Inputs outside the range clamp to its ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableSpec {
    pub size: usize,
    pub lo: f32,
    pub hi: f32,
}

impl TableSpec {
    /// At least two points over a finite, non-empty range.
    pub fn is_valid(&self) -> bool {
        self.size >= 2 && self.lo.is_finite() && self.hi.is_finite() && self.hi > self.lo
    }
}

impl Default for TableSpec {
    /// The paper's 4096 points over [-3, 3].
    fn default() -> Self {
        Self {
            size: 4096,
            lo: -3.0,
            hi: 3.0,
        }
    }
}

/// All shapers of one model as lookup tables, `[n_shapers][size]`, built off the audio
/// thread.
#[derive(Clone, Debug)]
pub struct ShaperTables {
    spec: TableSpec,
    /// `(size - 1) / (hi - lo)`: table positions per unit of input.
    inv_step: f32,
    values: Vec<f32>,
    /// `[n_shapers][size - 1]` segments `(value, slope)`: one 8-byte read per lookup.
    segments: Vec<[f32; 2]>,
}

impl ShaperTables {
    pub fn new(bank: &ShaperBank, spec: TableSpec) -> Self {
        assert!(
            spec.size >= 2 && spec.hi > spec.lo,
            "invalid table spec {spec:?}"
        );
        let step = (spec.hi - spec.lo) as f64 / (spec.size - 1) as f64;
        let inputs: Vec<f32> = (0..spec.size)
            .map(|j| (spec.lo as f64 + j as f64 * step) as f32)
            .collect();
        let mut values = vec![0.0; bank.n * spec.size];
        for (c, table) in values.chunks_exact_mut(spec.size).enumerate() {
            // The vectorised evaluator gives `bank.eval`'s bits (kernels' tests).
            if let Some(shaper) = crate::kernels::MlpShaper::of(bank, c) {
                crate::kernels::eval_mlp(&shaper, &inputs, table);
            }
        }
        let segments = values
            .chunks_exact(spec.size)
            .flat_map(|t| t.windows(2).map(|w| [w[0], w[1] - w[0]]))
            .collect();
        Self {
            spec,
            inv_step: (spec.size - 1) as f32 / (spec.hi - spec.lo),
            values,
            segments,
        }
    }

    pub fn spec(&self) -> TableSpec {
        self.spec
    }

    /// Table of shaper `c`.
    pub fn table(&self, c: usize) -> &[f32] {
        &self.values[c * self.spec.size..(c + 1) * self.spec.size]
    }

    /// Segments `(value, slope to the next point)` of shaper `c`, `size - 1` of them.
    pub fn segments(&self, c: usize) -> &[[f32; 2]] {
        let n = self.spec.size - 1;
        &self.segments[c * n..(c + 1) * n]
    }

    /// Interpolated value of shaper `c` at input `u`, clamped at both ends of the range.
    /// Index: position `(u - lo) (size - 1) / (hi - lo)` (the published code used
    /// `size` here and extrapolated below the range).
    #[inline]
    pub fn lookup(&self, table: &[f32], u: f32) -> f32 {
        let last = (self.spec.size - 1) as f32;
        // `max` then `min` also maps NaN to the low end.
        let pos = ((u - self.spec.lo) * self.inv_step).max(0.0).min(last);
        let i = (pos as usize).min(self.spec.size - 2);
        let frac = pos - i as f32;
        let a = table[i];
        let b = table[i + 1];
        a + frac * (b - a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use newt_model::NewtModel;

    #[test]
    fn table_hits_grid_points_and_clamps_both_ends() {
        let bank = NewtModel::seeded(2).weights.shapers;
        let spec = TableSpec {
            size: 61,
            lo: -3.0,
            hi: 3.0,
        };
        let t = ShaperTables::new(&bank, spec);
        for c in [0, 17, 63] {
            let table = t.table(c);
            for j in [0, 1, 30, 59, 60] {
                let u = -3.0 + j as f32 * 0.1;
                assert!(
                    (t.lookup(table, u) - bank.eval(c, u)).abs() < 1e-5,
                    "c {c} j {j}"
                );
            }
            assert_eq!(t.lookup(table, -100.0), table[0]);
            assert_eq!(t.lookup(table, 100.0), table[60]);
            assert_eq!(t.lookup(table, 3.0), table[60]);
            assert_eq!(t.lookup(table, f32::NAN), table[0]);
            let mid = t.lookup(table, -2.95);
            assert!((mid - 0.5 * (table[0] + table[1])).abs() < 1e-5);
        }
    }

    #[test]
    fn default_table_is_close_to_the_mlp() {
        let bank = NewtModel::seeded(4).weights.shapers;
        let t = ShaperTables::new(&bank, TableSpec::default());
        let mut worst = 0.0f32;
        for c in 0..bank.n {
            for i in 0..2000 {
                let u = -3.0 + 6.0 * (i as f32 + 0.37) / 2000.0;
                worst = worst.max((t.lookup(t.table(c), u) - bank.eval(c, u)).abs());
            }
        }
        assert!(worst < 1e-3, "worst table error {worst}");
    }
}
