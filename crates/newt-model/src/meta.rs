use std::collections::HashMap;

use crate::{ModelError, RangeMap};

/// The model-file format version this build writes and the newest it reads.
///
/// Version 2 added `operators`, `loudness_measure` and the provenance fields (`source`,
/// `licence`, `training_data`, `training_steps`); a version-1 file is a model of this
/// project (our operators, A-weighted dBFS loudness).
pub const FORMAT_VERSION: u32 = 2;

/// Migrations from older format versions, applied in order on load: `(from_version,
/// fix-up)`: every fix-up whose version is at or above the file's runs.
pub(crate) const MIGRATIONS: &[(u32, Migration)] = &[(1, v1_to_v2)];

fn v1_to_v2(map: &mut HashMap<String, String>) {
    map.insert("operators".into(), Operators::Newt.key().into());
    map.insert(
        "loudness_measure".into(),
        LoudnessMeasure::AWeightedDbfs.key().into(),
    );
}

/// Which operators around the weights a model was trained with. The weights of both kinds
/// have the same names and shapes; what differs is how frame-rate values reach the audio
/// rate and how the noise branch is made (`ARCHITECTURE.md`, "Operator sets").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Operators {
    /// This project's: f0 and FiLM ramp causally from the previous frame, `(i + 1) / hop`;
    /// zero-mean uniform [-1, 1) noise, linearly convolved with each frame's filter.
    #[default]
    Newt,
    /// The NEWT authors' code (Hayes et al., `neural-waveshaping-synthesis` @ `cb7aaea`):
    /// f0 and FiLM interpolated between frame centres (torch `linear`,
    /// `align_corners=False`: the ramp `(i + 0.5) / hop`, half a hop later); uniform
    /// [0, 1) noise in 256-sample frames at hop 128, circularly convolved with each
    /// frame's filter, overlap-added and halved.
    Nws,
}

impl Operators {
    pub fn key(self) -> &'static str {
        match self {
            Self::Newt => "newt",
            Self::Nws => "nws",
        }
    }

    fn from_key(s: &str) -> Option<Self> {
        [Self::Newt, Self::Nws].into_iter().find(|o| o.key() == s)
    }
}

/// The loudness control a model was trained on: the unit of `loudness_mean_db`,
/// `loudness_std_db` and of every `FrameControls::loudness_db` given to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoudnessMeasure {
    /// A-weighted power in dB, 0 dB = a full-scale 1 kHz sine, floor -120 dB
    /// (`newt_features::LoudnessMeter`).
    #[default]
    AWeightedDbfs,
    /// The NEWT authors' measure in their dB: the mean over the 513 bins of a 1024-point
    /// STFT of `max(20 log10(|X| / max |X|), -80)`, relative to the loudest bin of the whole
    /// file, not A-weighted; in [-80, 0], -80 = silence (`newt_features::nws_loudness`).
    NwsDb,
}

impl LoudnessMeasure {
    pub fn key(self) -> &'static str {
        match self {
            Self::AWeightedDbfs => "a_weighted_dbfs",
            Self::NwsDb => "nws_db",
        }
    }

    fn from_key(s: &str) -> Option<Self> {
        [Self::AWeightedDbfs, Self::NwsDb]
            .into_iter()
            .find(|o| o.key() == s)
    }

    /// The loudness of silence in this measure, in dB: the lowest value a model is shown.
    pub fn floor_db(self) -> f32 {
        match self {
            Self::AWeightedDbfs => -120.0,
            Self::NwsDb => -80.0,
        }
    }

    /// The highest loudness accepted, in dB.
    pub fn ceiling_db(self) -> f32 {
        match self {
            Self::AWeightedDbfs => 20.0,
            Self::NwsDb => 0.0,
        }
    }
}

/// Rewrites the metadata of an older file into the next version's form.
pub(crate) type Migration = fn(&mut HashMap<String, String>);

/// Everything about a model that is not a weight.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMeta {
    pub format_version: u32,
    /// Model (training) sample rate in Hz; the published models use 16 kHz.
    pub sample_rate: u32,
    /// Control hop in samples at `sample_rate` (128 = 8 ms at 16 kHz).
    pub hop: usize,
    /// Number of exciter harmonics (101 in the paper).
    pub n_harmonics: usize,
    /// Number of waveshapers (64 in the paper).
    pub n_shapers: usize,
    /// Dataset statistics used to z-score f0 (Hz) before the control encoder.
    pub f0_mean_hz: f32,
    pub f0_std_hz: f32,
    /// Dataset statistics used to z-score loudness, in the unit of `loudness_measure`.
    pub loudness_mean_db: f32,
    pub loudness_std_db: f32,
    /// The operators around the weights this model expects.
    pub operators: Operators,
    /// The loudness control this model was trained on.
    pub loudness_measure: LoudnessMeasure,
    /// Human-readable instrument name, shown by the plugin.
    pub instrument: String,
    /// Where the weights came from (data set, recipe, steps, or "seeded random").
    pub provenance: String,
    /// Where the model was published (repository and commit), empty for our own.
    pub source: String,
    /// Licence of the weights (SPDX identifier), empty where the project's own applies.
    pub licence: String,
    /// The recordings it learned from, in words.
    pub training_data: String,
    /// Optimiser steps it was trained for (0 = not recorded).
    pub training_steps: u64,
    /// Where its training controls lay (key `range_map`; estimated from the statistics
    /// above when a file has none).
    pub range_map: RangeMap,
}

impl ModelMeta {
    /// Length of the learned reverb tail in taps: 2 s at the model rate, minus the first
    /// tap, which is fixed at 0 (the dry path is separate).
    pub fn reverb_taps(&self) -> usize {
        2 * self.sample_rate as usize - 1
    }

    pub(crate) fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert("format".into(), "newt".into());
        m.insert("format_version".into(), self.format_version.to_string());
        m.insert("sample_rate".into(), self.sample_rate.to_string());
        m.insert("hop".into(), self.hop.to_string());
        m.insert("n_harmonics".into(), self.n_harmonics.to_string());
        m.insert("n_shapers".into(), self.n_shapers.to_string());
        m.insert("f0_mean_hz".into(), self.f0_mean_hz.to_string());
        m.insert("f0_std_hz".into(), self.f0_std_hz.to_string());
        m.insert("loudness_mean_db".into(), self.loudness_mean_db.to_string());
        m.insert("loudness_std_db".into(), self.loudness_std_db.to_string());
        m.insert("instrument".into(), self.instrument.clone());
        m.insert("provenance".into(), self.provenance.clone());
        m.insert("operators".into(), self.operators.key().into());
        m.insert(
            "loudness_measure".into(),
            self.loudness_measure.key().into(),
        );
        m.insert("source".into(), self.source.clone());
        m.insert("licence".into(), self.licence.clone());
        m.insert("training_data".into(), self.training_data.clone());
        m.insert("training_steps".into(), self.training_steps.to_string());
        m.insert("range_map".into(), self.range_map.to_json());
        m
    }

    pub(crate) fn from_map(map: Option<&HashMap<String, String>>) -> Result<Self, ModelError> {
        let empty = HashMap::new();
        let mut map = map.unwrap_or(&empty).clone();
        match map.get("format") {
            Some(f) if f == "newt" => {}
            other => return Err(ModelError::NotNewt(other.cloned())),
        }
        let found: u32 = parse(&map, "format_version", |v: &u32| *v >= 1)?;
        if found > FORMAT_VERSION {
            return Err(ModelError::UnknownVersion {
                found,
                supported: FORMAT_VERSION,
            });
        }
        for (from, fix) in MIGRATIONS {
            if found <= *from {
                fix(&mut map);
            }
        }
        let f0_mean_hz = parse(&map, "f0_mean_hz", |v: &f32| v.is_finite())?;
        let f0_std_hz = parse(&map, "f0_std_hz", |v: &f32| v.is_finite() && *v >= 1e-3)?;
        let loudness_mean_db = parse(&map, "loudness_mean_db", |v: &f32| v.is_finite())?;
        let loudness_std_db = parse(&map, "loudness_std_db", |v: &f32| {
            v.is_finite() && *v >= 1e-3
        })?;
        let loudness_measure = keyword(&map, "loudness_measure", LoudnessMeasure::from_key)?;
        let range_map = match map.get("range_map") {
            Some(raw) => RangeMap::from_json(raw, loudness_measure)?,
            None => RangeMap::estimated(
                f0_mean_hz,
                f0_std_hz,
                loudness_mean_db,
                loudness_std_db,
                loudness_measure,
            ),
        };
        let meta = ModelMeta {
            format_version: FORMAT_VERSION,
            sample_rate: parse(&map, "sample_rate", |v: &u32| (8_000..=96_000).contains(v))?,
            hop: parse(&map, "hop", |v: &usize| (16..=4096).contains(v))?,
            n_harmonics: parse(&map, "n_harmonics", |v: &usize| (1..=512).contains(v))?,
            n_shapers: parse(&map, "n_shapers", |v: &usize| (1..=256).contains(v))?,
            f0_mean_hz,
            f0_std_hz,
            loudness_mean_db,
            loudness_std_db,
            instrument: map
                .get("instrument")
                .cloned()
                .ok_or(ModelError::MissingMetadata("instrument"))?,
            provenance: text(&map, "provenance"),
            operators: keyword(&map, "operators", Operators::from_key)?,
            loudness_measure,
            source: text(&map, "source"),
            licence: text(&map, "licence"),
            training_data: text(&map, "training_data"),
            training_steps: match map.get("training_steps") {
                Some(_) => parse(&map, "training_steps", |_: &u64| true)?,
                None => 0,
            },
            range_map,
        };
        Ok(meta)
    }
}

fn text(map: &HashMap<String, String>, key: &str) -> String {
    map.get(key).cloned().unwrap_or_default()
}

fn keyword<T>(
    map: &HashMap<String, String>,
    key: &'static str,
    from_key: impl Fn(&str) -> Option<T>,
) -> Result<T, ModelError> {
    let raw = map.get(key).ok_or(ModelError::MissingMetadata(key))?;
    from_key(raw.trim()).ok_or_else(|| ModelError::BadMetadata {
        key,
        value: raw.clone(),
        reason: "not a known value",
    })
}

fn parse<T: std::str::FromStr>(
    map: &HashMap<String, String>,
    key: &'static str,
    valid: impl Fn(&T) -> bool,
) -> Result<T, ModelError> {
    let raw = map.get(key).ok_or(ModelError::MissingMetadata(key))?;
    let bad = |reason| ModelError::BadMetadata {
        key,
        value: raw.clone(),
        reason,
    };
    let v: T = raw.trim().parse().map_err(|_| bad("not a number"))?;
    if valid(&v) {
        Ok(v)
    } else {
        Err(bad("out of range"))
    }
}
