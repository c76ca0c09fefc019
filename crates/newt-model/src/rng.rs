//! Deterministic randomness shared by training and the engine. Both must draw the very
//! same noise for the equivalence test, so neither uses an external RNG whose stream
//! could change with a dependency update.

pub use seeded_rng::SplitMix64;

/// Zero-mean white noise, uniform on [-1, 1), that drives the filtered-noise branch.
/// (The published code used uniform [0, 1), a DC offset; we do not copy that.)
#[derive(Clone, Debug)]
pub struct WhiteNoise {
    rng: SplitMix64,
}

impl WhiteNoise {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }

    #[inline]
    pub fn sample(&mut self) -> f32 {
        // 24 random bits map exactly onto f32's mantissa: every value is representable.
        let bits = (self.rng.next_u64() >> 40) as u32;
        bits as f32 * (2.0 / (1u32 << 24) as f32) - 1.0
    }

    pub fn fill(&mut self, out: &mut [f32]) {
        for x in out {
            *x = self.sample();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_noise_is_zero_mean_and_bounded() {
        let mut n = WhiteNoise::new(7);
        let mut buf = vec![0.0; 100_000];
        n.fill(&mut buf);
        let mean = buf.iter().map(|&x| x as f64).sum::<f64>() / buf.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!(buf.iter().all(|x| (-1.0..1.0).contains(x)));
        let var = buf.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / buf.len() as f64;
        assert!((var - 1.0 / 3.0).abs() < 0.01, "variance {var}");
    }

    #[test]
    fn streams_are_reproducible() {
        let a: Vec<u64> = (0..4)
            .scan(SplitMix64::new(1), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .scan(SplitMix64::new(1), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }
}
