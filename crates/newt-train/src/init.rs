//! Initial weights for training, reproducible from a seed (candle's CPU random source
//! cannot be seeded). PyTorch-style uniform bounds for dense layers and the GRU, identity
//! LayerNorms, and the paper's shaper initialisation (input scales N(0, 1) * 10).

use newt_model::{ModelMeta, NewtWeights, SplitMix64};

pub fn initial_weights(meta: &ModelMeta, seed: u64) -> NewtWeights {
    let mut rng = SplitMix64::new(seed);
    let mut w = NewtWeights::zeros(meta);
    let uniform = |v: &mut Vec<f32>, bound: f32, rng: &mut SplitMix64| {
        v.iter_mut().for_each(|x| *x = rng.uniform(-bound, bound));
    };
    let g = 1.0 / (w.gru.hidden as f32).sqrt();
    for v in [
        &mut w.gru.weight_ih,
        &mut w.gru.weight_hh,
        &mut w.gru.bias_ih,
        &mut w.gru.bias_hh,
    ] {
        uniform(v, g, &mut rng);
    }
    w.proj.fill_uniform(&mut rng, 1.0);
    w.harmonic_mixer.fill_uniform(&mut rng, 1.0);
    // The noise net's output layer is stored times NOISE_OUTPUT_GAIN (see there).
    let noise_gain = crate::model::NOISE_OUTPUT_GAIN as f32;
    for (net, out_gain) in [(&mut w.film, 1.0), (&mut w.noise, noise_gain)] {
        for (lin, _) in &mut net.layers {
            lin.fill_uniform(&mut rng, 1.0);
        }
        net.out.fill_uniform(&mut rng, out_gain);
    }
    w.output_mixer.fill_uniform(&mut rng, 1.0);
    w.exciter_phases
        .iter_mut()
        .for_each(|p| *p = rng.uniform(0.0, std::f32::consts::TAU));
    let s = &mut w.shapers;
    s.input_scale
        .iter_mut()
        .for_each(|x| *x = 10.0 * rng.normal());
    let hidden = (6.0f32 / 8.0).sqrt();
    uniform(&mut s.w1, 1.0, &mut rng);
    uniform(&mut s.b1, 1.0, &mut rng);
    uniform(&mut s.w2, hidden, &mut rng);
    uniform(&mut s.b2, 1.0, &mut rng);
    uniform(&mut s.w3, hidden, &mut rng);
    uniform(&mut s.b3, 1.0, &mut rng);
    uniform(&mut s.w4, hidden, &mut rng);
    uniform(&mut s.b4, 1.0, &mut rng);
    // A faint decaying tail: the reverb starts nearly dry.
    let sr = meta.sample_rate as f32;
    for (i, x) in w.reverb_ir.iter_mut().enumerate() {
        *x = 1e-3 * rng.normal() * (-((i + 1) as f32 / sr) / 0.1).exp();
    }
    w
}
