//! Voice assignment: which voice plays which note. Pure bookkeeping, no DSP, tested on
//! its own.

/// How notes map to voices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VoiceMode {
    /// One voice, last-note priority, legato: a new note while one is held glides
    /// without retriggering the envelope; releasing it returns to the previous held note.
    #[default]
    MonoLegato,
    /// One voice per note up to the pool size; the oldest released voice, else the
    /// oldest held voice, is stolen.
    Poly,
}

/// What the engine must do with a voice after a note event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// (Re)start `voice` on `note`, envelope from the attack.
    Start {
        voice: usize,
        note: u8,
    },
    /// Move the sounding `voice` to `note` without retriggering (glide).
    Legato {
        voice: usize,
        note: u8,
    },
    /// Release `voice` (envelope to its release stage).
    Release {
        voice: usize,
    },
    Nothing,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    note: Option<u8>,
    /// The key is down.
    held: bool,
    /// The key is up but the sustain pedal holds the note.
    pedal: bool,
    active: bool,
    started_at: u64,
}

/// Fixed pool bookkeeping; never allocates after construction.
#[derive(Clone, Debug)]
pub struct VoiceAllocator {
    slots: Vec<Slot>,
    /// Held notes in press order (mono mode), at most 128.
    held: Vec<u8>,
    sustain: bool,
    clock: u64,
}

impl VoiceAllocator {
    pub fn new(voices: usize) -> Self {
        Self {
            slots: vec![Slot::default(); voices.max(1)],
            held: Vec::with_capacity(128),
            sustain: false,
            clock: 0,
        }
    }

    /// Becomes a copy of `other` (same number of voices) without allocating.
    pub fn copy_from(&mut self, other: &Self) {
        if self.slots.len() == other.slots.len() {
            self.slots.copy_from_slice(&other.slots);
        }
        self.held.clear();
        let room = self.held.capacity().min(other.held.len());
        self.held.extend_from_slice(&other.held[..room]);
        self.sustain = other.sustain;
        self.clock = other.clock;
    }

    pub fn voices(&self) -> usize {
        self.slots.len()
    }

    pub fn note_on(&mut self, mode: VoiceMode, note: u8) -> Assignment {
        self.clock += 1;
        match mode {
            VoiceMode::MonoLegato => {
                if self.held.len() == self.held.capacity() {
                    self.held.remove(0);
                }
                {
                    self.held.push(note);
                }
                let s = &mut self.slots[0];
                let legato = s.active && (s.held || s.pedal);
                s.note = Some(note);
                s.held = true;
                s.pedal = false;
                s.active = true;
                if legato {
                    Assignment::Legato { voice: 0, note }
                } else {
                    s.started_at = self.clock;
                    Assignment::Start { voice: 0, note }
                }
            }
            VoiceMode::Poly => {
                let pick = self
                    .slots
                    .iter()
                    .position(|s| s.active && s.note == Some(note))
                    .or_else(|| self.slots.iter().position(|s| !s.active))
                    .or_else(|| self.oldest(|s| !s.held && !s.pedal))
                    .or_else(|| self.oldest(|_| true));
                // The pool always has a voice (`new` makes at least one); without one
                // the note is not played.
                let Some(pick) = pick else {
                    return Assignment::Nothing;
                };
                self.slots[pick] = Slot {
                    note: Some(note),
                    held: true,
                    pedal: false,
                    active: true,
                    started_at: self.clock,
                };
                Assignment::Start { voice: pick, note }
            }
        }
    }

    pub fn note_off(&mut self, mode: VoiceMode, note: u8) -> Assignment {
        match mode {
            VoiceMode::MonoLegato => {
                // A note pressed twice (overlapping repeats) needs two note-offs.
                if let Some(i) = self.held.iter().rposition(|&n| n == note) {
                    self.held.remove(i);
                }
                let s = &mut self.slots[0];
                if !s.held {
                    return Assignment::Nothing;
                }
                match self.held.last() {
                    None if self.sustain => {
                        s.held = false;
                        s.pedal = true;
                        Assignment::Nothing
                    }
                    None => {
                        s.held = false;
                        Assignment::Release { voice: 0 }
                    }
                    Some(&top) if Some(top) != s.note => {
                        s.note = Some(top);
                        Assignment::Legato {
                            voice: 0,
                            note: top,
                        }
                    }
                    Some(_) => Assignment::Nothing,
                }
            }
            VoiceMode::Poly => match self
                .slots
                .iter()
                .position(|s| s.held && s.note == Some(note))
            {
                Some(v) if self.sustain => {
                    self.slots[v].held = false;
                    self.slots[v].pedal = true;
                    Assignment::Nothing
                }
                Some(v) => {
                    self.slots[v].held = false;
                    Assignment::Release { voice: v }
                }
                None => Assignment::Nothing,
            },
        }
    }

    /// Sustain pedal down or up. Releasing it returns, through `release`, every voice whose
    /// key is up but which the pedal was holding.
    pub fn sustain(&mut self, down: bool, mut release: impl FnMut(usize)) {
        self.sustain = down;
        if !down {
            for (v, s) in self.slots.iter_mut().enumerate() {
                if s.pedal {
                    s.pedal = false;
                    release(v);
                }
            }
        }
    }

    /// All notes off: every sounding voice goes to its release (the caller releases the
    /// drivers); releasing voices keep their tails, nothing is freed early.
    pub fn release_all(&mut self) {
        self.held.clear();
        self.sustain = false;
        for s in &mut self.slots {
            s.held = false;
            s.pedal = false;
        }
    }

    /// The engine reports a voice whose release has ended.
    pub fn voice_finished(&mut self, voice: usize) {
        if let Some(s) = self.slots.get_mut(voice) {
            *s = Slot::default();
        }
    }

    /// Forgets every voice and note (engine reset).
    pub fn clear(&mut self) {
        self.held.clear();
        self.sustain = false;
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
    }

    fn oldest(&self, pred: impl Fn(&Slot) -> bool) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active && pred(s))
            .min_by_key(|(_, s)| s.started_at)
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Assignment::*;
    use VoiceMode::*;

    #[test]
    fn mono_legato_is_last_note_priority_and_returns_to_held_notes() {
        let mut a = VoiceAllocator::new(1);
        assert_eq!(a.note_on(MonoLegato, 60), Start { voice: 0, note: 60 });
        assert_eq!(a.note_on(MonoLegato, 64), Legato { voice: 0, note: 64 });
        assert_eq!(a.note_on(MonoLegato, 67), Legato { voice: 0, note: 67 });
        assert_eq!(a.note_off(MonoLegato, 64), Nothing);
        assert_eq!(a.note_off(MonoLegato, 67), Legato { voice: 0, note: 60 });
        assert_eq!(a.note_off(MonoLegato, 60), Release { voice: 0 });
        // After a release, a new note retriggers.
        assert_eq!(a.note_on(MonoLegato, 62), Start { voice: 0, note: 62 });
    }

    #[test]
    fn mono_overlapping_repeat_of_the_same_note_keeps_sounding() {
        let mut a = VoiceAllocator::new(1);
        assert_eq!(a.note_on(MonoLegato, 69), Start { voice: 0, note: 69 });
        assert_eq!(a.note_on(MonoLegato, 69), Legato { voice: 0, note: 69 });
        assert_eq!(
            a.note_off(MonoLegato, 69),
            Nothing,
            "the second press still holds it"
        );
        assert_eq!(a.note_off(MonoLegato, 69), Release { voice: 0 });
    }

    #[test]
    fn poly_fills_free_voices_then_steals_released_then_oldest() {
        let mut a = VoiceAllocator::new(3);
        assert_eq!(a.note_on(Poly, 60), Start { voice: 0, note: 60 });
        assert_eq!(a.note_on(Poly, 62), Start { voice: 1, note: 62 });
        assert_eq!(a.note_on(Poly, 64), Start { voice: 2, note: 64 });
        assert_eq!(a.note_off(Poly, 62), Release { voice: 1 });
        assert_eq!(a.note_on(Poly, 65), Start { voice: 1, note: 65 });
        assert_eq!(
            a.note_on(Poly, 67),
            Start { voice: 0, note: 67 },
            "oldest held is stolen"
        );
        assert_eq!(
            a.note_on(Poly, 64),
            Start { voice: 2, note: 64 },
            "same note retriggers its voice"
        );
        a.voice_finished(1);
        assert_eq!(a.note_on(Poly, 70), Start { voice: 1, note: 70 });
        assert_eq!(a.note_off(Poly, 99), Nothing);
    }

    #[test]
    fn sustain_pedal_holds_released_keys_until_lifted() {
        for mode in [Poly, MonoLegato] {
            let mut a = VoiceAllocator::new(4);
            let mut released = Vec::new();
            a.sustain(true, |v| released.push(v));
            assert!(matches!(a.note_on(mode, 60), Start { .. }));
            assert_eq!(
                a.note_off(mode, 60),
                Nothing,
                "{mode:?}: pedal holds the note"
            );
            a.sustain(false, |v| released.push(v));
            assert_eq!(released, vec![0], "{mode:?}");
        }
    }

    #[test]
    fn release_all_keeps_release_tails_busy() {
        let mut a = VoiceAllocator::new(2);
        assert_eq!(a.note_on(Poly, 60), Start { voice: 0, note: 60 });
        a.release_all();
        // Voice 0 is still ringing out: a new note takes the free voice.
        assert_eq!(a.note_on(Poly, 62), Start { voice: 1, note: 62 });
    }

    #[test]
    fn sixteen_voice_pool_never_exceeds_its_size() {
        let mut a = VoiceAllocator::new(16);
        for n in 0..100u8 {
            match a.note_on(Poly, n) {
                Start { voice, .. } => assert!(voice < 16),
                other => panic!("{other:?}"),
            }
        }
    }
}
