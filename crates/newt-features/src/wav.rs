//! WAV files: reading any recording (integer or float samples, any channel count) as mono
//! f32 at its own sample rate, and writing 16-bit mono files whole. Training data,
//! evaluation, timbre transfer and the analysis commands all go through here.

use std::path::{Path, PathBuf};

/// A WAV file that could not be read, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{path} is not a readable WAV file: {reason}")]
pub struct WavError {
    pub path: PathBuf,
    pub reason: String,
}

/// Reads a WAV file as mono f32 (the mean of its channels, full scale = 1.0) and its
/// sample rate in Hz. Truncated or corrupt sample data is an error, not a short signal.
pub fn read_wav(path: &Path) -> Result<(Vec<f32>, u32), WavError> {
    let bad = |reason: String| WavError {
        path: path.to_owned(),
        reason,
    };
    let reader = hound::WavReader::open(path).map_err(|e| bad(e.to_string()))?;
    decode(reader).map_err(bad)
}

/// [`read_wav`] on the bytes of a WAV file (errors name the path `<memory>`).
pub fn read_wav_bytes(bytes: &[u8]) -> Result<(Vec<f32>, u32), WavError> {
    let bad = |reason: String| WavError {
        path: PathBuf::from("<memory>"),
        reason,
    };
    let reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    decode(reader).map_err(bad)
}

/// The samples of an opened WAV file as mono f32, or why not.
fn decode<R: std::io::Read>(mut reader: hound::WavReader<R>) -> Result<(Vec<f32>, u32), String> {
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err("zero channels or sample rate".into());
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
        }
    }
    .map_err(|e| format!("truncated or corrupt sample data ({e})"))?;
    let ch = spec.channels as usize;
    let mono = interleaved
        .chunks_exact(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect();
    Ok((mono, spec.sample_rate))
}

/// Writes `audio` (full scale = 1.0, clipped) as a 16-bit mono WAV file, whole: to
/// `<path>.wav.partial`, then renamed, so an interrupted run never leaves a truncated file
/// that looks finished.
pub fn write_pcm16(path: &Path, audio: &[f32], sample_rate: u32) -> Result<(), WavError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let partial = path.with_extension("wav.partial");
    let bad = |reason: String| WavError {
        path: path.to_owned(),
        reason,
    };
    let mut w = hound::WavWriter::create(&partial, spec)
        .map_err(|e| bad(format!("creating {}: {e}", partial.display())))?;
    for &x in audio {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .map_err(|e| bad(e.to_string()))?;
    }
    w.finalize().map_err(|e| bad(e.to_string()))?;
    std::fs::rename(&partial, path).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, channels: u16, frames: &[[i16; 2]]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for f in frames {
            for c in 0..channels as usize {
                w.write_sample(f[c]).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("newt-features-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn stereo_int_files_become_mono_at_their_rate() {
        let p = temp("stereo.wav");
        write(&p, 2, &[[16_384, 0], [-32_768, -32_768], [0, 8_192]]);
        let (x, rate) = read_wav(&p).unwrap();
        assert_eq!(rate, 22_050);
        assert_eq!(x, vec![0.25, -1.0, 0.125]);
    }

    #[test]
    fn truncated_and_missing_files_are_clear_errors() {
        let p = temp("truncated.wav");
        write(&p, 1, &[[1000, 0]; 400]);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 101]).unwrap();
        let e = read_wav(&p).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(e.to_string().contains("truncated.wav"), "{e}");
        let e = read_wav(&temp("missing.wav")).unwrap_err();
        assert_eq!(e.path, temp("missing.wav"));
    }

    #[test]
    fn written_files_read_back_clipped_at_16_bits() {
        let p = temp("written.wav");
        write_pcm16(&p, &[0.5, -2.0, 1e-6], 16_000).unwrap();
        assert!(!p.with_extension("wav.partial").exists());
        let (x, rate) = read_wav(&p).unwrap();
        assert_eq!(rate, 16_000);
        assert_eq!(x, vec![16384.0 / 32768.0, -32767.0 / 32768.0, 0.0]);
    }
}
