//! 16-bit mono WAV files written whole: to `<path>.partial`, then renamed, so that an
//! interrupted run never leaves a truncated file that looks finished.

use std::path::Path;

use anyhow::Context;

pub fn write_pcm16(path: &Path, audio: &[f32], sample_rate: u32) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let partial = path.with_extension("wav.partial");
    let mut w = hound::WavWriter::create(&partial, spec)
        .with_context(|| format!("creating {}", partial.display()))?;
    for &x in audio {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
    }
    w.finalize()?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
