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
