//! Importing the NEWT authors' trained checkpoints (Hayes, Saitis, Fazekas, *Neural
//! Waveshaping Synthesis*, ISMIR 2021; `ben-hayes/neural-waveshaping-synthesis` @
//! `cb7aaea`, MPL-2.0) into this project's model file.
//!
//! A checkpoint is a PyTorch Lightning 1.2.8 `last.ckpt` (a torch zip archive); next to it
//! the training set's control statistics `data_mean.npy` / `data_std.npy`, shape (19, 1).
//! The published architecture and our file agree tensor for tensor (266945 trainable
//! values): every weight converts by a reshape of contiguous memory, no transpose and no
//! reordering ([`nws_tensor_map`]; the reference kit's `mapping.md` §1). The four constant
//! buffers of the state_dict are checked and dropped, `exciter.phases` is written as
//! zeros (the authors draw new random phases on every forward; the reference golden uses
//! zeros). The statistics go into the metadata in the authors' units: f0 in Hz, loudness
//! in the authors' dB `80 l - 80` ([`LoudnessMeasure::NwsDb`]), with
//! [`Operators::Nws`].
//!
//! Every defect of the inputs is a typed [`ImportError`]; nothing here panics on a bad file.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Tensor};
use newt_model::{
    FORMAT_VERSION, LoudnessMeasure, ModelError, ModelMeta, NewtModel, NewtWeights, Operators,
};
use safetensors::{SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};

/// Where the checkpoints were published.
pub const NWS_SOURCE: &str = "https://github.com/ben-hayes/neural-waveshaping-synthesis @ cb7aaea0412c9dc0f46004e2f1656217f065d333";
/// Licence of the checkpoints (the authors' repository's).
pub const NWS_LICENCE: &str = "MPL-2.0";
/// Trainable values of the published model (48 parameters of the state_dict).
pub const NWS_PARAMETERS: usize = 266_945;
/// Rows of `data_mean.npy` / `data_std.npy`: f0 (Hz), loudness (authors' units `l` in
/// [0, 1]), CREPE confidence, 16 MFCCs. Only the first two are used by the model.
pub const NWS_STATISTICS_ROWS: usize = 19;
/// The architecture's constants (`gin/models/newt.gin`, also the checkpoint's
/// `hyper_parameters`).
pub const NWS_SAMPLE_RATE: u32 = 16_000;
pub const NWS_HOP: usize = 128;
pub const NWS_HARMONICS: usize = 101;
pub const NWS_SHAPERS: usize = 64;

/// The constant buffers of the state_dict: checked, not stored.
pub const NWS_BUFFERS: [&str; 4] = [
    "osc.harmonic_axis",
    "osc.rand_phase",
    "noise_synth.window",
    "reverb.initial_zero",
];

/// One of the authors' three checkpoints and the model file made from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NwsInstrument {
    /// Folder of the checkpoint (`checkpoints/nws/<code>/` in the authors' repository).
    pub code: &'static str,
    /// Name of the imported model file, without `.safetensors`.
    pub file_stem: &'static str,
    /// The model's `instrument` metadata.
    pub name: &'static str,
    /// SHA-256 of the published `last.ckpt` (the reference kit's `NOTICE.md`).
    pub sha256: &'static str,
}

pub const NWS_INSTRUMENTS: [NwsInstrument; 3] = [
    NwsInstrument {
        code: "vn",
        file_stem: "violin-urmp",
        name: "violin (URMP, NEWT authors)",
        sha256: "c4582f4d1aedfaa060b94a2fbb5fe9885a99b86155e1389b7dd4d8adc41b7a94",
    },
    NwsInstrument {
        code: "fl",
        file_stem: "flute-urmp",
        name: "flute (URMP, NEWT authors)",
        sha256: "3a49071c95781c7eba5ddb822cc20070681379d076256451e793f078045bc6e5",
    },
    NwsInstrument {
        code: "tpt",
        file_stem: "trumpet-urmp",
        name: "trumpet (URMP, NEWT authors)",
        sha256: "26163d0f5f6fd81d40a52fbdbba2ad4611b217c19102aacde98673ea9bf33d47",
    },
];

/// Tensors kept from each reference golden file by [`trim_golden`].
pub const GOLDEN_TENSORS: [&str; 13] = [
    "controls.f0_hz",
    "controls.loudness",
    "controls.norm",
    "norm.mean",
    "norm.std",
    "encoder.embedding",
    "film.params",
    "noise.magnitudes",
    "noise.uniform",
    "noise.audio",
    "harmonic.audio",
    "audio.out_linear_reverb",
    "windows",
];
/// Tensors kept from the violin's golden file in addition to [`GOLDEN_TENSORS`].
pub const GOLDEN_TENSORS_VN: [&str; 5] = [
    "noise.fir",
    "exciter.mixed.win1",
    "shaper.input.win1",
    "shaper.output.win1",
    "exciter.f0_upsampled",
];

/// Every way an import can fail. Each names the file or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{what} not found: {path}")]
    MissingFile { what: &'static str, path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable PyTorch Lightning checkpoint: {reason}")]
    NotCheckpoint { path: PathBuf, reason: String },
    #[error("checkpoint hyper-parameter `{key}` is {found}, the NEWT architecture has {expected}")]
    BadHyperParameter {
        key: &'static str,
        found: String,
        expected: String,
    },
    #[error("checkpoint state_dict lacks tensor `{0}`")]
    MissingTensor(String),
    #[error("checkpoint state_dict holds `{0}`, which the NEWT tensor map does not know")]
    UnexpectedTensor(String),
    #[error("checkpoint tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("checkpoint tensor `{name}` has dtype {actual}, expected {expected}")]
    WrongDType {
        name: String,
        expected: &'static str,
        actual: String,
    },
    #[error("checkpoint tensor `{name}` cannot be read: {reason}")]
    UnreadableTensor { name: String, reason: String },
    #[error("checkpoint tensor `{name}` holds a non-finite value at flat index {index}")]
    NonFinite { name: String, index: usize },
    #[error("checkpoint buffer `{name}` is not the constant the architecture fixes: {reason}")]
    BadBuffer { name: String, reason: String },
    #[error("{path} has sha256 {found}, the published checkpoint has {expected}")]
    ChecksumMismatch {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
    #[error("bad statistics file {path}: {reason}")]
    BadStatistics { path: PathBuf, reason: String },
    #[error("imported {found} trainable values, the published model has {expected}")]
    ParameterCount { found: usize, expected: usize },
    #[error("bad golden file {path}: {reason}")]
    BadGolden { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the imported model does not validate: {0}")]
    Model(#[from] ModelError),
}

/// One row of the tensor map: a state_dict entry and the model-file tensor it becomes by
/// a reshape (same number of values, same order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NwsTensor {
    /// Name in the authors' state_dict.
    pub source: String,
    /// Its shape there.
    pub source_shape: Vec<usize>,
    /// Name in our model file (its shape is `NewtWeights::layout`'s).
    pub target: String,
}

/// The tensor map of `mapping.md` §1: the 48 trainable state_dict entries, in state_dict
/// order.
pub fn nws_tensor_map() -> Vec<NwsTensor> {
    let (h, s) = (NWS_HARMONICS, NWS_SHAPERS);
    let mut map = Vec::with_capacity(48);
    let mut add = |source: String, source_shape: &[usize], target: String| {
        map.push(NwsTensor {
            source,
            source_shape: source_shape.to_vec(),
            target,
        })
    };
    for (name, shape) in [
        ("weight_ih_l0", &[384, 2][..]),
        ("weight_hh_l0", &[384, 128]),
        ("bias_ih_l0", &[384]),
        ("bias_hh_l0", &[384]),
    ] {
        add(
            format!("embedding.gru.{name}"),
            shape,
            format!("encoder.gru.{name}"),
        );
    }
    add(
        "embedding.proj.weight".into(),
        &[128, 128, 1],
        "encoder.proj.weight".into(),
    );
    add(
        "embedding.proj.bias".into(),
        &[128],
        "encoder.proj.bias".into(),
    );
    add(
        "harmonic_mixer.weight".into(),
        &[s, h, 1],
        "harmonic_mixer.weight".into(),
    );
    add(
        "harmonic_mixer.bias".into(),
        &[s],
        "harmonic_mixer.bias".into(),
    );
    // The two TimeDistributedMLPs: Conv1d(k=1) at net.{0,3,6,9}, LayerNorm at net.{1,4,7}.
    let mlp = |add: &mut dyn FnMut(String, &[usize], String), src: &str, dst: &str, out: usize| {
        for (i, net) in [0, 3, 6].into_iter().enumerate() {
            let (lin, norm) = (format!("{src}.net.{net}"), format!("{src}.net.{}", net + 1));
            add(
                format!("{lin}.weight"),
                &[128, 128, 1],
                format!("{dst}.layers.{i}.linear.weight"),
            );
            add(
                format!("{lin}.bias"),
                &[128],
                format!("{dst}.layers.{i}.linear.bias"),
            );
            add(
                format!("{norm}.layer_norm.weight"),
                &[128],
                format!("{dst}.layers.{i}.norm.weight"),
            );
            add(
                format!("{norm}.layer_norm.bias"),
                &[128],
                format!("{dst}.layers.{i}.norm.bias"),
            );
        }
        add(
            format!("{src}.net.9.weight"),
            &[out, 128, 1],
            format!("{dst}.out.weight"),
        );
        add(
            format!("{src}.net.9.bias"),
            &[out],
            format!("{dst}.out.bias"),
        );
    };
    mlp(&mut add, "newt.mlp", "film", 4 * s);
    let w = newt_model::SHAPER_WIDTH;
    let f = "newt.shaping_fn";
    add(
        format!("{f}.input_scale"),
        &[1, s, 1],
        "shapers.input_scale".into(),
    );
    add(
        format!("{f}.net.0.weight"),
        &[s * w, 1, 1],
        "shapers.w1".into(),
    );
    add(format!("{f}.net.0.bias"), &[s * w], "shapers.b1".into());
    add(
        format!("{f}.net.2.weight"),
        &[s * w, w, 1],
        "shapers.w2".into(),
    );
    add(format!("{f}.net.2.bias"), &[s * w], "shapers.b2".into());
    add(
        format!("{f}.net.4.weight"),
        &[s * w, w, 1],
        "shapers.w3".into(),
    );
    add(format!("{f}.net.4.bias"), &[s * w], "shapers.b3".into());
    add(format!("{f}.net.6.weight"), &[s, w, 1], "shapers.w4".into());
    add(format!("{f}.net.6.bias"), &[s], "shapers.b4".into());
    add(
        "newt.mixer.0.weight".into(),
        &[1, s, 1],
        "output_mixer.weight".into(),
    );
    add("newt.mixer.0.bias".into(), &[1], "output_mixer.bias".into());
    mlp(&mut add, "h_generator", "noise", newt_model::NOISE_BANDS);
    add(
        "reverb.ir".into(),
        &[1, 2 * NWS_SAMPLE_RATE as usize - 1],
        "reverb.ir".into(),
    );
    map
}

/// What the checkpoint's pickle says besides the tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointInfo {
    pub epoch: i64,
    pub global_step: i64,
    pub lightning_version: String,
    /// Integer hyper-parameters (`n_waveshapers`, `control_hop`, `sample_rate`).
    pub hyper_parameters: Vec<(String, i64)>,
    /// Names of the state_dict entries, in file order.
    pub state_dict_keys: Vec<String>,
    /// Hex SHA-256 of the checkpoint file.
    pub sha256: String,
}

/// Reads the checkpoint's top-level pickle (`archive/data.pkl`) without loading tensors:
/// epoch, global step, Lightning version, hyper-parameters, state_dict names, file hash.
pub fn read_checkpoint_info(ckpt: &Path) -> Result<CheckpointInfo, ImportError> {
    require_file(ckpt, "checkpoint")?;
    let bytes = std::fs::read(ckpt).map_err(|source| ImportError::Io {
        path: ckpt.to_owned(),
        source,
    })?;
    let not = |reason: String| ImportError::NotCheckpoint {
        path: ckpt.to_owned(),
        reason,
    };
    let top = guarded(|| parse_pickle(&bytes)).map_err(not)?;
    let Object::Dict(entries) = top else {
        return Err(not("the pickle is not a dict".into()));
    };
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| *k == Object::Unicode(key.into()))
            .map(|(_, v)| v)
    };
    let int = |key: &str| match get(key) {
        Some(Object::Int(v)) => Ok(*v as i64),
        Some(Object::Long(v)) => Ok(*v),
        Some(other) => Err(not(format!("`{key}` is not an integer: {other:?}"))),
        None => Err(not(format!("no `{key}` entry"))),
    };
    let epoch = int("epoch")?;
    let global_step = int("global_step")?;
    let lightning_version = match get("pytorch-lightning_version") {
        Some(Object::Unicode(v)) => v.clone(),
        _ => return Err(not("no `pytorch-lightning_version` entry".into())),
    };
    let hyper_parameters = match get("hyper_parameters") {
        Some(Object::Dict(kv)) => kv
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (Object::Unicode(k), Object::Int(v)) => Some((k.clone(), *v as i64)),
                (Object::Unicode(k), Object::Long(v)) => Some((k.clone(), *v)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    // torch pickles a state_dict's `_metadata` attribute (module versions) with BUILD,
    // which candle's reader merges into the dict as one more key: not an entry.
    let state_dict_keys = match get("state_dict") {
        Some(Object::Dict(kv)) => kv
            .iter()
            .filter(|(k, v)| {
                !(*k == Object::Unicode("_metadata".into()) && matches!(v, Object::Dict(_)))
            })
            .map(|(k, _)| match k {
                Object::Unicode(k) => Ok(k.clone()),
                other => Err(not(format!("state_dict key {other:?} is not a string"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(not("no `state_dict` entry".into())),
    };
    Ok(CheckpointInfo {
        epoch,
        global_step,
        lightning_version,
        hyper_parameters,
        state_dict_keys,
        sha256: sha256_hex(&bytes),
    })
}

fn parse_pickle(bytes: &[u8]) -> Result<Object, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|n| n.ends_with("/data.pkl"))
        .collect();
    let [name] = names.as_slice() else {
        return Err(format!(
            "expected one `*/data.pkl` in the archive, found {}",
            names.len()
        ));
    };
    // Read every member to its end: the zip reader checks each one's CRC-32 there, so a
    // damaged byte anywhere (tensor data included) is reported, not imported.
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| e.to_string())?;
        let member_name = member.name().map(|n| n.into_owned()).unwrap_or_default();
        std::io::copy(&mut member, &mut std::io::sink())
            .map_err(|e| format!("archive member {member_name}: {e}"))?;
    }
    let entry = zip.by_name(name).map_err(|e| e.to_string())?;
    let mut stack = Stack::empty();
    stack
        .read_loop(&mut BufReader::new(entry))
        .map_err(|e| format!("{name}: {e}"))?;
    stack.finalize().map_err(|e| format!("{name}: {e}"))
}

/// Runs a reader of untrusted bytes, turning a panic inside a dependency into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the reader panicked on this file".into()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn require_file(path: &Path, what: &'static str) -> Result<(), ImportError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ImportError::MissingFile {
            what,
            path: path.to_owned(),
        })
    }
}

/// The checkpoint's state_dict as candle tensors, by name.
pub fn read_state_dict(ckpt: &Path) -> Result<HashMap<String, Tensor>, ImportError> {
    require_file(ckpt, "checkpoint")?;
    let tensors = guarded(|| {
        candle_core::pickle::read_all_with_key(ckpt, Some("state_dict")).map_err(|e| e.to_string())
    })
    .map_err(|reason| ImportError::NotCheckpoint {
        path: ckpt.to_owned(),
        reason,
    })?;
    Ok(tensors.into_iter().collect())
}

/// Imports the checkpoint folder `dir` (`last.ckpt`, `data_mean.npy`, `data_std.npy`).
pub fn import_nws_dir(dir: &Path, instrument: &str) -> Result<NewtModel, ImportError> {
    import_nws_checkpoint(
        &dir.join("last.ckpt"),
        &dir.join("data_mean.npy"),
        &dir.join("data_std.npy"),
        instrument,
    )
}

/// Imports one of the authors' checkpoints with its statistics files. `instrument` is the
/// model's display name; the text before its first " (" names the URMP stems in
/// `training_data` (e.g. "violin (URMP, NEWT authors)" -> "URMP violin stems ...").
///
/// The provenance names the checkpoint as `checkpoints/nws/<folder>/<file>` (its path in
/// the authors' repository), so the result does not depend on where the files lie.
pub fn import_nws_checkpoint(
    ckpt: &Path,
    data_mean: &Path,
    data_std: &Path,
    instrument: &str,
) -> Result<NewtModel, ImportError> {
    require_file(ckpt, "checkpoint")?;
    require_file(data_mean, "statistics file data_mean.npy")?;
    require_file(data_std, "statistics file data_std.npy")?;

    let info = read_checkpoint_info(ckpt)?;
    for (key, expected) in [
        ("sample_rate", NWS_SAMPLE_RATE as i64),
        ("control_hop", NWS_HOP as i64),
        ("n_waveshapers", NWS_SHAPERS as i64),
    ] {
        if let Some((_, found)) = info.hyper_parameters.iter().find(|(k, _)| k == key)
            && *found != expected
        {
            return Err(ImportError::BadHyperParameter {
                key,
                found: found.to_string(),
                expected: expected.to_string(),
            });
        }
    }
    if info.global_step <= 0 {
        return Err(ImportError::NotCheckpoint {
            path: ckpt.to_owned(),
            reason: format!("global_step {} is not a trained model's", info.global_step),
        });
    }

    let mut tensors = read_state_dict(ckpt)?;
    // candle skips (with a message) state_dict entries it cannot read: name them here.
    for key in &info.state_dict_keys {
        if !tensors.contains_key(key) {
            return Err(ImportError::NotCheckpoint {
                path: ckpt.to_owned(),
                reason: format!("state_dict entry `{key}` is not a readable tensor"),
            });
        }
    }
    let map = nws_tensor_map();
    for name in map
        .iter()
        .map(|m| m.source.as_str())
        .chain(NWS_BUFFERS.iter().copied())
    {
        if !tensors.contains_key(name) {
            return Err(ImportError::MissingTensor(name.into()));
        }
    }
    let known: HashSet<&str> = map
        .iter()
        .map(|m| m.source.as_str())
        .chain(NWS_BUFFERS.iter().copied())
        .collect();
    let mut unknown: Vec<&String> = tensors
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .collect();
    unknown.sort();
    if let Some(name) = unknown.first() {
        return Err(ImportError::UnexpectedTensor((*name).clone()));
    }
    check_buffers(&tensors)?;

    let mean = read_statistics(data_mean)?;
    let std = read_statistics(data_std)?;
    for (row, what) in [(0, "f0 std"), (1, "loudness std")] {
        if std[row] <= 0.0 {
            return Err(ImportError::BadStatistics {
                path: data_std.to_owned(),
                reason: format!("{what} is {}, must be positive", std[row]),
            });
        }
    }
    if !(0.0..=1.0).contains(&mean[1]) || mean[0] <= 0.0 {
        return Err(ImportError::BadStatistics {
            path: data_mean.to_owned(),
            reason: format!(
                "f0 mean {} Hz / loudness mean {} are outside the authors' ranges (> 0 Hz, [0, 1])",
                mean[0], mean[1]
            ),
        });
    }

    let stem_word = instrument
        .split_once(" (")
        .map_or(instrument, |(w, _)| w)
        .trim();
    let folder = ckpt
        .parent()
        .and_then(Path::file_name)
        .map_or_else(|| "?".into(), |f| f.to_string_lossy().into_owned());
    let file = ckpt
        .file_name()
        .map_or_else(|| "?".into(), |f| f.to_string_lossy().into_owned());
    let stats_hash = |p: &Path| -> Result<String, ImportError> {
        let bytes = std::fs::read(p).map_err(|source| ImportError::Io {
            path: p.to_owned(),
            source,
        })?;
        Ok(sha256_hex(&bytes)[..8].to_owned())
    };
    let provenance = format!(
        "NEWT authors' checkpoint checkpoints/nws/{folder}/{file} (PyTorch Lightning {}), \
         epoch {}, global step {}, sha256 {}; statistics data_mean.npy sha256 {}..., \
         data_std.npy sha256 {}...; imported by newt-import (tensor map: reshape only; \
         exciter.phases = 0)",
        info.lightning_version,
        info.epoch,
        info.global_step,
        info.sha256,
        stats_hash(data_mean)?,
        stats_hash(data_std)?,
    );
    let meta = ModelMeta {
        format_version: FORMAT_VERSION,
        sample_rate: NWS_SAMPLE_RATE,
        hop: NWS_HOP,
        n_harmonics: NWS_HARMONICS,
        n_shapers: NWS_SHAPERS,
        f0_mean_hz: mean[0] as f32,
        f0_std_hz: std[0] as f32,
        loudness_mean_db: (80.0 * mean[1] - 80.0) as f32,
        loudness_std_db: (80.0 * std[1]) as f32,
        operators: Operators::Nws,
        loudness_measure: LoudnessMeasure::NwsDb,
        instrument: instrument.into(),
        provenance,
        source: NWS_SOURCE.into(),
        licence: NWS_LICENCE.into(),
        training_data: format!(
            "URMP {stem_word} stems (University of Rochester Multi-Modal Music Performance \
             dataset), 16 kHz, CREPE f0, 4 s segments"
        ),
        training_steps: info.global_step as u64,
        // The authors' recordings are not here: a map from their statistics.
        range_map: newt_model::RangeMap::estimated(
            mean[0] as f32,
            std[0] as f32,
            (80.0 * mean[1] - 80.0) as f32,
            (80.0 * std[1]) as f32,
            LoudnessMeasure::NwsDb,
        ),
    };

    // Every trainable tensor: check dtype, shape and values, then reshape into place.
    let mut values: HashMap<String, Vec<f32>> = HashMap::new();
    let mut count = 0;
    for m in &map {
        let data = f32_tensor(&mut tensors, &m.source, &m.source_shape)?;
        count += data.len();
        values.insert(m.target.clone(), data);
    }
    if count != NWS_PARAMETERS {
        return Err(ImportError::ParameterCount {
            found: count,
            expected: NWS_PARAMETERS,
        });
    }
    let mut weights = NewtWeights::zeros(&meta);
    let mut result = Ok(());
    weights.visit_mut(&mut |name, shape, data| {
        if result.is_err() || name == "exciter.phases" {
            return;
        }
        let n: usize = shape.iter().product();
        match values.remove(&name) {
            Some(v) if v.len() == n => *data = v,
            Some(v) => {
                result = Err(ImportError::ParameterCount {
                    found: v.len(),
                    expected: n,
                })
            }
            None => result = Err(ImportError::MissingTensor(name)),
        }
    });
    result?;
    let stored = NewtWeights::parameter_count(&meta);
    if stored != NWS_PARAMETERS {
        return Err(ImportError::ParameterCount {
            found: stored,
            expected: NWS_PARAMETERS,
        });
    }
    // The model file's own validation (shapes, finiteness, metadata ranges).
    let model = NewtModel { meta, weights };
    Ok(NewtModel::from_bytes(&model.to_bytes())?)
}

fn dims_of(t: &Tensor) -> Vec<usize> {
    t.dims().to_vec()
}

fn f32_tensor(
    tensors: &mut HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, ImportError> {
    let t = tensors
        .remove(name)
        .ok_or_else(|| ImportError::MissingTensor(name.into()))?;
    if t.dtype() != DType::F32 {
        return Err(ImportError::WrongDType {
            name: name.into(),
            expected: "F32",
            actual: format!("{:?}", t.dtype()),
        });
    }
    if t.dims() != shape {
        return Err(ImportError::WrongShape {
            name: name.into(),
            expected: shape.to_vec(),
            actual: dims_of(&t),
        });
    }
    let data = t
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| ImportError::UnreadableTensor {
            name: name.into(),
            reason: e.to_string(),
        })?;
    if let Some(index) = data.iter().position(|x| !x.is_finite()) {
        return Err(ImportError::NonFinite {
            name: name.into(),
            index,
        });
    }
    Ok(data)
}

/// The four constant buffers must hold what the authors' code puts there.
fn check_buffers(tensors: &HashMap<String, Tensor>) -> Result<(), ImportError> {
    let bad = |name: &str, reason: String| ImportError::BadBuffer {
        name: name.into(),
        reason,
    };
    let values = |name: &str, shape: &[usize]| -> Result<Vec<f64>, ImportError> {
        let t = &tensors[name];
        if t.dims() != shape {
            return Err(ImportError::WrongShape {
                name: name.into(),
                expected: shape.to_vec(),
                actual: dims_of(t),
            });
        }
        t.to_dtype(DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f64>())
            .map_err(|e| bad(name, e.to_string()))
    };
    let check = |name: &str, shape: &[usize], expected: &dyn Fn(usize) -> f64, tol: f64| {
        let v = values(name, shape)?;
        match v
            .iter()
            .enumerate()
            .find(|(i, x)| (**x - expected(*i)).abs() > tol || !x.is_finite())
        {
            Some((i, x)) => Err(bad(
                name,
                format!("value {x} at index {i}, expected {}", expected(i)),
            )),
            None => Ok(()),
        }
    };
    let axis = &tensors["osc.harmonic_axis"];
    if axis.dtype() != DType::I64 {
        return Err(ImportError::WrongDType {
            name: "osc.harmonic_axis".into(),
            expected: "I64",
            actual: format!("{:?}", axis.dtype()),
        });
    }
    let h = NWS_HARMONICS;
    check("osc.harmonic_axis", &[1, h, 1], &|i| (i + 1) as f64, 0.0)?;
    check(
        "osc.rand_phase",
        &[1, h, 1],
        &|_| std::f64::consts::TAU,
        1e-6,
    )?;
    let n = 2 * (newt_model::NOISE_BANDS - 1);
    check(
        "noise_synth.window",
        &[n],
        &|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos(),
        1e-6,
    )?;
    check("reverb.initial_zero", &[1, 1], &|_| 0.0, 0.0)
}

/// One statistics file as f64 values, checked to be `(19, 1)` of finite numbers.
pub fn read_statistics(path: &Path) -> Result<Vec<f64>, ImportError> {
    require_file(path, "statistics file")?;
    let bad = |reason: String| ImportError::BadStatistics {
        path: path.to_owned(),
        reason,
    };
    let t = guarded(|| Tensor::read_npy(path).map_err(|e| e.to_string())).map_err(bad)?;
    if !matches!(t.dtype(), DType::F32 | DType::F64) {
        return Err(bad(format!(
            "dtype {:?}, expected float32 or float64",
            t.dtype()
        )));
    }
    if t.dims() != [NWS_STATISTICS_ROWS, 1] {
        return Err(bad(format!(
            "shape {:?}, expected [{NWS_STATISTICS_ROWS}, 1] (f0, loudness, confidence, 16 MFCCs)",
            t.dims()
        )));
    }
    let v = t
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(|e| bad(e.to_string()))?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!("row {i} is not finite")));
    }
    Ok(v)
}

/// Imports the three published checkpoints of `from` (`vn/`, `fl/`, `tpt/`, each checked
/// against its published SHA-256) and writes
/// `violin-urmp.safetensors`, `flute-urmp.safetensors`, `trumpet-urmp.safetensors` into
/// `out_dir`. Returns the files written with their models.
pub fn import_nws_all(
    from: &Path,
    out_dir: &Path,
) -> Result<Vec<(PathBuf, NewtModel)>, ImportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ImportError::Write {
        path: out_dir.to_owned(),
        source,
    })?;
    NWS_INSTRUMENTS
        .iter()
        .map(|inst| {
            let dir = from.join(inst.code);
            let ckpt = dir.join("last.ckpt");
            let found = read_checkpoint_info(&ckpt)?.sha256;
            if found != inst.sha256 {
                return Err(ImportError::ChecksumMismatch {
                    path: ckpt,
                    expected: inst.sha256,
                    found,
                });
            }
            let model = import_nws_dir(&dir, inst.name)?;
            let out = out_dir.join(format!("{}.safetensors", inst.file_stem));
            model.save(&out)?;
            Ok((out, model))
        })
        .collect()
}

/// Copies the part of the reference golden folder `from` that the project keeps into `out`:
/// [`GOLDEN_TENSORS`] of each `{vn,fl,tpt}.safetensors` (plus [`GOLDEN_TENSORS_VN`] for
/// vn; dtypes, shapes and metadata kept), the `{vn,fl,tpt}.controls.csv` and `.wav`
/// files, and `README.md`. Returns the files written.
pub fn trim_golden(from: &Path, out: &Path) -> Result<Vec<PathBuf>, ImportError> {
    std::fs::create_dir_all(out).map_err(|source| ImportError::Write {
        path: out.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for inst in NWS_INSTRUMENTS {
        let name = format!("{}.safetensors", inst.code);
        let (src, dst) = (from.join(&name), out.join(&name));
        require_file(&src, "golden file")?;
        let bytes = std::fs::read(&src).map_err(|source| ImportError::Io {
            path: src.clone(),
            source,
        })?;
        let bad = |reason: String| ImportError::BadGolden {
            path: src.clone(),
            reason,
        };
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let mut meta = header.metadata().clone().unwrap_or_default();
        let extra: &[&str] = if inst.code == "vn" {
            &GOLDEN_TENSORS_VN
        } else {
            &[]
        };
        let names: Vec<&str> = GOLDEN_TENSORS.iter().chain(extra).copied().collect();
        meta.insert(
            "trimmed".into(),
            format!(
                "subset of the reference golden file ({} of {} tensors), written by \
                 newt-import trim-golden",
                names.len(),
                tensors.len()
            ),
        );
        let views = names
            .iter()
            .map(|n| {
                let v = tensors
                    .tensor(n)
                    .map_err(|_| bad(format!("lacks tensor `{n}`")))?;
                let view = TensorView::new(v.dtype(), v.shape().to_vec(), v.data())
                    .map_err(|e| bad(format!("`{n}`: {e}")))?;
                Ok((n.to_string(), view))
            })
            .collect::<Result<Vec<_>, ImportError>>()?;
        safetensors::serialize_to_file(views, Some(meta), &dst).map_err(|e| {
            ImportError::Write {
                path: dst.clone(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        written.push(dst);
    }
    let copies = NWS_INSTRUMENTS
        .iter()
        .flat_map(|i| {
            [
                format!("{}.controls.csv", i.code),
                format!("{}.wav", i.code),
            ]
        })
        .chain(["README.md".to_owned()]);
    for name in copies {
        let (src, dst) = (from.join(&name), out.join(&name));
        require_file(&src, "golden file")?;
        std::fs::copy(&src, &dst).map_err(|source| ImportError::Write {
            path: dst.clone(),
            source,
        })?;
        make_writable(&dst)?;
        written.push(dst);
    }
    Ok(written)
}

/// `fs::copy` keeps the read-only mode of the reference files; the copies are ours.
fn make_writable(path: &Path) -> Result<(), ImportError> {
    let err = |source| ImportError::Write {
        path: path.to_owned(),
        source,
    };
    let mut perms = std::fs::metadata(path).map_err(err)?.permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        perms.set_mode(perms.mode() | 0o200);
    }
    #[cfg(not(unix))]
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).map_err(err)
}
