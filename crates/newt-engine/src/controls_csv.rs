//! Control files: one frame per line, `f0_hz,loudness_db` (Hz, dB in the model's loudness
//! measure), an optional header line and `#` comments. What `cargo xtask render --controls`
//! reads and `--controls-out` writes.

use crate::controls::FrameControls;

/// Why a control file could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ControlsCsvError {
    /// A line (1-based) that is not two numbers (shown cut to 80 characters).
    #[error("line {line}: expected `f0_hz,loudness_db`, got {text:?}")]
    BadLine { line: usize, text: String },
    /// No frame at all.
    #[error("the file holds no control frames")]
    Empty,
}

/// Parses a control file's text. Values are taken as written: the engine bounds them
/// (`FrameControls::sanitized`) when it plays them.
pub fn parse_controls_csv(text: &str) -> Result<Vec<FrameControls>, ControlsCsvError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split(',').map(str::trim);
        let (a, b) = (cols.next().unwrap_or(""), cols.next().unwrap_or(""));
        match (a.parse::<f32>(), b.parse::<f32>()) {
            (Ok(f0_hz), Ok(loudness_db)) => out.push(FrameControls { f0_hz, loudness_db }),
            _ if n == 0 && out.is_empty() => continue, // header
            _ => {
                return Err(ControlsCsvError::BadLine {
                    line: n + 1,
                    text: line.chars().take(80).collect(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(ControlsCsvError::Empty);
    }
    Ok(out)
}

/// The text of a control file with a header line.
pub fn format_controls_csv(controls: &[FrameControls]) -> String {
    let mut text = String::from("f0_hz,loudness_db\n");
    for c in controls {
        text.push_str(&format!("{},{}\n", c.f0_hz, c.loudness_db));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_names_the_bad_line() {
        let c = vec![
            FrameControls {
                f0_hz: 440.0,
                loudness_db: -20.5,
            },
            FrameControls {
                f0_hz: 0.0,
                loudness_db: -120.0,
            },
        ];
        assert_eq!(parse_controls_csv(&format_controls_csv(&c)), Ok(c));
        assert_eq!(
            parse_controls_csv("f0,l\n1,2\nx,3\n"),
            Err(ControlsCsvError::BadLine {
                line: 3,
                text: "x,3".into()
            })
        );
        assert_eq!(
            parse_controls_csv("# nothing\n\n"),
            Err(ControlsCsvError::Empty)
        );
    }
}
