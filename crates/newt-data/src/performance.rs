//! A performance: the notes of a monophonic phrase as a player shapes them (timing,
//! velocity, vibrato, slides into notes) plus a continuous expression curve (crescendo,
//! diminuendo, accents). It is both what the synthesiser is told and the ground truth of
//! the rendered audio's pitch.

use seeded_rng::SplitMix64;

use crate::abc::Tune;
use crate::instrument::Instrument;

/// One played note.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlayedNote {
    pub start_s: f64,
    pub end_s: f64,
    pub midi: u8,
    /// MIDI velocity, 1..=127.
    pub velocity: u8,
    /// The note starts this many cents off (below, if negative) and slides to pitch.
    pub slide_cents: f32,
    pub vibrato_cents: f32,
    pub vibrato_hz: f32,
}

/// Seconds of a slide into a note.
const SLIDE_S: f64 = 0.08;
/// Seconds before vibrato starts, and over which it fades in.
const VIBRATO_DELAY_S: f64 = 0.15;
const VIBRATO_FADE_S: f64 = 0.25;
/// Longest note taken from a tune, in seconds.
const MAX_NOTE_S: f64 = 4.0;
/// Largest bend the synthesiser is set up for (its default range, 2 semitones).
pub const BEND_RANGE_CENTS: f32 = 200.0;

impl PlayedNote {
    /// Deviation from the note's equal-tempered pitch at time `t` (cents).
    pub fn bend_cents(&self, t: f64) -> f32 {
        let age = t - self.start_s;
        let slide = if age < SLIDE_S {
            self.slide_cents * (1.0 - age / SLIDE_S) as f32
        } else {
            0.0
        };
        let fade = ((age - VIBRATO_DELAY_S) / VIBRATO_FADE_S).clamp(0.0, 1.0) as f32;
        let vibrato = self.vibrato_cents
            * fade
            * (std::f64::consts::TAU * self.vibrato_hz as f64 * (age - VIBRATO_DELAY_S)).sin()
                as f32;
        (slide + vibrato).clamp(-BEND_RANGE_CENTS, BEND_RANGE_CENTS)
    }

    /// Pitch at time `t`, in Hz.
    pub fn f0_hz(&self, t: f64) -> f64 {
        let semis = self.midi as f64 - 69.0 + self.bend_cents(t) as f64 / 100.0;
        440.0 * (semis / 12.0).exp2()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Performance {
    /// In time order, never overlapping.
    pub notes: Vec<PlayedNote>,
    /// Expression (MIDI CC11 / 127) as `(time s, value)` breakpoints, linear between.
    pub expression: Vec<(f64, f32)>,
    /// Length including a release tail, in seconds.
    pub duration_s: f64,
}

impl Performance {
    /// The note sounding at `t` (between its start and its end), if any.
    pub fn note_at(&self, t: f64) -> Option<&PlayedNote> {
        let i = self.notes.partition_point(|n| n.start_s <= t);
        i.checked_sub(1)
            .map(|i| &self.notes[i])
            .filter(|n| t < n.end_s)
    }

    /// Expression at `t`, in [0, 1].
    pub fn expression_at(&self, t: f64) -> f32 {
        let e = &self.expression;
        let i = e.partition_point(|p| p.0 <= t);
        match (i.checked_sub(1).map(|i| e[i]), e.get(i)) {
            (Some(a), Some(b)) => {
                let w = ((t - a.0) / (b.0 - a.0).max(1e-9)) as f32;
                a.1 + (b.1 - a.1) * w
            }
            (Some(a), None) => a.1,
            (None, Some(b)) => b.1,
            (None, None) => 1.0,
        }
    }
}

fn uniform(rng: &mut SplitMix64, (lo, hi): (f32, f32)) -> f32 {
    rng.uniform(lo, hi)
}

/// Turns a sequence of `(midi or rest, seconds)` into a performance on `instrument`:
/// articulation, velocity accents on `beat_s` downbeats, vibrato on notes long enough,
/// slides into close notes, and breath or bow arcs of expression.
fn perform(
    line: &[(Option<u8>, f64)],
    beat_s: f64,
    instrument: &Instrument,
    rng: &mut SplitMix64,
) -> Performance {
    let style = instrument.style;
    let legato = rng.next_f64() < 0.5;
    let mut notes: Vec<PlayedNote> = Vec::new();
    let mut t = 0.25;
    let mut last: Option<u8> = None;
    for &(midi, secs) in line {
        if let Some(m) = midi {
            // Articulation: legato notes nearly touch; detached ones leave a gap.
            let gap = if legato {
                0.01
            } else {
                (0.1 + 0.2 * rng.next_f64()) * secs
            };
            let on_beat = ((t / beat_s).fract() < 0.05) || ((t / beat_s).fract() > 0.95);
            let velocity =
                (70.0 + 25.0 * rng.next_f64() + if on_beat { 20.0 } else { 0.0 }).min(127.0) as u8;
            let slide_cents = match last {
                Some(p)
                    if p != m
                        && (p as i32 - m as i32).abs() <= 2
                        && rng.next_f64() < style.slide_probability as f64 =>
                {
                    100.0 * (p as f32 - m as f32)
                }
                _ => 0.0,
            };
            let vibrato_cents = if secs > 0.3 {
                uniform(rng, style.vibrato_cents)
            } else {
                0.0
            };
            notes.push(PlayedNote {
                start_s: t,
                end_s: t + (secs - gap).max(0.03),
                midi: m,
                velocity,
                slide_cents,
                vibrato_cents,
                vibrato_hz: uniform(rng, style.vibrato_hz),
            });
        }
        last = midi.or(last);
        t += secs;
    }
    // Arcs of 2 to 6 s: swell from soft to loud and back (a breath, a bow stroke).
    let mut expression = vec![(0.0, 0.6f32)];
    let mut a = 0.0;
    while a < t {
        let len = 2.0 + 4.0 * rng.next_f64();
        let (lo, hi) = (
            0.35 + 0.25 * rng.uniform(0.0, 1.0),
            0.75 + 0.25 * rng.uniform(0.0, 1.0),
        );
        let peak = 0.3 + 0.4 * rng.next_f64();
        expression.push((a + 0.05, lo));
        expression.push((a + peak * len, hi));
        expression.push((a + len, lo));
        a += len;
    }
    Performance {
        notes,
        expression,
        duration_s: t + 1.0,
    }
}

/// A tune played on `instrument`: transposed (by whole semitones) to lie inside its
/// range, at `tempo_qpm` (the tune's own, else one drawn from 70..130), cut to about
/// `max_s` seconds at a note boundary.
pub fn from_tune(
    tune: &Tune,
    instrument: &Instrument,
    max_s: f64,
    rng: &mut SplitMix64,
) -> Option<Performance> {
    // Ties merged.
    let mut line: Vec<(Option<u8>, f64)> = Vec::new();
    let mut tied = false;
    for n in &tune.notes {
        match line.last_mut() {
            Some(last) if tied && last.0 == n.midi => last.1 += n.quarters,
            _ => line.push((n.midi, n.quarters)),
        }
        tied = n.tied;
    }
    let pitches = || line.iter().filter_map(|n| n.0);
    let (lo, hi) = (pitches().min()?, pitches().max()?);
    let (a, b) = (instrument.low as i32, instrument.high as i32);
    let (lo, hi) = (lo as i32, hi as i32);
    // Shifts that fit; if the tune is wider than the instrument, fold octaves.
    let shifts: Vec<i32> = ((a - lo)..=(b - hi)).collect();
    let shift = if shifts.is_empty() {
        a - lo
    } else {
        shifts[(rng.next_u64() % shifts.len() as u64) as usize]
    };
    let qpm = tune
        .tempo_qpm
        .filter(|q| (40.0..=240.0).contains(q))
        .unwrap_or_else(|| 70.0 + 60.0 * rng.next_f64());
    let quarter_s = 60.0 / qpm;
    let mut secs = 0.0;
    let mut played = Vec::new();
    for &(m, q) in &line {
        if secs > max_s {
            break;
        }
        let m = m.map(|m| {
            let mut p = m as i32 + shift;
            while p > b {
                p -= 12;
            }
            while p < a {
                p += 12;
            }
            p as u8
        });
        // A few corpus notes are absurdly long (data quirks): at most 4 s.
        let len = (q * quarter_s).min(MAX_NOTE_S);
        played.push((m, len));
        secs += len;
    }
    Some(perform(&played, quarter_s, instrument, rng))
}

/// What a generated phrase practises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exercise {
    /// Major or minor scales, up and down.
    Scale,
    /// Broken chords over two octaves.
    Arpeggio,
    /// Long notes with vibrato and swells.
    LongNotes,
}

/// A generated phrase of about `secs` seconds across the instrument's range.
pub fn exercise(
    kind: Exercise,
    instrument: &Instrument,
    secs: f64,
    rng: &mut SplitMix64,
) -> Performance {
    let (a, b) = (instrument.low as i32, instrument.high as i32);
    let mut line: Vec<(Option<u8>, f64)> = Vec::new();
    let mut t = 0.0;
    let minor = rng.next_f64() < 0.5;
    let scale: &[i32] = if minor {
        &[0, 2, 3, 5, 7, 8, 10]
    } else {
        &[0, 2, 4, 5, 7, 9, 11]
    };
    let beat_s;
    match kind {
        Exercise::Scale | Exercise::Arpeggio => {
            let note_s = 0.12 + 0.3 * rng.next_f64();
            beat_s = note_s * 2.0;
            while t < secs {
                let root = a + (rng.next_u64() % ((b - a - 12).max(1) as u64)) as i32;
                let degrees: Vec<i32> = match kind {
                    Exercise::Scale => (0..=7)
                        .map(|d| d / 7 * 12 + scale[d as usize % 7])
                        .collect(),
                    _ => vec![0, scale[2], 7, 12, 12 + scale[2], 19, 24],
                };
                let up: Vec<i32> = degrees
                    .iter()
                    .map(|d| root + d)
                    .filter(|p| *p <= b)
                    .collect();
                let mut run = up.clone();
                run.extend(up.iter().rev().skip(1));
                for p in run {
                    line.push((Some(p as u8), note_s));
                    t += note_s;
                }
                line.push((None, note_s * 2.0));
                t += note_s * 2.0;
            }
        }
        Exercise::LongNotes => {
            beat_s = 1.0;
            while t < secs {
                let p = a + (rng.next_u64() % ((b - a + 1) as u64)) as i32;
                let len = 1.0 + 2.5 * rng.next_f64();
                line.push((Some(p as u8), len));
                line.push((None, 0.2 + 0.3 * rng.next_f64()));
                t += len + 0.4;
            }
        }
    }
    perform(&line, beat_s, instrument, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abc::TuneNote;
    use crate::instrument::INSTRUMENTS;

    #[test]
    fn tunes_land_in_range_with_ties_merged() {
        let notes = [
            (48, 1.0, true),
            (48, 1.0, false),
            (50, 0.5, false),
            (84, 0.5, false),
        ]
        .map(|(m, q, tied)| TuneNote {
            midi: Some(m),
            quarters: q,
            tied,
        });
        let tune = Tune {
            title: "t".into(),
            tempo_qpm: Some(60.0),
            notes: notes.to_vec(),
        };
        let flute = INSTRUMENTS[1];
        let p = from_tune(&tune, &flute, 60.0, &mut SplitMix64::new(1)).unwrap();
        assert_eq!(p.notes.len(), 3, "the tie joins the first two");
        for n in &p.notes {
            assert!((flute.low..=flute.high).contains(&n.midi), "{}", n.midi);
        }
        assert!(p.notes[0].end_s - p.notes[0].start_s > 1.5);
        for w in p.notes.windows(2) {
            assert!(w[0].end_s <= w[1].start_s, "monophonic");
        }
    }

    #[test]
    fn bends_stay_in_the_synth_range_and_slides_arrive() {
        let violin = INSTRUMENTS[0];
        let mut rng = SplitMix64::new(3);
        for kind in [Exercise::Scale, Exercise::Arpeggio, Exercise::LongNotes] {
            let p = exercise(kind, &violin, 20.0, &mut rng);
            assert!(p.duration_s > 20.0);
            for n in &p.notes {
                assert!((violin.low..=violin.high).contains(&n.midi));
                let mut t = n.start_s;
                while t < n.end_s {
                    assert!(n.bend_cents(t).abs() <= BEND_RANGE_CENTS);
                    t += 0.01;
                }
                // After the slide and before vibrato fades in: on pitch.
                if n.end_s - n.start_s > 0.12 {
                    assert!(n.bend_cents(n.start_s + 0.1).abs() < 1e-3);
                }
            }
            assert!(p.expression.iter().all(|e| (0.0..=1.0).contains(&e.1)));
        }
    }
}
