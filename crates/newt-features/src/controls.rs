//! Pitch and loudness together, frame-aligned: the model's controls from audio.

use crate::{
    FeatureError, LoudnessMeasure, LoudnessMeter, NwsLoudnessMeter, PitchConfig, PitchEstimate,
    PitchTracker, loudness_db, nws_loudness_db, track_pitch,
};

/// The controls of one frame, as the model and the engine take them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ControlFrame {
    pub f0_hz: f32,
    /// Voicing probability of the pitch estimate, in [0, 1].
    pub confidence: f32,
    pub voiced: bool,
    /// Loudness in dB of the extractor's [`LoudnessMeasure`]: A-weighted dBFS by default,
    /// the NEWT authors' dB ([-80, 0]) with [`LoudnessMeasure::NwsDb`].
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

/// A streaming loudness meter of either measure, for [`ControlExtractor`]. Both have the
/// same frame grid; dispatch is a `match`, so the A-weighted path runs the very code of
/// [`LoudnessMeter`].
#[derive(Debug)]
pub enum AnyLoudnessMeter {
    /// [`LoudnessMeasure::AWeightedDbfs`].
    AWeighted(LoudnessMeter),
    /// [`LoudnessMeasure::NwsDb`] (running-maximum reference, see [`NwsLoudnessMeter`]).
    Nws(NwsLoudnessMeter),
}

impl AnyLoudnessMeter {
    /// The default meter of `measure` (window 1024 at 16 kHz; the A-weighted one keeps
    /// 64 ms at other rates, the authors' one accepts 16 kHz only).
    pub fn new(
        measure: LoudnessMeasure,
        sample_rate: u32,
        hop: usize,
    ) -> Result<Self, FeatureError> {
        Ok(match measure {
            LoudnessMeasure::AWeightedDbfs => {
                Self::AWeighted(LoudnessMeter::new(sample_rate, hop)?)
            }
            LoudnessMeasure::NwsDb => Self::Nws(NwsLoudnessMeter::new(sample_rate, hop)?),
        })
    }

    /// The unit of the values it gives.
    pub fn measure(&self) -> LoudnessMeasure {
        match self {
            Self::AWeighted(_) => LoudnessMeasure::AWeightedDbfs,
            Self::Nws(_) => LoudnessMeasure::NwsDb,
        }
    }

    /// Samples from a frame's centre to its value being available.
    pub fn latency(&self) -> usize {
        match self {
            Self::AWeighted(m) => m.latency(),
            Self::Nws(m) => m.latency(),
        }
    }

    pub fn reset(&mut self) {
        match self {
            Self::AWeighted(m) => m.reset(),
            Self::Nws(m) => m.reset(),
        }
    }

    /// Pushes samples; calls `on_frame(loudness_db)` for each completed frame.
    pub fn push(&mut self, input: &[f32], on_frame: impl FnMut(f32)) {
        match self {
            Self::AWeighted(m) => m.push(input, on_frame),
            Self::Nws(m) => m.push(input, on_frame),
        }
    }
}

impl From<LoudnessMeter> for AnyLoudnessMeter {
    fn from(m: LoudnessMeter) -> Self {
        Self::AWeighted(m)
    }
}

impl From<NwsLoudnessMeter> for AnyLoudnessMeter {
    fn from(m: NwsLoudnessMeter) -> Self {
        Self::Nws(m)
    }
}

/// Streaming controls: frames come out in order once both the pitch (the later of the
/// two) and the loudness of a frame are known. Allocation free after construction.
#[derive(Debug)]
pub struct ControlExtractor {
    pitch: PitchTracker,
    loudness: AnyLoudnessMeter,
    /// Loudness values waiting for their pitch (ring).
    pending: Vec<f32>,
    /// Frames whose loudness / pitch has been produced, and frames emitted, so far.
    loud_frames: usize,
    pitch_frames: usize,
    emitted: usize,
    /// Pitch estimates waiting for their loudness (ring).
    pitch_pending: Vec<PitchEstimate>,
    /// Frame `k` carries the loudness of frame `k - loudness_lag` (the measure's silence
    /// before the first), so that a long loudness window does not hold the pitch back.
    loudness_lag: usize,
}

impl ControlExtractor {
    /// With the A-weighted loudness ([`LoudnessMeasure::AWeightedDbfs`]).
    pub fn new(config: PitchConfig) -> Result<Self, FeatureError> {
        let loudness = LoudnessMeter::new(config.sample_rate, config.hop)?;
        Self::with_loudness_meter(config, loudness)
    }

    /// With the default meter of `measure` (for [`LoudnessMeasure::NwsDb`], a
    /// [`NwsLoudnessMeter`] with its running-maximum reference; 16 kHz only).
    pub fn with_measure(
        config: PitchConfig,
        measure: LoudnessMeasure,
    ) -> Result<Self, FeatureError> {
        let loudness = AnyLoudnessMeter::new(measure, config.sample_rate, config.hop)?;
        Self::with_loudness_meter(config, loudness)
    }

    /// With a loudness meter of its own (a [`LoudnessMeter`] with a shorter window, for
    /// less latency; a [`NwsLoudnessMeter`] with another reference floor; or an
    /// [`AnyLoudnessMeter`]).
    pub fn with_loudness_meter(
        config: PitchConfig,
        loudness: impl Into<AnyLoudnessMeter>,
    ) -> Result<Self, FeatureError> {
        let loudness = loudness.into();
        let pitch = PitchTracker::new(config)?;
        // Either side can run ahead by its latency difference, in frames, plus what one
        // 64-sample step of `push` completes, plus a margin.
        let spread =
            pitch.latency().abs_diff(loudness.latency()) / config.hop + 64 / config.hop + 4;
        Ok(Self {
            pitch,
            loudness,
            pending: vec![0.0; spread],
            loud_frames: 0,
            pitch_frames: 0,
            emitted: 0,
            pitch_pending: vec![PitchEstimate::default(); spread],
            loudness_lag: 0,
        })
    }

    /// Pairs each frame's pitch with the loudness of `frames` frames earlier: the frames
    /// come out sooner by up to `frames` hops (the pitch's own latency stays), and the
    /// loudness lags the pitch by as much. For a live input, where a pitch known sooner
    /// is what a player hears as latency.
    pub fn with_loudness_lag(mut self, frames: usize) -> Self {
        let hop = self.pitch.config().hop;
        let spread =
            self.pitch.latency().abs_diff(self.loudness.latency()) / hop + 64 / hop + frames + 4;
        self.pending = vec![0.0; spread];
        self.pitch_pending = vec![PitchEstimate::default(); spread];
        self.loudness_lag = frames;
        self.reset();
        self
    }

    /// Samples from a frame's centre to its controls coming out.
    pub fn latency(&self) -> usize {
        let lag = self.loudness_lag * self.pitch.config().hop;
        self.pitch
            .latency()
            .max(self.loudness.latency().saturating_sub(lag))
    }

    /// Samples from a frame's centre to its pitch being known (the tracker's own).
    pub fn pitch_latency(&self) -> usize {
        self.pitch.latency()
    }

    /// Samples from a frame's centre to its loudness being known (the meter's own).
    pub fn loudness_latency(&self) -> usize {
        self.loudness.latency()
    }

    /// The unit of the frames' `loudness_db`.
    pub fn loudness_measure(&self) -> LoudnessMeasure {
        self.loudness.measure()
    }

    /// See [`PitchTracker::analysis_lead`].
    pub fn pitch_analysis_lead(&self, f0_hz: f32) -> isize {
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
            loudness_lag,
        } = self;
        let silence = loudness.measure().floor_db();
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
            while *emitted < (*loud_frames + *loudness_lag).min(*pitch_frames) {
                let loud = match emitted.checked_sub(*loudness_lag) {
                    Some(k) => pending[k % cap],
                    None => silence,
                };
                on_frame(ControlFrame::new(pitch_pending[*emitted % cap], loud));
                *emitted += 1;
            }
        }
    }
}

/// Offline controls of a whole signal: `ceil(len / hop)` frames, A-weighted loudness.
pub fn extract_controls(
    signal: &[f32],
    config: PitchConfig,
) -> Result<Vec<ControlFrame>, FeatureError> {
    extract_controls_with(signal, config, LoudnessMeasure::AWeightedDbfs)
}

/// Offline controls of a whole signal with the loudness in `measure`: `ceil(len / hop)`
/// frames (the pitch tracker's), frame `f` centred on sample `f * hop`.
///
/// [`LoudnessMeasure::AWeightedDbfs`]: as [`extract_controls`]. [`LoudnessMeasure::NwsDb`]:
/// the authors' loudness exactly ([`nws_loudness_db`]: reflect padding, reference = the
/// loudest bin of the whole `signal`; 16 kHz only). The authors have `1 + len / hop`
/// frames, on the same centres; that is `ceil(len / hop)` plus one when `hop` divides
/// `len`, and this extra last frame (centred on the sample just past the end) is dropped.
pub fn extract_controls_with(
    signal: &[f32],
    config: PitchConfig,
    measure: LoudnessMeasure,
) -> Result<Vec<ControlFrame>, FeatureError> {
    let loud = match measure {
        LoudnessMeasure::AWeightedDbfs => loudness_db(signal, config.sample_rate, config.hop)?,
        LoudnessMeasure::NwsDb => nws_loudness_db(signal, config.sample_rate, config.hop)?,
    };
    let pitch = track_pitch(signal, config)?;
    debug_assert!(loud.len() >= pitch.len());
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
