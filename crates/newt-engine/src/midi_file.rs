//! Reading a Standard MIDI File into engine events timed in seconds, for offline renders
//! and for measuring renders note by note against their score. Never used on the audio
//! thread (it allocates).

use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};

use crate::EventKind;

/// Why a MIDI file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MidiFileError {
    #[error("not a valid Standard MIDI File: {0}")]
    Parse(#[from] midly::Error),
    #[error("MIDI file has zero ticks per beat")]
    ZeroTicksPerBeat,
    #[error("MIDI file has no notes")]
    NoNotes,
}

/// An engine event at a time in seconds.
#[derive(Clone, Copy, Debug)]
pub struct MidiEvent {
    pub seconds: f64,
    pub kind: EventKind,
}

/// All note, pitch-bend, mod-wheel (CC1), expression (CC11), sustain (CC64) and
/// all-notes-off (CC120, CC123) events of all tracks and
/// channels, in time order, with tempo changes honoured.
pub fn read_midi(bytes: &[u8]) -> Result<Vec<MidiEvent>, MidiFileError> {
    let smf = Smf::parse(bytes)?;
    // Absolute ticks of every event, tempo events collected from all tracks.
    let mut raw: Vec<(u64, TrackEventKind<'_>)> = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for ev in track {
            tick += ev.delta.as_int() as u64;
            raw.push((tick, ev.kind));
        }
    }
    raw.sort_by_key(|(t, _)| *t);
    let seconds_per_tick = |tempo_us_per_beat: f64| -> Result<f64, MidiFileError> {
        Ok(match smf.header.timing {
            Timing::Metrical(tpb) if tpb.as_int() > 0 => {
                tempo_us_per_beat * 1e-6 / tpb.as_int() as f64
            }
            Timing::Metrical(_) => return Err(MidiFileError::ZeroTicksPerBeat),
            Timing::Timecode(fps, sub) => 1.0 / (fps.as_f32() as f64 * sub as f64),
        })
    };
    let mut spt = seconds_per_tick(500_000.0)?;
    let (mut last_tick, mut now) = (0u64, 0.0f64);
    let mut out = Vec::new();
    for (tick, kind) in raw {
        now += (tick - last_tick) as f64 * spt;
        last_tick = tick;
        let ev = match kind {
            TrackEventKind::Meta(MetaMessage::Tempo(t)) => {
                spt = seconds_per_tick(t.as_int() as f64)?;
                None
            }
            TrackEventKind::Midi { message, .. } => match message {
                MidiMessage::NoteOn { key, vel } => Some(EventKind::NoteOn {
                    note: key.as_int(),
                    velocity: vel.as_int() as f32 / 127.0,
                }),
                MidiMessage::NoteOff { key, .. } => Some(EventKind::NoteOff { note: key.as_int() }),
                MidiMessage::PitchBend { bend } => Some(EventKind::PitchBend(bend.as_f32())),
                MidiMessage::Controller { controller, value } => match controller.as_int() {
                    1 => Some(EventKind::ModWheel(value.as_int() as f32 / 127.0)),
                    11 => Some(EventKind::Expression(value.as_int() as f32 / 127.0)),
                    64 => Some(EventKind::Sustain(value.as_int() >= 64)),
                    120 | 123 => Some(EventKind::AllNotesOff),
                    _ => None,
                },
                MidiMessage::ChannelAftertouch { vel } => {
                    Some(EventKind::Expression(vel.as_int() as f32 / 127.0))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(kind) = ev {
            out.push(MidiEvent { seconds: now, kind });
        }
    }
    if !out
        .iter()
        .any(|e| matches!(e.kind, EventKind::NoteOn { .. }))
    {
        return Err(MidiFileError::NoNotes);
    }
    Ok(out)
}

/// A score note: key, velocity in [0, 1] and its sounding span in seconds (ended by its
/// note-off or by the next note, as mono legato plays it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreNote {
    pub key: u8,
    pub velocity: f32,
    pub start_s: f64,
    pub end_s: f64,
}

impl ScoreNote {
    /// The steady part of the note, in seconds: from 200 ms after its start (attack,
    /// glide, slides) to 50 ms before its end. Measurements of a note look only here.
    pub fn steady_span(&self) -> (f64, f64) {
        (self.start_s + 0.2, self.end_s.min(1e6) - 0.05)
    }

    /// The key's equal-tempered pitch (A4 = 440 Hz), in Hz.
    pub fn hz(&self) -> f64 {
        440.0 * 2f64.powf((self.key as f64 - 69.0) / 12.0)
    }
}

/// The notes of a monophonic score, in time order.
pub fn score_notes(events: &[MidiEvent]) -> Vec<ScoreNote> {
    let mut notes: Vec<ScoreNote> = Vec::new();
    let mut open: Option<usize> = None;
    for e in events {
        match e.kind {
            EventKind::NoteOn { note, velocity } if velocity > 0.0 => {
                if let Some(i) = open {
                    notes[i].end_s = notes[i].end_s.min(e.seconds);
                }
                notes.push(ScoreNote {
                    key: note,
                    velocity,
                    start_s: e.seconds,
                    end_s: f64::INFINITY,
                });
                open = Some(notes.len() - 1);
            }
            EventKind::NoteOn { note, .. } | EventKind::NoteOff { note, .. } => {
                if let Some(i) = open.filter(|&i| notes[i].key == note) {
                    notes[i].end_s = notes[i].end_s.min(e.seconds);
                    open = None;
                }
            }
            _ => {}
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legato_notes_end_where_the_next_begins() {
        let ev = |seconds, kind| MidiEvent { seconds, kind };
        let on = |note| EventKind::NoteOn {
            note,
            velocity: 0.8,
        };
        let off = |note| EventKind::NoteOff { note };
        let notes = score_notes(&[
            ev(0.0, on(69)),
            ev(0.9, on(72)),
            ev(1.0, off(69)),
            ev(2.0, off(72)),
        ]);
        let note = |key, start_s, end_s| ScoreNote {
            key,
            velocity: 0.8,
            start_s,
            end_s,
        };
        assert_eq!(notes, vec![note(69, 0.0, 0.9), note(72, 0.9, 2.0)]);
    }
}
