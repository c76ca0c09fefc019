//! The instruments rendered: General MIDI program, playable range, and playing style.

/// How a player of this instrument shapes notes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Style {
    /// Vibrato depth range in cents (peak), and rate range in Hz.
    pub vibrato_cents: (f32, f32),
    pub vibrato_hz: (f32, f32),
    /// Probability that a note within two semitones of the last one slides into it.
    pub slide_probability: f32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Instrument {
    /// Folder and model name.
    pub name: &'static str,
    /// General MIDI program, 0-based.
    pub program: u8,
    /// Comfortable range, MIDI note numbers (inclusive).
    pub low: u8,
    pub high: u8,
    pub style: Style,
}

/// The paper's three (violin, flute, trumpet) and two more.
pub const INSTRUMENTS: [Instrument; 5] = [
    Instrument {
        name: "violin",
        program: 40,
        low: 55,
        high: 93,
        style: Style {
            vibrato_cents: (15.0, 35.0),
            vibrato_hz: (5.0, 6.5),
            slide_probability: 0.15,
        },
    },
    Instrument {
        name: "flute",
        program: 73,
        low: 60,
        high: 93,
        style: Style {
            vibrato_cents: (8.0, 20.0),
            vibrato_hz: (4.5, 5.5),
            slide_probability: 0.03,
        },
    },
    Instrument {
        name: "trumpet",
        program: 56,
        low: 54,
        high: 82,
        style: Style {
            vibrato_cents: (0.0, 12.0),
            vibrato_hz: (5.0, 6.0),
            slide_probability: 0.03,
        },
    },
    Instrument {
        name: "cello",
        program: 42,
        low: 36,
        high: 76,
        style: Style {
            vibrato_cents: (15.0, 30.0),
            vibrato_hz: (4.5, 6.0),
            slide_probability: 0.15,
        },
    },
    Instrument {
        name: "alto-sax",
        program: 65,
        low: 49,
        high: 80,
        style: Style {
            vibrato_cents: (10.0, 25.0),
            vibrato_hz: (4.5, 5.5),
            slide_probability: 0.1,
        },
    },
];

/// The instrument called `name`.
pub fn by_name(name: &str) -> Option<Instrument> {
    INSTRUMENTS.iter().copied().find(|i| i.name == name)
}
