//! A word-level vocabulary over lower-cased, whitespace-separated text: the most frequent
//! words, an unknown-word token and an end-of-sentence token.

use std::collections::HashMap;

pub const UNKNOWN: &str = "<unk>";
pub const END: &str = "<eos>";

#[derive(Debug, Clone)]
pub struct Vocabulary {
    words: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    /// The `size - 2` most frequent words of `sentences` (ties broken alphabetically, so
    /// the vocabulary is deterministic) after `<unk>` (id 0) and `<eos>` (id 1).
    pub fn build<'a>(sentences: impl IntoIterator<Item = &'a str>, size: usize) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for s in sentences {
            for w in s.split_whitespace() {
                *counts.entry(w.to_lowercase()).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let words: Vec<String> = [UNKNOWN.to_string(), END.to_string()]
            .into_iter()
            .chain(ranked.into_iter().map(|(w, _)| w))
            .take(size.max(2))
            .collect();
        Self::from_words(words).expect("starts with <unk> and <eos>")
    }

    /// A saved vocabulary, id order; None unless it starts with `<unk>`, `<eos>`.
    pub fn from_words(words: Vec<String>) -> Option<Self> {
        if words.len() < 2 || words[0] != UNKNOWN || words[1] != END {
            return None;
        }
        let ids = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        Some(Self { words, ids })
    }

    /// Every word, id order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word` (lower-cased), or `<unk>`'s.
    pub fn id(&self, word: &str) -> u32 {
        self.ids.get(&word.to_lowercase()).copied().unwrap_or(0)
    }

    /// Whether `word` (lower-cased) has its own id.
    pub fn contains(&self, word: &str) -> bool {
        self.ids.contains_key(&word.to_lowercase())
    }

    pub fn word(&self, id: u32) -> &str {
        self.words.get(id as usize).map_or(UNKNOWN, String::as_str)
    }

    /// A sentence's ids followed by `<eos>`.
    pub fn encode(&self, sentence: &str) -> Vec<u32> {
        sentence
            .split_whitespace()
            .map(|w| self.id(w))
            .chain(std::iter::once(1))
            .collect()
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&i| self.word(i))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_frequent_words_get_ids_and_the_rest_are_unknown() {
        let v = Vocabulary::build(["The man and the woman", "the doctor"], 5);
        // <unk>, <eos>, then "the" (3), then the ties alphabetically: "and", "doctor".
        assert_eq!(v.len(), 5);
        assert_eq!(v.word(2), "the");
        assert_eq!(v.id("The"), 2);
        assert_eq!(v.word(3), "and");
        assert_eq!(v.id("woman"), 0);
        assert!(!v.contains("man"));
        assert_eq!(v.encode("the doctor left"), vec![2, 4, 0, 1]);
        assert_eq!(v.decode(&[2, 4, 0, 1]), "the doctor <unk> <eos>");
    }
}
