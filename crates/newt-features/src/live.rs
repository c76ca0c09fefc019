//! The live (audio-input) configuration of the control extractor: what the plugin's
//! timbre transfer runs, and what `newt-data` scores beside the offline tracker.
//!
//! Latency is the point. The pitch tracker must hold about one and a half periods of the
//! lowest pitch it searches (at 62 Hz, cello C2, 24 ms; at 197 Hz, half an octave below a
//! flute's lowest notes, 8 ms), and the classic YIN describes the oldest part of that window. Live, it
//! compares the newest samples with older ones instead (`YinWindow::End`), so the pitch
//! of a note is known about `(width + period) / 2` after it sounds, whatever the window.
//! So the lowest pitch searched comes from the loaded model's range map: half an octave
//! below the lowest pitch it was trained on (an input below it is tracked an octave up, where
//! the model can play it). And the frames do not wait for the loudness window: each
//! carries the loudness known by the time its pitch is, up to one hop older.

use crate::{
    ControlExtractor, FeatureError, LoudnessMeasure, LoudnessMeter, NwsLoudnessMeter, PitchConfig,
    YinWindow,
};

/// The lowest pitch searched when nothing is known about the model, in Hz (cello C2 is
/// 65.4 Hz); also the floor of [`LiveTracking::lowest_pitch_for_range`].
pub const LOWEST_PITCH_HZ: f32 = 62.0;
/// The plugin's default confidence gate: frames whose voicing confidence is below it are
/// silent.
pub const DEFAULT_CONFIDENCE_GATE: f32 = 0.5;
/// How far below a model's lowest trained pitch (its 1st percentile) the tracker still
/// searches, in semitones. Half an octave: scored on the instrument data
/// (`data/instruments/tracker.md`), 3 semitones missed more violin frames than the one
/// configuration for all models did; 6 is no worse on any instrument and measure, and
/// costs about 0.3 ms.
pub const RANGE_MARGIN_SEMITONES: f32 = 6.0;
/// Frames the pitch tracker's Viterbi waits before deciding (offline: 2). With none it
/// decides on the evidence so far plus its transition prior.
const PITCH_LAG_FRAMES: usize = 0;
/// YIN's integration window in longest periods (offline: 1).
const PITCH_INTEGRATION_PERIODS: f32 = 0.5;
/// The A-weighted loudness window: two periods of the lowest pitch, within these bounds
/// in seconds (offline and in training: 64 ms). The level of a steady sound is the same;
/// onsets read sooner. (Models in the NEWT authors' measure keep their 1024-point window:
/// the measure counts bins above a floor, and a shorter window would change what it
/// reads.)
const LOUDNESS_WINDOW_S: (f64, f64) = (0.016, 0.032);
const LOUDNESS_WINDOW_PERIODS: f64 = 2.0;

/// The extractor settings of the audio input for one model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LiveTracking {
    pub pitch: PitchConfig,
    /// A-weighted loudness window in samples at the model rate.
    pub loudness_window: usize,
}

impl LiveTracking {
    /// The settings at `model_rate` and `hop` when searching down to `lowest_hz`.
    pub fn for_lowest_pitch(model_rate: u32, hop: usize, lowest_hz: f32) -> Self {
        let lowest_hz = if lowest_hz.is_finite() {
            lowest_hz.max(LOWEST_PITCH_HZ)
        } else {
            LOWEST_PITCH_HZ
        };
        let window_s = (LOUDNESS_WINDOW_PERIODS / lowest_hz as f64)
            .clamp(LOUDNESS_WINDOW_S.0, LOUDNESS_WINDOW_S.1);
        Self {
            pitch: PitchConfig {
                sample_rate: model_rate,
                hop,
                lag_frames: PITCH_LAG_FRAMES,
                f_min: lowest_hz,
                integration_periods: PITCH_INTEGRATION_PERIODS,
                window: YinWindow::End,
                ..PitchConfig::default()
            },
            loudness_window: (window_s * model_rate as f64).round() as usize,
        }
    }

    /// The lowest pitch to search for a model whose 1st-percentile pitch is
    /// `lowest_trained_midi` (a MIDI note number), in Hz.
    pub fn lowest_pitch_for_range(lowest_trained_midi: f32) -> f32 {
        let hz = newt_model::range::hz_of_midi(lowest_trained_midi - RANGE_MARGIN_SEMITONES);
        if hz.is_finite() {
            hz.clamp(LOWEST_PITCH_HZ, 1_000.0)
        } else {
            LOWEST_PITCH_HZ
        }
    }

    /// The streaming extractor for a model in `measure`. Its frames come out as soon as
    /// their pitch is known: each carries the loudness of the frame up to one hop earlier
    /// whose loudness is known by then (`ControlExtractor::with_loudness_lag`).
    pub fn extractor(&self, measure: LoudnessMeasure) -> Result<ControlExtractor, FeatureError> {
        let (rate, hop) = (self.pitch.sample_rate, self.pitch.hop);
        let extractor = match measure {
            LoudnessMeasure::AWeightedDbfs => {
                LoudnessMeter::with_window(rate, hop, self.loudness_window)
                    .and_then(|meter| ControlExtractor::with_loudness_meter(self.pitch, meter))
            }
            LoudnessMeasure::NwsDb => NwsLoudnessMeter::new(rate, hop)
                .and_then(|meter| ControlExtractor::with_loudness_meter(self.pitch, meter)),
        }?;
        let behind = extractor
            .loudness_latency()
            .saturating_sub(extractor.pitch_latency());
        Ok(extractor.with_loudness_lag(behind.div_ceil(hop)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_higher_range_waits_less() {
        let low = LiveTracking::for_lowest_pitch(16_000, 128, 62.0);
        let high = LiveTracking::for_lowest_pitch(16_000, 128, 197.0);
        let (a, b) = (
            low.extractor(LoudnessMeasure::AWeightedDbfs).unwrap(),
            high.extractor(LoudnessMeasure::AWeightedDbfs).unwrap(),
        );
        assert!(
            b.latency() < a.latency(),
            "{} vs {}",
            b.latency(),
            a.latency()
        );
        assert_eq!(low.loudness_window, 512, "32 ms at 62 Hz");
        assert_eq!(high.loudness_window, 256, "16 ms at 197 Hz");
        // Nothing below cello C2's neighbourhood, nothing silly from a bad range.
        assert_eq!(LiveTracking::lowest_pitch_for_range(20.0), LOWEST_PITCH_HZ);
        assert_eq!(
            LiveTracking::lowest_pitch_for_range(f32::NAN),
            LOWEST_PITCH_HZ
        );
        let flute = LiveTracking::lowest_pitch_for_range(61.1);
        assert!((flute - 197.1).abs() < 0.5, "{flute}");
    }
}
