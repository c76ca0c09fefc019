//! The bundled demo melody: a short legato phrase with a slide, vibrato (mod wheel) and
//! a swell (expression), written as a Standard MIDI File.

use std::path::Path;

use midly::num::{u4, u7, u14, u15, u24, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

const TPB: u16 = 480;

pub fn write_demo_midi(out: &Path) -> anyhow::Result<()> {
    // (beats from start, MIDI note, length in beats, velocity): "Greensleeves"-like
    // phrase in A minor, public-domain melody, around the violin's middle register.
    let notes: &[(f64, u8, f64, u8)] = &[
        (0.0, 69, 1.0, 80),
        (1.0, 72, 2.0, 90),
        (3.0, 74, 1.0, 85),
        (4.0, 76, 1.5, 100),
        (5.5, 77, 0.5, 80),
        (6.0, 76, 1.0, 90),
        (7.0, 74, 2.0, 95),
        (9.0, 71, 1.0, 80),
        (10.0, 67, 1.5, 85),
        (11.5, 69, 0.5, 80),
        (12.0, 71, 1.0, 90),
        (13.0, 72, 2.0, 100),
        (15.0, 69, 1.0, 85),
        (16.0, 69, 1.5, 90),
        (17.5, 68, 0.5, 80),
        (18.0, 69, 1.0, 90),
        (19.0, 71, 2.0, 95),
        (21.0, 68, 1.0, 80),
        (22.0, 64, 2.0, 90),
        (24.0, 69, 4.0, 100),
    ];
    let ch = u4::new(0);
    let mut evs: Vec<(u64, TrackEventKind<'static>)> = Vec::new();
    let tick = |beats: f64| (beats * TPB as f64).round() as u64;
    for (i, &(start, key, len, vel)) in notes.iter().enumerate() {
        // Slightly overlapping notes make the phrase legato on a mono instrument; a
        // repeated pitch is re-articulated instead.
        let repeat = notes.get(i + 1).is_some_and(|n| n.1 == key);
        let overlap = if repeat { -40 } else { 20 };
        evs.push((
            tick(start),
            midi(
                ch,
                MidiMessage::NoteOn {
                    key: u7::new(key),
                    vel: u7::new(vel),
                },
            ),
        ));
        evs.push((
            (tick(start + len) as i64 + overlap) as u64,
            midi(
                ch,
                MidiMessage::NoteOff {
                    key: u7::new(key),
                    vel: u7::new(0),
                },
            ),
        ));
    }
    // Mod wheel vibrato rising on the long notes, an expression swell on the last note.
    for i in 0..=40u64 {
        let beat = i as f64 * 0.7;
        let v = (64.0 + 50.0 * (beat * 0.9).sin()).clamp(0.0, 127.0) as u8;
        evs.push((
            tick(beat),
            midi(
                ch,
                MidiMessage::Controller {
                    controller: u7::new(1),
                    value: u7::new(v / 2),
                },
            ),
        ));
    }
    for i in 0..=16u64 {
        let beat = 24.0 + i as f64 * 0.25;
        let v = (70.0 + 57.0 * (i as f64 / 16.0)).min(127.0) as u8;
        evs.push((
            tick(beat),
            midi(
                ch,
                MidiMessage::Controller {
                    controller: u7::new(11),
                    value: u7::new(v),
                },
            ),
        ));
    }
    // A slide up into the last note via pitch bend.
    for i in 0..=8u64 {
        let frac = i as f64 / 8.0;
        let bend = (8192.0 - 2048.0 * (1.0 - frac)) as u16;
        evs.push((
            tick(24.0) + i * 12,
            midi(
                ch,
                MidiMessage::PitchBend {
                    bend: midly::PitchBend(u14::new(bend)),
                },
            ),
        ));
    }
    evs.sort_by_key(|(t, _)| *t);
    let mut track = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(600_000))),
    }];
    let mut last = 0;
    for (t, kind) in evs {
        track.push(TrackEvent {
            delta: u28::new((t - last) as u32),
            kind,
        });
        last = t;
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    let smf = Smf {
        header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(TPB))),
        tracks: vec![track],
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    smf.save(out)?;
    println!("wrote {}", out.display());
    Ok(())
}

fn midi(channel: u4, message: MidiMessage) -> TrackEventKind<'static> {
    TrackEventKind::Midi { channel, message }
}
