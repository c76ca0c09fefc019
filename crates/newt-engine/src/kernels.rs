//! The per-sample and per-frame inner loops, compiled for several instruction sets
//! (AVX-512, AVX2 + FMA, and the baseline) with one run-time dispatch per call by the
//! `multiversion` crate. Each kernel is plain scalar Rust whose loop structure the
//! compiler vectorises; the arithmetic order of every output value is fixed by the code,
//! never by how callers batch work, so results do not depend on the host block size.

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

/// `Y[n][o] = b[o] + sum_i W[o][i] X[n][i]` with the weights stored transposed (`wt` is
/// `[inputs][outputs]`), for `cols` input columns stored one after another. Vectorised
/// over outputs, blocked over 64 outputs x 4 columns so that each weight load serves four
/// columns. Every output is summed over `i` in order, so a column's result never depends
/// on how many columns are computed together.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn matmat(wt: &[f32], b: &[f32], x: &[f32], cols: usize, y: &mut [f32]) {
    const O: usize = 64;
    const C: usize = 4;
    let outputs = b.len();
    let inputs = x.len() / cols.max(1);
    let mut o0 = 0;
    while o0 < outputs {
        let ob = O.min(outputs - o0);
        let mut c0 = 0;
        while c0 < cols {
            let cb = C.min(cols - c0);
            let mut acc = [[0.0f32; O]; C];
            for a in acc.iter_mut().take(cb) {
                a[..ob].copy_from_slice(&b[o0..o0 + ob]);
            }
            if ob == O && cb == C {
                for i in 0..inputs {
                    let w: &[f32; O] = wt[i * outputs + o0..i * outputs + o0 + O]
                        .try_into()
                        .expect("64 weights");
                    for (c, a) in acc.iter_mut().enumerate() {
                        let xi = x[(c0 + c) * inputs + i];
                        for l in 0..O {
                            a[l] = madd!(w[l], xi, a[l]);
                        }
                    }
                }
            } else {
                for i in 0..inputs {
                    let w = &wt[i * outputs + o0..i * outputs + o0 + ob];
                    for (c, a) in acc.iter_mut().enumerate().take(cb) {
                        let xi = x[(c0 + c) * inputs + i];
                        for (al, wl) in a[..ob].iter_mut().zip(w) {
                            *al = madd!(*wl, xi, *al);
                        }
                    }
                }
            }
            for (c, a) in acc.iter().enumerate().take(cb) {
                y[(c0 + c) * outputs + o0..(c0 + c) * outputs + o0 + ob].copy_from_slice(&a[..ob]);
            }
            c0 += cb;
        }
        o0 += ob;
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

/// The harmonic mixer as a small matrix product:
/// `x[c][i] = bias[c] + sum_{k < nk} m[c * stride + k] * h[k][i]` with rows of `hop`.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
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
                let hk: &[f32; I] = h[k * hop + i0..k * hop + i0 + I]
                    .try_into()
                    .expect("16 samples");
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

/// FastNEWT: `y[i] += (c + dc r) T(p)` with `p` in table positions, clamped to
/// `[0, size - 1]`, `T` linearly interpolated from `segments[j] = (T[j], T[j+1] - T[j])`.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn shape_table(k: ShaperCoefs, x: &[f32], ramp: &[f32], segments: &[[f32; 2]], y: &mut [f32]) {
    let last = segments.len() as f32;
    let max_index = segments.len() - 1;
    for ((yi, &xi), &r) in y.iter_mut().zip(x).zip(ramp) {
        let p = madd!(madd!(k.da, r, k.a), xi, madd!(k.db, r, k.b));
        // `max` then `min` also sends NaN to 0.
        let p = p.max(0.0).min(last);
        let j = floor_index(p).min(max_index);
        let f = p - j as f32;
        // `j < segments.len()` always; `get` keeps the loop free of panic exits so that it
        // vectorises (with gathers where the instruction set has them).
        let [t0, d] = segments.get(j).copied().unwrap_or([0.0, 0.0]);
        *yi = madd!(madd!(k.dc, r, k.c), madd!(f, d, t0), *yi);
    }
}

/// `floor(p)` for `0 <= p < 2^22`, from the bits of `p + 1` with integer operations only
/// (which vectorise, unlike a saturating float-to-integer cast). Where `p + 1` rounds up
/// to an integer the result is one more than `floor(p)` and the interpolation fraction is
/// a few ulps below zero: harmless.
#[inline(always)]
fn floor_index(p: f32) -> usize {
    let bits = (p + 1.0).to_bits();
    let exponent = (bits >> 23).wrapping_sub(127);
    let mantissa = (bits & 0x007F_FFFF) | 0x0080_0000;
    (mantissa >> (23u32.wrapping_sub(exponent) & 31)) as usize - 1
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

/// Overlap-add of one frame of filtered noise: `ola[j + i] += h[j] u[i]`.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn convolve_add(h: &[f32], u: &[f32], ola: &mut [f32]) {
    for (j, &hj) in h.iter().enumerate() {
        for (d, &ui) in ola[j..j + u.len()].iter_mut().zip(u) {
            *d = madd!(hj, ui, *d);
        }
    }
}
