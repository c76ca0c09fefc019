//! The training forward pass and the real-time engine render the same audio from the same
//! weights, controls, fixed harmonic phases and noise (both with the exact MLP shapers).

use candle_core::{Device, Tensor};
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, FrameControls, ShaperPath, render_controls_to_vec,
};
use newt_model::NewtModel;
use newt_train::model::{Conditioning, Newt};
use newt_train::signal::{NOISE_FFT, harmonics, noise_spectra};

#[test]
fn training_forward_matches_the_engine() {
    let model = NewtModel::seeded(21);
    let (sr, hop) = (model.meta.sample_rate, model.meta.hop);
    let frames = 150; // 1.2 s
    let controls: Vec<FrameControls> = (0..frames)
        .map(|f| {
            let t = f as f32 / frames as f32;
            FrameControls {
                f0_hz: 180.0 * (1.0 + 1.5 * t) + 8.0 * (f as f32 * 0.3).sin(),
                loudness_db: -50.0 + 35.0 * (std::f32::consts::PI * t).sin(),
            }
        })
        .collect();
    let seed = 77;

    // Engine, at the model rate, one voice, DC blocker off.
    let config = EngineConfig {
        host_sample_rate: sr,
        voices: 1,
        noise_seed: seed,
        dc_blocker: false,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model.clone(), config).unwrap();
    let mut params = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    params.voice.shaper = ShaperPath::Mlp;
    let engine_out = render_controls_to_vec(&mut engine, &controls, &params, 512);

    // Training model, same weights.
    let dev = Device::Cpu;
    let newt = Newt::from_model(&model, &dev).unwrap();
    let f0: Vec<f32> = controls.iter().map(|c| c.f0_hz).collect();
    let loud: Vec<f32> = controls.iter().map(|c| c.loudness_db).collect();
    let harm = harmonics(&f0, sr, hop, &model.weights.exciter_phases);
    let nh = model.meta.n_harmonics;
    let cond = Conditioning {
        f0: Tensor::from_vec(f0, (1, frames), &dev).unwrap(),
        loudness: Tensor::from_vec(loud, (1, frames), &dev).unwrap(),
        harmonics: Tensor::from_vec(harm, (1, nh, frames * hop), &dev).unwrap(),
        noise: Tensor::from_vec(
            noise_spectra(seed, frames, hop),
            (1, frames, NOISE_FFT / 2 + 1, 2),
            &dev,
        )
        .unwrap(),
    };
    let train_out: Vec<f32> = newt
        .forward(&cond)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();

    assert_eq!(train_out.len(), engine_out.len());
    let diff: Vec<f64> = train_out
        .iter()
        .zip(&engine_out)
        .map(|(a, b)| (*a - *b) as f64)
        .collect();
    let max = diff.iter().fold(0.0f64, |m, d| m.max(d.abs()));
    let rms = |v: &[f64]| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
    let signal: Vec<f64> = engine_out.iter().map(|v| *v as f64).collect();
    println!(
        "training vs engine over {:.1} s: max |diff| {max:.2e}, RMS diff {:.2e}, signal RMS {:.3}",
        frames as f64 * hop as f64 / sr as f64,
        rms(&diff),
        rms(&signal)
    );
    assert!(rms(&signal) > 1e-2, "silent render");
    // Tolerance: float reassociation (matmul orders, FMA, FFT vs direct convolution,
    // rotation-recurrence vs direct sines) only.
    assert!(max < 1e-5, "max difference {max}");
    assert!(rms(&diff) < 1e-6, "RMS difference {}", rms(&diff));
}

/// Loading a model file into the training graph and exporting it again changes no weight
/// (the noise net's output layer is rescaled on the way in and back on the way out).
#[test]
fn a_model_file_survives_the_training_graph() {
    let model = NewtModel::seeded(5);
    let back = Newt::from_model(&model, &Device::Cpu)
        .unwrap()
        .to_model(&model.meta.instrument, &model.meta.provenance)
        .unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    model
        .weights
        .clone()
        .visit_mut(&mut |name, _, v| a.push((name, v.clone())));
    back.weights
        .clone()
        .visit_mut(&mut |name, _, v| b.push((name, v.clone())));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let worst = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs() / p.abs().max(1e-6))
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{name}: relative change {worst}");
    }
}
