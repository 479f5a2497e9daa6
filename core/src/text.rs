//! Human texts in the two languages the field app ships with.
//!
//! Every refusal in the core has a stable, machine-readable reason code plus a sentence in Swedish
//! and in English that an officer can read out or show. This module holds the tiny vocabulary for
//! that, so that each domain module can keep its own texts next to its own errors.

use serde::{Deserialize, Serialize};

/// A language the core has texts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Swedish, the default on the street.
    #[default]
    Sv,
    /// English.
    En,
}

impl Lang {
    /// The ISO 639-1 code, as used in program bundles.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// The text in this language from a (Swedish, English) pair: every reason text in the core
    /// is written as such a pair, one per variant, so no sentence mixes the two languages.
    pub fn pick<T>(self, sv: T, en: T) -> T {
        match self {
            Lang::Sv => sv,
            Lang::En => en,
        }
    }

    /// Parses `sv`/`en` (any case); `None` for anything else.
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "sv" | "swe" | "svenska" | "swedish" => Some(Lang::Sv),
            "en" | "eng" | "english" | "engelska" => Some(Lang::En),
            _ => None,
        }
    }
}

/// Something that has a stable reason code and a readable sentence in each language.
pub trait Reasoned {
    /// Stable snake_case code, safe for scripts, logs and statistics (never personal data).
    fn code(&self) -> &'static str;
    /// A sentence a person can read, in the given language.
    fn message(&self, lang: Lang) -> String;
}

/// The same text in each language (program names, callback promises).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    /// Swedish.
    pub sv: String,
    /// English.
    pub en: String,
}

impl Texts {
    /// The text in the given language.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Sv => &self.sv,
            Lang::En => &self.en,
        }
    }
}

/// A bidirectional-text control (embeddings, overrides, isolates and the directional marks):
/// invisible, and able to make a name, an id or a host read differently on screen than it is
/// stored ("Trojan Source"). Refused in everything an officer or an administrator types.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A character that prints nothing: Unicode format characters (category Cf: zero-width space and
/// joiners, soft hyphen, word joiner, BOM, bidi controls, tags, …) and the fillers that render
/// blank (Hangul fillers, the Braille blank). Text made only of these and white space is empty.
pub fn is_invisible(c: char) -> bool {
    is_bidi_control(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{0600}'..='\u{0605}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Text that shows nothing: empty, or only white space and invisible characters.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// Text safe to print on a terminal or a screen: control characters (other than a newline) and
/// bidi controls are shown as `\u{…}` escapes instead of acting on the display.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && c != '\n') || is_bidi_control(c);
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_made_of_invisible_characters_is_blank() {
        for blank in [
            "",
            " \t ",
            "\u{200B}\u{200B}",
            "\u{200D}\u{FEFF}",
            "\u{2060}",
            "\u{00AD}\u{00AD}",
            "\u{3164}",
            "\u{115F}\u{1160}",
            "\u{2800}",
            "\u{E0041}\u{E0042}",
            "\u{202E}\u{202C}",
            "\u{2066}\u{2069}",
        ] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for text in ["Kim", "\u{200B}K", "P-4711", "Åsa"] {
            assert!(!is_blank(text), "{text:?}");
        }
    }

    #[test]
    fn bidi_controls_are_known_and_printed_as_escapes() {
        for c in [
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200F}', '\u{061C}',
        ] {
            assert!(is_bidi_control(c), "{c:?}");
        }
        assert!(!is_bidi_control('a') && !is_bidi_control('\u{200B}'));
        assert_eq!(printable("Kalmar"), "Kalmar");
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{001b}[2Jb");
        assert_eq!(printable("x\u{202E}y"), "x\\u{202e}y");
        assert_eq!(printable("line\nnext"), "line\nnext");
    }
}
