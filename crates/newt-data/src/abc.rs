//! ABC notation: monophonic melodies from public-domain tune books.
//!
//! This is a deliberately small, forgiving reader of the parts of
//! [ABC 2.1](https://abcnotation.com/wiki/abc:standard:v2.1) that carry a melody's
//! pitches and durations. It reads each tune linearly (repeats are not expanded,
//! variant-ending markers are ignored, so both endings are played in turn) and turns it
//! into a list of [`TuneNote`]s:
//!
//! * header fields `X: T: M: L: K: Q:` (and inline `[K:..] [L:..] [M:..] [Q:..]`); every
//!   other field (`C: R: N: Z: B: O: S: H: W: w: ...`) is ignored;
//! * the default unit note length when `L:` is absent (1/8 when the meter is at least
//!   3/4 or absent, else 1/16), meters `none`, `C`, `C|`, `2+3/8`;
//! * keys with modes (`K:Ador`, `K:D dorian`, `K:F#m`, `K:Bb`, `K:HP`, `K:none`, explicit
//!   accidentals such as `K:D =c`), accidentals `^ ^^ _ __ =` lasting to the bar line for
//!   the same pitch and octave;
//! * notes with octave marks, durations (`2`, `/2`, `/`, `//`, `3/2`, `3/`), broken
//!   rhythm (`> < >> <<`), rests (`z x`, multi-measure `Z`), ties, chords (highest
//!   note), tuplets (`(3`, `(3:2:3`), grace notes (skipped), decorations, chord
//!   symbols and annotations (skipped), slurs, bar lines, line continuations, comments.
//!
//! Only the first voice of a multi-voice tune (`V:`) is read, and voice overlays (`&`)
//! are skipped. Unknown characters in the tune body are skipped rather than rejected.

use std::collections::HashMap;

/// One note or rest of a monophonic melody.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TuneNote {
    /// MIDI note number (60 = middle C = ABC `C`), `None` for a rest.
    pub midi: Option<u8>,
    /// Duration in quarter notes.
    pub quarters: f64,
    /// True when this note is tied to the next (same pitch: the caller merges them).
    ///
    /// The parser only keeps a tie when the next note has the same pitch; a `-`
    /// between different pitches (a slur written as a tie) or before a rest is dropped.
    pub tied: bool,
}

/// One parsed tune.
#[derive(Clone, Debug, PartialEq)]
pub struct Tune {
    /// The first `T:` field of the header (empty if there is none).
    pub title: String,
    /// Tempo in quarter notes per minute from a Q: field if present.
    ///
    /// `Q:1/4=120`, `Q:3/8=40`, `Q:1/8 3/8=40` and `Q:"Allegro" 1/4=120` are read as
    /// written; the deprecated `Q:120` means 120 unit notes (`L:`) per minute and
    /// `Q:C2=120` 120 double unit notes per minute. The header's `Q:` wins over later
    /// ones; otherwise the first in the body is used.
    pub tempo_qpm: Option<f64>,
    /// The melody, in order.
    pub notes: Vec<TuneNote>,
}

/// Why a tune could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum AbcError {
    /// The text has no `K:` field, so no tune body.
    #[error("no K: field (the tune header must end with one)")]
    NoKey,
    /// A note that cannot be read: a zero or overflowing duration, or a pitch outside
    /// the MIDI range. (A stray accidental without a note letter is skipped.) `line` is 1-based,
    /// counted from the start of the text given to [`parse_tune`].
    #[error("bad note {token:?} on line {line}")]
    BadNote {
        /// Line number within the tune text (1-based).
        line: usize,
        /// The offending text.
        token: String,
    },
    /// A field whose value is needed but unreadable (an `L:` that is not a positive
    /// fraction).
    #[error("bad field {field:?} on line {line}")]
    BadField {
        /// Line number within the tune text (1-based).
        line: usize,
        /// The whole field.
        field: String,
    },
    /// The tune body has no notes.
    #[error("the tune has no notes")]
    Empty,
}

/// Tunes with fewer pitched notes than this are dropped by [`parse_book`].
const MIN_NOTES: usize = 8;

/// Every tune (each `X:` header) of an ABC book. Tunes that cannot be parsed, or that
/// have fewer than 8 notes, are skipped (not an error).
///
/// A text without any `X:` line is read as a single tune. Text before the first `X:`
/// (a file header or free text) is ignored.
pub fn parse_book(text: &str) -> Vec<Tune> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if is_field(line.trim_start(), 'X') {
            starts.push(offset);
        }
        offset += line.len();
    }
    if starts.is_empty() {
        starts.push(0);
    }
    let mut tunes = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(text.len());
        if let Ok(tune) = parse_tune(&text[start..end])
            && tune.notes.iter().filter(|n| n.midi.is_some()).count() >= MIN_NOTES
        {
            tunes.push(tune);
        }
    }
    tunes
}

/// One tune's text from its `X:` line (or its header fields) to its end.
///
/// The header runs to the first `K:` field; the body ends at the first empty line after
/// it, at the next `X:` field, or at the end of the text.
pub fn parse_tune(text: &str) -> Result<Tune, AbcError> {
    let mut parser = Parser::new();
    let mut title: Option<String> = None;
    let mut header_meter: Option<Option<Meter>> = None;
    let mut header_unit: Option<f64> = None;
    let mut header_tempo: Option<String> = None;
    let mut in_body = false;
    let mut seen_x = false;

    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        parser.line = line_no;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if !in_body {
            if trimmed.starts_with('%') || trimmed.is_empty() {
                continue;
            }
            let Some((field, value)) = field_of(trimmed) else {
                // Free text (or music) before the key: not part of a header.
                continue;
            };
            match field {
                'X' => {
                    if seen_x {
                        // A second tune starts before this one had a key.
                        break;
                    }
                    seen_x = true;
                }
                'T' if title.is_none() => {
                    title = Some(strip_comment(value).trim().to_string());
                }
                'M' => header_meter = Some(parse_meter(value)),
                'L' => {
                    header_unit = Some(parse_unit(value).ok_or_else(|| AbcError::BadField {
                        line: line_no,
                        field: trimmed.to_string(),
                    })?);
                }
                'Q' if header_tempo.is_none() => header_tempo = Some(value.to_string()),
                'V' => parser.switch_voice(value),
                'K' => {
                    let meter = header_meter.unwrap_or(None);
                    parser.meter = meter;
                    parser.unit = header_unit.unwrap_or_else(|| default_unit(meter));
                    parser.key = parse_key(value);
                    // Music after the header belongs to the first voice.
                    parser.voice_active = true;
                    parser.tempo = header_tempo
                        .as_deref()
                        .and_then(|q| parse_tempo(q, parser.unit));
                    in_body = true;
                }
                _ => {}
            }
            continue;
        }

        // Tune body.
        if trimmed.is_empty() {
            break;
        }
        if trimmed.starts_with('%') {
            continue;
        }
        if let Some((field, value)) = field_of(trimmed)
            && is_body_field(field)
        {
            if field == 'X' {
                break;
            }
            parser.field(field, value, trimmed)?;
            continue;
        }
        parser.music_line(line)?;
    }

    if !in_body {
        return Err(AbcError::NoKey);
    }
    let mut notes = parser.notes;
    if !notes.iter().any(|n| n.midi.is_some()) {
        return Err(AbcError::Empty);
    }
    // Keep ties only between equal pitches.
    for k in 0..notes.len() {
        let next = notes.get(k + 1).map(|n| n.midi);
        let note = &mut notes[k];
        note.tied = note.tied && note.midi.is_some() && next == Some(note.midi);
    }
    Ok(Tune {
        title: title.unwrap_or_default(),
        tempo_qpm: parser.tempo,
        notes,
    })
}

/// A meter: its value in whole notes per bar and its numerator (for tuplet defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Meter {
    /// Bar length in whole notes (6/8 = 0.75).
    whole: f64,
    /// Numerator (6 for 6/8), used to tell compound meters.
    numerator: u32,
}

impl Meter {
    /// Compound meters (6/8, 9/8, 12/8) make `(5`, `(7`, `(9` tuplets take the time of 3.
    fn is_compound(self) -> bool {
        self.numerator > 3 && self.numerator.is_multiple_of(3)
    }
}

/// Semitones above C of the natural notes C D E F G A B.
const NATURAL: [i32; 7] = [0, 2, 4, 5, 7, 9, 11];
/// Letter indices (C = 0 .. B = 6) in the order sharps are added: F C G D A E B.
const SHARP_ORDER: [usize; 7] = [3, 0, 4, 1, 5, 2, 6];
/// Position on the circle of fifths of each natural letter's major key (C D E F G A B).
const LETTER_FIFTHS: [i32; 7] = [0, 2, 4, -1, 1, 3, 5];

/// Index 0..7 of a note letter (C D E F G A B), either case.
fn letter_index(c: char) -> Option<usize> {
    match c.to_ascii_uppercase() {
        'C' => Some(0),
        'D' => Some(1),
        'E' => Some(2),
        'F' => Some(3),
        'G' => Some(4),
        'A' => Some(5),
        'B' => Some(6),
        _ => None,
    }
}

/// True for the note letters A-G and a-g.
fn is_note_letter(c: char) -> bool {
    letter_index(c).is_some()
}

/// True for the letters that start a field line in a tune body: any but the note
/// letters and the music symbols `z x u v y` (so `e:|` or `z:|` stay music).
fn is_body_field(c: char) -> bool {
    !is_note_letter(c) && !matches!(c, 'z' | 'x' | 'u' | 'v' | 'y')
}

/// Splits a field line `F:value` into its letter and value (`+:` continuations too).
fn field_of(line: &str) -> Option<(char, &str)> {
    let mut chars = line.chars();
    let letter = chars.next()?;
    if !(letter.is_ascii_alphabetic() || letter == '+') || chars.next() != Some(':') {
        return None;
    }
    Some((letter, &line[2..]))
}

/// True when `line` is the field `letter:`.
fn is_field(line: &str, letter: char) -> bool {
    field_of(line).is_some_and(|(f, _)| f == letter)
}

/// A field value without its trailing `%` comment.
fn strip_comment(value: &str) -> &str {
    value.split('%').next().unwrap_or("")
}

/// Parses `a/b` (or `a`) as a positive fraction.
fn parse_fraction(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, den) = match s.split_once('/') {
        Some((n, d)) => (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?),
        None => (s.parse::<f64>().ok()?, 1.0),
    };
    let value = num / den;
    (value.is_finite() && value > 0.0).then_some(value)
}

/// An `L:` value in whole notes.
fn parse_unit(value: &str) -> Option<f64> {
    let v = strip_comment(value).trim();
    let end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '/' || c == ' '))
        .unwrap_or(v.len());
    parse_fraction(&v[..end])
}

/// An `M:` value: `None` for free meter (`none`, empty, unreadable).
fn parse_meter(value: &str) -> Option<Meter> {
    let v = strip_comment(value).trim();
    match v {
        "C" => {
            return Some(Meter {
                whole: 1.0,
                numerator: 4,
            });
        }
        "C|" => {
            return Some(Meter {
                whole: 1.0,
                numerator: 2,
            });
        }
        _ => {}
    }
    // Skip words such as "FREI" and keep the first `num/den` group.
    let start = v.find(|c: char| c.is_ascii_digit() || c == '(')?;
    let rest = &v[start..];
    let (num, den) = rest.split_once('/')?;
    let numerator: u32 = num
        .trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .split('+')
        .map(|p| p.trim().parse::<u32>().ok())
        .sum::<Option<u32>>()?;
    let den_digits: String = den
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let denominator: u32 = den_digits.parse().ok()?;
    if numerator == 0 || denominator == 0 {
        return None;
    }
    Some(Meter {
        whole: f64::from(numerator) / f64::from(denominator),
        numerator,
    })
}

/// The unit note length when `L:` is absent: 1/16 for meters below 3/4, else 1/8.
fn default_unit(meter: Option<Meter>) -> f64 {
    match meter {
        Some(m) if m.whole < 0.75 => 1.0 / 16.0,
        _ => 1.0 / 8.0,
    }
}

/// A `K:` value as the accidental (in semitones) of each letter C D E F G A B.
///
/// Unreadable keys (clef-only fields such as `K:treble`) give C major.
fn parse_key(value: &str) -> [i8; 7] {
    let v = strip_comment(value).trim();
    let mut acc = [0i8; 7];
    let mut rest = v;
    if v.len() >= 4 && v[..4].eq_ignore_ascii_case("none") {
        rest = &v[4..];
    } else if let Some(r) = v.strip_prefix("HP") {
        rest = r;
    } else if let Some(r) = v.strip_prefix("Hp") {
        // Highland pipes: F# and C# (G natural).
        acc[3] = 1;
        acc[0] = 1;
        rest = r;
    } else if let Some(tonic) = v.chars().next().filter(char::is_ascii_uppercase)
        && let Some(letter) = letter_index(tonic)
    {
        let mut fifths = LETTER_FIFTHS[letter];
        rest = &v[1..];
        if let Some(r) = rest.strip_prefix('#') {
            fifths += 7;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('b') {
            fifths -= 7;
            rest = r;
        }
        let after_space = rest.trim_start();
        let word_len = after_space
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_space.len());
        let word = after_space[..word_len].to_ascii_lowercase();
        let shift = match word.as_str() {
            "m" => Some(-3),
            // German names: Es, As (flat), Fis (sharp).
            "s" | "es" => Some(-7),
            "is" => Some(7),
            w if w.len() >= 3 => match &w[..3] {
                "maj" | "ion" => Some(0),
                "min" | "aeo" => Some(-3),
                "mix" => Some(-1),
                "dor" => Some(-2),
                "phr" => Some(-4),
                "lyd" => Some(1),
                "loc" => Some(-5),
                _ => None,
            },
            _ => None,
        };
        if let Some(shift) = shift {
            fifths += shift;
            rest = &after_space[word_len..];
        }
        if fifths > 0 {
            for i in 0..fifths as usize {
                acc[SHARP_ORDER[i % 7]] += 1;
            }
        } else {
            for i in 0..fifths.unsigned_abs() as usize {
                acc[SHARP_ORDER[6 - i % 7]] -= 1;
            }
        }
    }
    // Explicit accidentals (`K:D =c ^g`, `K:D exp _b _e`).
    for token in rest.split_whitespace() {
        if token.eq_ignore_ascii_case("exp") {
            acc = [0; 7];
            continue;
        }
        let semis: i8 = if token.starts_with("^^") {
            2
        } else if token.starts_with("__") {
            -2
        } else if token.starts_with('^') {
            1
        } else if token.starts_with('_') {
            -1
        } else if token.starts_with('=') {
            0
        } else {
            continue;
        };
        let letter = token.trim_start_matches(['^', '_', '=']).chars().next();
        if let Some(letter) = letter.and_then(letter_index) {
            acc[letter] = semis;
        }
    }
    acc
}

/// A `Q:` value in quarter notes per minute; `unit` is the `L:` length (whole notes).
fn parse_tempo(value: &str, unit: f64) -> Option<f64> {
    // Drop quoted text ("Allegro") and comments.
    let mut plain = String::new();
    let mut quoted = false;
    for c in strip_comment(value).chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted {
            plain.push(c);
        }
    }
    let number = |s: &str| -> Option<f64> {
        let digits: String = s
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        digits.parse::<f64>().ok()
    };
    let (beat_whole, per_minute) = match plain.split_once('=') {
        Some((lhs, rhs)) => {
            let per_minute = number(rhs)?;
            let lhs = lhs.trim();
            let beat = if lhs.is_empty() {
                unit
            } else if let Some(letter) = lhs.strip_prefix(|c: char| c.is_ascii_alphabetic()) {
                // Deprecated `Q:C=120`, `Q:C2=120`: multiples of the unit note.
                unit * parse_fraction(letter).unwrap_or(1.0)
            } else {
                lhs.split_whitespace()
                    .map(parse_fraction)
                    .sum::<Option<f64>>()?
            };
            (beat, per_minute)
        }
        // Deprecated `Q:120`: unit notes per minute.
        None => (unit, number(&plain)?),
    };
    let qpm = per_minute * beat_whole * 4.0;
    (qpm.is_finite() && qpm > 0.0).then_some(qpm)
}

/// The state of a tune body being read.
struct Parser {
    /// Unit note length in whole notes.
    unit: f64,
    /// Current meter (for `Z` rests and tuplet defaults).
    meter: Option<Meter>,
    /// Key-signature accidental of each letter C..B.
    key: [i8; 7],
    /// Accidentals written in the current bar, by natural MIDI pitch (letter + octave).
    bar_accidentals: HashMap<i32, i8>,
    /// The melody so far.
    notes: Vec<TuneNote>,
    /// Duration factor left for the next note by a broken rhythm (`>`, `<`).
    next_factor: f64,
    /// Active tuplet: duration factor and notes left.
    tuplet: Option<(f64, u32)>,
    /// Tempo in quarters per minute.
    tempo: Option<f64>,
    /// The first voice named by a `V:` field; only its music is read.
    first_voice: Option<String>,
    /// False while another voice than the first is being written.
    voice_active: bool,
    /// True from a voice overlay `&` to the next bar line.
    in_overlay: bool,
    /// Current line number (1-based) for errors.
    line: usize,
}

impl Parser {
    fn new() -> Self {
        Self {
            unit: 1.0 / 8.0,
            meter: None,
            key: [0; 7],
            bar_accidentals: HashMap::new(),
            notes: Vec::new(),
            next_factor: 1.0,
            tuplet: None,
            tempo: None,
            first_voice: None,
            voice_active: true,
            in_overlay: false,
            line: 0,
        }
    }

    /// A `V:` field: reading continues only while in the first voice named.
    fn switch_voice(&mut self, value: &str) {
        let id = strip_comment(value)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        match &self.first_voice {
            None => {
                self.first_voice = Some(id);
                self.voice_active = true;
            }
            Some(first) => self.voice_active = *first == id,
        }
    }

    /// A field in the body (a field line or an inline `[F:..]`).
    fn field(&mut self, field: char, value: &str, text: &str) -> Result<(), AbcError> {
        match field {
            'K' => self.key = parse_key(value),
            'L' => {
                self.unit = parse_unit(value).ok_or_else(|| AbcError::BadField {
                    line: self.line,
                    field: text.to_string(),
                })?;
            }
            'M' => self.meter = parse_meter(value),
            'Q' if self.tempo.is_none() => self.tempo = parse_tempo(value, self.unit),
            'V' => self.switch_voice(value),
            _ => {}
        }
        Ok(())
    }

    fn bad_note(&self, chars: &[char], start: usize, end: usize) -> AbcError {
        let start = start.min(chars.len());
        let end = end.max(start + 1).min(chars.len());
        AbcError::BadNote {
            line: self.line,
            token: chars[start..end].iter().collect(),
        }
    }

    /// Appends a note or rest of `multiplier` unit lengths, applying any pending
    /// broken rhythm and tuplet.
    fn emit(&mut self, midi: Option<u8>, multiplier: f64, tied: bool) {
        let mut quarters = self.unit * 4.0 * multiplier * self.next_factor;
        self.next_factor = 1.0;
        if let Some((factor, left)) = self.tuplet {
            quarters *= factor;
            self.tuplet = (left > 1).then_some((factor, left - 1));
        }
        self.notes.push(TuneNote {
            midi,
            quarters,
            tied,
        });
    }

    /// Clears the bar's accidentals (and any voice overlay) at a bar line.
    fn bar_line(&mut self) {
        self.bar_accidentals.clear();
        self.in_overlay = false;
    }

    /// Reads one line of music.
    fn music_line(&mut self, line: &str) -> Result<(), AbcError> {
        let chars: Vec<char> = line.chars().collect();
        let n = chars.len();
        let at = |k: usize| chars.get(k).copied();
        let mut i = 0;
        while i < n {
            let c = chars[i];
            // Inline fields are read in every voice (they may switch back to ours).
            if c == '['
                && at(i + 1).is_some_and(|c| c.is_ascii_alphabetic())
                && at(i + 2) == Some(':')
            {
                let end = (i + 3..n).find(|&k| chars[k] == ']').unwrap_or(n);
                let value: String = chars[i + 3..end].iter().collect();
                let text: String = chars[i..(end + 1).min(n)].iter().collect();
                self.field(chars[i + 1], &value, &text)?;
                i = end + 1;
                continue;
            }
            if c == '%' {
                break;
            }
            if c == '"' {
                // Chord symbol or annotation (can hide any character, even bar lines).
                i = (i + 1..n).find(|&k| chars[k] == '"').map_or(n, |k| k + 1);
                continue;
            }
            if c == '|' || c == ':' || (c == '[' && at(i + 1) == Some('|')) {
                i = self.skip_bar(&chars, i);
                continue;
            }
            if !self.voice_active || self.in_overlay {
                i += 1;
                continue;
            }
            match c {
                '!' | '+' => {
                    // `!trill!` / `+trill+`; a lone `!` is an old line break.
                    let close = (i + 1..n.min(i + 40)).find(|&k| chars[k] == c);
                    let is_decoration = close.is_some_and(|k| {
                        chars[i + 1..k]
                            .iter()
                            .all(|ch| !ch.is_whitespace() && *ch != '|')
                    });
                    i = match close {
                        Some(k) if is_decoration => k + 1,
                        _ => i + 1,
                    };
                }
                '{' => {
                    // Grace notes take no time.
                    i = (i + 1..n).find(|&k| chars[k] == '}').map_or(n, |k| k + 1);
                }
                '[' if at(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    // Variant ending `[1`, `[2`: ignored.
                    i = skip_ending(&chars, i + 1);
                }
                '[' => i = self.chord(&chars, i)?,
                '(' if at(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    i = self.tuplet(&chars, i + 1);
                }
                '-' => {
                    if let Some(last) = self.notes.last_mut()
                        && last.midi.is_some()
                    {
                        last.tied = true;
                    }
                    i += 1;
                }
                '>' | '<' => {
                    let run = chars[i..].iter().take_while(|&&ch| ch == c).count();
                    let short = 0.5f64.powi(run.min(3) as i32);
                    let (before, after) = if c == '>' {
                        (2.0 - short, short)
                    } else {
                        (short, 2.0 - short)
                    };
                    if let Some(last) = self.notes.last_mut() {
                        last.quarters *= before;
                    }
                    self.next_factor = after;
                    i += run;
                }
                '^' | '_' | '=' if !accidental_has_note(&chars, i) => {
                    // A stray accidental (a typo such as `e=>g` or `^3`): skipped.
                    i += 1;
                }
                '^' | '_' | '=' | 'A'..='G' | 'a'..='g' => {
                    let (midi, next) = self.pitch(&chars, i)?;
                    let (multiplier, next) = self.length(&chars, i, next)?;
                    self.emit(Some(midi), multiplier, false);
                    i = next;
                }
                'z' | 'x' => {
                    let (multiplier, next) = self.length(&chars, i, i + 1)?;
                    self.emit(None, multiplier, false);
                    i = next;
                }
                'Z' | 'X' => {
                    // Multi-measure rest: `Z` is one bar, `Z4` four.
                    let digits = chars[i + 1..]
                        .iter()
                        .take_while(|ch| ch.is_ascii_digit())
                        .count();
                    let bars: f64 = if digits == 0 {
                        1.0
                    } else {
                        chars[i + 1..i + 1 + digits]
                            .iter()
                            .collect::<String>()
                            .parse()
                            .unwrap_or(1.0)
                    };
                    if let Some(meter) = self.meter {
                        self.notes.push(TuneNote {
                            midi: None,
                            quarters: bars * meter.whole * 4.0,
                            tied: false,
                        });
                    }
                    i += 1 + digits;
                }
                '&' => {
                    // Voice overlay: a second voice until the bar line.
                    self.in_overlay = true;
                    i += 1;
                }
                // Spaces, slurs, single-character decorations (. ~ H L M O P S T u v),
                // beam breaks, line continuations, stray characters.
                _ => i += 1,
            }
        }
        Ok(())
    }

    /// Skips a bar line starting at `start` (`|`, `||`, `|]`, `[|`, `:|`, `|:`, `::`,
    /// with any variant-ending number after it) and clears the bar's accidentals.
    fn skip_bar(&mut self, chars: &[char], start: usize) -> usize {
        let mut i = start;
        if chars[i] == '[' {
            i += 1;
        }
        while i < chars.len() && matches!(chars[i], '|' | ':') {
            i += 1;
            if chars[i - 1] == '|' && chars.get(i) == Some(&']') {
                i += 1;
            }
        }
        self.bar_line();
        if chars.get(i).is_some_and(char::is_ascii_digit) {
            i = skip_ending(chars, i);
        }
        i
    }

    /// Reads a pitch (accidentals, letter, octave marks) at `start`; returns its MIDI
    /// number and the index after it. Explicit accidentals are remembered for the bar.
    fn pitch(&mut self, chars: &[char], start: usize) -> Result<(u8, usize), AbcError> {
        let mut i = start;
        let mut explicit: Option<i8> = None;
        while let Some(&c) = chars.get(i) {
            let semis = match c {
                '^' => 1,
                '_' => -1,
                '=' => 0,
                _ => break,
            };
            explicit = Some(match explicit {
                Some(prev) if semis != 0 && prev.signum() == semis => prev + semis,
                _ => semis,
            });
            i += 1;
        }
        let letter = chars.get(i).copied();
        let Some(index) = letter.and_then(letter_index) else {
            return Err(self.bad_note(chars, start, i + 1));
        };
        let mut octave: i32 = if letter.is_some_and(|c| c.is_ascii_lowercase()) {
            1
        } else {
            0
        };
        i += 1;
        while let Some(&c) = chars.get(i) {
            match c {
                '\'' => octave += 1,
                ',' => octave -= 1,
                _ => break,
            }
            i += 1;
        }
        let natural = 60 + NATURAL[index] + 12 * octave;
        let accidental = match explicit {
            Some(a) => {
                self.bar_accidentals.insert(natural, a);
                a
            }
            None => self
                .bar_accidentals
                .get(&natural)
                .copied()
                .unwrap_or(self.key[index]),
        };
        let midi = natural + i32::from(accidental);
        let midi = u8::try_from(midi)
            .ok()
            .filter(|&m| m <= 127)
            .ok_or_else(|| self.bad_note(chars, start, i))?;
        Ok((midi, i))
    }

    /// Reads a length multiplier (`2`, `/2`, `/`, `//`, `3/2`, `3/`) at `at`; returns it
    /// and the index after it. `start` is where the note began (for errors).
    fn length(&self, chars: &[char], start: usize, at: usize) -> Result<(f64, usize), AbcError> {
        let mut i = at;
        let read_number = |i: &mut usize| -> Option<Option<u32>> {
            let from = *i;
            while chars.get(*i).is_some_and(char::is_ascii_digit) {
                *i += 1;
            }
            if *i == from {
                return Some(None);
            }
            let text: String = chars[from..*i].iter().collect();
            text.parse::<u32>().ok().filter(|&v| v > 0).map(Some)
        };
        let bad = |i: usize| self.bad_note(chars, start, i);
        let numerator = read_number(&mut i).ok_or_else(|| bad(i))?.unwrap_or(1);
        let mut denominator = 1.0f64;
        while chars.get(i) == Some(&'/') {
            i += 1;
            denominator *= f64::from(read_number(&mut i).ok_or_else(|| bad(i))?.unwrap_or(2));
        }
        Ok((f64::from(numerator) / denominator, i))
    }

    /// Reads a chord `[CEG]2` at `start` and emits its highest note; returns the index
    /// after it. The duration is the first note's, times the length after the bracket.
    fn chord(&mut self, chars: &[char], start: usize) -> Result<usize, AbcError> {
        let mut i = start + 1;
        let mut highest: Option<u8> = None;
        let mut first_length: Option<f64> = None;
        let mut tied = false;
        while i < chars.len() && chars[i] != ']' {
            match chars[i] {
                '^' | '_' | '=' if !accidental_has_note(chars, i) => i += 1,
                '^' | '_' | '=' | 'A'..='G' | 'a'..='g' => {
                    let (midi, next) = self.pitch(chars, i)?;
                    let (multiplier, next) = self.length(chars, i, next)?;
                    highest = highest.max(Some(midi));
                    first_length.get_or_insert(multiplier);
                    i = next;
                }
                '-' => {
                    tied = true;
                    i += 1;
                }
                '"' => {
                    i = (i + 1..chars.len())
                        .find(|&k| chars[k] == '"')
                        .map_or(chars.len(), |k| k + 1);
                }
                '!' => {
                    i = (i + 1..chars.len())
                        .find(|&k| chars[k] == '!')
                        .map_or(i + 1, |k| k + 1);
                }
                _ => i += 1,
            }
        }
        if i >= chars.len() {
            // Unclosed chord: whatever was read stands as a chord of its own.
            if let (Some(midi), Some(length)) = (highest, first_length) {
                self.emit(Some(midi), length, tied);
            }
            return Ok(i);
        }
        let (after, next) = self.length(chars, start, i + 1)?;
        if let (Some(midi), Some(length)) = (highest, first_length) {
            self.emit(Some(midi), length * after, tied);
        }
        let mut next = next;
        if chars.get(next) == Some(&'-') {
            if let Some(last) = self.notes.last_mut()
                && last.midi.is_some()
            {
                last.tied = true;
            }
            next += 1;
        }
        Ok(next)
    }

    /// Reads a tuplet `(p`, `(p:q`, `(p:q:r` whose digits start at `at`.
    fn tuplet(&mut self, chars: &[char], at: usize) -> usize {
        let mut i = at;
        let mut numbers: [Option<u32>; 3] = [None; 3];
        for (slot, number) in numbers.iter_mut().enumerate() {
            if slot > 0 {
                if chars.get(i) != Some(&':') {
                    break;
                }
                i += 1;
            }
            let from = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            *number = chars[from..i]
                .iter()
                .collect::<String>()
                .parse()
                .ok()
                .filter(|&v: &u32| v > 0);
        }
        let Some(p) = numbers[0] else {
            return i;
        };
        let compound = self.meter.is_some_and(Meter::is_compound);
        let q = numbers[1].unwrap_or(match p {
            2 | 4 | 8 => 3,
            3 | 6 => 2,
            _ if compound => 3,
            _ => 2,
        });
        let r = numbers[2].unwrap_or(p);
        if p > 1 {
            self.tuplet = Some((f64::from(q) / f64::from(p), r));
        }
        i
    }
}

/// True when the accidentals starting at `at` are followed by a note letter.
fn accidental_has_note(chars: &[char], at: usize) -> bool {
    chars[at..]
        .iter()
        .find(|c| !matches!(c, '^' | '_' | '='))
        .is_some_and(|&c| is_note_letter(c))
}

/// Skips a variant-ending number list (`1`, `1,3`, `1-2`) starting at `at`.
fn skip_ending(chars: &[char], at: usize) -> usize {
    let mut i = at;
    while let Some(&c) = chars.get(i) {
        let is_separator =
            (c == ',' || c == '-') && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_ascii_digit() || is_separator {
            i += 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn midis(tune: &Tune) -> Vec<Option<u8>> {
        tune.notes.iter().map(|n| n.midi).collect()
    }

    fn quarters(tune: &Tune) -> Vec<f64> {
        tune.notes.iter().map(|n| n.quarters).collect()
    }

    fn key(k: &str) -> Vec<u8> {
        let tune = parse_tune(&format!("X:1\nL:1/4\nK:{k}\nCDEFGAB\n")).unwrap();
        tune.notes.iter().map(|n| n.midi.unwrap()).collect()
    }

    #[test]
    fn hand_written_tune() {
        let text = "X:7\nT:Test Tune\nT:Second title\nC:Someone\nM:4/4\nL:1/8\nQ:1/4=100\nR:reel\nK:G % one sharp\n\
                    F ^c c =F F | F C, c' z2 |\n\
                    A>B c<d (3efg A2- | A [CEG]2 {ga}B \"Am\"!trill!.~TuB/ B// |\\\n\
                    % a comment\n\
                    w: some lyrics\n\
                    _B3/2 B3/ |[1 x |2 Z [CE2G] :| A | z4 c\n";
        let tune = parse_tune(text).unwrap();
        assert_eq!(tune.title, "Test Tune");
        assert_eq!(tune.tempo_qpm, Some(100.0));
        let expected: Vec<(Option<u8>, f64)> = vec![
            // Bar 1: F# from the key, ^c carries to the next c, =F carries.
            (Some(66), 0.5),
            (Some(73), 0.5),
            (Some(73), 0.5),
            (Some(65), 0.5),
            (Some(65), 0.5),
            // Bar 2: accidentals reset; octave marks; a rest of two units.
            (Some(66), 0.5),
            (Some(48), 0.5),
            (Some(84), 0.5),
            (None, 1.0),
            // Bar 3: broken rhythms, a triplet, a tie.
            (Some(69), 0.75),
            (Some(71), 0.25),
            (Some(72), 0.25),
            (Some(74), 0.75),
            (Some(76), 1.0 / 3.0),
            (Some(78), 1.0 / 3.0),
            (Some(79), 1.0 / 3.0),
            (Some(69), 1.0),
            // Bar 4: the tied A, a chord (highest note), grace notes skipped,
            // decorations and a chord symbol skipped, short notes.
            (Some(69), 0.5),
            (Some(67), 1.0),
            (Some(71), 0.5),
            (Some(71), 0.25),
            (Some(71), 0.125),
            // Bar 5 (after the continuation, comment and lyrics): _B carries.
            (Some(70), 0.75),
            (Some(70), 0.75),
            // Endings ignored; x is a rest, Z a bar of rest; the chord takes the
            // first note's length.
            (None, 0.5),
            (None, 4.0),
            (Some(67), 0.5),
            (Some(69), 0.5),
            (None, 2.0),
            (Some(72), 0.5),
        ];
        let got: Vec<(Option<u8>, f64)> = tune.notes.iter().map(|n| (n.midi, n.quarters)).collect();
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g.0, e.0, "note {k}: {got:?}");
            assert!((g.1 - e.1).abs() < 1e-12, "note {k}: {g:?} vs {e:?}");
        }
        let tied: Vec<usize> = (0..tune.notes.len())
            .filter(|&k| tune.notes[k].tied)
            .collect();
        assert_eq!(tied, vec![16]);
    }

    #[test]
    fn key_signatures() {
        //              C   D   E   F   G   A   B
        assert_eq!(key("C"), [60, 62, 64, 65, 67, 69, 71]);
        assert_eq!(key("G"), [60, 62, 64, 66, 67, 69, 71]);
        assert_eq!(key("Ador"), [60, 62, 64, 66, 67, 69, 71]);
        assert_eq!(key("A dorian"), [60, 62, 64, 66, 67, 69, 71]);
        assert_eq!(key("Gmix"), [60, 62, 64, 65, 67, 69, 71]);
        assert_eq!(key("D Mixolydian"), [60, 62, 64, 66, 67, 69, 71]);
        assert_eq!(key("Am"), [60, 62, 64, 65, 67, 69, 71]);
        assert_eq!(key("E Minor"), [60, 62, 64, 66, 67, 69, 71]);
        assert_eq!(key("Bb"), [60, 62, 63, 65, 67, 69, 70]);
        assert_eq!(key("Gm"), [60, 62, 63, 65, 67, 69, 70]);
        assert_eq!(key("F#m"), [61, 62, 64, 66, 68, 69, 71]);
        assert_eq!(key("F#"), [61, 63, 65, 66, 68, 70, 71]);
        assert_eq!(key("Eb"), [60, 62, 63, 65, 67, 68, 70]);
        assert_eq!(key("Ephr"), [60, 62, 64, 65, 67, 69, 71]);
        assert_eq!(key("Flyd"), [60, 62, 64, 65, 67, 69, 71]);
        assert_eq!(key("Bloc"), [60, 62, 64, 65, 67, 69, 71]);
        assert_eq!(key("Cm"), [60, 62, 63, 65, 67, 68, 70]);
        assert_eq!(key("HP"), [60, 62, 64, 65, 67, 69, 71]);
        assert_eq!(key("Hp"), [61, 62, 64, 66, 67, 69, 71]);
        assert_eq!(key("none"), [60, 62, 64, 65, 67, 69, 71]);
        assert_eq!(key("D =c"), [60, 62, 64, 66, 67, 69, 71]);
        assert_eq!(key("C exp _b _e"), [60, 62, 63, 65, 67, 69, 70]);
        assert_eq!(key("Es"), [60, 62, 63, 65, 67, 68, 70]);
        assert_eq!(key("G clef=bass % comment"), [60, 62, 64, 66, 67, 69, 71]);
    }

    #[test]
    fn default_lengths_meters_and_inline_fields() {
        // L: absent: 1/16 below 3/4, 1/8 otherwise (and for M:none, M:C, M:C|).
        let q = |m: &str| quarters(&parse_tune(&format!("X:1\nM:{m}\nK:C\nC\n")).unwrap())[0];
        assert_eq!(q("2/4"), 0.25);
        assert_eq!(q("3/4"), 0.5);
        assert_eq!(q("6/8"), 0.5);
        assert_eq!(q("none"), 0.5);
        assert_eq!(q("C"), 0.5);
        assert_eq!(q("C|"), 0.5);
        assert_eq!(
            quarters(&parse_tune("X:1\nK:C\nC\n").unwrap())[0],
            0.5,
            "no meter"
        );
        let tune = parse_tune(
            "X:1\nM:4/4\nL:1/4\nK:C\nC [L:1/8] C [K:F] B [M:6/8] (3CDE\nL:1/2\nC\nK:D\nF\n",
        )
        .unwrap();
        assert_eq!(
            quarters(&tune),
            [1.0, 0.5, 0.5, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 2.0, 2.0]
        );
        assert_eq!(midis(&tune)[2], Some(70));
        assert_eq!(midis(&tune)[7], Some(66));
        // Compound meter: (5 is five in the time of three.
        let tune = parse_tune("X:1\nM:6/8\nL:1/8\nK:C\n(5CDEFG (3:2:2AB c\n").unwrap();
        let got = quarters(&tune);
        for g in &got[..5] {
            assert!((g - 0.3).abs() < 1e-12);
        }
        assert_eq!(&got[5..], [1.0 / 3.0, 1.0 / 3.0, 0.5]);
    }

    #[test]
    fn tempo_forms() {
        let t = |q: &str| {
            parse_tune(&format!("X:1\nL:1/8\nQ:{q}\nK:C\nC\n"))
                .unwrap()
                .tempo_qpm
        };
        assert_eq!(t("1/4=120"), Some(120.0));
        assert_eq!(t("3/8=40"), Some(60.0));
        assert_eq!(t("1/8 3/8=40"), Some(80.0));
        assert_eq!(t("\"Allegro\" 1/4=96"), Some(96.0));
        assert_eq!(t("80"), Some(40.0));
        assert_eq!(t("C2=60"), Some(60.0));
        assert_eq!(t("Allegro"), None);
        assert_eq!(
            parse_tune("X:1\nK:C\n[Q:1/2=60] C\n").unwrap().tempo_qpm,
            Some(120.0)
        );
    }

    #[test]
    fn accidentals_are_per_octave_and_ties_need_equal_pitch() {
        let tune = parse_tune("X:1\nL:1/4\nK:C\n^c c C- C D- E | c\n").unwrap();
        assert_eq!(
            midis(&tune),
            [
                Some(73),
                Some(73),
                Some(60),
                Some(60),
                Some(62),
                Some(64),
                Some(72)
            ]
        );
        let tied: Vec<bool> = tune.notes.iter().map(|n| n.tied).collect();
        assert_eq!(tied, [false, false, true, false, false, false, false]);
        let tune = parse_tune("X:1\nL:1/4\nK:C\n^^C __D =E ^C, C,\n").unwrap();
        assert_eq!(
            midis(&tune),
            [Some(62), Some(60), Some(64), Some(49), Some(49)]
        );
    }

    #[test]
    fn voices_and_overlays() {
        let text = "X:1\nL:1/4\nV:1\nV:2\nK:C\nV:1\nC D & E F | G\nV:2\nA B\n[V:1] c\n";
        let tune = parse_tune(text).unwrap();
        assert_eq!(midis(&tune), [Some(60), Some(62), Some(67), Some(72)]);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_tune("X:1\nT:x\nCDE\n"),
            Err(AbcError::NoKey)
        ));
        assert!(matches!(
            parse_tune("X:1\nK:C\n| z2 |]\n"),
            Err(AbcError::Empty)
        ));
        // A stray accidental is skipped, not an error.
        let tune = parse_tune("X:1\nL:1/4\nK:C\nCD ^| E =>F ^3\n").unwrap();
        assert_eq!(midis(&tune), [Some(60), Some(62), Some(64), Some(65)]);
        assert_eq!(quarters(&tune), [1.0, 1.0, 1.5, 0.5]);
        assert!(matches!(
            parse_tune("X:1\nK:C\nC/0\n"),
            Err(AbcError::BadNote { line: 3, .. })
        ));
        assert!(matches!(
            parse_tune("X:1\nK:C\nc''''''''\n"),
            Err(AbcError::BadNote { .. })
        ));
        assert!(matches!(
            parse_tune("X:1\nL:x\nK:C\nC\n"),
            Err(AbcError::BadField { line: 2, .. })
        ));
    }

    #[test]
    fn book_splits_tunes_and_skips_short_or_bad_ones() {
        let book = "%abc-2.1\nFree text before the tunes.\n\n\
                    X:1\nT:One\nK:D\nDEFG ABcd|\n\nThis is text after tune one.\n\n\
                    X:2\nT:Short\nK:C\nCDE|\n\n\
                    X:3\nT:No key\nCDEFGABc\n\n\
                    X:4\nT:Bad\nK:C\nCDEFGABc/0|\n\n\
                    X: 5\nT:Five\nM:2/4\nK:Am\nABcd efga|\n";
        let tunes = parse_book(book);
        let titles: Vec<&str> = tunes.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles, ["One", "Five"]);
        assert_eq!(midis(&tunes[0])[2], Some(66));
        assert_eq!(tunes[1].notes[0].quarters, 0.25);
        // A text without X: is one tune.
        assert_eq!(parse_book("T:Solo\nK:C\nCDEFGABc\n").len(), 1);
    }
}
