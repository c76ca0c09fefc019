//! The pitch tracker (newt-features) scored against the ground truth of rendered
//! instruments: real sampled timbres with known pitch.

use newt_features::{PitchConfig, PitchEstimate, PitchTracker, track_pitch};

use crate::render::{TRUTH_HOP, TRUTH_RATE, TruthFrame};

/// Frames on each side of a frame that must hold the same note for it to be scored
/// (40 ms): onsets and note changes are ambiguous by nature.
const SETTLED_FRAMES: usize = 5;
/// An error above this counts as gross (a wrong note or octave), in cents.
pub const GROSS_CENTS: f32 = 50.0;

/// Errors of the tracker over some frames; merge tallies to pool files.
#[derive(Clone, Debug, Default)]
pub struct TrackerTally {
    /// |cents| error of every scored frame the tracker called voiced.
    pub errors: Vec<f32>,
    /// Scored frames the tracker called unvoiced.
    pub missed: usize,
}

impl TrackerTally {
    pub fn merge(&mut self, other: TrackerTally) {
        self.errors.extend(other.errors);
        self.missed += other.missed;
    }

    pub fn frames(&self) -> usize {
        self.errors.len() + self.missed
    }

    /// Median |error| in cents over voiced frames.
    pub fn median_cents(&self) -> f32 {
        let mut e = self.errors.clone();
        e.sort_by(f32::total_cmp);
        e.get(e.len() / 2).copied().unwrap_or(f32::NAN)
    }

    /// Share of voiced frames more than [`GROSS_CENTS`] off.
    pub fn gross_rate(&self) -> f32 {
        self.errors.iter().filter(|e| **e > GROSS_CENTS).count() as f32
            / self.errors.len().max(1) as f32
    }

    /// Share of scored frames the tracker called unvoiced.
    pub fn missed_rate(&self) -> f32 {
        self.missed as f32 / self.frames().max(1) as f32
    }
}

/// Tracks `audio` (at [`TRUTH_RATE`]) offline and compares frame by frame.
pub fn score(
    audio: &[f32],
    truth: &[TruthFrame],
) -> Result<TrackerTally, newt_features::FeatureError> {
    let config = PitchConfig {
        sample_rate: TRUTH_RATE,
        hop: TRUTH_HOP,
        ..PitchConfig::default()
    };
    let track = track_pitch(audio, config)?;
    Ok(tally_against(&track, truth, |p| p.voiced))
}

/// Tracks `audio` (at [`TRUTH_RATE`]) as the plugin's audio input does: streaming, with
/// the live `config` (`newt_features::LiveTracking`), a frame counting as pitched when
/// the tracker calls it voiced with at least `gate` confidence (the plugin's default
/// confidence gate).
pub fn score_live(
    audio: &[f32],
    truth: &[TruthFrame],
    config: PitchConfig,
    gate: f32,
) -> Result<TrackerTally, newt_features::FeatureError> {
    let mut tracker = PitchTracker::new(config)?;
    let mut track = Vec::with_capacity(audio.len() / config.hop + 1);
    tracker.push(audio, |p| track.push(p));
    Ok(tally_against(&track, truth, |p| {
        p.voiced && p.confidence >= gate
    }))
}

fn tally_against(
    track: &[PitchEstimate],
    truth: &[TruthFrame],
    pitched: impl Fn(&PitchEstimate) -> bool,
) -> TrackerTally {
    let mut tally = TrackerTally::default();
    let n = track.len().min(truth.len());
    for f in SETTLED_FRAMES..n.saturating_sub(SETTLED_FRAMES) {
        let note = truth[f].midi;
        if note == 0
            || truth[f - SETTLED_FRAMES..=f + SETTLED_FRAMES]
                .iter()
                .any(|t| t.midi != note)
        {
            continue;
        }
        let p = track[f];
        if pitched(&p) && p.f0_hz > 0.0 {
            tally
                .errors
                .push((1200.0 * (p.f0_hz / truth[f].f0_hz).log2()).abs());
        } else {
            tally.missed += 1;
        }
    }
    tally
}
