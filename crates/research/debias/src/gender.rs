//! Gendered words: the definitional pairs the bias direction is built from, the
//! female/male word pairs used to swap a context into its counterfactual, and the
//! labelling of corpus sentences by the gender they mention.

/// The definitional pairs of Liang et al. (after Bolukbasi et al.), (female, male).
pub const DEFINITIONAL_PAIRS: [(&str, &str); 11] = [
    ("woman", "man"),
    ("girl", "boy"),
    ("she", "he"),
    ("mother", "father"),
    ("daughter", "son"),
    ("gal", "guy"),
    ("female", "male"),
    ("her", "his"),
    ("herself", "himself"),
    ("mary", "john"),
    ("mom", "dad"),
];

/// Female/male word pairs for counterfactual swaps (lower case). "her" maps to "his"
/// (its possessive reading; the object reading "him" is lost), "him" and "his" to "her".
const SWAP_PAIRS: [(&str, &str); 30] = [
    ("woman", "man"),
    ("women", "men"),
    ("girl", "boy"),
    ("girls", "boys"),
    ("she", "he"),
    ("her", "his"),
    ("hers", "his"),
    ("herself", "himself"),
    ("mother", "father"),
    ("mothers", "fathers"),
    ("daughter", "son"),
    ("daughters", "sons"),
    ("sister", "brother"),
    ("sisters", "brothers"),
    ("wife", "husband"),
    ("wives", "husbands"),
    ("aunt", "uncle"),
    ("niece", "nephew"),
    ("queen", "king"),
    ("lady", "gentleman"),
    ("ladies", "gentlemen"),
    ("mrs.", "mr."),
    ("female", "male"),
    ("mary", "john"),
    ("mom", "dad"),
    ("gal", "guy"),
    ("grandmother", "grandfather"),
    ("bride", "groom"),
    ("actress", "actor"),
    ("her", "him"),
];

/// The gender a word marks, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Female,
    Male,
}

/// The gender `word` (any case) marks, or None.
pub fn gender_of(word: &str) -> Option<Gender> {
    let w = word.to_lowercase();
    if SWAP_PAIRS.iter().any(|(f, _)| *f == w) {
        Some(Gender::Female)
    } else if SWAP_PAIRS.iter().any(|(_, m)| *m == w) {
        Some(Gender::Male)
    } else {
        None
    }
}

/// The word of the other gender in the original's case ("She" -> "He", "HIS" -> "HER"),
/// or the word itself unchanged: a cased model sees the pair differ in gender only.
pub fn swap_word(word: &str) -> String {
    let w = word.to_lowercase();
    // The first pair listing the word wins ("her" -> "his").
    for (f, m) in SWAP_PAIRS {
        if f == w {
            return in_case_of(word, m);
        }
        if m == w {
            return in_case_of(word, f);
        }
    }
    word.to_string()
}

/// `word` (lower case) in the case pattern of `original`: all capitals, a capital
/// first letter, or lower case.
fn in_case_of(original: &str, word: &str) -> String {
    if original.chars().count() > 1 && original.chars().all(|c| !c.is_lowercase()) {
        word.to_uppercase()
    } else if original.chars().next().is_some_and(char::is_uppercase) {
        capitalised(word)
    } else {
        word.to_string()
    }
}

/// `word` with its first letter in upper case.
pub fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The counterfactual of a tokenised context: every gendered word swapped.
pub fn swap(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| swap_word(w)).collect()
}

/// The single gender a sentence's words mention, or None when they mention none or both.
pub fn sentence_gender(words: &[&str]) -> Option<Gender> {
    let mut found = None;
    for w in words {
        match (found, gender_of(w)) {
            (_, None) => {}
            (None, g) => found = g,
            (Some(a), Some(b)) if a != b => return None,
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_both_ways_and_labels_sentences() {
        let words: Vec<&str> = "The man said his son was here".split(' ').collect();
        assert_eq!(
            swap(&words).join(" "),
            "The woman said her daughter was here"
        );
        // Only gendered words change, each keeping its case.
        let cased: Vec<&str> = "Mrs. Smith told HIM she met John in Atlanta"
            .split(' ')
            .collect();
        assert_eq!(
            swap(&cased).join(" "),
            "Mr. Smith told HER he met Mary in Atlanta"
        );
        assert_eq!(swap_word("her"), "his");
        assert_eq!(swap_word("him"), "her");
        assert_eq!(sentence_gender(&words), Some(Gender::Male));
        assert_eq!(sentence_gender(&["she", "and", "he"]), None);
        assert_eq!(sentence_gender(&["the", "table"]), None);
        assert_eq!(sentence_gender(&["Her", "table"]), Some(Gender::Female));
    }
}
