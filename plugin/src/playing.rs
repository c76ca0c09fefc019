//! What the player is doing now (keys down, keys held by the pedal, controllers), kept so
//! that a newly swapped-in engine can be brought to the same state: held notes carry
//! over a model change, in the order they were pressed.

use newt_engine::{Event, EventKind};

#[derive(Clone, Copy, Debug)]
pub struct PlayingState {
    /// Velocity of each key that is down (0 = up).
    down: [f32; 128],
    /// Velocity of each key released while the pedal was down (still sounding).
    pedalled: [f32; 128],
    /// When each key was last pressed (a counter), for last-note priority on replay.
    pressed_at: [u32; 128],
    presses: u32,
    sustain: bool,
    bend: f32,
    mod_wheel: f32,
    expression: f32,
}

impl Default for PlayingState {
    fn default() -> Self {
        Self {
            down: [0.0; 128],
            pedalled: [0.0; 128],
            pressed_at: [0; 128],
            presses: 0,
            sustain: false,
            bend: 0.0,
            mod_wheel: 0.0,
            expression: 1.0,
        }
    }
}

impl PlayingState {
    pub fn apply(&mut self, kind: &EventKind) {
        match *kind {
            EventKind::NoteOn { note, velocity } if velocity > 0.0 => {
                let k = note as usize & 127;
                self.down[k] = velocity;
                self.pedalled[k] = 0.0;
                self.presses = self.presses.wrapping_add(1);
                self.pressed_at[k] = self.presses;
            }
            EventKind::NoteOn { note, .. } | EventKind::NoteOff { note } => {
                let k = note as usize & 127;
                if self.sustain && self.down[k] > 0.0 {
                    self.pedalled[k] = self.down[k];
                }
                self.down[k] = 0.0;
            }
            EventKind::PitchBend(b) => self.bend = b,
            EventKind::ModWheel(m) => self.mod_wheel = m,
            EventKind::Expression(x) => self.expression = x,
            EventKind::Sustain(down) => {
                self.sustain = down;
                if !down {
                    self.pedalled = [0.0; 128];
                }
            }
            EventKind::AllNotesOff => {
                self.down = [0.0; 128];
                self.pedalled = [0.0; 128];
                self.sustain = false;
            }
            EventKind::Controls(_) => {}
        }
    }

    /// Events at time 0 that bring a fresh engine to this state: controllers, then the
    /// pedalled notes (pressed, and released under the pedal), then the keys down, each
    /// group in the order pressed, so that a mono legato engine ends on the last key.
    pub fn replay(&self, out: &mut Vec<Event>) {
        let at0 = |kind| Event { time: 0, kind };
        out.push(at0(EventKind::PitchBend(self.bend)));
        out.push(at0(EventKind::ModWheel(self.mod_wheel)));
        out.push(at0(EventKind::Expression(self.expression)));
        out.push(at0(EventKind::Sustain(self.sustain)));
        let mut order = [(0u32, 0u8); 128];
        for (notes, release) in [(&self.pedalled, true), (&self.down, false)] {
            let mut n = 0;
            for (k, &v) in notes.iter().enumerate() {
                if v > 0.0 {
                    order[n] = (self.pressed_at[k], k as u8);
                    n += 1;
                }
            }
            // In place on a stack array: no allocation.
            order[..n].sort_unstable();
            for &(_, note) in &order[..n] {
                let velocity = notes[note as usize];
                out.push(at0(EventKind::NoteOn { note, velocity }));
                if release {
                    out.push(at0(EventKind::NoteOff { note }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(events: &[Event]) -> Vec<(u8, bool)> {
        events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::NoteOn { note, .. } => Some((note, true)),
                EventKind::NoteOff { note } => Some((note, false)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn replays_keys_in_press_order_and_pedalled_notes_released() {
        let mut p = PlayingState::default();
        for kind in [
            EventKind::NoteOn {
                note: 72,
                velocity: 0.5,
            },
            EventKind::Sustain(true),
            EventKind::NoteOn {
                note: 60,
                velocity: 0.6,
            },
            EventKind::NoteOff { note: 72 },
            EventKind::NoteOn {
                note: 64,
                velocity: 0.7,
            },
        ] {
            p.apply(&kind);
        }
        let mut out = Vec::new();
        p.replay(&mut out);
        // 72 sounds only through the pedal: pressed and released under it; then the keys
        // down, oldest first, so the last pressed (64) is the last note-on.
        assert_eq!(
            notes(&out),
            vec![(72, true), (72, false), (60, true), (64, true)]
        );
        assert!(out.iter().any(|e| e.kind == EventKind::Sustain(true)));

        p.apply(&EventKind::Sustain(false));
        let mut out = Vec::new();
        p.replay(&mut out);
        assert_eq!(notes(&out), vec![(60, true), (64, true)]);
    }
}
