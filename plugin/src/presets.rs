//! Presets: factory playing styles for every bundled model, and the player's own saved as
//! files. A preset is a nice-plug plugin state: the editor loads one with
//! `GuiContext::set_state`, which restores parameters exactly as a host restoring a
//! project does (the same code, and the host hears of every change), and saves the
//! current state with `GuiContext::get_state`.
//!
//! A factory preset sets the model and the playing parameters ([`Sound`]) and leaves the
//! rest (input mode, audio-input settings, transposition) as the player has them; a user
//! preset is the whole state, user model file included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nice_plug::plugin::{ParamValue, PluginState};

use crate::library;
use crate::params::{NewtParams, Voicing};

/// A preset's name and its state.
#[derive(Clone, Debug)]
pub struct Preset {
    pub name: String,
    pub state: PluginState,
}

/// Everything a factory preset sets, in plain parameter values (ms, cents, dB...).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sound {
    /// The model's registry value (`library`).
    pub model: i32,
    pub voicing: Voicing,
    pub keep_in_range: bool,
    pub glide_ms: f32,
    pub bend_range: f32,
    pub vibrato_cents: f32,
    pub vibrato_rate_hz: f32,
    pub attack_ms: f32,
    pub decay_ms: f32,
    pub sustain: f32,
    pub release_ms: f32,
    pub shaper_in_scale: f32,
    pub shaper_in_offset: f32,
    pub shaper_out_scale: f32,
    pub balance: f32,
    pub reverb: f32,
    pub gain_db: f32,
}

/// A playing style, applied to each bundled model.
struct Style {
    name: &'static str,
    /// The sound of the style for model `model`.
    sound: fn(model: i32) -> Sound,
}

/// The plugin's defaults: the sound of a fresh instance.
fn plain(model: i32) -> Sound {
    Sound {
        model,
        voicing: Voicing::MonoLegato,
        keep_in_range: false,
        glide_ms: 50.0,
        bend_range: 2.0,
        vibrato_cents: 0.0,
        vibrato_rate_hz: 5.5,
        attack_ms: 30.0,
        decay_ms: 200.0,
        sustain: 0.8,
        release_ms: 300.0,
        shaper_in_scale: 1.0,
        shaper_in_offset: 0.0,
        shaper_out_scale: 1.0,
        balance: 0.0,
        reverb: 1.0,
        gain_db: 0.0,
    }
}

const STYLES: [Style; 4] = [
    Style {
        name: "Plain",
        sound: plain,
    },
    Style {
        name: "Legato, slow attack",
        sound: |model| Sound {
            glide_ms: 120.0,
            attack_ms: 250.0,
            decay_ms: 600.0,
            sustain: 0.9,
            release_ms: 450.0,
            vibrato_cents: 6.0,
            vibrato_rate_hz: 5.0,
            keep_in_range: true,
            ..plain(model)
        },
    },
    Style {
        name: "Expressive vibrato",
        sound: |model| Sound {
            glide_ms: 60.0,
            attack_ms: 60.0,
            decay_ms: 300.0,
            sustain: 0.85,
            release_ms: 350.0,
            vibrato_cents: 30.0,
            vibrato_rate_hz: 5.8,
            keep_in_range: true,
            ..plain(model)
        },
    },
    Style {
        name: "Poly pad",
        sound: |model| Sound {
            voicing: Voicing::Poly,
            keep_in_range: true,
            glide_ms: 0.0,
            attack_ms: 600.0,
            decay_ms: 1500.0,
            sustain: 0.7,
            release_ms: 1800.0,
            vibrato_cents: 8.0,
            vibrato_rate_hz: 4.2,
            reverb: 1.6,
            gain_db: -6.0,
            ..plain(model)
        },
    },
];

impl Sound {
    /// The sound the parameters make now.
    pub fn of(p: &NewtParams) -> Self {
        Self {
            model: p.model.value(),
            voicing: p.voicing.value(),
            keep_in_range: p.keep_in_range.value(),
            glide_ms: p.glide.value(),
            bend_range: p.bend_range.value(),
            vibrato_cents: p.vibrato.value(),
            vibrato_rate_hz: p.vibrato_rate.value(),
            attack_ms: p.attack.value(),
            decay_ms: p.decay.value(),
            sustain: p.sustain.value(),
            release_ms: p.release.value(),
            shaper_in_scale: p.shaper_in_scale.value(),
            shaper_in_offset: p.shaper_in_offset.value(),
            shaper_out_scale: p.shaper_out_scale.value(),
            balance: p.balance.value(),
            reverb: p.reverb.value(),
            gain_db: p.gain.value(),
        }
    }

    /// Equal to within the parameters' step sizes.
    pub fn matches(&self, other: &Sound) -> bool {
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * a.abs().max(b.abs()).max(1.0);
        self.model == other.model
            && self.voicing == other.voicing
            && self.keep_in_range == other.keep_in_range
            && self
                .floats()
                .iter()
                .zip(other.floats())
                .all(|(a, b)| close(*a, b))
    }

    fn floats(&self) -> [f32; 14] {
        [
            self.glide_ms,
            self.bend_range,
            self.vibrato_cents,
            self.vibrato_rate_hz,
            self.attack_ms,
            self.decay_ms,
            self.sustain,
            self.release_ms,
            self.shaper_in_scale,
            self.shaper_in_offset,
            self.shaper_out_scale,
            self.balance,
            self.reverb,
            self.gain_db,
        ]
    }

    /// The parameters this sound sets, by parameter id, as nice-plug stores them.
    pub fn params(&self) -> BTreeMap<String, ParamValue> {
        let voicing = match self.voicing {
            Voicing::MonoLegato => 0,
            Voicing::Poly => 1,
        };
        let mut m = BTreeMap::new();
        m.insert("model".into(), ParamValue::I32(self.model));
        m.insert("voicing".into(), ParamValue::I32(voicing));
        m.insert("keep_in_range".into(), ParamValue::Bool(self.keep_in_range));
        for (id, v) in [
            ("glide", self.glide_ms),
            ("bend_range", self.bend_range),
            ("vibrato", self.vibrato_cents),
            ("vibrato_rate", self.vibrato_rate_hz),
            ("attack", self.attack_ms),
            ("decay", self.decay_ms),
            ("sustain", self.sustain),
            ("release", self.release_ms),
            ("shaper_in_scale", self.shaper_in_scale),
            ("shaper_in_offset", self.shaper_in_offset),
            ("shaper_out_scale", self.shaper_out_scale),
            ("balance", self.balance),
            ("reverb", self.reverb),
            ("gain", self.gain_db),
        ] {
            m.insert(id.into(), ParamValue::F32(v));
        }
        m
    }

    /// A plugin state that sets this sound and nothing else.
    pub fn state(&self) -> PluginState {
        PluginState {
            version: env!("CARGO_PKG_VERSION").into(),
            params: self.params(),
            fields: BTreeMap::new(),
        }
    }
}

/// A factory preset with its sound.
#[derive(Clone, Debug)]
pub struct FactoryPreset {
    /// "Flute: Poly pad".
    pub name: String,
    /// The model's name in the menu.
    pub model_name: &'static str,
    pub sound: Sound,
}

/// Every factory preset: each style for each bundled model, in the model menu's order.
pub fn factory() -> Vec<FactoryPreset> {
    library::menu()
        .filter(|item| item.value != library::USER_FILE_VALUE)
        .flat_map(|item| {
            STYLES.iter().map(move |style| FactoryPreset {
                name: format!("{}: {}", item.name, style.name),
                model_name: item.name,
                sound: (style.sound)(item.value),
            })
        })
        .collect()
}

/// The factory preset called `name`.
pub fn factory_preset(name: &str) -> Option<FactoryPreset> {
    factory().into_iter().find(|p| p.name == name)
}

/// Why a user preset cannot be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("cannot read preset {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write preset {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a NEWT preset: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("a preset name needs a letter or digit")]
    EmptyName,
    #[error("no folder for user presets: set NEWT_PRESET_DIR, XDG_CONFIG_HOME or HOME")]
    NoFolder,
}

/// The file extension of user presets.
pub const EXTENSION: &str = "newtpreset";

/// The stored form of a user preset.
#[derive(serde::Serialize, serde::Deserialize)]
struct PresetFile {
    /// The format, "newt-preset".
    format: String,
    name: String,
    state: PluginState,
}

const FORMAT: &str = "newt-preset";

/// Where user presets live: `$NEWT_PRESET_DIR`, else `$XDG_CONFIG_HOME/newt/presets`,
/// else `$HOME/.config/newt/presets` (`%APPDATA%\newt\presets` on Windows).
pub fn user_folder() -> Result<PathBuf, PresetError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("NEWT_PRESET_DIR") {
        return Ok(dir);
    }
    let config = var("XDG_CONFIG_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".config")))
        .or_else(|| var("APPDATA"))
        .ok_or(PresetError::NoFolder)?;
    Ok(config.join("newt").join("presets"))
}

/// A file name from a preset name: letters, digits, spaces, '-' and '_' kept.
fn file_stem(name: &str) -> Result<String, PresetError> {
    let stem: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.chars().any(char::is_alphanumeric) {
        Ok(stem)
    } else {
        Err(PresetError::EmptyName)
    }
}

/// Saves `state` as the user preset `name` in `folder` (replacing one of that name),
/// written whole or not at all; returns its path.
pub fn save_user(folder: &Path, name: &str, state: PluginState) -> Result<PathBuf, PresetError> {
    let path = folder.join(format!("{}.{EXTENSION}", file_stem(name)?));
    let write = |source| PresetError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(folder).map_err(write)?;
    let file = PresetFile {
        format: FORMAT.into(),
        name: name.trim().into(),
        state,
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| PresetError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let partial = path.with_extension(format!("{EXTENSION}.partial"));
    std::fs::write(&partial, json).map_err(write)?;
    std::fs::rename(&partial, &path).map_err(write)?;
    Ok(path)
}

/// Reads the user preset at `path`.
pub fn load_user(path: &Path) -> Result<Preset, PresetError> {
    let bytes = std::fs::read(path).map_err(|source| PresetError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| PresetError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let file: PresetFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if file.format != FORMAT {
        return Err(invalid(format!("format {:?}", file.format)));
    }
    Ok(Preset {
        name: file.name,
        state: file.state,
    })
}

/// The user presets in `folder` (name and path), sorted by name; a missing folder has
/// none, and unreadable files are left out.
pub fn list_user(folder: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == EXTENSION))
        .filter_map(|p| load_user(&p).ok().map(|preset| (preset.name, p)))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_model_has_each_style() {
        let presets = factory();
        let models = library::menu()
            .filter(|i| i.value != library::USER_FILE_VALUE)
            .count();
        assert_eq!(presets.len(), models * STYLES.len());
        let flute = factory_preset("Flute: Poly pad").unwrap();
        assert_eq!(flute.sound.voicing, Voicing::Poly);
        assert_eq!(flute.sound.model, library::DEFAULT_VALUE);
        // The plain style is a fresh instance's sound.
        let plain = factory_preset("Flute: Plain").unwrap();
        assert!(plain.sound.matches(&Sound::of(&NewtParams::default())));
        assert!(!flute.sound.matches(&plain.sound));
    }

    #[test]
    fn user_presets_round_trip_and_bad_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("newt-presets-{}", std::process::id()));
        let state = factory_preset("Violin: Expressive vibrato")
            .unwrap()
            .sound
            .state();
        let path = save_user(&dir, "My violin / warm", state.clone()).unwrap();
        assert!(
            path.ends_with("My violin _ warm.newtpreset"),
            "{}",
            path.display()
        );
        let back = load_user(&path).unwrap();
        assert_eq!(back.name, "My violin / warm");
        assert_eq!(
            serde_json::to_value(&back.state.params).unwrap(),
            serde_json::to_value(&state.params).unwrap()
        );
        assert_eq!(list_user(&dir).len(), 1);
        assert!(matches!(
            save_user(&dir, " / ", state),
            Err(PresetError::EmptyName)
        ));
        let bad = dir.join("bad.newtpreset");
        std::fs::write(&bad, b"{\"format\": \"newt-preset\", \"name\": 3").unwrap();
        assert!(matches!(load_user(&bad), Err(PresetError::Invalid { .. })));
        assert_eq!(list_user(&dir).len(), 1, "the bad file is left out");
        assert!(matches!(
            load_user(&dir.join("missing.newtpreset")),
            Err(PresetError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
