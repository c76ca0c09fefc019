//! The seeded random source of every experiment here (SplitMix64, with Gaussian draws):
//! each run is reproducible from its seed (candle's CPU random source cannot be seeded).

pub use seeded_rng::SplitMix64;
