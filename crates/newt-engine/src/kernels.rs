//! The per-sample and per-frame inner loops, compiled for several instruction sets
//! (AVX-512, AVX2 + FMA, and the baseline) with one run-time dispatch per call by the
//! `multiversion` crate. Each kernel is plain scalar Rust whose loop structure the
//! compiler vectorises; the arithmetic order of every output value is fixed by the code,
//! never by how callers batch work, so results do not depend on the host block size.

use multiversion::multiversion;

/// Accumulator lanes of [`dot`]: results depend only on the inputs.
const LANES: usize = 8;

/// Multiply then add, unfused: every instruction-set version computes the same bits.
#[inline(always)]
fn madd(a: f32, b: f32, c: f32) -> f32 {
    a * b + c
}

/// Dot product with [`LANES`] accumulators reduced in a fixed order.
#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let n = a.len() / LANES * LANES;
    for (x, y) in a[..n].chunks_exact(LANES).zip(b[..n].chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] = madd(x[l], y[l], acc[l]);
        }
    }
    let mut tail = 0.0;
    for (x, y) in a[n..].iter().zip(&b[n..]) {
        tail = madd(*x, *y, tail);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y[o] = b[o] + W[o, :] . x` for a row-major `W` of `y.len()` rows.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub fn matvec(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let n = x.len();
    for (o, yo) in y.iter_mut().enumerate() {
        *yo = b[o] + dot_body(&w[o * n..(o + 1) * n], x);
    }
}

/// The harmonic mixer as a small matrix product:
/// `x[c][i] = bias[c] + sum_{k < nk} m[c * stride + k] * h[k][i]` with rows of `hop`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub fn mix_harmonics(m: &[f32], stride: usize, bias: &[f32], h: &[f32], nk: usize, hop: usize, x: &mut [f32]) {
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
                let hk: &[f32; I] = h[k * hop + i0..k * hop + i0 + I].try_into().expect("16 samples");
                for (j, a) in acc.iter_mut().enumerate() {
                    let coef = m[(c0 + j) * stride + k];
                    for l in 0..I {
                        a[l] = madd(coef, hk[l], a[l]);
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
                acc = madd(m[c * stride + k], h[k * hop + i], acc);
            }
            x[c * hop + i] = acc;
        }
    }
}

/// Per-frame coefficients of one shaper channel, FiLM and the affine knobs folded in:
/// input `p = (a + da r) x + (b + db r)`, output contribution `(c + dc r) s(p)`, where
/// `r = (i + 1) / hop` ramps from the previous frame's values to this frame's.
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
/// `[0, len - 1]`, `T` linearly interpolated.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub fn shape_table(k: ShaperCoefs, x: &[f32], ramp: &[f32], table: &[f32], y: &mut [f32]) {
    let last = (table.len() - 1) as f32;
    let max_index = table.len() - 2;
    for ((yi, &xi), &r) in y.iter_mut().zip(x).zip(ramp) {
        let p = madd(madd(k.da, r, k.a), xi, madd(k.db, r, k.b));
        // `max` then `min` also sends NaN to 0.
        let p = p.max(0.0).min(last);
        let j = floor_index(p).min(max_index);
        let f = p - j as f32;
        // `j + 1 < table.len()` always; `get` keeps the loop free of panic exits so that it
        // vectorises (with gathers where the instruction set has them).
        let t0 = table.get(j).copied().unwrap_or(0.0);
        let t1 = table.get(j + 1).copied().unwrap_or(0.0);
        *yi = madd(madd(k.dc, r, k.c), madd(f, t1 - t0, t0), *yi);
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
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub fn convolve_add(h: &[f32], u: &[f32], ola: &mut [f32]) {
    for (j, &hj) in h.iter().enumerate() {
        for (d, &ui) in ola[j..j + u.len()].iter_mut().zip(u) {
            *d = madd(hj, ui, *d);
        }
    }
}
