//! Offline resampling of whole signals (datasets, recordings, rendered data).

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Why a signal could not be resampled.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample from {from} Hz to {to} Hz: {source}")]
    Rates {
        from: u32,
        to: u32,
        source: rubato::ResamplerConstructionError,
    },
    #[error("resampling input: {0}")]
    Input(#[from] rubato::audioadapter_buffers::SizeError),
    #[error("resampling: {0}")]
    Process(#[from] rubato::ResampleError),
}

/// Resamples `x` from `from` Hz to `to` Hz (rubato FFT resampler, delay removed).
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, ResampleError> {
    if from == to || x.is_empty() {
        return Ok(x.to_vec());
    }
    let mut r = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
        .map_err(|source| ResampleError::Rates { from, to, source })?;
    let input = SequentialSlice::new(x, 1, x.len())?;
    let out = r.process_all(&input, x.len(), None)?;
    Ok(out.take_data())
}
