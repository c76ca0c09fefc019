//! Rendering a [`Performance`] on a SoundFont instrument (rustysynth), with the ground
//! truth of every model frame: the pitch played and the loudness heard.

use std::sync::Arc;

use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};

use crate::instrument::Instrument;
use crate::performance::{BEND_RANGE_CENTS, Performance};

/// Sample rate of the rendered audio, in Hz.
pub const RENDER_RATE: u32 = 48_000;
/// The model's frame grid the ground truth is given on: 128 samples at 16 kHz (8 ms).
pub const TRUTH_RATE: u32 = 16_000;
pub const TRUTH_HOP: usize = 128;
/// Samples between control updates (pitch bend, expression) to the synthesiser.
const CONTROL_BLOCK: usize = 64;

/// One model frame of ground truth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TruthFrame {
    pub time_s: f64,
    /// Pitch played, Hz (the note with its bend); 0 where no note sounds.
    pub f0_hz: f32,
    /// The MIDI note sounding (0 for none).
    pub midi: u8,
    /// Expression (CC11 / 127) times velocity / 127: the dynamics played.
    pub dynamics: f32,
    /// A-weighted loudness of the rendered audio (newt-features), dBFS.
    pub loudness_db: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("SoundFont {path}: {source}")]
    SoundFontFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("SoundFont {path}: {source}")]
    SoundFont {
        path: std::path::PathBuf,
        source: rustysynth::SoundFontError,
    },
    #[error("synthesizer: {0}")]
    Synthesizer(#[from] rustysynth::SynthesizerError),
    #[error("loudness: {0}")]
    Loudness(#[from] newt_features::FeatureError),
    #[error(transparent)]
    Resample(#[from] newt_features::ResampleError),
}

#[derive(Clone, Debug)]
pub struct Rendered {
    /// Mono audio at [`RENDER_RATE`].
    pub audio: Vec<f32>,
    pub truth: Vec<TruthFrame>,
}

/// Loads a SoundFont (SF2) file.
pub fn load_sound_font(path: &std::path::Path) -> Result<Arc<SoundFont>, RenderError> {
    let mut file = std::fs::File::open(path).map_err(|source| RenderError::SoundFontFile {
        path: path.to_path_buf(),
        source,
    })?;
    SoundFont::new(&mut file)
        .map(Arc::new)
        .map_err(|source| RenderError::SoundFont {
            path: path.to_path_buf(),
            source,
        })
}

/// Plays `performance` on `instrument` and measures the result.
pub fn render(
    sound_font: &Arc<SoundFont>,
    instrument: &Instrument,
    performance: &Performance,
) -> Result<Rendered, RenderError> {
    let mut settings = SynthesizerSettings::new(RENDER_RATE as i32);
    settings.enable_reverb_and_chorus = false;
    settings.block_size = CONTROL_BLOCK;
    let mut synth = Synthesizer::new(sound_font, &settings)?;
    synth.process_midi_message(0, 0xC0, instrument.program as i32, 0);

    let n = (performance.duration_s * RENDER_RATE as f64).ceil() as usize;
    let mut left = vec![0.0f32; n];
    let mut right = vec![0.0f32; n];
    // Note on/off at their sample positions (quantised to control blocks).
    let mut events: Vec<(usize, bool, u8, u8)> = Vec::new();
    for note in &performance.notes {
        let at = |t: f64| (t * RENDER_RATE as f64).round() as usize;
        events.push((at(note.start_s), true, note.midi, note.velocity));
        events.push((at(note.end_s), false, note.midi, 0));
    }
    // Offs before ons at the same sample.
    events.sort_by_key(|e| (e.0, e.1));
    let mut next = 0;
    for start in (0..n).step_by(CONTROL_BLOCK) {
        let end = (start + CONTROL_BLOCK).min(n);
        while next < events.len() && events[next].0 < end {
            let (_, on, midi, velocity) = events[next];
            if on {
                synth.note_on(0, midi as i32, velocity as i32);
            } else {
                synth.note_off(0, midi as i32);
            }
            next += 1;
        }
        let t = start as f64 / RENDER_RATE as f64;
        let cents = performance.note_at(t).map_or(0.0, |nt| nt.bend_cents(t));
        let bend = (8192.0 + cents / BEND_RANGE_CENTS * 8191.0)
            .round()
            .clamp(0.0, 16383.0) as i32;
        synth.process_midi_message(0, 0xE0, bend & 0x7F, bend >> 7);
        let expression = (performance.expression_at(t).clamp(0.0, 1.0) * 16383.0) as i32;
        synth.process_midi_message(0, 0xB0, 0x0B, expression >> 7);
        synth.process_midi_message(0, 0xB0, 0x2B, expression & 0x7F);
        synth.render(&mut left[start..end], &mut right[start..end]);
    }
    let mut audio: Vec<f32> = left
        .iter()
        .zip(&right)
        .map(|(l, r)| 0.5 * (l + r))
        .collect();
    // Headroom without changing dynamics within the file.
    let peak = audio.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if peak > 0.95 {
        audio.iter_mut().for_each(|x| *x *= 0.95 / peak);
    }

    let at_truth_rate = newt_features::resample(&audio, RENDER_RATE, TRUTH_RATE)?;
    let loudness = newt_features::loudness_db(&at_truth_rate, TRUTH_RATE, TRUTH_HOP)?;
    let truth = loudness
        .iter()
        .enumerate()
        .map(|(f, &loudness_db)| {
            let t = f as f64 * TRUTH_HOP as f64 / TRUTH_RATE as f64;
            let note = performance.note_at(t);
            TruthFrame {
                time_s: t,
                f0_hz: note.map_or(0.0, |n| n.f0_hz(t) as f32),
                midi: note.map_or(0, |n| n.midi),
                dynamics: note.map_or(0.0, |n| {
                    performance.expression_at(t) * n.velocity as f32 / 127.0
                }),
                loudness_db,
            }
        })
        .collect();
    Ok(Rendered { audio, truth })
}

/// The ground truth as CSV: a header, then one row per frame.
pub fn truth_csv(truth: &[TruthFrame]) -> String {
    let mut s = String::from("time_s,f0_hz,midi,dynamics,loudness_db\n");
    for f in truth {
        s.push_str(&format!(
            "{:.4},{:.3},{},{:.4},{:.2}\n",
            f.time_s, f.f0_hz, f.midi, f.dynamics, f.loudness_db
        ));
    }
    s
}

/// Reads [`truth_csv`]'s output back.
pub fn parse_truth_csv(text: &str) -> Option<Vec<TruthFrame>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            Some(TruthFrame {
                time_s: v.first()?.parse().ok()?,
                f0_hz: v.get(1)?.parse().ok()?,
                midi: v.get(2)?.parse().ok()?,
                dynamics: v.get(3)?.parse().ok()?,
                loudness_db: v.get(4)?.parse().ok()?,
            })
        })
        .collect()
}
