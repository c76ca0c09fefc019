//! A seeded random-weights model for tests and benches until trained models exist.
//!
//! The weights are random but shaped like a plausible trained model, so that renders are
//! musically meaningful enough to test: FiLM starts near identity (alpha = 1, beta = 0),
//! the shaper inputs stay mostly inside the FastNEWT table range, the noise branch is
//! quiet and the reverb is a short decaying tail.

use crate::{
    FORMAT_VERSION, LoudnessMeasure, ModelMeta, NewtModel, NewtWeights, Operators, RangeMap,
    SplitMix64,
};

impl NewtModel {
    /// The instrument name every seeded model carries, so nobody mistakes it for a
    /// trained one.
    pub const SEEDED_NAME: &'static str = "seeded-demo (random weights, not trained)";

    /// A model with the published architecture (16 kHz, hop 128, 101 harmonics, 64
    /// shapers) and random weights drawn from `seed`.
    pub fn seeded(seed: u64) -> Self {
        let meta = ModelMeta {
            format_version: FORMAT_VERSION,
            sample_rate: 16_000,
            hop: 128,
            n_harmonics: 101,
            n_shapers: 64,
            f0_mean_hz: 400.0,
            f0_std_hz: 200.0,
            loudness_mean_db: -40.0,
            loudness_std_db: 15.0,
            instrument: Self::SEEDED_NAME.into(),
            provenance: format!("NewtModel::seeded({seed})"),
            operators: Operators::Newt,
            loudness_measure: LoudnessMeasure::AWeightedDbfs,
            source: String::new(),
            licence: String::new(),
            training_data: String::new(),
            training_steps: 0,
            range_map: RangeMap::estimated(
                400.0,
                200.0,
                -40.0,
                15.0,
                LoudnessMeasure::AWeightedDbfs,
            ),
        };
        let mut rng = SplitMix64::new(seed);
        let mut w = NewtWeights::zeros(&meta);
        let s = meta.n_shapers;

        // PyTorch-style uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the dense layers.
        let g = 1.0 / (w.gru.hidden as f32).sqrt();
        for v in [
            &mut w.gru.weight_ih,
            &mut w.gru.weight_hh,
            &mut w.gru.bias_ih,
            &mut w.gru.bias_hh,
        ] {
            v.iter_mut().for_each(|x| *x = rng.uniform(-g, g));
        }
        w.proj.fill_uniform(&mut rng, 1.0);
        for (lin, _) in w.film.layers.iter_mut().chain(w.noise.layers.iter_mut()) {
            lin.fill_uniform(&mut rng, 1.0);
        }
        // FiLM output: a small random modulation around alpha = 1, beta = 0.
        w.film.out.fill_uniform(&mut rng, 0.2);
        for c in 0..s {
            w.film.out.bias[c] = 1.0 + 0.1 * rng.normal(); // alpha_in
            w.film.out.bias[s + c] = 0.1 * rng.normal(); // beta_in
            w.film.out.bias[2 * s + c] = 1.0 + 0.1 * rng.normal(); // alpha_out
            w.film.out.bias[3 * s + c] = 0.05 * rng.normal(); // beta_out
        }
        // Noise magnitudes: small, positive on average.
        w.noise.out.fill_uniform(&mut rng, 0.01);
        w.noise
            .out
            .bias
            .iter_mut()
            .for_each(|x| *x = 0.003 + 0.001 * rng.normal());

        // Harmonic mixer: each shaper input a random combination falling off with the
        // harmonic number, so inputs stay within about +-1.5.
        for c in 0..s {
            for k in 0..meta.n_harmonics {
                w.harmonic_mixer.weight[c * meta.n_harmonics + k] =
                    rng.normal() * 0.6 / (k as f32 + 1.0);
            }
            w.harmonic_mixer.bias[c] = 0.1 * rng.normal();
        }
        w.exciter_phases
            .iter_mut()
            .for_each(|p| *p = rng.uniform(0.0, std::f32::consts::TAU));

        // Shapers: paper-like initialisation, input scale ~ |N(0,1)| * 2 so that the
        // transfer curves are smooth but not linear.
        let sh = &mut w.shapers;
        sh.input_scale
            .iter_mut()
            .for_each(|x| *x = 0.5 + 1.5 * rng.normal().abs());
        let first = 1.0;
        let hidden = (6.0f32 / 8.0).sqrt();
        sh.w1
            .iter_mut()
            .for_each(|x| *x = rng.uniform(-first, first));
        sh.b1.iter_mut().for_each(|x| *x = rng.uniform(-1.0, 1.0));
        for v in [&mut sh.w2, &mut sh.w3] {
            v.iter_mut().for_each(|x| *x = rng.uniform(-hidden, hidden));
        }
        for v in [&mut sh.b2, &mut sh.b3] {
            v.iter_mut().for_each(|x| *x = rng.uniform(-0.5, 0.5));
        }
        sh.w4
            .iter_mut()
            .for_each(|x| *x = rng.uniform(-hidden, hidden));
        sh.b4.iter_mut().for_each(|x| *x = rng.uniform(-0.2, 0.2));

        w.output_mixer
            .weight
            .iter_mut()
            .for_each(|x| *x = rng.normal() * 0.6 / (s as f32).sqrt());

        // Reverb: decaying noise, T60 about 1.2 s, about -20 dB below the dry path.
        let sr = meta.sample_rate as f32;
        for (i, x) in w.reverb_ir.iter_mut().enumerate() {
            let t = (i + 1) as f32 / sr;
            *x = rng.normal() * 0.004 * (-6.9 * t / 1.2).exp();
        }
        Self { meta, weights: w }
    }
}
