//! What is fuzzed: each target's valid seeds, its format-aware mutation, and the call that
//! must end in a typed error or a valid result.

use std::path::{Path, PathBuf};

use arbitrary::{Result as ArbResult, Unstructured};
use newt_engine::FrameControls;
use newt_integration_tests::plugin_host::PluginHost;
use newt_integration_tests::plugin_host::clap::ClapHost;
use newt_integration_tests::plugin_host::vst3::Vst3Host;
use newt_model::NewtModel;

use crate::mutate;

/// The readers of outside data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Model files (`NewtModel::from_bytes`: safetensors header, metadata, tensors).
    Model,
    /// Plugin states restored through the CLAP state extension of `newt.clap`.
    StateClap,
    /// Plugin states restored through VST3 `IComponent::setState` of `newt.vst3`.
    StateVst3,
    /// Standard MIDI files (`newt_engine::midi_file::read_midi`, then `score_notes`).
    Midi,
    /// Control files (`newt_engine::parse_controls_csv`).
    Csv,
    /// WAV files (`newt_features::read_wav_bytes`, the reader of datasets and recordings).
    Wav,
}

pub const ALL: [Target; 6] = [
    Target::Model,
    Target::StateClap,
    Target::StateVst3,
    Target::Midi,
    Target::Csv,
    Target::Wav,
];

/// How a case ended, when it ended normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Valid,
    /// A typed error, by its variant (or message) name.
    Rejected(String),
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Model => "model",
            Target::StateClap => "state-clap",
            Target::StateVst3 => "state-vst3",
            Target::Midi => "midi",
            Target::Csv => "csv",
            Target::Wav => "wav",
        }
    }

    /// The code a target feeds.
    pub fn reader(self) -> &'static str {
        match self {
            Target::Model => "`NewtModel::from_bytes`",
            Target::StateClap => "`newt.clap` state extension",
            Target::StateVst3 => "`newt.vst3` `IComponent::setState`",
            Target::Midi => "`midi_file::read_midi` + `score_notes`",
            Target::Csv => "`parse_controls_csv`",
            Target::Wav => "`newt_features::read_wav_bytes`",
        }
    }

    /// Whether every case rebuilds the plugin's engine (slow: time-box these runs).
    pub fn is_plugin_state(self) -> bool {
        matches!(self, Target::StateClap | Target::StateVst3)
    }

    /// Longest a case may take before it counts as a hang, in seconds.
    pub fn time_limit_s(self) -> u64 {
        if self.is_plugin_state() { 30 } else { 5 }
    }

    /// The memory a worker may map, in KiB (`ulimit -v`): readers get 2 GiB, plugin
    /// hosts (an engine, its tables and threads) 8 GiB.
    pub fn memory_limit_kib(self) -> u64 {
        if self.is_plugin_state() {
            8 << 20
        } else {
            2 << 20
        }
    }
}

/// A target ready to run cases: its seeds and, for plugin states, the host instance that
/// every case restores into.
pub struct Runner {
    pub target: Target,
    pub seeds: Vec<Vec<u8>>,
    host: Option<Host>,
}

/// The plugin instance a state target restores into.
enum Host {
    Clap(Box<ClapHost>),
    Vst3(Box<Vst3Host>),
}

impl Host {
    fn plugin(&mut self) -> &mut dyn PluginHost {
        match self {
            Host::Clap(h) => h.as_mut(),
            Host::Vst3(h) => h.as_mut(),
        }
    }

    fn try_load_state(&mut self, state: &[u8]) -> Result<(), String> {
        match self {
            Host::Clap(h) => h.try_load_state(state),
            Host::Vst3(h) => h.try_load_state(state),
        }
    }
}

impl Runner {
    pub fn new(target: Target) -> anyhow::Result<Self> {
        let mut host = match target {
            Target::StateClap => {
                let mut h = ClapHost::load(&bundle("newt.clap")?, 48_000.0, 512);
                h.set_realtime(false);
                Some(Host::Clap(Box::new(h)))
            }
            Target::StateVst3 => Some(Host::Vst3(Box::new(Vst3Host::load(
                &bundle("newt.vst3")?,
                48_000.0,
                512,
            )))),
            _ => None,
        };
        let seeds = seeds(target, host.as_mut().map(Host::plugin))?;
        Ok(Self {
            target,
            seeds,
            host,
        })
    }

    /// Case `k` of run `seed`: the first cases are the seeds themselves, then mutations.
    pub fn input(&self, seed: u64, k: u64) -> Vec<u8> {
        let n = self.seeds.len() as u64;
        let base = &self.seeds[(k % n) as usize];
        if k < n {
            return base.clone();
        }
        let other = &self.seeds[((k / n + 1) % n) as usize];
        let mut rng = seeded_rng::SplitMix64::new(seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let entropy: Vec<u8> = (0..512)
            .flat_map(|_| rng.next_u64().to_le_bytes())
            .collect();
        let mut u = Unstructured::new(&entropy);
        let mut data = base.clone();
        // Running out of entropy leaves the input as mutated so far: still a valid case.
        let _ = mutate_for(self.target, &mut u, &mut data, other);
        data
    }

    /// Runs one input. A panic propagates (the caller catches it); a non-finite output
    /// from a restored plugin is a panic too.
    pub fn run(&mut self, input: &[u8]) -> Outcome {
        match self.target {
            Target::Model => rejected(NewtModel::from_bytes(input).map(|_| ())),
            Target::Midi => rejected(
                newt_engine::midi_file::read_midi(input)
                    .map(|events| drop(newt_engine::midi_file::score_notes(&events))),
            ),
            Target::Csv => match std::str::from_utf8(input) {
                Ok(text) => rejected(newt_engine::parse_controls_csv(text).map(|_| ())),
                Err(_) => Outcome::Rejected("NotUtf8".into()),
            },
            // One error type with a reason: the reason's first words name the kind.
            Target::Wav => match newt_features::read_wav_bytes(input) {
                Ok(_) => Outcome::Valid,
                Err(e) => Outcome::Rejected(
                    e.reason
                        .split_whitespace()
                        .take(3)
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            },
            Target::StateClap | Target::StateVst3 => {
                let Some(host) = self.host.as_mut() else {
                    return Outcome::Rejected("NoHost".into());
                };
                let loaded = host.try_load_state(input);
                // Whatever the state did, the plugin keeps playing finite audio.
                let host = host.plugin();
                host.note_on(69, 0.8);
                let out = host.process(None, 1024, 512);
                host.note_off(69);
                assert!(
                    out.iter().all(|x| x.is_finite()),
                    "non-finite output after restoring the state"
                );
                match loaded {
                    Ok(()) => Outcome::Valid,
                    Err(e) => Outcome::Rejected(kind_of(&e)),
                }
            }
        }
    }
}

/// A 64-bit FNV-1a digest of an input (what `--case` prints to compare processes).
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn rejected<E: std::fmt::Debug>(r: Result<(), E>) -> Outcome {
    match r {
        Ok(()) => Outcome::Valid,
        Err(e) => Outcome::Rejected(kind_of(&format!("{e:?}"))),
    }
}

/// The first word of an error's debug form: its variant.
fn kind_of(text: &str) -> String {
    text.split(['(', ' ', '{', ':'])
        .next()
        .unwrap_or("")
        .chars()
        .take(40)
        .collect()
}

fn bundle(name: &str) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let path = target.join("bundled").join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo xtask bundle newt --release` first",
        path.display()
    );
    Ok(path)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("reading seed {}: {e}", path.display()))
}

/// Valid inputs of each target, every one of which the reader accepts.
fn seeds(target: Target, host: Option<&mut dyn PluginHost>) -> anyhow::Result<Vec<Vec<u8>>> {
    Ok(match target {
        Target::Model => vec![
            canonical_header(NewtModel::seeded(1).to_bytes()),
            canonical_header(read(&repo().join("assets/models/flute-urmp.safetensors"))?),
        ],
        Target::Midi => vec![read(&repo().join("assets/demo/demo.mid"))?, small_midi()],
        Target::Csv => {
            let phrase: Vec<FrameControls> = (0..40)
                .map(|i| FrameControls {
                    f0_hz: 220.0 + 3.0 * i as f32,
                    loudness_db: -30.0 + (i % 7) as f32,
                })
                .collect();
            let text = newt_engine::format_controls_csv(&phrase);
            let bare = text.lines().skip(1).collect::<Vec<_>>().join("\n");
            vec![
                text.into_bytes(),
                format!("# comment\n{bare}\n").into_bytes(),
            ]
        }
        Target::Wav => vec![
            wav(1, 16, hound::SampleFormat::Int),
            wav(2, 24, hound::SampleFormat::Int),
            wav(1, 32, hound::SampleFormat::Float),
            wav(3, 8, hound::SampleFormat::Int),
        ],
        Target::StateClap | Target::StateVst3 => {
            let host = host.ok_or_else(|| anyhow::anyhow!("no host"))?;
            let plain = host.save_state();
            host.set_param("Output gain", -6.0);
            host.set_param("Semitone", 3.0);
            host.set_param("Input", 1.0);
            let changed = host.save_state();
            host.load_state(&plain);
            vec![plain, changed]
        }
    })
}

/// A safetensors file with its header's JSON keys in sorted order. `to_bytes` writes the
/// metadata from a `HashMap`, whose order changes from process to process: without this,
/// case `k` would not be the same input in every worker.
fn canonical_header(bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(|b| u64::from_le_bytes(b) as usize)
    else {
        return bytes;
    };
    let Some(Ok(json)) = bytes
        .get(8..8 + len)
        .map(serde_json::from_slice::<serde_json::Value>)
    else {
        return bytes;
    };
    let Ok(text) = serde_json::to_vec(&json) else {
        return bytes;
    };
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + len..]);
    out
}

/// A two-track format-1 file: tempo, a bend, controllers and overlapping notes.
fn small_midi() -> Vec<u8> {
    use midly::num::{u4, u7, u14, u15, u24, u28};
    use midly::{
        Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind,
    };
    let ev = |delta: u32, kind| TrackEvent {
        delta: u28::new(delta),
        kind,
    };
    let midi = |message| TrackEventKind::Midi {
        channel: u4::new(0),
        message,
    };
    let mut smf = Smf::new(Header::new(
        Format::Parallel,
        Timing::Metrical(u15::new(480)),
    ));
    smf.tracks.push(vec![
        ev(
            0,
            TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000))),
        ),
        ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
    ]);
    smf.tracks.push(vec![
        ev(
            0,
            midi(MidiMessage::NoteOn {
                key: u7::new(60),
                vel: u7::new(90),
            }),
        ),
        ev(
            240,
            midi(MidiMessage::PitchBend {
                bend: midly::PitchBend(u14::new(10_000)),
            }),
        ),
        ev(
            0,
            midi(MidiMessage::Controller {
                controller: u7::new(1),
                value: u7::new(64),
            }),
        ),
        ev(
            240,
            midi(MidiMessage::NoteOn {
                key: u7::new(64),
                vel: u7::new(70),
            }),
        ),
        ev(
            240,
            midi(MidiMessage::NoteOff {
                key: u7::new(60),
                vel: u7::new(0),
            }),
        ),
        ev(
            480,
            midi(MidiMessage::NoteOn {
                key: u7::new(64),
                vel: u7::new(0),
            }),
        ),
        ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
    ]);
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = smf.write_std(&mut out);
    out
}

/// 0.05 s of a 440 Hz tone at 16 kHz in the given layout.
fn wav(channels: u16, bits: u16, format: hound::SampleFormat) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: 16_000,
        bits_per_sample: bits,
        sample_format: format,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    if let Ok(mut w) = hound::WavWriter::new(&mut cursor, spec) {
        let full = ((1i64 << (bits.min(32) - 1)) - 1) as f32;
        for i in 0..800 * channels as usize {
            let x = 0.5
                * (std::f32::consts::TAU * 440.0 * (i / channels as usize) as f32 / 16_000.0).sin();
            let _ = match format {
                hound::SampleFormat::Float => w.write_sample(x),
                hound::SampleFormat::Int => w.write_sample((x * full) as i32),
            };
        }
        let _ = w.finalize();
    }
    cursor.into_inner()
}

/// One case's mutation, half the time one that knows the format (three times in four for
/// plugin states, which nice-plug rejects whole at the first malformed byte).
fn mutate_for(
    target: Target,
    u: &mut Unstructured<'_>,
    data: &mut Vec<u8>,
    other: &[u8],
) -> ArbResult<()> {
    let bytes_share = if target.is_plugin_state() { 4 } else { 2 };
    if u.ratio(1, bytes_share)? {
        return mutate::bytes(u, data, other);
    }
    match target {
        Target::Model => model_header(u, data),
        Target::Wav => {
            // The RIFF and fmt fields: sizes, format tag, channels, rate, block align,
            // bits, the data chunk's size.
            let edits = u.int_in_range(1..=3)?;
            for _ in 0..edits {
                mutate::byte_edit(u, data, other, 0..48)?;
            }
            Ok(())
        }
        Target::Midi => midi_events(u, data),
        Target::Csv => csv_values(u, data),
        Target::StateClap | Target::StateVst3 => state_json(u, data),
    }
}

/// The safetensors header (8-byte length, then JSON): its JSON mutated and written back
/// with a consistent length, or bytes edited inside the header.
fn model_header(u: &mut Unstructured<'_>, data: &mut Vec<u8>) -> ArbResult<()> {
    let Some(len) = data
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
    else {
        return Ok(());
    };
    let Some(header) = data.get(8..8 + len) else {
        return Ok(());
    };
    if u.ratio(1, 3)? {
        return mutate::byte_edit(u, data, &[], 0..8 + len);
    }
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(header) else {
        return Ok(());
    };
    mutate::json(u, &mut json)?;
    let Ok(text) = serde_json::to_vec(&json) else {
        return Ok(());
    };
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&data[8 + len..]);
    *data = out;
    Ok(())
}

/// MIDI edits through the parsed file: a delta made huge, a tempo of 0 or the maximum,
/// the timing division 0, a track repeated, the end-of-track removed.
fn midi_events(u: &mut Unstructured<'_>, data: &mut Vec<u8>) -> ArbResult<()> {
    use midly::num::{u15, u24, u28};
    use midly::{MetaMessage, Smf, Timing, TrackEventKind};
    let Ok(parsed) = Smf::parse(data) else {
        return Ok(());
    };
    let mut smf = parsed.to_static();
    match u.int_in_range(0..=4)? {
        0 => smf.header.timing = Timing::Metrical(u15::new(*u.choose(&[0u16, 1, 0x7fff])?)),
        1 if !smf.tracks.is_empty() => {
            let t = u.int_in_range(0..=smf.tracks.len() - 1)?;
            let track = &mut smf.tracks[t];
            if !track.is_empty() {
                let e = u.int_in_range(0..=track.len() - 1)?;
                track[e].delta = u28::new(*u.choose(&[0u32, 1, 0x0fff_ffff])?);
            }
        }
        2 => {
            let tempo = *u.choose(&[0u32, 1, 0x00ff_ffff])?;
            for track in smf.tracks.iter_mut() {
                for e in track.iter_mut() {
                    if let TrackEventKind::Meta(MetaMessage::Tempo(t)) = &mut e.kind {
                        *t = u24::new(tempo);
                    }
                }
            }
        }
        3 if !smf.tracks.is_empty() => {
            let times = u.int_in_range(1..=64)?;
            let copy = smf.tracks[0].clone();
            for _ in 0..times {
                smf.tracks.push(copy.clone());
            }
        }
        _ => {
            for track in smf.tracks.iter_mut() {
                track.retain(|e| !matches!(e.kind, TrackEventKind::Meta(MetaMessage::EndOfTrack)));
            }
        }
    }
    let mut out = Vec::new();
    if smf.write_std(&mut out).is_ok() {
        *data = out;
    }
    Ok(())
}

/// CSV edits by field: a value replaced by a bad token, a line repeated many times,
/// columns added or removed, a very long line.
fn csv_values(u: &mut Unstructured<'_>, data: &mut Vec<u8>) -> ArbResult<()> {
    let text = String::from_utf8_lossy(data).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return Ok(());
    }
    let i = u.int_in_range(0..=lines.len() - 1)?;
    match u.int_in_range(0..=3)? {
        0 => {
            let token = *u.choose(&mutate::BAD_TOKENS)?;
            let mut cols: Vec<String> = lines[i].split(',').map(str::to_owned).collect();
            let c = u.int_in_range(0..=cols.len().saturating_sub(1))?;
            if let Some(col) = cols.get_mut(c) {
                *col = token.to_owned();
            }
            lines[i] = cols.join(",");
        }
        1 => {
            let times = u.int_in_range(1..=10_000)?;
            let line = lines[i].clone();
            lines.splice(i..i, std::iter::repeat_n(line, times));
        }
        2 => lines[i].push_str(",1,2,3"),
        _ => lines[i] = "9".repeat(u.int_in_range(0..=200_000)?),
    }
    *data = lines.join("\n").into_bytes();
    Ok(())
}

/// A plugin state's JSON mutated (after a CLAP state's 8-byte length, kept consistent).
fn state_json(u: &mut Unstructured<'_>, data: &mut Vec<u8>) -> ArbResult<()> {
    let (prefix, body) = match data.split_first_chunk::<8>() {
        Some((len, rest)) if u64::from_le_bytes(*len) as usize == rest.len() => (true, rest),
        _ => (false, &data[..]),
    };
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    mutate::json(u, &mut json)?;
    let Ok(text) = serde_json::to_vec(&json) else {
        return Ok(());
    };
    let mut out = Vec::new();
    if prefix {
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(&text);
    *data = out;
    Ok(())
}
