//! Timbre transfer: the host's audio input (a voice, another instrument) turned into the
//! model's controls in real time. Host rate -> model rate ([`RateConverter`]) -> streaming
//! pitch and loudness ([`ControlExtractor`]) -> pitch shift, loudness offset and a
//! confidence gate -> one control frame per hop, stamped with the host sample at which it
//! became known.

use newt_engine::{FrameControls, RateConverter, SampleFifo};
use newt_features::{ControlExtractor, ControlFrame, LiveTracking};
use newt_model::range::{fold_by_octaves, hz_of_midi, midi_of_hz};
use newt_model::{ModelMeta, Operators};

use crate::params::InputSettings;

/// "Keep in range" keeps an input's octave until its pitch leaves the trained range by
/// more than this, in semitones, so that a note sung at the range's edge does not flip
/// octaves with its vibrato.
const FOLD_HYSTERESIS_SEMITONES: f32 = 1.0;

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
    /// Zeros (model samples) fed to the extractor before the input: they move its frame
    /// grid so that each frame is ready just as the engine starts a frame
    /// ([`FrameTiming::best_preroll`]).
    preroll: usize,
    /// The model's silence in its loudness measure (dB), sent for gated frames.
    silence_db: f32,
    /// The model's trained pitch range (MIDI) and the octaves ("Keep in range") the input
    /// is moved by now.
    pitch_range_midi: (f32, f32),
    fold_semitones: f32,
    /// The previous frame was open (voiced and confident): a fold is kept only within a
    /// phrase, so a new phrase after silence folds afresh.
    was_open: bool,
    /// The lowest pitch tracked, in Hz.
    lowest_hz: f32,
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
    /// Allocates everything for a host rate and a model (its rate, hop, loudness measure
    /// and range map: the lowest pitch tracked, and so the latency, follows its trained
    /// range, `LiveTracking`); `engine_latency` (host samples) is the engine's own, added
    /// to the reported total. The authors' measure streams against the loudest sound
    /// heard since the input started (`NwsLoudnessMeter`: never below a -40 dBFS sine's
    /// peak bin).
    pub fn new(
        host_rate: u32,
        meta: &ModelMeta,
        engine_latency: usize,
    ) -> Result<Self, AudioInputError> {
        let (model_rate, hop, measure) = (meta.sample_rate, meta.hop, meta.loudness_measure);
        let pitch_range_midi = meta.range_map.pitch_range_midi();
        let lowest_hz = LiveTracking::lowest_pitch_for_range(pitch_range_midi.0);
        let live = LiveTracking::for_lowest_pitch(model_rate, hop, lowest_hz);
        // A quarter of a control frame per downsampler chunk: frames are known sooner.
        let host_chunk =
            (0.125 * hop as f64 * host_rate as f64 / model_rate as f64).round() as usize;
        let downsampler = RateConverter::new(host_rate, model_rate, host_chunk.max(1))?;
        let chunk = downsampler.chunk_in();
        let most = downsampler.max_output_per_push(chunk) + 16;
        let extractor = live.extractor(measure)?;
        // The tracker's analysis lead is counted at the model's median trained pitch.
        let typical_hz = hz_of_midi(meta.range_map.pitch_quantiles_midi[2]);
        let lead = extractor.pitch_analysis_lead(typical_hz);
        let timing = FrameTiming {
            host_rate,
            model_rate,
            hop,
            chunk,
            ready: extractor.latency(),
            lead,
            delay: downsampler.delay(),
            engine_latency: engine_latency + operator_lag(meta, host_rate),
        };
        let (preroll, latency) = timing.best_preroll()?;
        let mut this = Self {
            preroll,
            downsampler,
            fifo: SampleFifo::new(most),
            scratch: vec![0.0; most],
            extractor,
            chunk,
            filled: 0,
            held_f0_hz: 0.0,
            silence_db: measure.floor_db(),
            pitch_range_midi,
            fold_semitones: 0.0,
            was_open: false,
            lowest_hz,
            latency,
        };
        this.reset();
        Ok(this)
    }

    /// The lowest pitch tracked, in Hz (from the model's range).
    pub fn lowest_pitch_hz(&self) -> f32 {
        self.lowest_hz
    }

    /// From input to output, in host samples (engine included).
    pub fn latency_samples(&self) -> usize {
        self.latency
    }

    pub fn reset(&mut self) {
        self.downsampler.reset();
        self.fifo.clear();
        self.extractor.reset();
        let zeros = [0.0f32; 64];
        let mut left = self.preroll;
        while left > 0 {
            let n = left.min(zeros.len());
            self.extractor.push(&zeros[..n], |_| {});
            left -= n;
        }
        self.filled = 0;
        self.held_f0_hz = 0.0;
        self.fold_semitones = 0.0;
        self.was_open = false;
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
            let fold = &mut self.fold_semitones;
            let was_open = &mut self.was_open;
            let range = self.pitch_range_midi;
            let silence = self.silence_db;
            self.extractor.push(&self.scratch[..n], |frame| {
                let open = frame.voiced && frame.confidence >= settings.gate;
                if open {
                    let f0 = frame.f0_hz * settings.pitch_ratio;
                    // A new phrase starts from no fold: the hysteresis holds within one.
                    let kept = if *was_open { *fold } else { 0.0 };
                    *fold = 0.0;
                    *held = f0;
                    if settings.keep_in_range {
                        let midi = midi_of_hz(f0);
                        *fold = octave_fold(midi, kept, range);
                        if *fold != 0.0 {
                            *held = hz_of_midi(midi + *fold);
                        }
                    }
                }
                *was_open = open;
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

/// Host samples by which a model of the NEWT authors' operators plays its controls later
/// than ours: they were trained with each frame's controls at the centre of its samples,
/// half a hop before where our causal ramp reaches them, so a change of f0 is heard half
/// a hop (4 ms at 16 kHz) later (issue 10's look-ahead, which the engine does not take).
fn operator_lag(meta: &ModelMeta, host_rate: u32) -> usize {
    match meta.operators {
        Operators::Newt => 0,
        Operators::Nws => {
            (meta.hop as f64 / 2.0 * host_rate as f64 / meta.sample_rate as f64).round() as usize
        }
    }
}

/// When the tracker's frames reach the engine, to choose the extractor's frame grid and
/// report the latency exactly. Input at host sample `h` reaches the downsampled stream at
/// model sample `h model_rate / host_rate + delay`; the extractor knows a frame `ready`
/// samples after its centre, and its pitch describes the sound `lead` samples before the
/// centre; the frame is sent at the end of the downsampler chunk in which it became
/// known; the engine puts an event at host time `t` on its frame `ceil(t / frame)`, and
/// ramps each frame's f0 in from the previous frame's across the frame, so a frame's
/// value is fully heard at the frame's end, `engine_latency` later.
#[derive(Clone, Copy, Debug)]
struct FrameTiming {
    host_rate: u32,
    model_rate: u32,
    hop: usize,
    /// Host samples per downsampler chunk.
    chunk: usize,
    ready: usize,
    /// Negative: the pitch describes sound after the frame's centre.
    lead: isize,
    /// The downsampler's delay in model samples.
    delay: usize,
    engine_latency: usize,
}

impl FrameTiming {
    /// The preroll (model samples, below one hop) that hears the input soonest, and the
    /// latency then (host samples, from the sound the pitch describes to its full sound).
    fn best_preroll(&self) -> Result<(usize, usize), AudioInputError> {
        let per_model = self.host_rate as f64 / self.model_rate as f64;
        let best = self.best_timing()?;
        // Unreachable with the run long enough for every frame measured; were it reached,
        // a bound that counts every stage (a frame's wait and its ramp at most one frame
        // each), never one that says less than the chain takes.
        let (z, lag) = best.unwrap_or_else(|| {
            let frame_host = self.hop as f64 * per_model;
            let stream = (self.ready + self.delay) as f64 + self.lead as f64;
            (0, stream * per_model + self.chunk as f64 + 2.0 * frame_host)
        });
        Ok((z, lag.round() as usize + self.engine_latency))
    }

    /// The preroll with the least mean lag over [`TIMED_FRAMES`] frames and that lag (host
    /// samples, without the engine's latency); `None` if no frame could be timed.
    fn best_timing(&self) -> Result<Option<(usize, f64)>, AudioInputError> {
        // Output samples of the downsampler after each chunk, from a run on silence long
        // enough for the last frame timed to be known (its centre, the extractor's wait,
        // the downsampler's delay, a hop of margin).
        let mut converter = RateConverter::new(self.host_rate, self.model_rate, self.chunk)?;
        let mut fifo = SampleFifo::new(converter.max_output_per_push(self.chunk) + 16);
        let silence = vec![0.0f32; self.chunk];
        let per_model = self.host_rate as f64 / self.model_rate as f64;
        let frame_host = self.hop as f64 * per_model;
        let last = FIRST_TIMED_FRAME + TIMED_FRAMES;
        let stream_needed = (last + 2) * self.hop + self.ready + self.delay;
        let chunks = (stream_needed as f64 * per_model / self.chunk as f64).ceil() as usize + 4;
        let mut produced = Vec::with_capacity(chunks);
        let mut total = 0usize;
        for _ in 0..chunks {
            converter.push(&silence, &mut fifo);
            total += fifo.len();
            fifo.clear();
            produced.push(total);
        }
        // Frame `k` of the extractor (after `z` zeros) is centred on stream sample
        // `k hop - z`, which holds the host input of `(k hop - z - delay) per_model`.
        let lag_of = |z: usize, k: usize| -> Option<f64> {
            let needed = (k * self.hop + self.ready).checked_sub(z)?;
            let j = produced.iter().position(|&c| c >= needed)?;
            let sent = ((j + 1) * self.chunk - 1) as f64;
            let engine_frame = (sent / frame_host).ceil();
            let heard = (engine_frame + 1.0) * frame_host;
            let described =
                (k as f64 * self.hop as f64 - (z + self.delay) as f64 - self.lead as f64)
                    * per_model;
            Some(heard - described)
        };
        let mean_lag = |z: usize| -> Option<f64> {
            let lags: Option<Vec<f64>> = (FIRST_TIMED_FRAME..last).map(|k| lag_of(z, k)).collect();
            lags.map(|l| l.iter().sum::<f64>() / l.len().max(1) as f64)
        };
        Ok((0..self.hop)
            .filter_map(|z| Some((z, mean_lag(z)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1)))
    }
}

/// The frames over which a preroll's lag is averaged: from the fourth on (past the
/// start), 64 of them (so that grids of non-integer rate ratios, such as 44.1 kHz
/// against 16 kHz, meet in many phases).
const FIRST_TIMED_FRAME: usize = 4;
const TIMED_FRAMES: usize = 64;

/// The octaves (in semitones) that move `midi` into `range`: the current `fold` while it
/// keeps the pitch within [`FOLD_HYSTERESIS_SEMITONES`] of the range, else the fold of
/// `fold_by_octaves`.
fn octave_fold(midi: f32, fold: f32, (lo, hi): (f32, f32)) -> f32 {
    let h = FOLD_HYSTERESIS_SEMITONES;
    let moved = midi + fold;
    if moved >= lo - h && moved <= hi + h {
        fold
    } else {
        fold_by_octaves(midi, (lo, hi)) - midi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of the timing run can be timed, for model rates, hops, tracker ranges
    /// and host rates a model file and a host may bring (the cello's 62 Hz at hop 32
    /// waits several hops), and the latency found counts at least the stream's own wait.
    #[test]
    fn the_frame_timing_finds_a_preroll_for_any_configuration() {
        for (model_rate, hop) in [
            (16_000u32, 128usize),
            (16_000, 32),
            (48_000, 128),
            (22_050, 256),
        ] {
            for lowest in [62.0f32, 200.0] {
                for host_rate in [44_100u32, 48_000, 96_000, 22_050] {
                    let live = LiveTracking::for_lowest_pitch(model_rate, hop, lowest);
                    let extractor = live
                        .extractor(newt_model::LoudnessMeasure::AWeightedDbfs)
                        .unwrap();
                    let host_chunk = (0.125 * hop as f64 * host_rate as f64 / model_rate as f64)
                        .round()
                        .max(1.0) as usize;
                    let downsampler =
                        RateConverter::new(host_rate, model_rate, host_chunk).unwrap();
                    let timing = FrameTiming {
                        host_rate,
                        model_rate,
                        hop,
                        chunk: downsampler.chunk_in(),
                        ready: extractor.latency(),
                        lead: extractor.pitch_analysis_lead(300.0),
                        delay: downsampler.delay(),
                        engine_latency: 0,
                    };
                    let (z, lag) = timing
                        .best_timing()
                        .unwrap()
                        .unwrap_or_else(|| panic!("untimed: {timing:?}"));
                    let per_model = host_rate as f64 / model_rate as f64;
                    // The frame's sound is `ready + lead` before it is known, and
                    // `delay` more before the stream has it.
                    let floor = (timing.ready as f64 + timing.lead as f64 + timing.delay as f64)
                        * per_model;
                    assert!(
                        z < hop && lag >= floor,
                        "{timing:?}: preroll {z}, lag {lag} < {floor}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_input_folds_by_octaves_with_hysteresis() {
        let range = (60.0, 84.0);
        assert_eq!(octave_fold(72.0, 0.0, range), 0.0);
        assert_eq!(octave_fold(45.0, 0.0, range), 24.0);
        // Just under the range after a fold of 0: kept within the hysteresis...
        assert_eq!(octave_fold(59.5, 0.0, range), 0.0);
        // ...and folded beyond it.
        assert_eq!(octave_fold(58.5, 0.0, range), 12.0);
        // Once folded up by an octave, a pitch wandering up to 72.4 (84.4 moved, within
        // the hysteresis) keeps it; at 73.5 (85.5) it lets go.
        assert_eq!(octave_fold(72.4, 12.0, range), 12.0);
        assert_eq!(octave_fold(73.5, 12.0, range), 0.0);
    }
}
