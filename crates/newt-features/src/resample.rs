//! Offline resampling of whole signals (datasets, recordings, rendered data).

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Resamples `x` from `from` Hz to `to` Hz (rubato FFT resampler, delay removed).
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, String> {
    if from == to || x.is_empty() {
        return Ok(x.to_vec());
    }
    let mut r = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| e.to_string())?;
    let input = SequentialSlice::new(x, 1, x.len()).map_err(|e| e.to_string())?;
    let out = r
        .process_all(&input, x.len(), None)
        .map_err(|e| e.to_string())?;
    Ok(out.take_data())
}
