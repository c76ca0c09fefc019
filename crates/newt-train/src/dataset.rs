//! A training set from a folder of WAV files of one monophonic instrument: any sample
//! rate or channel count (mixed to mono, resampled to the model rate with rubato), cut
//! into segments, controls extracted by `newt-features`, silent or unvoiced segments
//! dropped, z-scoring statistics, and a held-out split.

use std::path::{Path, PathBuf};

use newt_features::{PitchConfig, extract_controls};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read folder {path}: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no .wav files")]
    Empty(PathBuf),
    #[error("{path} is not a readable WAV file: {reason}")]
    BadWav { path: PathBuf, reason: String },
    #[error("{path}: resampling from {rate} Hz failed: {source}")]
    Resample {
        path: PathBuf,
        rate: u32,
        source: newt_features::ResampleError,
    },
    #[error(
        "no usable segment in {dir}: {files} file(s), {segments} segment(s) of {seconds} s, all silent or unvoiced"
    )]
    NothingUsable {
        dir: PathBuf,
        files: usize,
        segments: usize,
        seconds: f32,
    },
    #[error(transparent)]
    Features(#[from] newt_features::FeatureError),
}

/// One training example: audio at the model rate and its per-frame controls.
#[derive(Clone, Debug)]
pub struct Segment {
    pub audio: Vec<f32>,
    pub f0_hz: Vec<f32>,
    pub loudness_db: Vec<f32>,
    /// The tracker's voicing decision per frame (where `f0_hz` is only held).
    pub voiced: Vec<bool>,
    /// File and start time, for reports.
    pub source: String,
}

/// Z-scoring statistics written into the model file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub f0_mean_hz: f32,
    pub f0_std_hz: f32,
    pub loudness_mean_db: f32,
    pub loudness_std_db: f32,
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub train: Vec<Segment>,
    pub valid: Vec<Segment>,
    pub stats: Stats,
    pub sample_rate: u32,
    pub hop: usize,
}

/// Segments at least this loud on average (dB) count as sound.
const SILENCE_DB: f32 = -60.0;
/// Segments with at least this fraction of voiced frames count as playing.
const MIN_VOICED: f32 = 0.5;

/// Reads a WAV file as mono f32 at its own rate (`newt_features::read_wav`, with the
/// dataset's error type).
pub fn read_wav(path: &Path) -> Result<(Vec<f32>, u32), DatasetError> {
    newt_features::read_wav(path).map_err(|e| DatasetError::BadWav {
        path: e.path,
        reason: e.reason,
    })
}

pub use newt_features::resample;

/// Builds the dataset from every `.wav` file under `dir` (not recursive), in segments of
/// `segment_frames` frames; every tenth usable segment is held out.
pub fn prepare(
    dir: &Path,
    sample_rate: u32,
    hop: usize,
    segment_frames: usize,
) -> Result<Dataset, DatasetError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DatasetError::Folder {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DatasetError::Empty(dir.to_owned()));
    }
    let config = PitchConfig {
        sample_rate,
        hop,
        ..PitchConfig::default()
    };
    let seg_len = segment_frames * hop;
    let mut usable = Vec::new();
    let mut total_segments = 0;
    for path in &files {
        let (audio, rate) = read_wav(path)?;
        let audio =
            resample(&audio, rate, sample_rate).map_err(|source| DatasetError::Resample {
                path: path.clone(),
                rate,
                source,
            })?;
        let controls = extract_controls(&audio, config)?;
        for s in 0..audio.len() / seg_len {
            total_segments += 1;
            let frames = &controls[s * segment_frames..(s + 1) * segment_frames];
            let loud = frames.iter().map(|c| c.loudness_db).sum::<f32>() / frames.len() as f32;
            let voiced = frames.iter().filter(|c| c.voiced).count() as f32 / frames.len() as f32;
            if loud < SILENCE_DB || voiced < MIN_VOICED {
                continue;
            }
            usable.push(Segment {
                audio: audio[s * seg_len..(s + 1) * seg_len].to_vec(),
                f0_hz: frames.iter().map(|c| c.f0_hz).collect(),
                loudness_db: frames.iter().map(|c| c.loudness_db).collect(),
                voiced: frames.iter().map(|c| c.voiced).collect(),
                source: format!(
                    "{}@{:.2}s",
                    path.display(),
                    (s * seg_len) as f32 / sample_rate as f32
                ),
            });
        }
    }
    if usable.is_empty() {
        return Err(DatasetError::NothingUsable {
            dir: dir.to_owned(),
            files: files.len(),
            segments: total_segments,
            seconds: seg_len as f32 / sample_rate as f32,
        });
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (i, s) in usable.into_iter().enumerate() {
        if i % 10 == 9 {
            valid.push(s)
        } else {
            train.push(s)
        }
    }
    if valid.is_empty() {
        valid.push(train[train.len() - 1].clone());
    }
    let stats = statistics(&train);
    Ok(Dataset {
        train,
        valid,
        stats,
        sample_rate,
        hop,
    })
}

impl Dataset {
    /// Where the training segments' voiced controls lie (`None` without a voiced frame).
    pub fn range_map(&self, measure: newt_model::LoudnessMeasure) -> Option<newt_model::RangeMap> {
        let frames = self.train.iter().flat_map(|s| {
            s.f0_hz
                .iter()
                .zip(&s.loudness_db)
                .zip(&s.voiced)
                .filter(|(_, v)| **v)
                .map(|((f, l), _)| (*f, *l))
        });
        newt_model::RangeMap::from_frames(frames, measure)
    }
}

fn statistics(segments: &[Segment]) -> Stats {
    let mean_std = |values: &mut dyn Iterator<Item = f32>| {
        let (mut n, mut s, mut s2) = (0.0f64, 0.0f64, 0.0f64);
        for v in values {
            n += 1.0;
            s += v as f64;
            s2 += (v as f64).powi(2);
        }
        let mean = s / n.max(1.0);
        let std = (s2 / n.max(1.0) - mean * mean).max(0.0).sqrt();
        (mean as f32, (std as f32).max(1e-2))
    };
    let (f0_mean_hz, f0_std_hz) =
        mean_std(&mut segments.iter().flat_map(|s| s.f0_hz.iter().copied()));
    let (loudness_mean_db, loudness_std_db) =
        mean_std(&mut segments.iter().flat_map(|s| s.loudness_db.iter().copied()));
    Stats {
        f0_mean_hz,
        f0_std_hz,
        loudness_mean_db,
        loudness_std_db,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("newt-dataset-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write_tone(path: &Path, rate: u32, channels: u16, f0: f32, secs: f32) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..(secs * rate as f32) as usize {
            let t = i as f32 / rate as f32;
            let v = 0.3 * (std::f32::consts::TAU * f0 * t).sin()
                + 0.1 * (std::f32::consts::TAU * 2.0 * f0 * t).sin();
            for _ in 0..channels {
                w.write_sample((v * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn empty_folder_is_a_clear_error() {
        let d = dir("empty");
        std::fs::write(d.join("notes.txt"), "not audio").unwrap();
        let e = prepare(&d, 16_000, 128, 125).unwrap_err();
        assert!(matches!(e, DatasetError::Empty(_)), "{e}");
        assert!(e.to_string().contains("no .wav files"));
        let e = prepare(&d.join("missing"), 16_000, 128, 125).unwrap_err();
        assert!(matches!(e, DatasetError::Folder { .. }), "{e}");
    }

    #[test]
    fn corrupt_and_truncated_wavs_are_clear_errors() {
        let d = dir("corrupt");
        std::fs::write(d.join("a.wav"), b"RIFF....WAVEfmt garbage").unwrap();
        let e = prepare(&d, 16_000, 128, 125).unwrap_err();
        assert!(matches!(e, DatasetError::BadWav { .. }), "{e}");
        let d = dir("truncated");
        write_tone(&d.join("t.wav"), 44_100, 1, 440.0, 1.0);
        let bytes = std::fs::read(d.join("t.wav")).unwrap();
        std::fs::write(d.join("t.wav"), &bytes[..bytes.len() - 1001]).unwrap();
        let e = prepare(&d, 16_000, 128, 125).unwrap_err();
        assert!(matches!(e, DatasetError::BadWav { .. }), "{e}");
        assert!(e.to_string().contains("t.wav"));
    }

    #[test]
    fn stereo_44k_files_become_16k_segments_with_controls() {
        let d = dir("ok");
        write_tone(&d.join("a.wav"), 44_100, 2, 330.0, 3.2);
        write_tone(&d.join("b.wav"), 22_050, 1, 440.0, 2.1);
        let ds = prepare(&d, 16_000, 128, 62).unwrap();
        // 3.2 s -> 6 segments of 0.496 s, 2.1 s -> 4: 10 in all, one held out.
        assert_eq!(ds.train.len() + ds.valid.len(), 10);
        assert_eq!(ds.valid.len(), 1);
        let s = &ds.train[0];
        assert_eq!(s.audio.len(), 62 * 128);
        let mid = s.f0_hz[30];
        assert!((1200.0 * (mid / 330.0).log2()).abs() < 10.0, "{mid}");
        assert!(ds.stats.f0_mean_hz > 330.0 && ds.stats.f0_mean_hz < 440.0);
        assert!(ds.stats.loudness_std_db > 0.0);
    }

    #[test]
    fn silence_only_is_nothing_usable() {
        let d = dir("silent");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(d.join("s.wav"), spec).unwrap();
        for _ in 0..32_000 {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        let e = prepare(&d, 16_000, 128, 125).unwrap_err();
        assert!(matches!(e, DatasetError::NothingUsable { .. }), "{e}");
    }
}
