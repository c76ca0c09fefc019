//! `newt-eval timbre` (`cargo xtask timbre`): does a render sound like the instrument it claims to be? The
//! score a render was made from is played on reference SoundFont instruments, and each
//! render is set beside every reference by its harmonic profile: the level of harmonics
//! 1..=10 relative to their sum, in dB, note by note on the steady part of each note.
//! Harmonic profiles are what tells a flute (a strong fundamental, little above it) from
//! a trumpet (many strong harmonics) or a violin; loudness and pitch drop out.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use figures::plotters::prelude::*;
use newt_data::instrument;
use newt_data::performance::{Performance, PlayedNote};
use newt_data::render::{RENDER_RATE, load_sound_font, render};
use newt_features::resample;
use newt_features::{read_wav, write_pcm16};
use realfft::RealFftPlanner;

use newt_engine::midi_file::{ScoreNote, read_midi, score_notes};

/// Analysis rate, FFT size and hop (samples at 16 kHz).
const RATE: u32 = 16_000;
const FFT: usize = 2048;
const HOP: usize = 256;
/// Harmonics in a profile.
const HARMONICS: usize = 10;
/// Frames more than this far (dB) below the loudest frame of the file are left out.
const GATE_DB: f64 = 40.0;

#[derive(Args, Debug)]
pub struct TimbreArgs {
    /// Renders to place, as NAME=FILE.wav, each rendered from `--score`.
    #[arg(required = true)]
    renders: Vec<String>,
    /// The monophonic MIDI file the renders were made from.
    #[arg(long, default_value = "assets/demo/demo.mid")]
    score: PathBuf,
    /// The SoundFont the references are played on (the training data's).
    #[arg(long, default_value = "data/sources/FluidR3_GM.sf2")]
    sound_font: PathBuf,
    /// Reference instruments (names as in `cargo xtask data instruments`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "violin,flute,trumpet,cello,alto-sax"
    )]
    references: Vec<String>,
    /// Where the table, the profile figure and the reference WAVs go.
    #[arg(long, default_value = "out/timbre")]
    out: PathBuf,
}

/// Mean harmonic profile of each note (dB relative to the sum of the harmonics); `None`
/// for a note with no frame above the gate.
type Profiles = Vec<Option<[f64; HARMONICS]>>;

pub fn run(args: TimbreArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.score).with_context(|| format!("reading {}", args.score.display()))?;
    let notes = score_notes(&read_midi(&bytes)?);
    std::fs::create_dir_all(&args.out)?;

    let sound_font = load_sound_font(&args.sound_font).with_context(
        || "the references need the FluidR3 SoundFont: run `cargo xtask data instruments` first",
    )?;
    let mut references: Vec<(String, Profiles)> = Vec::new();
    for name in &args.references {
        let inst = instrument::by_name(name).with_context(|| format!("no instrument {name}"))?;
        let audio = render(&sound_font, &inst, &performance(&notes))?.audio;
        write_pcm16(
            &args.out.join(format!("{name}.ref.wav")),
            &audio,
            RENDER_RATE,
        )?;
        let at16 = resample(&audio, RENDER_RATE, RATE)?;
        references.push((name.clone(), profiles(&at16, &notes)));
    }

    let mut renders: Vec<(String, Profiles)> = Vec::new();
    for spec in &args.renders {
        let Some((name, file)) = spec.split_once('=') else {
            bail!("expected NAME=FILE.wav, got {spec}");
        };
        let (audio, rate) = read_wav(Path::new(file)).with_context(|| format!("reading {file}"))?;
        let at16 = resample(&audio, rate, RATE)?;
        renders.push((name.to_string(), profiles(&at16, &notes)));
    }

    let mut table = format!(
        "Harmonic-profile distance (dB, RMS over harmonics 1-{HARMONICS}, mean over notes) of each render to `{}` played on each reference instrument of `{}`; the nearest is in bold.\n\n| render |",
        args.score.display(),
        args.sound_font.display()
    );
    for (name, _) in &references {
        table.push_str(&format!(" {name} |"));
    }
    table.push_str(" nearest |\n|---|");
    table.push_str(&"---|".repeat(references.len() + 1));
    table.push('\n');
    for (name, p) in &renders {
        let d: Vec<f64> = references.iter().map(|r| distance(p, &r.1)).collect();
        let best = (0..d.len())
            .min_by(|&a, &b| d[a].total_cmp(&d[b]))
            .context("no references")?;
        table.push_str(&format!("| {name} |"));
        for (i, v) in d.iter().enumerate() {
            if i == best {
                table.push_str(&format!(" **{v:.1}** |"));
            } else {
                table.push_str(&format!(" {v:.1} |"));
            }
        }
        table.push_str(&format!(" {} |\n", references[best].0));
    }
    print!("{table}");
    std::fs::write(args.out.join("timbre.md"), &table)?;
    let png = args.out.join("harmonic-profiles.png");
    plot_profiles(&png, &renders, &references)?;
    println!(
        "wrote {} and {}",
        args.out.join("timbre.md").display(),
        png.display()
    );
    Ok(())
}

/// The score as the data renderer plays it: plain notes, no bend, full expression.
fn performance(notes: &[ScoreNote]) -> Performance {
    let played: Vec<PlayedNote> = notes
        .iter()
        .map(|n| PlayedNote {
            start_s: n.start_s,
            end_s: n.end_s,
            midi: n.key,
            velocity: (n.velocity * 127.0).round().clamp(1.0, 127.0) as u8,
            slide_cents: 0.0,
            vibrato_cents: 0.0,
            vibrato_hz: 0.0,
        })
        .collect();
    let duration_s = played.last().map_or(0.0, |n| n.end_s) + 1.0;
    Performance {
        notes: played,
        expression: Vec::new(),
        duration_s,
    }
}

/// Each note's mean harmonic profile over the frames of its steady part.
fn profiles(x: &[f32], notes: &[ScoreNote]) -> Profiles {
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(FFT);
    let window: Vec<f64> = (0..FFT)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / FFT as f64).cos())
        .collect();
    let mut input = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    // (note index, harmonic powers) for every analysed frame.
    let mut frames: Vec<(usize, [f64; HARMONICS])> = Vec::new();
    for (i, n) in notes.iter().enumerate() {
        let f0 = n.hz();
        let (from, to) = n.steady_span();
        let mut t = from;
        while t < to {
            // Frame centred on t.
            let centre = (t * RATE as f64) as isize;
            for (k, v) in input.iter_mut().enumerate() {
                let j = centre - FFT as isize / 2 + k as isize;
                *v = if j >= 0 && (j as usize) < x.len() {
                    x[j as usize] as f64 * window[k]
                } else {
                    0.0
                };
            }
            fft.process(&mut input, &mut spectrum)
                .expect("FFT sizes match");
            let bin_hz = RATE as f64 / FFT as f64;
            let mut power = [0.0f64; HARMONICS];
            for (h, p) in power.iter_mut().enumerate() {
                let hz = f0 * (h + 1) as f64;
                // The strongest bin within 3% (or 2 bins) of the harmonic.
                let reach = (0.03 * hz / bin_hz).max(2.0);
                let lo = ((hz / bin_hz - reach).floor().max(0.0)) as usize;
                let hi = ((hz / bin_hz + reach).ceil() as usize).min(spectrum.len() - 1);
                *p = spectrum[lo..=hi]
                    .iter()
                    .map(|c| c.norm_sqr())
                    .fold(0.0, f64::max);
            }
            frames.push((i, power));
            t += HOP as f64 / RATE as f64;
        }
    }
    let loudest = frames
        .iter()
        .map(|f| f.1.iter().sum::<f64>())
        .fold(0.0, f64::max);
    let gate = loudest * 10f64.powf(-GATE_DB / 10.0);
    let mut sums = vec![([0.0f64; HARMONICS], 0usize); notes.len()];
    for (i, power) in &frames {
        let total: f64 = power.iter().sum();
        if total <= gate || total <= 0.0 {
            continue;
        }
        for (s, p) in sums[*i].0.iter_mut().zip(power) {
            *s += 10.0 * (p.max(total * 1e-8) / total).log10();
        }
        sums[*i].1 += 1;
    }
    sums.into_iter()
        .map(|(s, n)| (n > 0).then(|| s.map(|v| v / n as f64)))
        .collect()
}

/// Mean over the notes both sounded of the RMS difference of their profiles (dB).
fn distance(a: &Profiles, b: &Profiles) -> f64 {
    let per_note: Vec<f64> = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some((x.as_ref()?, y.as_ref()?)))
        .map(|(x, y)| {
            (x.iter().zip(y).map(|(p, q)| (p - q).powi(2)).sum::<f64>() / HARMONICS as f64).sqrt()
        })
        .collect();
    if per_note.is_empty() {
        return f64::INFINITY;
    }
    per_note.iter().sum::<f64>() / per_note.len() as f64
}

/// The profile averaged over notes.
fn mean_profile(p: &Profiles) -> [f64; HARMONICS] {
    let sounded: Vec<&[f64; HARMONICS]> = p.iter().flatten().collect();
    let mut m = [0.0; HARMONICS];
    for q in &sounded {
        for (a, b) in m.iter_mut().zip(q.iter()) {
            *a += b / sounded.len().max(1) as f64;
        }
    }
    m
}

/// One panel per render: its mean profile (thick) over every reference's.
fn plot_profiles(
    path: &Path,
    renders: &[(String, Profiles)],
    references: &[(String, Profiles)],
) -> anyhow::Result<()> {
    let text = figures::register_font();
    let panel_w = 420u32;
    let root =
        BitMapBackend::new(path, (panel_w * renders.len().max(1) as u32, 380)).into_drawing_area();
    root.fill(&WHITE)?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (area, (name, profile)) in root
        .split_evenly((1, renders.len().max(1)))
        .iter()
        .zip(renders)
    {
        let mut chart = ChartBuilder::on(area);
        if text {
            chart
                .caption(format!("{name}: harmonic profile"), ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(40);
        }
        let mut chart = chart
            .margin(10)
            .build_cartesian_2d(1f64..HARMONICS as f64, -45f64..0f64)?;
        if text {
            chart
                .configure_mesh()
                .x_desc("harmonic")
                .y_desc("dB re. sum")
                .draw()?;
        }
        for (i, (rname, rp)) in references.iter().enumerate() {
            let m = mean_profile(rp);
            let color = colors[i % colors.len()];
            let series = chart.draw_series(LineSeries::new(
                m.iter()
                    .enumerate()
                    .map(|(h, v)| ((h + 1) as f64, v.max(-45.0))),
                color.mix(0.6).stroke_width(1),
            ))?;
            if text {
                series
                    .label(rname.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color));
            }
        }
        let m = mean_profile(profile);
        let series = chart.draw_series(LineSeries::new(
            m.iter()
                .enumerate()
                .map(|(h, v)| ((h + 1) as f64, v.max(-45.0))),
            BLACK.stroke_width(3),
        ))?;
        if text {
            series
                .label(format!("{name} (model)"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], BLACK.stroke_width(3)));
            figures::draw_legend(&mut chart)?;
        }
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(key: u8, start_s: f64, end_s: f64) -> ScoreNote {
        ScoreNote {
            key,
            velocity: 0.8,
            start_s,
            end_s,
        }
    }

    /// One second of a harmonic tone whose k-th harmonic has amplitude `amp(k)`.
    fn tone(f0: f64, amp: impl Fn(usize) -> f64) -> Vec<f32> {
        (0..RATE as usize)
            .map(|i| {
                let t = i as f64 / RATE as f64;
                (1..=HARMONICS)
                    .map(|k| amp(k) * (std::f64::consts::TAU * f0 * k as f64 * t).sin())
                    .sum::<f64>() as f32
                    * 0.1
            })
            .collect()
    }

    #[test]
    fn profiles_tell_a_bright_tone_from_a_dull_one_at_any_level() {
        let notes = [note(69, 0.0, 1.0)];
        let bright = profiles(&tone(440.0, |k| 1.0 / k as f64), &notes);
        let bright_quiet = profiles(
            &tone(440.0, |k| 1.0 / k as f64)
                .iter()
                .map(|v| v * 0.1)
                .collect::<Vec<_>>(),
            &notes,
        );
        let dull = profiles(&tone(440.0, |k| 0.1f64.powi(k as i32 - 1)), &notes);
        let same = distance(&bright, &bright_quiet);
        let different = distance(&bright, &dull);
        assert!(same < 0.1, "{same}");
        assert!(different > 10.0, "{different}");
        // A sawtooth-like profile: harmonic k sits 20 log10(k) dB below the fundamental.
        let p = bright[0].unwrap();
        assert!(((p[0] - p[1]) - 20.0 * 2f64.log10()).abs() < 0.5, "{p:?}");
    }
}
