//! The per-sample and per-frame inner loops, compiled for several instruction sets
//! (AVX-512, AVX2 + FMA, and the baseline) with one run-time dispatch per call by the
//! `multiversion` crate. Each kernel is plain scalar Rust whose loop structure the
//! compiler vectorises; the arithmetic order of every output value is fixed by the code,
//! never by how callers batch work, so results do not depend on the host block size.

use std::cell::Cell;

use multiversion::multiversion;

/// `a * b + c`, fused (one rounding) in the versions compiled with FMA. Only valid inside
/// a `#[multiversion]` function: each compiled version decides at compile time.
macro_rules! madd {
    ($a:expr, $b:expr, $c:expr) => {
        if multiversion::target::target_cfg_f!(target_feature = "fma") {
            f32::mul_add($a, $b, $c)
        } else {
            $a * $b + $c
        }
    };
}

/// Which compiled version of the kernels runs. `Best` is the default: the best the CPU
/// has (AVX-512, else AVX2 + FMA, else the x86-64 baseline), detected once. The others
/// exist to compare the versions in one run (`cargo xtask bench engine --compare`) and for
/// tests; results differ between versions only by FMA rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelLevel {
    Best,
    /// AVX2 + FMA even where AVX-512 is available (the baseline where AVX2 is not).
    Avx2,
    /// The x86-64 baseline (SSE2), whatever the CPU has.
    Baseline,
}

thread_local! {
    /// Per thread, so that a benchmark or a test choosing a version never changes what
    /// another thread renders with.
    static KERNEL_LEVEL: Cell<u8> = const { Cell::new(0) };
}

/// Chooses the kernels' version for the calling thread.
pub fn set_kernel_level(level: KernelLevel) {
    let v = match level {
        KernelLevel::Best => 0,
        KernelLevel::Avx2 => 1,
        KernelLevel::Baseline => 2,
    };
    KERNEL_LEVEL.with(|l| l.set(v));
}

/// The version chosen by [`set_kernel_level`].
pub fn kernel_level() -> KernelLevel {
    match KERNEL_LEVEL.with(Cell::get) {
        1 => KernelLevel::Avx2,
        2 => KernelLevel::Baseline,
        _ => KernelLevel::Best,
    }
}

/// The instruction set the kernels run with at `level` on this CPU.
pub fn instruction_set(level: KernelLevel) -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        let avx512 = avx2
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq");
        match level {
            KernelLevel::Best if avx512 => "AVX-512",
            KernelLevel::Best | KernelLevel::Avx2 if avx2 => "AVX2+FMA",
            _ => "x86-64 baseline (SSE2)",
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        "portable (no x86-64 versions)"
    }
}

/// A kernel compiled three times: for the best instruction set the CPU has (AVX-512 or
/// AVX2 + FMA, chosen at run time by `multiversion`), for AVX2 + FMA at most, and for the
/// baseline; [`kernel_level`] picks one (one thread-local read per call).
macro_rules! kernel {
    ($(#[$attr:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        pub fn $name($($arg: $ty),*) {
            match kernel_level() {
                KernelLevel::Best => $name::best($($arg),*),
                KernelLevel::Avx2 => $name::avx2($($arg),*),
                KernelLevel::Baseline => $name::baseline($($arg),*),
            }
        }

        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[multiversion(targets(
                "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
                "x86_64+avx2+fma"
            ))]
            pub(super) fn best($($arg: $ty),*) $body

            #[multiversion(targets("x86_64+avx2+fma"))]
            pub(super) fn avx2($($arg: $ty),*) $body

            // Static dispatch on a baseline build: the default version, always.
            #[multiversion(targets("x86_64+avx2+fma"), dispatcher = "static")]
            pub(super) fn baseline($($arg: $ty),*) $body
        }
    };
}

kernel! {
    /// `Y[n][o] = b[o] + sum_i W[o][i] X[n][i]` with the weights stored transposed (`wt` is
    /// `[inputs][outputs]`), for `cols` input columns stored one after another. Vectorised
    /// over outputs, in tiles of `O` outputs x up to 4 columns whose accumulators stay in
    /// registers (each weight load serves every column of the tile): with AVX2's 16
    /// registers 32 outputs (64 for a single column, whose 8 accumulators keep both FMA
    /// pipes busy; 16 or 24 outputs for three or four columns measured slower), 64 with
    /// AVX-512's 32. Every output is summed over `i` in order, so a
    /// column's result never depends on how many columns are computed together, nor on the
    /// tile sizes.
    pub fn matmat(wt: &[f32], b: &[f32], x: &[f32], cols: usize, y: &mut [f32]) {
        let fma = multiversion::target::target_cfg_f!(target_feature = "fma");
        let wide = multiversion::target::target_cfg_f!(target_feature = "avx512f");
        let outputs = b.len();
        let inputs = x.len() / cols.max(1);
        let m = Matrices {
            wt,
            b,
            x,
            inputs,
            outputs,
        };
        let mut c0 = 0;
        while c0 < cols {
            let cb = 4.min(cols - c0);
            let mut o0 = 0;
            macro_rules! tiles {
                ($o:literal) => {
                    while o0 + $o <= outputs {
                        match cb {
                            4 => m.tile::<$o, 4>(o0, c0, fma, y),
                            3 => m.tile::<$o, 3>(o0, c0, fma, y),
                            2 => m.tile::<$o, 2>(o0, c0, fma, y),
                            _ => m.tile::<$o, 1>(o0, c0, fma, y),
                        }
                        o0 += $o;
                    }
                };
            }
            if wide || cb == 1 {
                tiles!(64);
            } else {
                tiles!(32);
            }
            tiles!(8);
            // The last outputs (fewer than 8), one tile of one output each.
            while o0 < outputs {
                match cb {
                    4 => m.tile::<1, 4>(o0, c0, fma, y),
                    3 => m.tile::<1, 3>(o0, c0, fma, y),
                    2 => m.tile::<1, 2>(o0, c0, fma, y),
                    _ => m.tile::<1, 1>(o0, c0, fma, y),
                }
                o0 += 1;
            }
            c0 += cb;
        }
    }
}

/// `a * b + c`, fused when `fma` (constant in each version of a kernel, where the fused
/// form is one instruction).
#[inline(always)]
fn madd_if(fma: bool, a: f32, b: f32, c: f32) -> f32 {
    if fma { a.mul_add(b, c) } else { a * b + c }
}

/// The operands of [`matmat`].
struct Matrices<'a> {
    wt: &'a [f32],
    b: &'a [f32],
    x: &'a [f32],
    inputs: usize,
    outputs: usize,
}

impl Matrices<'_> {
    /// Outputs `o0..o0 + O` of columns `c0..c0 + C` (inlined into each version of
    /// [`matmat`], whose `fma` it takes). Out-of-range requests write nothing.
    #[inline(always)]
    fn tile<const O: usize, const C: usize>(&self, o0: usize, c0: usize, fma: bool, y: &mut [f32]) {
        let (inputs, outputs) = (self.inputs, self.outputs);
        let Some(bias) = self.b.get(o0..o0 + O) else {
            return;
        };
        if o0 + O > outputs || self.wt.len() < inputs * outputs {
            return;
        }
        // The tile's input columns, each exactly `inputs` long, fetched once.
        let mut xs: [&[f32]; C] = [&[]; C];
        for (c, col) in xs.iter_mut().enumerate() {
            match self.x.get((c0 + c) * inputs..(c0 + c + 1) * inputs) {
                Some(v) => *col = v,
                None => return,
            }
        }
        let mut acc = [[0.0f32; O]; C];
        for a in acc.iter_mut() {
            a.copy_from_slice(bias);
        }
        for (i, row) in self.wt.chunks_exact(outputs).take(inputs).enumerate() {
            let Some(Ok(w)) = row.get(o0..o0 + O).map(<&[f32; O]>::try_from) else {
                return;
            };
            for (a, col) in acc.iter_mut().zip(&xs) {
                let xi = col[i];
                for l in 0..O {
                    a[l] = madd_if(fma, w[l], xi, a[l]);
                }
            }
        }
        for (c, a) in acc.iter().enumerate() {
            if let Some(out) = y.get_mut((c0 + c) * outputs + o0..(c0 + c) * outputs + o0 + O) {
                out.copy_from_slice(a);
            }
        }
    }
}

/// Transposes a row-major `[rows][cols]` matrix.
pub fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

kernel! {
    /// The harmonic mixer as a small matrix product:
    /// `x[c][i] = bias[c] + sum_{k < nk} m[c * stride + k] * h[k][i]` with rows of `hop`.
    pub fn mix_harmonics(
        m: &[f32],
        stride: usize,
        bias: &[f32],
        h: &[f32],
        nk: usize,
        hop: usize,
        x: &mut [f32],
    ) {
        const C: usize = 4;
        const I: usize = 16;
        let channels = bias.len();
        let full_c = channels / C * C;
        let full_i = hop / I * I;
        for c0 in (0..full_c).step_by(C) {
            for i0 in (0..full_i).step_by(I) {
                let mut acc = [[0.0f32; I]; C];
                for (j, a) in acc.iter_mut().enumerate() {
                    a.fill(bias[c0 + j]);
                }
                for k in 0..nk {
                    let Some(Ok(hk)) = h.get(k * hop + i0..k * hop + i0 + I).map(<&[f32; I]>::try_from)
                    else {
                        break;
                    };
                    for (j, a) in acc.iter_mut().enumerate() {
                        let coef = m[(c0 + j) * stride + k];
                        for l in 0..I {
                            a[l] = madd!(coef, hk[l], a[l]);
                        }
                    }
                }
                for (j, a) in acc.iter().enumerate() {
                    x[(c0 + j) * hop + i0..(c0 + j) * hop + i0 + I].copy_from_slice(a);
                }
            }
        }
        // Remainders (channel counts not a multiple of 4, hops not a multiple of 16).
        for c in 0..channels {
            let from = if c < full_c { full_i } else { 0 };
            for i in from..hop {
                let mut acc = bias[c];
                for k in 0..nk {
                    acc = madd!(m[c * stride + k], h[k * hop + i], acc);
                }
                x[c * hop + i] = acc;
            }
        }
    }
}

/// Per-frame coefficients of one shaper channel, FiLM and the affine knobs folded in:
/// input `p = (a + da r) x + (b + db r)`, output contribution `(c + dc r) s(p)`, where
/// `r = (i + lead) / hop` ramps from the previous frame's values to this frame's (`FilmRamp`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ShaperCoefs {
    pub a: f32,
    pub da: f32,
    pub b: f32,
    pub db: f32,
    pub c: f32,
    pub dc: f32,
}

kernel! {
    /// FastNEWT: `y[i] += (c + dc r) T(p)` with `p` in table positions, clamped to
    /// `[0, size - 1]`, `T` linearly interpolated from `segments[j] = (T[j], T[j+1] - T[j])`.
    ///
    /// In three passes over groups of [`TABLE_LANES`] samples: positions and fractions
    /// (vectorised), the table reads (one 8-byte load per sample), the interpolation and
    /// accumulation (vectorised). Written as one loop, LLVM vectorises it only where gathers
    /// are cheap in its cost model (AVX-512) and leaves the AVX2 version scalar; split, every
    /// version vectorises the arithmetic. Each sample's operations are the same either way.
    pub fn shape_table(k: ShaperCoefs, x: &[f32], ramp: &[f32], segments: &[[f32; 2]], y: &mut [f32]) {
        const L: usize = TABLE_LANES;
        let last = segments.len() as f32;
        // Tables hold at most 2^22 points (`TableSpec`), so indices fit in u32.
        let max_index = segments.len().saturating_sub(1) as u32;
        if segments.is_empty() {
            return;
        }
        let n = y.len().min(x.len()).min(ramp.len());
        let (y, x, ramp) = (&mut y[..n], &x[..n], &ramp[..n]);
        let position = |xi: f32, r: f32| -> (u32, f32) {
            let p = madd!(madd!(k.da, r, k.a), xi, madd!(k.db, r, k.b));
            // `max` then `min` also sends NaN to 0.
            let p = p.max(0.0).min(last);
            let j = floor_index_u32(p).min(max_index);
            (j, p - j as f32)
        };
        let mut groups = y
            .chunks_exact_mut(L)
            .zip(x.chunks_exact(L))
            .zip(ramp.chunks_exact(L));
        for ((y, x), ramp) in &mut groups {
            let mut index = [0u32; L];
            let mut frac = [0.0f32; L];
            for l in 0..L {
                (index[l], frac[l]) = position(x[l], ramp[l]);
            }
            let mut value = [0.0f32; L];
            let mut slope = [0.0f32; L];
            for l in 0..L {
                // Already `<= max_index`; the `min` in usize against `len - 1` (`len >= 1`
                // above) is what lets the compiler drop the bounds check and its panic path.
                let [t0, d] = segments[(index[l] as usize).min(segments.len() - 1)];
                value[l] = t0;
                slope[l] = d;
            }
            for l in 0..L {
                let r = ramp[l];
                y[l] = madd!(
                    madd!(k.dc, r, k.c),
                    madd!(frac[l], slope[l], value[l]),
                    y[l]
                );
            }
        }
        let done = n / L * L;
        for ((y, &xi), &r) in y[done..].iter_mut().zip(&x[done..]).zip(&ramp[done..]) {
            let (j, f) = position(xi, r);
            let [t0, d] = segments.get(j as usize).copied().unwrap_or([0.0, 0.0]);
            *y = madd!(madd!(k.dc, r, k.c), madd!(f, d, t0), *y);
        }
    }
}

/// Samples per group in [`shape_table`].
const TABLE_LANES: usize = 16;

/// One exact shaper's weights (the sine MLP of width 8), borrowed from the model's
/// [`ShaperBank`](newt_model::ShaperBank) as fixed-size arrays so that the kernels below
/// keep them in registers.
#[derive(Clone, Copy, Debug)]
pub struct MlpShaper<'a> {
    scale: f32,
    w1: &'a [f32; MLP_WIDTH],
    b1: &'a [f32; MLP_WIDTH],
    w2: &'a [f32; MLP_WIDTH * MLP_WIDTH],
    b2: &'a [f32; MLP_WIDTH],
    w3: &'a [f32; MLP_WIDTH * MLP_WIDTH],
    b3: &'a [f32; MLP_WIDTH],
    w4: &'a [f32; MLP_WIDTH],
    b4: f32,
}

const MLP_WIDTH: usize = newt_model::SHAPER_WIDTH;

/// Samples evaluated side by side by the MLP kernels: one lane each, every lane with the
/// same operations in the same order as [`ShaperBank::eval`](newt_model::ShaperBank::eval),
/// so results are bit-identical to it on every instruction set.
const MLP_LANES: usize = 16;

impl<'a> MlpShaper<'a> {
    /// Shaper `c` of `bank`; `None` when `c` is out of range.
    pub fn of(bank: &'a newt_model::ShaperBank, c: usize) -> Option<Self> {
        const W: usize = MLP_WIDTH;
        let row =
            |v: &'a [f32]| -> Option<&'a [f32; W]> { v.get(c * W..(c + 1) * W)?.try_into().ok() };
        let square = |v: &'a [f32]| -> Option<&'a [f32; W * W]> {
            v.get(c * W * W..(c + 1) * W * W)?.try_into().ok()
        };
        Some(Self {
            scale: *bank.input_scale.get(c)?,
            w1: row(&bank.w1)?,
            b1: row(&bank.b1)?,
            w2: square(&bank.w2)?,
            b2: row(&bank.b2)?,
            w3: square(&bank.w3)?,
            b3: row(&bank.b3)?,
            w4: row(&bank.w4)?,
            b4: *bank.b4.get(c)?,
        })
    }

    /// The MLP on `MLP_LANES` inputs at once (before the input scale).
    #[inline(always)]
    fn eval_lanes(&self, u: &[f32; MLP_LANES]) -> [f32; MLP_LANES] {
        use newt_model::sine::sin;
        const W: usize = MLP_WIDTH;
        const L: usize = MLP_LANES;
        let mut x = [0.0f32; L];
        for l in 0..L {
            x[l] = self.scale * u[l];
        }
        let mut h1 = [[0.0f32; L]; W];
        for j in 0..W {
            for l in 0..L {
                h1[j][l] = sin(self.w1[j] * x[l] + self.b1[j]);
            }
        }
        let h2 = sine_layer(self.w2, self.b2, &h1);
        let h3 = sine_layer(self.w3, self.b3, &h2);
        let mut acc = [self.b4; L];
        for k in 0..W {
            for l in 0..L {
                acc[l] += self.w4[k] * h3[k][l];
            }
        }
        let mut out = [0.0f32; L];
        for l in 0..L {
            out[l] = sin(acc[l]);
        }
        out
    }
}

/// One hidden layer of the shaper MLP on every lane: `o[j] = sin(b[j] + sum_k w[j][k] h[k])`,
/// summed over `k` in order. A function, not a closure, so that it inlines into each
/// instruction-set version of its caller.
#[inline(always)]
fn sine_layer(
    w: &[f32; MLP_WIDTH * MLP_WIDTH],
    b: &[f32; MLP_WIDTH],
    h: &[[f32; MLP_LANES]; MLP_WIDTH],
) -> [[f32; MLP_LANES]; MLP_WIDTH] {
    use newt_model::sine::sin;
    const W: usize = MLP_WIDTH;
    const L: usize = MLP_LANES;
    let mut o = [[0.0f32; L]; W];
    for j in 0..W {
        let mut acc = [b[j]; L];
        for k in 0..W {
            for l in 0..L {
                acc[l] += w[j * W + k] * h[k][l];
            }
        }
        for l in 0..L {
            o[j][l] = sin(acc[l]);
        }
    }
    o
}

kernel! {
    /// The exact shaper on many inputs: `s[i] = shaper(u[i])`, bit-identical to
    /// [`ShaperBank::eval`](newt_model::ShaperBank::eval) sample by sample (FastNEWT's tables
    /// are built with it).
    pub fn eval_mlp(shaper: &MlpShaper<'_>, u: &[f32], s: &mut [f32]) {
        for (u, s) in u.chunks(MLP_LANES).zip(s.chunks_mut(MLP_LANES)) {
            let mut lanes = [0.0f32; MLP_LANES];
            lanes[..u.len()].copy_from_slice(u);
            let out = shaper.eval_lanes(&lanes);
            let n = s.len().min(u.len());
            s[..n].copy_from_slice(&out[..n]);
        }
    }
}

kernel! {
    /// NEWT's exact path: `y[i] += (c + dc r) S(u)` with `u = (a + da r) x + (b + db r)` and
    /// `S` the shaper's MLP; per sample the same operations as the scalar formula, so the
    /// result does not depend on the instruction set.
    pub fn shape_mlp(k: ShaperCoefs, shaper: &MlpShaper<'_>, x: &[f32], ramp: &[f32], y: &mut [f32]) {
        let n = y.len().min(x.len()).min(ramp.len());
        let (y, x, ramp) = (&mut y[..n], &x[..n], &ramp[..n]);
        for ((y, x), ramp) in y
            .chunks_mut(MLP_LANES)
            .zip(x.chunks(MLP_LANES))
            .zip(ramp.chunks(MLP_LANES))
        {
            let mut u = [0.0f32; MLP_LANES];
            for ((u, &xi), &r) in u.iter_mut().zip(x).zip(ramp) {
                *u = (k.a + k.da * r) * xi + (k.b + k.db * r);
            }
            let s = shaper.eval_lanes(&u);
            for ((y, &s), &r) in y.iter_mut().zip(&s).zip(ramp) {
                *y += (k.c + k.dc * r) * s;
            }
        }
    }
}

/// `floor(p)` for `0 <= p < 2^22`, from the bits of `p + 1` with integer operations only
/// (which vectorise, unlike a saturating float-to-integer cast). Where `p + 1` rounds up
/// to an integer the result is one more than `floor(p)` and the interpolation fraction is
/// a few ulps below zero: harmless.
#[inline(always)]
fn floor_index_u32(p: f32) -> u32 {
    let bits = (p + 1.0).to_bits();
    let exponent = (bits >> 23).wrapping_sub(127);
    let mantissa = (bits & 0x007F_FFFF) | 0x0080_0000;
    (mantissa >> (23u32.wrapping_sub(exponent) & 31)).wrapping_sub(1)
}

#[cfg(test)]
fn floor_index(p: f32) -> usize {
    floor_index_u32(p) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use newt_model::SplitMix64;

    #[test]
    fn matmat_columns_are_bit_identical_to_single_columns_and_correct() {
        let mut rng = SplitMix64::new(4);
        for (rows, n) in [(1, 1), (3, 5), (7, 33), (384, 128), (129, 128), (6, 2)] {
            let w: Vec<f32> = (0..rows * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let wt = transpose(&w, rows, n);
            let b: Vec<f32> = (0..rows).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let x: Vec<f32> = (0..8 * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let mut all = vec![0.0; 8 * rows];
            matmat(&wt, &b, &x, 8, &mut all);
            for cols in [1, 2, 3, 5] {
                let mut some = vec![0.0; cols * rows];
                matmat(&wt, &b, &x[..cols * n], cols, &mut some);
                assert_eq!(
                    some.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    all[..cols * rows]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>(),
                    "rows {rows} n {n} cols {cols}"
                );
            }
            for c in 0..8 {
                for o in 0..rows {
                    let want: f64 = b[o] as f64
                        + (0..n)
                            .map(|i| w[o * n + i] as f64 * x[c * n + i] as f64)
                            .sum::<f64>();
                    assert!((all[c * rows + o] as f64 - want).abs() < 1e-4, "{rows}x{n}");
                }
            }
        }
    }

    #[test]
    fn mix_harmonics_matches_the_definition() {
        let mut rng = SplitMix64::new(5);
        let (channels, nh, hop, nk) = (6, 9, 20, 7);
        let m: Vec<f32> = (0..channels * nh).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let bias: Vec<f32> = (0..channels).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let h: Vec<f32> = (0..nh * hop).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut x = vec![0.0; channels * hop];
        mix_harmonics(&m, nh, &bias, &h, nk, hop, &mut x);
        for c in 0..channels {
            for i in 0..hop {
                let want = bias[c] + (0..nk).map(|k| m[c * nh + k] * h[k * hop + i]).sum::<f32>();
                assert!((x[c * hop + i] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn the_mlp_kernels_are_bit_identical_to_the_scalar_shaper() {
        let mut rng = SplitMix64::new(21);
        let mut bank = newt_model::ShaperBank::zeros(3);
        for v in [
            &mut bank.w1,
            &mut bank.b1,
            &mut bank.w2,
            &mut bank.b2,
            &mut bank.w3,
            &mut bank.b3,
            &mut bank.w4,
            &mut bank.b4,
        ] {
            for x in v.iter_mut() {
                *x = (rng.next_f64() as f32 - 0.5) * 4.0;
            }
        }
        bank.input_scale = vec![1.0, 34.0, 0.3];
        // 37 samples: two full lane groups and a remainder.
        let x: Vec<f32> = (0..37)
            .map(|_| (rng.next_f64() as f32 - 0.5) * 3.0)
            .collect();
        let ramp: Vec<f32> = (0..37).map(|i| (i + 1) as f32 / 37.0).collect();
        let k = ShaperCoefs {
            a: 0.8,
            da: 0.3,
            b: -0.1,
            db: 0.2,
            c: 0.5,
            dc: -0.25,
        };
        for c in 0..3 {
            let shaper = MlpShaper::of(&bank, c).unwrap();
            let mut s = vec![0.0; 37];
            eval_mlp(&shaper, &x, &mut s);
            let mut y = vec![0.125; 37];
            shape_mlp(k, &shaper, &x, &ramp, &mut y);
            for i in 0..37 {
                assert_eq!(s[i].to_bits(), bank.eval(c, x[i]).to_bits(), "eval {c} {i}");
                let r = ramp[i];
                let u = (k.a + k.da * r) * x[i] + (k.b + k.db * r);
                let expect = 0.125 + (k.c + k.dc * r) * bank.eval(c, u);
                assert_eq!(y[i].to_bits(), expect.to_bits(), "shape {c} {i}");
            }
        }
        assert!(MlpShaper::of(&bank, 3).is_none());
    }

    /// FastNEWT by the definition, in f64: the scalar reference the kernel is checked
    /// against.
    fn shape_table_reference(k: ShaperCoefs, x: f32, r: f32, segments: &[[f32; 2]]) -> f64 {
        let (x, r) = (x as f64, r as f64);
        let p = (k.a as f64 + k.da as f64 * r) * x + (k.b as f64 + k.db as f64 * r);
        let p = if p.is_nan() {
            0.0
        } else {
            p.clamp(0.0, segments.len() as f64)
        };
        let j = (p.floor() as usize).min(segments.len() - 1);
        let [t0, d] = segments[j];
        (k.c as f64 + k.dc as f64 * r) * (t0 as f64 + (p - j as f64) * d as f64)
    }

    #[test]
    fn shape_table_matches_the_scalar_reference_in_groups_and_remainders() {
        let mut rng = SplitMix64::new(5);
        let segments: Vec<[f32; 2]> = (0..255)
            .map(|j| [(j as f32 * 0.07).sin(), 0.07 * (j as f32 * 0.07).cos()])
            .collect();
        let k = ShaperCoefs {
            a: 40.0,
            da: 3.0,
            b: 127.5,
            db: -2.0,
            c: 0.7,
            dc: 0.1,
        };
        // 16-sample groups and a remainder; inputs past both ends and a NaN.
        let n = 16 * 3 + 5;
        let mut x: Vec<f32> = (0..n)
            .map(|_| (rng.next_f64() as f32 - 0.5) * 8.0)
            .collect();
        x[7] = f32::NAN;
        x[50] = f32::NAN;
        let ramp: Vec<f32> = (0..n).map(|i| (i + 1) as f32 / n as f32).collect();
        let mut y = vec![0.25f32; n];
        shape_table(k, &x, &ramp, &segments, &mut y);
        for i in 0..n {
            let expect = 0.25 + shape_table_reference(k, x[i], ramp[i], &segments);
            assert!(
                (y[i] as f64 - expect).abs() < 1e-4,
                "{i}: {} vs {expect}",
                y[i]
            );
        }
        // An empty table leaves the output alone.
        let mut z = vec![1.0f32; 4];
        shape_table(k, &x[..4], &ramp[..4], &[], &mut z);
        assert_eq!(z, vec![1.0; 4]);
    }

    #[test]
    fn every_kernel_level_computes_the_same_table_lookups() {
        let segments: Vec<[f32; 2]> = (0..63).map(|j| [j as f32, 1.0]).collect();
        let k = ShaperCoefs {
            a: 10.0,
            da: 0.0,
            b: 31.0,
            db: 0.0,
            c: 1.0,
            dc: 0.0,
        };
        let x: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) * 0.1).collect();
        let ramp = vec![0.5f32; 40];
        let run = |level| {
            set_kernel_level(level);
            let mut y = vec![0.0f32; 40];
            shape_table(k, &x, &ramp, &segments, &mut y);
            y
        };
        let best = run(KernelLevel::Best);
        // The versions differ by FMA rounding only.
        for other in [run(KernelLevel::Avx2), run(KernelLevel::Baseline)] {
            for (a, b) in other.iter().zip(&best) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
        set_kernel_level(KernelLevel::Best);
        assert_eq!(kernel_level(), KernelLevel::Best);
        for (i, y) in best.iter().enumerate() {
            let expect = (10.0 * (i as f32 - 20.0) * 0.1 + 31.0).clamp(0.0, 63.0);
            assert!((y - expect).abs() < 1e-5, "{i}: {y} vs {expect}");
        }
        assert!(!instruction_set(KernelLevel::Baseline).is_empty());
    }

    #[test]
    fn convolve_add_matches_the_plain_overlap_add() {
        for (taps, len, extra) in [
            (256, 128, 0),
            (256, 128, 1),
            (256, 64, 3),
            (13, 21, 0),
            (13, 21, 9),
            (8, 8, 0),
            (1, 5, 2),
            (30, 1, 0),
        ] {
            let h: Vec<f32> = (0..taps)
                .map(|j| ((j * 7 % 11) as f32 - 5.0) * 0.1)
                .collect();
            let u: Vec<f32> = (0..len).map(|i| (i as f32 * 0.61).sin()).collect();
            let start: Vec<f32> = (0..taps + len - 1 + extra)
                .map(|n| n as f32 * 1e-3)
                .collect();
            let mut plain = start.clone();
            for (j, &hj) in h.iter().enumerate() {
                for (i, &ui) in u.iter().enumerate() {
                    plain[j + i] += hj * ui;
                }
            }
            let mut padded = vec![0.0; len + 3 * CONVOLVE_PAD];
            padded[CONVOLVE_PAD..CONVOLVE_PAD + len].copy_from_slice(&u);
            for level in [KernelLevel::Baseline, KernelLevel::Best] {
                set_kernel_level(level);
                let mut ola = start.clone();
                convolve_add(&h, &padded, &mut ola);
                if level == KernelLevel::Baseline {
                    assert_eq!(ola, plain, "{taps} taps, {len} samples");
                } else {
                    let worst = ola
                        .iter()
                        .zip(&plain)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f32::max);
                    assert!(worst < 1e-5, "{taps} taps, {len} samples: {worst}");
                }
            }
            set_kernel_level(KernelLevel::Best);
        }
    }

    #[test]
    fn floor_index_is_floor_over_the_table_range() {
        for i in 0..=40_950u32 {
            let p = i as f32 * 0.1;
            let j = floor_index(p);
            assert!(j as f32 <= p + 1e-3 && p < j as f32 + 1.0, "{p} -> {j}");
        }
        assert_eq!(floor_index(0.0), 0);
        assert_eq!(floor_index(4095.0), 4095);
        assert_eq!(floor_index(0.999), 0);
        assert_eq!(floor_index(17.5), 17);
    }
}

/// Zeros before the signal in [`convolve_add`]'s padded input; `2 * CONVOLVE_PAD` follow it.
pub const CONVOLVE_PAD: usize = 8;

kernel! {
    /// Overlap-add of one frame of filtered noise: `ola[j + i] += h[j] u[i]`, where `u` is
    /// `padded[CONVOLVE_PAD..padded.len() - 2 CONVOLVE_PAD]` and the padding is zeros.
    ///
    /// Eight taps per pass over the outputs: each output is loaded and stored once per 8
    /// taps rather than once per tap, and the loop over outputs vectorises with unaligned
    /// loads of the input. Every output still adds its taps in increasing `j` from its
    /// previous value, so the result is the plain loop's (a padding zero adds `+-0`, which
    /// can only turn a `-0` into `+0`). Outputs beyond `ola` are dropped; an `ola`
    /// a few samples longer than the `h.len() + u.len() - 1` outputs lets every pass run as
    /// whole vectors.
    pub fn convolve_add(h: &[f32], padded: &[f32], ola: &mut [f32]) {
        const K: usize = CONVOLVE_PAD;
        let len = padded.len().saturating_sub(3 * K);
        for (block, hk) in h.chunks(K).enumerate() {
            let j0 = block * K;
            let mut t = [0.0f32; K];
            t[..hk.len()].copy_from_slice(hk);
            // Outputs j0 .. j0 + len + K - 1 (relative n), reading padded[n + K - k],
            // rounded up to whole vectors where `ola` has room (the extra outputs read
            // padding zeros).
            let count = (len + K - 1)
                .next_multiple_of(8)
                .min(ola.len().saturating_sub(j0));
            let (Some(out), Some(p)) = (ola.get_mut(j0..j0 + count), padded.get(..count + K))
            else {
                return;
            };
            for (n, o) in out.iter_mut().enumerate() {
                let mut acc = *o;
                acc = madd!(t[0], p[n + K], acc);
                acc = madd!(t[1], p[n + K - 1], acc);
                acc = madd!(t[2], p[n + K - 2], acc);
                acc = madd!(t[3], p[n + K - 3], acc);
                acc = madd!(t[4], p[n + K - 4], acc);
                acc = madd!(t[5], p[n + K - 5], acc);
                acc = madd!(t[6], p[n + K - 6], acc);
                acc = madd!(t[7], p[n + K - 7], acc);
                *o = acc;
            }
        }
    }
}
