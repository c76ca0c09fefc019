use candle_core::{Device, Tensor};
use newt_model::NewtModel;
use newt_train::loss::{PAPER_RESOLUTIONS, mrstft_loss};
use newt_train::model::{Conditioning, Newt};
use newt_train::optim::{Adam, AdamConfig};
use newt_train::signal::{NOISE_FFT, harmonics, noise_spectra};

fn main() {
    let dev = Device::Cpu;
    let meta = NewtModel::seeded(0).meta;
    let newt = Newt::new(meta.clone(), 1, &dev).unwrap();
    let vars: Vec<(String, candle_core::Var)> = newt
        .varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut opt = Adam::new(vars, AdamConfig::default()).unwrap();
    let (b, frames) = (4usize, 125usize);
    let hop = meta.hop;
    let t = frames * hop;
    let f0: Vec<f32> = (0..b * frames)
        .map(|i| 220.0 + (i % frames) as f32)
        .collect();
    let loud: Vec<f32> = vec![-30.0; b * frames];
    let mut harm = Vec::new();
    let mut noise = Vec::new();
    for i in 0..b {
        harm.extend(harmonics(
            &f0[i * frames..(i + 1) * frames],
            meta.sample_rate,
            hop,
            &newt.phases,
        ));
        noise.extend(noise_spectra(i as u64, frames, hop));
    }
    let cond = Conditioning {
        f0: Tensor::from_vec(f0, (b, frames), &dev).unwrap(),
        loudness: Tensor::from_vec(loud, (b, frames), &dev).unwrap(),
        harmonics: Tensor::from_vec(harm, (b, meta.n_harmonics, t), &dev).unwrap(),
        noise: Tensor::from_vec(noise, (b, frames, NOISE_FFT / 2 + 1, 2), &dev).unwrap(),
    };
    let target = Tensor::randn(0f32, 0.1, (b, t), &dev).unwrap();
    for _ in 0..3 {
        let t0 = std::time::Instant::now();
        let out = newt.forward(&cond).unwrap();
        let t1 = t0.elapsed();
        let loss = mrstft_loss(&out, &target, &PAPER_RESOLUTIONS).unwrap();
        let t2 = t0.elapsed();
        let grads = loss.backward().unwrap();
        let t3 = t0.elapsed();
        opt.step(&grads).unwrap();
        println!(
            "fwd {:?} loss {:?} bwd {:?} total {:?} loss {}",
            t1,
            t2 - t1,
            t3 - t2,
            t0.elapsed(),
            loss.to_scalar::<f32>().unwrap()
        );
    }
}
