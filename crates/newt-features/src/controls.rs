//! Pitch and loudness together, frame-aligned: the model's controls from audio.

use crate::{
    FeatureError, LoudnessMeter, PitchConfig, PitchEstimate, PitchTracker, loudness_db, track_pitch,
};

/// The controls of one frame, as the model and the engine take them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ControlFrame {
    pub f0_hz: f32,
    /// Voicing probability of the pitch estimate, in [0, 1].
    pub confidence: f32,
    pub voiced: bool,
    /// A-weighted loudness in dBFS.
    pub loudness_db: f32,
}

impl ControlFrame {
    fn new(p: PitchEstimate, loudness_db: f32) -> Self {
        Self {
            f0_hz: p.f0_hz,
            confidence: p.confidence,
            voiced: p.voiced,
            loudness_db,
        }
    }
}

/// Streaming controls: frames come out in order once both the pitch (the later of the
/// two) and the loudness of a frame are known. Allocation free after construction.
#[derive(Debug)]
pub struct ControlExtractor {
    pitch: PitchTracker,
    loudness: LoudnessMeter,
    /// Loudness values waiting for their pitch (ring).
    pending: Vec<f32>,
    /// Frames whose loudness / pitch has been produced, and frames emitted, so far.
    loud_frames: usize,
    pitch_frames: usize,
    emitted: usize,
    /// Pitch estimates waiting for their loudness (ring).
    pitch_pending: Vec<PitchEstimate>,
}

impl ControlExtractor {
    pub fn new(config: PitchConfig) -> Result<Self, FeatureError> {
        let loudness = LoudnessMeter::new(config.sample_rate, config.hop)?;
        Self::with_loudness_meter(config, loudness)
    }

    /// With a loudness meter of its own (a shorter window, for less latency).
    pub fn with_loudness_meter(
        config: PitchConfig,
        loudness: LoudnessMeter,
    ) -> Result<Self, FeatureError> {
        let pitch = PitchTracker::new(config)?;
        // Either side can run ahead by its latency difference, in frames, plus a margin.
        let spread = pitch.latency().abs_diff(loudness.latency()) / config.hop + 4;
        Ok(Self {
            pitch,
            loudness,
            pending: vec![0.0; spread],
            loud_frames: 0,
            pitch_frames: 0,
            emitted: 0,
            pitch_pending: vec![PitchEstimate::default(); spread],
        })
    }

    /// Samples from a frame's centre to its controls coming out.
    pub fn latency(&self) -> usize {
        self.pitch.latency().max(self.loudness.latency())
    }

    /// See [`PitchTracker::analysis_lead`].
    pub fn pitch_analysis_lead(&self, f0_hz: f32) -> usize {
        self.pitch.analysis_lead(f0_hz)
    }

    pub fn reset(&mut self) {
        self.pitch.reset();
        self.loudness.reset();
        self.loud_frames = 0;
        self.pitch_frames = 0;
        self.emitted = 0;
    }

    /// Pushes samples; calls `on_frame` with each frame's controls, in order.
    pub fn push(&mut self, input: &[f32], mut on_frame: impl FnMut(ControlFrame)) {
        let cap = self.pending.len();
        let Self {
            pitch,
            loudness,
            pending,
            loud_frames,
            pitch_frames,
            emitted,
            pitch_pending,
        } = self;
        // Small steps (under one hop) keep either side at most its latency difference
        // ahead of the other, which the rings hold.
        for chunk in input.chunks(64) {
            loudness.push(chunk, |l| {
                pending[*loud_frames % cap] = l;
                *loud_frames += 1;
            });
            pitch.push(chunk, |p| {
                pitch_pending[*pitch_frames % cap] = p;
                *pitch_frames += 1;
            });
            while *emitted < (*loud_frames).min(*pitch_frames) {
                let f = *emitted % cap;
                on_frame(ControlFrame::new(pitch_pending[f], pending[f]));
                *emitted += 1;
            }
        }
    }
}

/// Offline controls of a whole signal: `ceil(len / hop)` frames.
pub fn extract_controls(
    signal: &[f32],
    config: PitchConfig,
) -> Result<Vec<ControlFrame>, FeatureError> {
    let pitch = track_pitch(signal, config)?;
    let loud = loudness_db(signal, config.sample_rate, config.hop)?;
    Ok(pitch
        .into_iter()
        .zip(loud)
        .map(|(p, l)| ControlFrame::new(p, l))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_controls_equal_offline_loudness_and_track_the_pitch() {
        let sr = 16_000;
        // A glide from 300 to 400 Hz: phase 2 pi (300 t + 50 t^2), with a second harmonic.
        let x: Vec<f32> = (0..16_000)
            .map(|i| {
                let t = i as f64 / sr as f64;
                let phase = std::f64::consts::TAU * (300.0 * t + 50.0 * t * t);
                (0.3 * phase.sin() + 0.1 * (2.0 * phase).sin()) as f32
            })
            .collect();
        let config = PitchConfig::default();
        let offline = extract_controls(&x, config).unwrap();
        let mut ex = ControlExtractor::new(config).unwrap();
        let mut streamed = Vec::new();
        for c in x.chunks(100) {
            ex.push(c, |f| streamed.push(f));
        }
        assert!(streamed.len() > 100);
        for (s, o) in streamed.iter().zip(&offline) {
            assert_eq!(s.loudness_db, o.loudness_db);
        }
        for (f, s) in streamed.iter().enumerate().skip(10) {
            let t = f as f64 * 128.0 / sr as f64;
            let want = 300.0 + 100.0 * t;
            assert!(
                (1200.0 * (s.f0_hz as f64 / want).log2()).abs() < 10.0,
                "frame {f}: {} vs {want}",
                s.f0_hz
            );
        }
        assert!(ex.latency() < 640);
    }
}
