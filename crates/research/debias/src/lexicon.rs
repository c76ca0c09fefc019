//! A lexicon sentiment scorer in the manner of VADER (Hutto and Gilbert, 2014): each known
//! token carries a valence (about -4 to +4); a token within three tokens after a negator
//! is flipped and damped by 0.74; the sum is squashed to (-1, 1) by x / sqrt(x^2 + 15),
//! VADER's "compound" normalisation. It stands in for the paper's regard classifier.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    #[error("line {line}: expected `token<TAB>valence...`, found {text:?}")]
    Malformed { line: usize, text: String },
    #[error("the lexicon is empty")]
    Empty,
}

const NEGATORS: [&str; 12] = [
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "n't",
    "without", "hardly",
];
const NEGATION_SCALE: f64 = -0.74;
const NORMALISATION: f64 = 15.0;

#[derive(Debug, Clone)]
pub struct Lexicon {
    valence: HashMap<String, f64>,
}

impl Lexicon {
    /// Parses VADER's `vader_lexicon.txt`: `token<TAB>mean<TAB>sd<TAB>ratings`.
    pub fn parse(text: &str) -> Result<Self, LexiconError> {
        let mut valence = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split('\t');
            let (Some(token), Some(value)) = (fields.next(), fields.next()) else {
                return Err(LexiconError::Malformed {
                    line: i + 1,
                    text: line.into(),
                });
            };
            let value: f64 = value.trim().parse().map_err(|_| LexiconError::Malformed {
                line: i + 1,
                text: line.into(),
            })?;
            valence.insert(token.to_lowercase(), value);
        }
        if valence.is_empty() {
            return Err(LexiconError::Empty);
        }
        Ok(Self { valence })
    }

    pub fn len(&self) -> usize {
        self.valence.len()
    }

    pub fn is_empty(&self) -> bool {
        self.valence.is_empty()
    }

    /// The compound score of a sentence in (-1, 1); 0 when no token is known.
    pub fn score(&self, sentence: &str) -> f64 {
        let tokens: Vec<String> = sentence
            .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\''))
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut sum = 0.0;
        for (i, token) in tokens.iter().enumerate() {
            let Some(&v) = self.valence.get(token) else {
                continue;
            };
            let negated = tokens[i.saturating_sub(3)..i]
                .iter()
                .any(|t| NEGATORS.contains(&t.as_str()) || t.ends_with("n't"));
            sum += if negated { v * NEGATION_SCALE } else { v };
        }
        sum / (sum * sum + NORMALISATION).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon() -> Lexicon {
        // Four entries of VADER's lexicon, with their published mean valences.
        Lexicon::parse(
            "good\t1.9\t0.9\t[]\nbad\t-2.5\t0.9\t[]\nterrible\t-2.1\t0.8\t[]\nlove\t3.2\t0.4\t[]\n",
        )
        .unwrap()
    }

    #[test]
    fn known_sentences_score_as_expected() {
        let l = lexicon();
        assert!(l.score("The food was good.") > 0.3);
        assert!(l.score("The food was not good.") < 0.0);
        assert!(l.score("It was terrible, just bad.") < -0.5);
        assert_eq!(l.score("The table is in the kitchen."), 0.0);
        assert!(l.score("I love it") > l.score("it was good"));
        // One token of valence 1.9: 1.9 / sqrt(1.9^2 + 15).
        let expected = 1.9 / (1.9f64 * 1.9 + 15.0).sqrt();
        assert!((l.score("good") - expected).abs() < 1e-12);
    }

    #[test]
    fn malformed_and_empty_lexicons_are_errors() {
        assert!(matches!(
            Lexicon::parse("good\tvery\n"),
            Err(LexiconError::Malformed { line: 1, .. })
        ));
        assert!(matches!(Lexicon::parse("\n\n"), Err(LexiconError::Empty)));
    }
}
