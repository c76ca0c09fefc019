//! From the model rate to the host rate: a synchronous FFT resampler (rubato) fed in
//! fixed chunks, and the host-rate FIFO the host block pulls from.

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

/// A preallocated single-threaded ring of samples. Its users size it so that it never
/// overflows nor runs dry; if it ever did, the samples that do not fit are dropped and a
/// missing sample reads as silence, each counted (`overflows`, `underruns`).
#[derive(Clone, Debug)]
pub struct SampleFifo {
    buf: Vec<f32>,
    read: usize,
    len: usize,
    overflows: u64,
    underruns: u64,
}

impl SampleFifo {
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0.0; capacity],
            read: 0,
            len: 0,
            overflows: 0,
            underruns: 0,
        }
    }

    /// Samples dropped because the ring was full, and samples read as silence because it
    /// was empty, since construction.
    pub fn faults(&self) -> (u64, u64) {
        (self.overflows, self.underruns)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `x` (what does not fit is dropped and counted).
    pub fn push(&mut self, x: &[f32]) {
        let cap = self.buf.len();
        let room = cap - self.len;
        let (fits, dropped) = x.split_at(x.len().min(room));
        self.overflows += dropped.len() as u64;
        if fits.is_empty() {
            return;
        }
        let mut w = (self.read + self.len) % cap;
        for &v in fits {
            if let Some(slot) = self.buf.get_mut(w) {
                *slot = v;
            }
            w = if w + 1 == cap { 0 } else { w + 1 };
        }
        self.len += fits.len();
    }

    /// Moves `out.len()` samples into `out`; any beyond those available are silence
    /// (counted).
    pub fn pop_into(&mut self, out: &mut [f32]) {
        let cap = self.buf.len();
        let (available, missing) = out.split_at_mut(out.len().min(self.len));
        for o in available.iter_mut() {
            *o = self.buf.get(self.read).copied().unwrap_or(0.0);
            self.read = if self.read + 1 == cap {
                0
            } else {
                self.read + 1
            };
        }
        self.len -= available.len();
        missing.fill(0.0);
        self.underruns += missing.len() as u64;
    }

    pub fn clear(&mut self) {
        self.read = 0;
        self.len = 0;
    }
}

/// Model-rate to host-rate conversion. At equal rates it is a pass-through; for ratios
/// of small integers (every common host rate) a synchronous FFT resampler with fixed
/// chunks on both sides; for any other ratio a windowed-sinc resampler.
pub struct RateConverter {
    resampler: Option<Box<dyn Resampler<f32>>>,
    /// Both chunk sizes are fixed, so the frames needed for a given output are known.
    exact: bool,
    chunk_in: usize,
    /// Output per chunk (the largest, for the sinc resampler).
    chunk_out: usize,
    input: Vec<f32>,
    filled: usize,
    output: Vec<f32>,
    faults: u64,
}

impl std::fmt::Debug for RateConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateConverter")
            .field("exact", &self.exact)
            .field("chunk_in", &self.chunk_in)
            .field("chunk_out", &self.chunk_out)
            .field("delay", &self.delay())
            .finish()
    }
}

/// Largest FFT-resampler input chunk used, in model frames; beyond it (rates whose ratio
/// to the model rate is awkward, such as 16 kHz : 22.051 kHz) the sinc resampler is used.
const MAX_FFT_CHUNK_FRAMES: usize = 4;

/// A rate pair the streaming resampler cannot be built for.
#[derive(Debug, thiserror::Error)]
#[error("cannot convert {from} Hz to {to} Hz: {source}")]
pub struct RateError {
    pub from: u32,
    pub to: u32,
    pub source: rubato::ResamplerConstructionError,
}

impl RateConverter {
    /// `chunk` is the input block the caller pushes (one control frame). The engine
    /// converts from the model rate to the host rate; the plugin's audio input uses the
    /// same converter the other way round.
    pub fn new(model_rate: u32, host_rate: u32, chunk: usize) -> Result<Self, RateError> {
        if model_rate == host_rate {
            return Ok(Self {
                resampler: None,
                exact: true,
                chunk_in: chunk,
                chunk_out: chunk,
                input: Vec::new(),
                filled: 0,
                output: Vec::new(),
                faults: 0,
            });
        }
        let fft = Fft::<f32>::new(
            model_rate as usize,
            host_rate as usize,
            chunk,
            1,
            FixedSync::Both,
        )
        .map_err(|source| RateError {
            from: model_rate,
            to: host_rate,
            source,
        })?;
        let (resampler, exact): (Box<dyn Resampler<f32>>, bool) =
            if fft.input_frames_next() <= MAX_FFT_CHUNK_FRAMES * chunk {
                (Box::new(fft), true)
            } else {
                let params = SincInterpolationParameters {
                    sinc_len: 128,
                    f_cutoff: None,
                    interpolation: SincInterpolationType::Cubic,
                    oversampling_factor: 256,
                    window: WindowFunction::BlackmanHarris2,
                };
                let ratio = host_rate as f64 / model_rate as f64;
                let sinc = Async::<f32>::new_sinc(ratio, 1.0, &params, chunk, 1, FixedAsync::Input)
                    .map_err(|source| RateError {
                        from: model_rate,
                        to: host_rate,
                        source,
                    })?;
                (Box::new(sinc), false)
            };
        let (chunk_in, chunk_out) = (resampler.input_frames_max(), resampler.output_frames_max());
        Ok(Self {
            resampler: Some(resampler),
            exact,
            chunk_in,
            chunk_out,
            input: vec![0.0; chunk_in],
            filled: 0,
            output: vec![0.0; chunk_out],
            faults: 0,
        })
    }

    /// Most host samples one `push` can add to the FIFO.
    pub fn max_output_per_push(&self, push_len: usize) -> usize {
        push_len.div_ceil(self.chunk_in.max(1)).max(1) * self.chunk_out
    }

    /// True when chunk sizes are fixed on both sides (pass-through or FFT resampler).
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    pub fn chunk_in(&self) -> usize {
        self.chunk_in
    }

    pub fn chunk_out(&self) -> usize {
        self.chunk_out
    }

    /// Model-rate frames of `hop` samples to push so that at least `host_samples` more
    /// output samples come out (exactly, for fixed chunks; at least one otherwise).
    pub fn frames_needed(&self, host_samples: usize, hop: usize) -> usize {
        if host_samples == 0 {
            return 0;
        }
        if !self.exact {
            return 1;
        }
        let chunks = host_samples.div_ceil(self.chunk_out);
        let input = (chunks * self.chunk_in).saturating_sub(self.filled);
        input.div_ceil(hop)
    }

    /// Delay of the conversion itself, in host samples.
    pub fn delay(&self) -> usize {
        self.resampler.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Converts `x` (model rate) and appends whatever host-rate output is ready to `fifo`.
    pub fn push(&mut self, mut x: &[f32], fifo: &mut SampleFifo) {
        let Some(r) = self.resampler.as_mut() else {
            fifo.push(x);
            return;
        };
        while !x.is_empty() {
            let need = r.input_frames_next().min(self.input.len());
            let take = need.saturating_sub(self.filled).min(x.len());
            if take == 0 && self.filled < need {
                break;
            }
            if let Some(dst) = self.input.get_mut(self.filled..self.filled + take) {
                dst.copy_from_slice(&x[..take]);
            }
            self.filled += take;
            x = &x[take..];
            if self.filled >= need {
                let out_len = r.output_frames_next().min(self.output.len());
                let produced = match (
                    SequentialSlice::new(&self.input[..need], 1, need),
                    SequentialSlice::new_mut(&mut self.output[..out_len], 1, out_len),
                ) {
                    (Ok(input), Ok(mut output)) => r
                        .process_into_buffer(&input, &mut output, None)
                        .map(|(_, produced)| produced.min(out_len))
                        .ok(),
                    _ => None,
                };
                // Buffers are sized from the resampler's own figures, so this cannot fail;
                // if it ever did, the chunk plays as silence (counted) and the stream
                // carries on in time.
                let produced = produced.unwrap_or_else(|| {
                    self.faults += 1;
                    self.output[..out_len].fill(0.0);
                    out_len
                });
                fifo.push(&self.output[..produced]);
                self.filled = 0;
            }
        }
    }

    /// Chunks that could not be converted (and played as silence) since construction.
    pub fn faults(&self) -> u64 {
        self.faults
    }

    pub fn reset(&mut self) {
        if let Some(r) = self.resampler.as_mut() {
            r.reset();
        }
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The invariants the engine keeps, broken on purpose: a full ring drops and counts,
    /// an empty one reads silence and counts, and both carry on.
    #[test]
    fn a_fifo_over_or_under_its_size_loses_samples_not_the_host() {
        let mut fifo = SampleFifo::new(4);
        fifo.push(&[1.0, 2.0, 3.0]);
        fifo.push(&[4.0, 5.0, 6.0]);
        assert_eq!((fifo.len(), fifo.faults()), (4, (2, 0)));
        let mut out = [9.0f32; 6];
        fifo.pop_into(&mut out);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 0.0, 0.0]);
        assert_eq!(fifo.faults(), (2, 2));
        fifo.push(&[7.0]);
        let mut one = [0.0f32];
        fifo.pop_into(&mut one);
        assert_eq!(one, [7.0]);
        let mut empty = SampleFifo::new(0);
        empty.push(&[1.0]);
        empty.pop_into(&mut one);
        assert_eq!((one, empty.faults()), ([0.0], (1, 1)));
    }
}
