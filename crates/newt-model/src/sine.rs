//! The sine (and cosine) of the shapers, shared by the engine's MLP path and the training
//! op so that both compute the same bits.
//!
//! Branch-free f32 code with plain multiplies and adds (no fused multiply-add, which Rust
//! never introduces on its own): a loop over these functions vectorises on any x86-64
//! level, and every level, scalar or SIMD, returns the same bits. The argument is reduced
//! to `r` in [-pi/2, pi/2] by the nearest multiple of pi (Cody-Waite: pi split in three
//! parts, the first two of 8 and 11 significant bits, so that their products with the
//! multiple are exact for |x| < 2^12 pi), and `sin r` is the degree-9 odd polynomial of
//! SLEEF's `xsinf`.
//!
//! Maximum absolute error against `f64::sin` of the f32 argument: 1.1e-7 for |x| <= 1000
//! rad (glibc's `sinf`: 6e-8), measured by the test below. Beyond 2^12 pi (12,868 rad) the
//! reduction loses accuracy gradually; shaper arguments stay below about 100 rad (the
//! imported models' input scales reach 34 rad per unit of input).

/// 1.5 * 2^23: adding and subtracting it rounds an f32 of magnitude below 2^22 to the
/// nearest integer (ties to even), and leaves that integer's parity in the lowest
/// mantissa bit of the sum.
const ROUNDER: f32 = 12_582_912.0;
const INV_PI: f32 = std::f32::consts::FRAC_1_PI;
const PI_A: f32 = 3.140_625;
const PI_B: f32 = 0.000_967_502_6;
const PI_C: f32 = 1.509_957_9e-7;

/// `sin r` for r in [-pi/2, pi/2].
#[inline(always)]
fn sin_poly(r: f32) -> f32 {
    let s = r * r;
    let mut u = 2.608_316e-6_f32;
    u = u * s + -1.981_069e-4;
    u = u * s + 8.333_079e-3;
    u = u * s + -0.166_666_6;
    s * (u * r) + r
}

/// `x - q pi` in three steps.
#[inline(always)]
fn reduce(x: f32, q: f32) -> f32 {
    let r = x - q * PI_A;
    let r = r - q * PI_B;
    r - q * PI_C
}

/// Flips the sign of `v` when the lowest bit of `rounded`'s mantissa (the parity of the
/// integer it holds) is set.
#[inline(always)]
fn flip_if_odd(v: f32, rounded: f32) -> f32 {
    f32::from_bits(v.to_bits() ^ (rounded.to_bits() << 31))
}

/// `sin x` (see the module documentation for its error).
#[inline(always)]
pub fn sin(x: f32) -> f32 {
    let rounded = x * INV_PI + ROUNDER;
    let q = rounded - ROUNDER;
    flip_if_odd(sin_poly(reduce(x, q)), rounded)
}

/// `cos x = sin(x + pi/2)`, reduced by the nearest odd multiple of pi/2 without
/// forming `x + pi/2` (which would round).
#[inline(always)]
pub fn cos(x: f32) -> f32 {
    // m = round(x / pi + 1/2); x + pi/2 - m pi = x - (m - 1/2) pi.
    let rounded = (x * INV_PI + 0.5) + ROUNDER;
    let m = rounded - ROUNDER;
    let half = m - 0.5;
    flip_if_odd(sin_poly(reduce(x, half)), rounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worst(f: fn(f32) -> f32, exact: fn(f64) -> f64, range: f32, n: usize) -> f64 {
        (0..=n)
            .map(|i| {
                let x = -range + 2.0 * range * i as f32 / n as f32;
                (f(x) as f64 - exact(x as f64)).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn sine_and_cosine_are_within_their_stated_error() {
        for range in [4.0f32, 40.0, 1000.0] {
            let s = worst(sin, f64::sin, range, 2_000_003);
            let c = worst(cos, f64::cos, range, 2_000_003);
            println!("+-{range} rad: sin {s:.2e}, cos {c:.2e}");
            assert!(s < 1.5e-7, "sin over +-{range}: {s:e}");
            assert!(c < 1.5e-7, "cos over +-{range}: {c:e}");
        }
    }

    #[test]
    fn exact_at_the_special_points() {
        assert_eq!(sin(0.0), 0.0);
        assert_eq!(cos(0.0), 1.0);
        assert!((sin(std::f32::consts::FRAC_PI_2) - 1.0).abs() < 1e-7);
        assert!(sin(-0.3) == -sin(0.3));
        // Non-finite inputs give NaN, as f32::sin does.
        assert!(sin(f32::NAN).is_nan() && sin(f32::INFINITY).is_nan());
    }
}
