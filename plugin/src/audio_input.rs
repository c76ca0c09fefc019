//! Timbre transfer: the host's audio input (a voice, another instrument) turned into the
//! model's controls in real time. Host rate -> model rate ([`RateConverter`]) -> streaming
//! pitch and loudness ([`ControlExtractor`]) -> pitch shift, loudness offset and a
//! confidence gate -> one control frame per hop, stamped with the host sample at which it
//! became known.

use newt_engine::{FrameControls, RateConverter, SampleFifo};
use newt_features::{
    ControlExtractor, ControlFrame, LoudnessMeasure, LoudnessMeter, NwsLoudnessMeter, PitchConfig,
};

use crate::params::InputSettings;

// Latency budget (40 ms at 48 kHz in all): each setting below trades a little analysis
// quality for a shorter wait than the offline defaults.
/// Frames the pitch tracker's Viterbi waits before deciding (offline: 2). With none it
/// decides on the evidence so far plus its transition prior.
const PITCH_LAG_FRAMES: usize = 0;
/// Lowest pitch tracked, in Hz (offline: 55): cello C2 is 65.4 Hz; the YIN window, and
/// so the latency, grows as this falls.
const PITCH_MIN_HZ: f32 = 62.0;
/// YIN's integration window in longest periods (offline: 1).
const PITCH_INTEGRATION_PERIODS: f32 = 0.5;
/// Pitch at which the tracker's analysis lead is counted in the latency, in Hz (its
/// spread over 100-1000 Hz is under 2 ms).
const TYPICAL_PITCH_HZ: f32 = 250.0;
/// Loudness window in seconds (offline and in training: 64 ms). The level of a steady
/// sound is the same; onsets read sooner. (Models in the NEWT authors' loudness measure
/// keep their 1024-point window: the measure counts bins above a floor, and a shorter
/// window would change what it reads.)
const LOUDNESS_WINDOW_S: f64 = 0.032;

/// Why the audio input cannot follow a model at a host rate.
#[derive(Debug, thiserror::Error)]
pub enum AudioInputError {
    #[error(transparent)]
    Rate(#[from] newt_engine::RateError),
    #[error(transparent)]
    Features(#[from] newt_features::FeatureError),
}

pub struct AudioInputTracker {
    downsampler: RateConverter,
    fifo: SampleFifo,
    scratch: Vec<f32>,
    extractor: ControlExtractor,
    /// Host samples per downsampler chunk, and how many of the current one are in.
    chunk: usize,
    filled: usize,
    /// Last voiced f0 (Hz), held through gated frames so that the pitch never jumps.
    held_f0_hz: f32,
    /// The model's silence in its loudness measure (dB), sent for gated frames.
    silence_db: f32,
    latency: usize,
}

impl std::fmt::Debug for AudioInputTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioInputTracker")
            .field("chunk", &self.chunk)
            .field("latency", &self.latency)
            .finish_non_exhaustive()
    }
}

impl AudioInputTracker {
    /// Allocates everything for a host rate and a model's loudness measure;
    /// `engine_latency` (host samples) is the engine's own, added to the reported total.
    /// The authors' measure streams against the loudest sound heard since the input
    /// started (`NwsLoudnessMeter`: never below a -40 dBFS sine's peak bin).
    pub fn new(
        host_rate: u32,
        model_rate: u32,
        hop: usize,
        measure: LoudnessMeasure,
        engine_latency: usize,
    ) -> Result<Self, AudioInputError> {
        // Half a control frame per downsampler chunk: frames are known sooner.
        let host_chunk = (0.5 * hop as f64 * host_rate as f64 / model_rate as f64).round() as usize;
        let downsampler = RateConverter::new(host_rate, model_rate, host_chunk.max(1))?;
        let chunk = downsampler.chunk_in();
        let most = downsampler.max_output_per_push(chunk) + 16;
        let config = PitchConfig {
            sample_rate: model_rate,
            hop,
            lag_frames: PITCH_LAG_FRAMES,
            f_min: PITCH_MIN_HZ,
            integration_periods: PITCH_INTEGRATION_PERIODS,
            ..PitchConfig::default()
        };
        let loudness_window = (LOUDNESS_WINDOW_S * model_rate as f64).round() as usize;
        let extractor = match measure {
            LoudnessMeasure::AWeightedDbfs => {
                LoudnessMeter::with_window(model_rate, hop, loudness_window)
                    .and_then(|meter| ControlExtractor::with_loudness_meter(config, meter))
            }
            LoudnessMeasure::NwsDb => NwsLoudnessMeter::new(model_rate, hop)
                .and_then(|meter| ControlExtractor::with_loudness_meter(config, meter)),
        }?;
        // Input at model-stream sample s is known `delay + extractor latency` model
        // samples later (the pitch describes sound from `analysis lead` earlier still), at
        // the end of the chunk holding that sample (half a chunk on, on average); the
        // engine ramps each frame's f0 in over the frame (half a hop on average) and sounds
        // `engine_latency` after that.
        let model_delay = downsampler.delay()
            + extractor.latency()
            + extractor.pitch_analysis_lead(TYPICAL_PITCH_HZ)
            + hop / 2;
        let latency = (model_delay as f64 * host_rate as f64 / model_rate as f64).round() as usize
            + chunk / 2
            + engine_latency;
        Ok(Self {
            downsampler,
            fifo: SampleFifo::new(most),
            scratch: vec![0.0; most],
            extractor,
            chunk,
            filled: 0,
            held_f0_hz: 0.0,
            silence_db: measure.floor_db(),
            latency,
        })
    }

    /// From input to output, in host samples (engine included).
    pub fn latency_samples(&self) -> usize {
        self.latency
    }

    pub fn reset(&mut self) {
        self.downsampler.reset();
        self.fifo.clear();
        self.extractor.reset();
        self.filled = 0;
        self.held_f0_hz = 0.0;
    }

    /// Consumes a block of mono input; calls `emit(time, controls, tracked)` for each
    /// control frame completed, `time` being the sample within the block. Real-time safe.
    pub fn process(
        &mut self,
        input: &[f32],
        settings: &InputSettings,
        mut emit: impl FnMut(u32, FrameControls, ControlFrame),
    ) {
        let mut pos = 0;
        while pos < input.len() {
            let take = (self.chunk - self.filled).min(input.len() - pos);
            self.downsampler
                .push(&input[pos..pos + take], &mut self.fifo);
            pos += take;
            self.filled += take;
            if self.filled < self.chunk {
                continue;
            }
            self.filled = 0;
            let n = self.fifo.len();
            self.fifo.pop_into(&mut self.scratch[..n]);
            let time = (pos - 1) as u32;
            let held = &mut self.held_f0_hz;
            let silence = self.silence_db;
            self.extractor.push(&self.scratch[..n], |frame| {
                let open = frame.voiced && frame.confidence >= settings.gate;
                if open {
                    *held = frame.f0_hz * settings.pitch_ratio;
                }
                let controls = FrameControls {
                    f0_hz: *held,
                    loudness_db: if open && *held > 0.0 {
                        frame.loudness_db + settings.loudness_offset_db
                    } else {
                        silence
                    },
                };
                emit(time, controls, frame);
            });
        }
    }
}
