//! The import of the NEWT authors' checkpoints (`newt_train::import`), checked against the
//! committed copies of their files under `assets/nws/` only (so it runs on any clone):
//! the metadata figures of the reference kit's `mapping.md`, the tensor map against the
//! checkpoint, the frame-rate networks against the authors' golden intermediates, the
//! committed `assets/models/*-urmp.safetensors` against a fresh import, and typed errors
//! for broken inputs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use newt_model::{LoudnessMeasure, NewtModel, NewtWeights, Operators};
use newt_train::import::{
    GOLDEN_TENSORS, GOLDEN_TENSORS_VN, ImportError, NWS_INSTRUMENTS, NWS_LICENCE, NWS_PARAMETERS,
    NWS_SOURCE, NwsInstrument, import_nws_checkpoint, import_nws_dir, nws_tensor_map,
    read_statistics,
};
use safetensors::{Dtype, SafeTensors};

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

fn checkpoints() -> PathBuf {
    assets().join("nws/checkpoints")
}

fn instrument(code: &str) -> NwsInstrument {
    *NWS_INSTRUMENTS.iter().find(|i| i.code == code).unwrap()
}

fn import(code: &str) -> NewtModel {
    import_nws_dir(&checkpoints().join(code), instrument(code).name)
        .unwrap_or_else(|e| panic!("importing {code}: {e}"))
}

/// name -> values of every tensor of a model, in file order.
fn tensors(model: &NewtModel) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut w = model.weights.clone();
    let mut out = Vec::new();
    w.visit_mut(&mut |name, shape, data| out.push((name, shape, data.clone())));
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("newt-import-tests")
        .join(name)
        .join("vn");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn metadata_matches_the_reference_figures() {
    // mapping.md §1: f0 mean / std in Hz, loudness mean / std in the authors' dB
    // (80 l - 80), printed to 2 and 3 decimals there.
    let figures = [
        ("vn", 508.37, 83.86, -72.434, 2.373),
        ("fl", 623.60, 102.43, -73.908, 1.588),
        ("tpt", 386.75, 72.17, -71.693, 2.220),
    ];
    let notice = std::fs::read_to_string(checkpoints().join("NOTICE.md")).unwrap();
    for (code, f0_mean, f0_std, l_mean, l_std) in figures {
        let m = import(code).meta;
        println!(
            "{code}: f0 {} +- {} Hz, loudness {} +- {} dB, steps {}\n  provenance: {}",
            m.f0_mean_hz,
            m.f0_std_hz,
            m.loudness_mean_db,
            m.loudness_std_db,
            m.training_steps,
            m.provenance
        );
        let near = |x: f32, v: f64, tol: f64| (x as f64 - v).abs() <= tol;
        // Within the rounding of the printed figures, plus 1e-3.
        assert!(near(m.f0_mean_hz, f0_mean, 0.005 + 1e-3), "{code} f0 mean");
        assert!(near(m.f0_std_hz, f0_std, 0.005 + 1e-3), "{code} f0 std");
        assert!(
            near(m.loudness_mean_db, l_mean, 1e-3),
            "{code} loudness mean"
        );
        assert!(near(m.loudness_std_db, l_std, 1e-3), "{code} loudness std");
        // Exactly the statistics files' values, converted in f64.
        let dir = checkpoints().join(code);
        let mean = read_statistics(&dir.join("data_mean.npy")).unwrap();
        let std = read_statistics(&dir.join("data_std.npy")).unwrap();
        assert_eq!(m.f0_mean_hz, mean[0] as f32);
        assert_eq!(m.f0_std_hz, std[0] as f32);
        assert_eq!(m.loudness_mean_db, (80.0 * mean[1] - 80.0) as f32);
        assert_eq!(m.loudness_std_db, (80.0 * std[1]) as f32);

        assert_eq!(
            (m.sample_rate, m.hop, m.n_harmonics, m.n_shapers),
            (16000, 128, 101, 64)
        );
        assert_eq!(m.operators, Operators::Nws);
        assert_eq!(m.loudness_measure, LoudnessMeasure::NwsDb);
        assert_eq!(m.instrument, instrument(code).name);
        assert_eq!(m.training_steps, 120_000);
        assert_eq!(m.source, NWS_SOURCE);
        assert_eq!(m.licence, NWS_LICENCE);
        assert!(m.training_data.starts_with("URMP "), "{}", m.training_data);
        assert!(
            m.provenance
                .contains(&format!("checkpoints/nws/{code}/last.ckpt"))
        );
        assert!(m.provenance.contains("global step 120000"));
        // The hash in the provenance is NOTICE.md's for this checkpoint.
        let hash = m.provenance.split("sha256 ").nth(1).unwrap()[..64].to_owned();
        assert!(
            notice.contains(&format!("`{hash}`")),
            "{code}: sha256 {hash} not in NOTICE.md"
        );
        assert_eq!(NewtWeights::parameter_count(&m), NWS_PARAMETERS);
    }
    let vn = import("vn").meta;
    assert!(vn.provenance.contains("epoch 619"));
    assert!(vn.training_data.starts_with("URMP violin stems"));
}

#[test]
fn weights_are_finite_and_phases_zero() {
    for inst in NWS_INSTRUMENTS {
        let model = import(inst.code);
        let mut trainable = 0;
        for (name, shape, data) in tensors(&model) {
            assert_eq!(data.len(), shape.iter().product::<usize>(), "{name}");
            assert!(data.iter().all(|x| x.is_finite()), "{} {name}", inst.code);
            if name == "exciter.phases" {
                assert!(data.iter().all(|&x| x == 0.0));
            } else {
                trainable += data.len();
                // A trained tensor is not all zeros (catches an entry left unfilled).
                assert!(data.iter().any(|&x| x != 0.0), "{} {name}", inst.code);
            }
        }
        assert_eq!(trainable, NWS_PARAMETERS);
    }
}

/// The checkpoint's state_dict, read independently of the importer.
fn state_dict(code: &str) -> HashMap<String, Tensor> {
    candle_core::pickle::read_all_with_key(
        checkpoints().join(code).join("last.ckpt"),
        Some("state_dict"),
    )
    .unwrap()
    .into_iter()
    .collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn tensor_map_spot_checks() {
    let sd = state_dict("vn");
    assert_eq!(sd.len(), 52, "state_dict entries");
    let model = import("vn");
    let w = &model.weights;

    // Grouped shaper convs are shaper-major: out channel 8c + j of the authors' conv is
    // hidden unit j of shaper c.
    let net2 = sd["newt.shaping_fn.net.2.weight"].to_vec3::<f32>().unwrap();
    let net0 = sd["newt.shaping_fn.net.0.weight"].to_vec3::<f32>().unwrap();
    let net6 = sd["newt.shaping_fn.net.6.weight"].to_vec3::<f32>().unwrap();
    let scale = sd["newt.shaping_fn.input_scale"].to_vec3::<f32>().unwrap();
    for c in 0..64 {
        assert_eq!(w.shapers.input_scale[c], scale[0][c][0]);
        for j in 0..8 {
            assert_eq!(w.shapers.w1[c * 8 + j], net0[8 * c + j][0][0]);
            for k in 0..8 {
                assert_eq!(w.shapers.w2[(c * 8 + j) * 8 + k], net2[8 * c + j][k][0]);
            }
        }
        for k in 0..8 {
            assert_eq!(w.shapers.w4[c * 8 + k], net6[c][k][0]);
        }
    }
    // FiLM output rows in torch.split order: alpha_in, beta_in, alpha_out, beta_out.
    let film = sd["newt.mlp.net.9.weight"].to_vec3::<f32>().unwrap();
    let film_b = values(&sd["newt.mlp.net.9.bias"]);
    assert_eq!((w.film.out.out_dim, w.film.out.in_dim), (256, 128));
    for r in [0, 1, 63, 64, 127, 128, 191, 192, 255] {
        for k in [0, 5, 127] {
            assert_eq!(w.film.out.weight[r * 128 + k], film[r][k][0], "row {r}");
        }
        assert_eq!(w.film.out.bias[r], film_b[r]);
    }
    // Reverb: 31999 learned taps (tap 0 is the fixed zero, not stored).
    let ir = sd["reverb.ir"].to_vec2::<f32>().unwrap();
    assert_eq!(ir.len(), 1);
    assert_eq!(w.reverb_ir.len(), 31999);
    assert_eq!(w.reverb_ir, ir[0]);
    // GRU gate blocks [r, z, n] copied as they are.
    let whh = sd["embedding.gru.weight_hh_l0"].to_vec2::<f32>().unwrap();
    for row in [0, 127, 128, 255, 256, 383] {
        assert_eq!(w.gru.weight_hh[row * 128..(row + 1) * 128], whh[row][..]);
    }
    // Noise net output: 129 bands.
    assert_eq!(w.noise.out.out_dim, 129);
    assert_eq!(w.noise.out.bias, values(&sd["h_generator.net.9.bias"]));

    // And the whole map: every target equals its source's memory, bit for bit.
    let by_name: HashMap<String, Vec<f32>> = tensors(&model)
        .into_iter()
        .map(|(n, _, v)| (n, v))
        .collect();
    let map = nws_tensor_map();
    assert_eq!(map.len(), 48);
    for m in &map {
        let src = values(&sd[&m.source]);
        let dst = &by_name[&m.target];
        assert_eq!(
            sd[&m.source].dims(),
            m.source_shape.as_slice(),
            "{}",
            m.source
        );
        assert!(
            src.iter().zip(dst).all(|(a, b)| a.to_bits() == b.to_bits()) && src.len() == dst.len(),
            "{} -> {}",
            m.source,
            m.target
        );
    }
    // The four buffers are the only entries not mapped.
    let mapped: Vec<&str> = map.iter().map(|m| m.source.as_str()).collect();
    let mut rest: Vec<&str> = sd
        .keys()
        .map(String::as_str)
        .filter(|k| !mapped.contains(k))
        .collect();
    rest.sort();
    assert_eq!(
        rest,
        [
            "noise_synth.window",
            "osc.harmonic_axis",
            "osc.rand_phase",
            "reverb.initial_zero"
        ]
    );
}

// ---- The frame-rate networks against the authors' golden intermediates --------------

struct Golden<'a>(SafeTensors<'a>);

impl Golden<'_> {
    fn f32(&self, name: &str) -> Vec<f32> {
        let v = self.0.tensor(name).unwrap();
        assert_eq!(v.dtype(), Dtype::F32, "{name}");
        v.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
    fn f64(&self, name: &str) -> Vec<f64> {
        let v = self.0.tensor(name).unwrap();
        assert_eq!(v.dtype(), Dtype::F64, "{name}");
        v.data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
}

fn linear(l: &newt_model::Linear, x: &[f64]) -> Vec<f64> {
    (0..l.out_dim)
        .map(|o| {
            let row = &l.weight[o * l.in_dim..(o + 1) * l.in_dim];
            l.bias[o] as f64 + row.iter().zip(x).map(|(w, x)| *w as f64 * x).sum::<f64>()
        })
        .collect()
}

fn control_mlp(net: &newt_model::ControlMlp, z: &[f64]) -> Vec<f64> {
    let mut x = z.to_vec();
    for (lin, norm) in &net.layers {
        let y = linear(lin, &x);
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        x = y
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let u =
                    (v - mean) / (var + 1e-5).sqrt() * norm.weight[i] as f64 + norm.bias[i] as f64;
                if u < 0.0 { 0.01 * u } else { u }
            })
            .collect();
    }
    linear(&net.out, &x)
}

/// The control embedding per frame: PyTorch GRU (gates r, z, n) from h = 0, then proj.
fn embeddings(model: &NewtModel, norm: &[f32], frames: usize) -> Vec<Vec<f64>> {
    let g = &model.weights.gru;
    let h_dim = g.hidden;
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut h = vec![0.0f64; h_dim];
    let mut out = Vec::with_capacity(frames);
    for t in 0..frames {
        let x = [norm[t] as f64, norm[frames + t] as f64];
        let gi: Vec<f64> = (0..3 * h_dim)
            .map(|r| {
                g.bias_ih[r] as f64
                    + (0..2)
                        .map(|k| g.weight_ih[r * 2 + k] as f64 * x[k])
                        .sum::<f64>()
            })
            .collect();
        let gh: Vec<f64> = (0..3 * h_dim)
            .map(|r| {
                g.bias_hh[r] as f64
                    + (0..h_dim)
                        .map(|k| g.weight_hh[r * h_dim + k] as f64 * h[k])
                        .sum::<f64>()
            })
            .collect();
        h = (0..h_dim)
            .map(|i| {
                let r = sig(gi[i] + gh[i]);
                let z = sig(gi[h_dim + i] + gh[h_dim + i]);
                let n = (gi[2 * h_dim + i] + r * gh[2 * h_dim + i]).tanh();
                (1.0 - z) * n + z * h[i]
            })
            .collect();
        out.push(linear(&model.weights.proj, &h));
    }
    out
}

fn max_diff_channels_major(ours: &[Vec<f64>], golden: &[f32], frames: usize) -> f64 {
    let mut worst = 0.0f64;
    for (t, v) in ours.iter().enumerate() {
        for (c, x) in v.iter().enumerate() {
            worst = worst.max((x - golden[c * frames + t] as f64).abs());
        }
    }
    worst
}

#[test]
fn frame_rate_networks_reproduce_the_golden() {
    for inst in NWS_INSTRUMENTS {
        let code = inst.code;
        let bytes = std::fs::read(assets().join(format!("nws/golden/{code}.safetensors"))).unwrap();
        let golden = Golden(SafeTensors::deserialize(&bytes).unwrap());
        let mut names: Vec<String> = golden.0.names().into_iter().map(str::to_owned).collect();
        names.sort();
        let mut expected: Vec<&str> = GOLDEN_TENSORS.to_vec();
        if code == "vn" {
            expected.extend(GOLDEN_TENSORS_VN);
        }
        expected.sort();
        assert_eq!(names, expected, "{code}: trimmed golden tensors");

        let model = import(code);
        let m = &model.meta;
        // The statistics in the golden are the .npy values: our metadata z-scores the
        // golden's raw controls to its network input.
        let (mean, std) = (golden.f64("norm.mean"), golden.f64("norm.std"));
        assert_eq!(m.f0_mean_hz, mean[0] as f32);
        assert_eq!(m.f0_std_hz, std[0] as f32);
        let (f0, loud, norm) = (
            golden.f32("controls.f0_hz"),
            golden.f32("controls.loudness"),
            golden.f32("controls.norm"),
        );
        let frames = f0.len();
        assert_eq!(frames, 375);
        for t in 0..frames {
            let zf = (f0[t] - m.f0_mean_hz) / m.f0_std_hz;
            let db = 80.0 * loud[t] as f64 - 80.0;
            let zl = (db - m.loudness_mean_db as f64) / m.loudness_std_db as f64;
            assert!((zf - norm[t]).abs() < 1e-4, "{code} f0 z at {t}");
            assert!(
                (zl as f32 - norm[frames + t]).abs() < 1e-4,
                "{code} loudness z at {t}"
            );
        }

        let z = embeddings(&model, &norm, frames);
        let e = max_diff_channels_major(&z, &golden.f32("encoder.embedding"), frames);
        let film: Vec<Vec<f64>> = z
            .iter()
            .map(|z| control_mlp(&model.weights.film, z))
            .collect();
        let f = max_diff_channels_major(&film, &golden.f32("film.params"), frames);
        let noise: Vec<Vec<f64>> = z
            .iter()
            .map(|z| control_mlp(&model.weights.noise, z))
            .collect();
        let n = max_diff_channels_major(&noise, &golden.f32("noise.magnitudes"), frames);
        println!("{code}: max |diff| embedding {e:.2e}, film {f:.2e}, noise {n:.2e}");
        // mapping.md: a float64 port reproduces these within 7.3e-6 / 1.1e-6.
        assert!(e < 2e-5, "{code} embedding {e}");
        assert!(f < 2e-5, "{code} film {f}");
        assert!(n < 2e-5, "{code} noise {n}");
    }
}

// ---- Committed model files never go stale ---------------------------------------------

#[test]
fn committed_models_equal_a_fresh_import() {
    for inst in NWS_INSTRUMENTS {
        let path = assets().join(format!("models/{}.safetensors", inst.file_stem));
        let stale = format!(
            "{} differs from a fresh import: run `cargo xtask import-nws`",
            path.display()
        );
        let fresh = import(inst.code);
        let committed = NewtModel::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(committed.meta, fresh.meta, "{stale}");
        // Same tensors, bit for bit, in the file itself (the header's metadata order is a
        // HashMap's and varies between writes: compared as a map).
        let fresh_bytes = fresh.to_bytes();
        let file_bytes = std::fs::read(&path).unwrap();
        let (a, b) = (
            SafeTensors::deserialize(&fresh_bytes).unwrap(),
            SafeTensors::deserialize(&file_bytes).unwrap(),
        );
        let mut names: Vec<String> = a.names().into_iter().map(str::to_owned).collect();
        names.sort();
        let mut file_names: Vec<String> = b.names().into_iter().map(str::to_owned).collect();
        file_names.sort();
        assert_eq!(names, file_names, "{stale}");
        for n in &names {
            let (x, y) = (a.tensor(n).unwrap(), b.tensor(n).unwrap());
            assert_eq!(x.dtype(), y.dtype(), "{stale}: {n}");
            assert_eq!(x.shape(), y.shape(), "{stale}: {n}");
            assert!(x.data() == y.data(), "{stale}: {n}");
        }
        let meta = |bytes: &[u8]| {
            SafeTensors::read_metadata(bytes)
                .unwrap()
                .1
                .metadata()
                .clone()
        };
        assert_eq!(meta(&fresh_bytes), meta(&file_bytes), "{stale}");
    }
}

// ---- Broken inputs give typed errors --------------------------------------------------

fn copy_stats(dir: &Path) {
    let src = checkpoints().join("vn");
    for f in ["data_mean.npy", "data_std.npy"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
}

fn ckpt_bytes() -> Vec<u8> {
    std::fs::read(checkpoints().join("vn/last.ckpt")).unwrap()
}

#[test]
fn truncated_or_corrupt_checkpoint_is_not_a_checkpoint() {
    let full = ckpt_bytes();
    let cases: [(&str, Vec<u8>); 6] = [
        ("empty", Vec::new()),
        ("header-only", full[..100].to_vec()),
        ("half", full[..full.len() / 2].to_vec()),
        ("last-byte-missing", full[..full.len() - 1].to_vec()),
        ("text", b"this is not a checkpoint\n".repeat(100)),
        ("byte-flipped", {
            let mut b = full.clone();
            let i = b.len() / 2;
            b[i] ^= 0xff;
            b
        }),
    ];
    for (name, bytes) in cases {
        let dir = scratch(&format!("corrupt-{name}"));
        copy_stats(&dir);
        std::fs::write(dir.join("last.ckpt"), bytes).unwrap();
        match import_nws_dir(&dir, "violin") {
            Err(e @ ImportError::NotCheckpoint { .. }) => {
                println!("{name}: {e}");
                assert!(e.to_string().contains("last.ckpt"));
            }
            other => panic!("{name}: expected NotCheckpoint, got {other:?}"),
        }
    }
}

#[test]
fn import_all_refuses_other_files() {
    // nws-all imports the three published checkpoints only: a different (here: renamed
    // tensor, otherwise valid) vn checkpoint is refused by its hash, before anything is
    // written.
    let root = scratch("import-all").parent().unwrap().to_owned();
    for inst in NWS_INSTRUMENTS {
        let dir = root.join(inst.code);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["last.ckpt", "data_mean.npy", "data_std.npy"] {
            std::fs::copy(checkpoints().join(inst.code).join(f), dir.join(f)).unwrap();
        }
    }
    std::fs::write(root.join("vn/last.ckpt"), renamed_checkpoint()).unwrap();
    let out = root.join("out");
    match newt_train::import::import_nws_all(&root, &out) {
        Err(e @ ImportError::ChecksumMismatch { .. }) => println!("{e}"),
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert!(!out.join("violin-urmp.safetensors").exists());
}

#[test]
fn renamed_tensor_is_named_as_missing() {
    let dir = scratch("renamed-tensor");
    copy_stats(&dir);
    std::fs::write(dir.join("last.ckpt"), renamed_checkpoint()).unwrap();
    match import_nws_dir(&dir, "violin") {
        Err(ImportError::MissingTensor(name)) => assert_eq!(name, "reverb.ir"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
}

fn renamed_checkpoint() -> Vec<u8> {
    // Rewrite the archive with the state_dict key `reverb.ir` renamed (same length, so
    // the pickle stays valid and the CRCs are recomputed by the writer).
    let full = ckpt_bytes();
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(&full)).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zout = zip::ZipWriter::new(&mut out);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for i in 0..zin.len() {
            let mut entry = zin.by_index(i).unwrap();
            let name = entry.name().unwrap().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            if name.ends_with("data.pkl") {
                let (from, to) = (b"reverb.ir", b"reverb.xx");
                let at = data.windows(from.len()).position(|w| w == from).unwrap();
                data[at..at + from.len()].copy_from_slice(to);
            }
            zout.start_file(name, opts).unwrap();
            zout.write_all(&data).unwrap();
        }
        zout.finish().unwrap();
    }
    out.into_inner()
}

#[test]
fn missing_or_bad_statistics_are_named() {
    let dir = scratch("missing-npy");
    std::fs::copy(checkpoints().join("vn/last.ckpt"), dir.join("last.ckpt")).unwrap();
    std::fs::copy(
        checkpoints().join("vn/data_mean.npy"),
        dir.join("data_mean.npy"),
    )
    .unwrap();
    match import_nws_dir(&dir, "violin") {
        Err(e @ ImportError::MissingFile { .. }) => {
            println!("{e}");
            assert!(e.to_string().contains("data_std.npy"));
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    match import_nws_checkpoint(
        &dir.join("nothing.ckpt"),
        &dir.join("data_mean.npy"),
        &dir.join("data_std.npy"),
        "violin",
    ) {
        Err(ImportError::MissingFile { what, .. }) => assert_eq!(what, "checkpoint"),
        other => panic!("expected MissingFile, got {other:?}"),
    }

    // A truncated .npy, a wrong shape, garbage.
    let std_bytes = std::fs::read(checkpoints().join("vn/data_std.npy")).unwrap();
    let mut wrong_shape = npy_f64(&[2, 1], &[1.0, 2.0]);
    let cases = [
        ("truncated", std_bytes[..std_bytes.len() - 8].to_vec()),
        ("header-cut", std_bytes[..20].to_vec()),
        ("shape", std::mem::take(&mut wrong_shape)),
        ("negative-std", {
            let mut v = vec![1.0; 19];
            v[1] = -0.5;
            npy_f64(&[19, 1], &v)
        }),
        ("garbage", b"\x93NUMPY garbage".to_vec()),
    ];
    for (name, bytes) in cases {
        std::fs::write(dir.join("data_std.npy"), bytes).unwrap();
        match import_nws_dir(&dir, "violin") {
            Err(e @ ImportError::BadStatistics { .. }) => {
                println!("{name}: {e}");
                assert!(e.to_string().contains("data_std.npy"));
            }
            other => panic!("{name}: expected BadStatistics, got {other:?}"),
        }
    }
}

/// A little-endian float64 .npy (format 1.0).
fn npy_f64(shape: &[usize], values: &[f64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in values {
        out.extend(v.to_le_bytes());
    }
    out
}
