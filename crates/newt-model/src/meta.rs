use std::collections::HashMap;

use crate::ModelError;

/// The model-file format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Migrations from older format versions, applied in order on load: `(from_version,
/// fix-up)`. Version 1 is the first; the list exists so later versions add entries
/// instead of branching the loader.
pub(crate) const MIGRATIONS: &[(u32, Migration)] = &[];

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
    /// Dataset statistics used to z-score loudness (A-weighted dBFS).
    pub loudness_mean_db: f32,
    pub loudness_std_db: f32,
    /// Human-readable instrument name, shown by the plugin.
    pub instrument: String,
    /// Where the weights came from (data set, recipe, steps, or "seeded random").
    pub provenance: String,
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
        let meta = ModelMeta {
            format_version: FORMAT_VERSION,
            sample_rate: parse(&map, "sample_rate", |v: &u32| (8_000..=96_000).contains(v))?,
            hop: parse(&map, "hop", |v: &usize| (16..=4096).contains(v))?,
            n_harmonics: parse(&map, "n_harmonics", |v: &usize| (1..=512).contains(v))?,
            n_shapers: parse(&map, "n_shapers", |v: &usize| (1..=256).contains(v))?,
            f0_mean_hz: parse(&map, "f0_mean_hz", |v: &f32| v.is_finite())?,
            f0_std_hz: parse(&map, "f0_std_hz", |v: &f32| v.is_finite() && *v >= 1e-3)?,
            loudness_mean_db: parse(&map, "loudness_mean_db", |v: &f32| v.is_finite())?,
            loudness_std_db: parse(&map, "loudness_std_db", |v: &f32| {
                v.is_finite() && *v >= 1e-3
            })?,
            instrument: map
                .get("instrument")
                .cloned()
                .ok_or(ModelError::MissingMetadata("instrument"))?,
            provenance: map.get("provenance").cloned().unwrap_or_default(),
        };
        Ok(meta)
    }
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
