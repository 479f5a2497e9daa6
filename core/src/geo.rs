//! Swedish municipalities (kommuner), counties (län) and postal codes, compiled into the binary.
//!
//! Why this module exists:
//!
//! - **Residency is checked by kommunkod.** A program is offered to people who are folkbokförda in
//!   given municipalities, and a municipality is identified by its four-digit SCB code (`0180` is
//!   Stockholm), never by its name. Everything else in the core speaks kommunkoder.
//! - **Officers type names however they like.** On the street "vasteras", "Västerås kommun" and
//!   "VÄSTERÅS" all mean `1980`, so [`find_municipality`] forgives case, diacritics and the usual
//!   suffixes. It does not guess: a name that is not an exact (folded) match is refused, with
//!   suggestions the UI may offer, because a wrong municipality means a wrong verdict.
//! - **A region is not a municipality.** "Region Stockholm", "Stockholms län" and "Skåne" are 26,
//!   26 and 33 municipalities, so [`find_municipality`] refuses every region or county form as
//!   [`GeoError::RegionNotMunicipality`] with the county's municipalities for a picker (also
//!   [`region_municipalities`]). Only Gotland is one municipality and its own region and county:
//!   "Region Gotland" and "Gotlands län" are `0980`.
//! - **Postal codes are only a hint.** The table covers about 82 % of Swedish postal codes and a
//!   postal code can straddle municipalities, so [`postal_hint`] returns every candidate and the UI
//!   must let the officer confirm the municipality.
//!
//! The data is a copy of CC0 data in `core/data/` (see its README); `build.rs` checks it and turns it
//! into static tables, so there is no parsing and no file access at run time.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;

use crate::text::{Lang, Reasoned};

/// A county (län).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct County {
    /// The two-digit county code (länskod), e.g. `01`.
    pub code: &'static str,
    /// The full name, e.g. `Stockholms län` (the short form "Stockholm" would be ambiguous).
    pub name: &'static str,
}

/// A municipality (kommun).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Municipality {
    /// The four-digit kommunkod, e.g. `0180`.
    pub code: &'static str,
    /// The name as people say it, e.g. `Stockholm`, `Upplands Väsby`, `Gotland`.
    pub name: &'static str,
    /// The two-digit code of its county; always one of [`counties`].
    pub county_code: &'static str,
}

impl Municipality {
    /// The county the municipality belongs to.
    pub fn county(&self) -> &'static County {
        // build.rs refuses data in which a municipality names an unknown county.
        county_by_code(self.county_code).expect("build.rs checks every county code")
    }
}

impl fmt::Display for Municipality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.code)
    }
}

mod tables {
    use super::{County, Municipality};

    include!(concat!(env!("OUT_DIR"), "/geo_tables.rs"));
}

/// All 290 municipalities, sorted by code.
pub fn municipalities() -> &'static [Municipality] {
    &tables::MUNICIPALITIES
}

/// All 21 counties, sorted by code.
pub fn counties() -> &'static [County] {
    &tables::COUNTIES
}

/// The county with this two-digit code.
pub fn county_by_code(code: &str) -> Option<&'static County> {
    let counties = counties();
    counties
        .binary_search_by(|c| c.code.cmp(code))
        .ok()
        .map(|i| &counties[i])
}

/// The municipality with this exact four-digit kommunkod.
pub fn municipality_by_code(code: &str) -> Option<&'static Municipality> {
    let all = municipalities();
    all.binary_search_by(|m| m.code.cmp(code))
        .ok()
        .map(|i| &all[i])
}

/// Longest query kept in an error (characters); longer input is cut, never echoed whole.
const MAX_QUERY_KEPT: usize = 40;
/// At most this many suggestions in an error.
const MAX_SUGGESTIONS: usize = 5;
/// Suffixes people add to a municipality's name, tried in this order (on lowercased text).
const SUFFIXES: [&str; 5] = [" kommun", "s kommun", " stad", "s stad", " municipality"];

/// Finds a municipality by kommunkod (`1980`) or by name (`Västerås`, `vasteras`,
/// `Västerås kommun`, `Stockholms stad`, `upplands-vasby`, `Region Gotland`).
///
/// Names match exactly after [`fold`], as typed or without one of the suffixes " kommun",
/// "s kommun", " stad", "s stad", " municipality". There is no fuzzy matching; on failure the
/// error carries municipalities whose names begin with the query, for the UI to offer.
///
/// A region or a county is refused as [`GeoError::RegionNotMunicipality`], carrying the county's
/// municipalities when the county is known: a name written as one ("Region Stockholm",
/// "Stockholms län", "Stockholm län", "Region Jönköpings län", "Västra Götalandsregionen",
/// "Landstinget i Kalmar län", "Stockholms läns landsting", "Skåne County"), and a county's bare
/// name that is no municipality's ("Skåne", "Västerbotten", "Sörmland"; "Kalmar" and "Uppsala" are
/// the municipalities). Gotland, one municipality, is the exception: "Region Gotland" is `0980`.
///
/// Two names differ only by a diacritic: Håbo (0305, Uppsala län) and Habo (0643, Jönköpings
/// län). "Håbo" finds Håbo, but "Habo" or "habo" could be either typed without the ring, so it is
/// refused as [`GeoError::AmbiguousMunicipality`] listing both, rather than guessed.
pub fn find_municipality(query: &str) -> Result<&'static Municipality, GeoError> {
    let trimmed = query.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return municipality_by_code(trimmed).ok_or_else(|| unknown(trimmed, Vec::new()));
    }
    if let Some(county) = region_form(&fold(trimmed)) {
        return match county.map(county_municipalities).as_deref() {
            Some(&[only]) => Ok(only),
            _ => Err(region_not_municipality(trimmed, county)),
        };
    }
    let lookup = name_lookup();
    let variants = name_variants(&normalize(trimmed, false));
    let folded: Vec<String> = variants.iter().map(|v| fold(v)).collect();
    for (lower, folded) in variants.iter().zip(&folded) {
        match lookup.by_folded.get(folded).map(Vec::as_slice) {
            None => continue,
            Some(&[i]) => return Ok(&municipalities()[i]),
            Some(candidates) => {
                // Diacritics typed: they decide. Plain ASCII: they may have been left out.
                if !trimmed.is_ascii() {
                    if let Some(&i) = lookup.by_lower.get(lower) {
                        return Ok(&municipalities()[i]);
                    }
                }
                return Err(GeoError::AmbiguousMunicipality {
                    query: cut(trimmed),
                    candidates: candidates.iter().map(|&i| &municipalities()[i]).collect(),
                });
            }
        }
    }
    // Not a municipality's name: a county's bare name ("Skåne") is a region.
    if let Some(county) = county_named(&fold(trimmed), false) {
        return Err(region_not_municipality(trimmed, Some(county)));
    }
    Err(unknown(trimmed, suggestions(&folded)))
}

/// The municipalities of a region or county, sorted by code: the picker to show after
/// [`GeoError::RegionNotMunicipality`]. The query is read as [`find_municipality`] reads it, so
/// "Region Stockholm", "Stockholms län" and "Skåne" give their county's municipalities and
/// "Region Gotland" gives Gotland. A municipality's name ("Stockholm", "Kalmar") is refused as
/// [`GeoError::MunicipalityNotRegion`]; a region form no county has, or an unknown name, as by
/// [`find_municipality`].
pub fn region_municipalities(query: &str) -> Result<Vec<&'static Municipality>, GeoError> {
    match find_municipality(query) {
        Err(GeoError::RegionNotMunicipality {
            county: Some(_),
            municipalities,
            ..
        }) => Ok(municipalities),
        Err(e) => Err(e),
        Ok(m) if region_form(&fold(query.trim())).is_some() => Ok(vec![m]),
        Ok(m) => Err(GeoError::MunicipalityNotRegion { municipality: m }),
    }
}

/// The municipalities of a county, sorted by code.
pub fn county_municipalities(county: &County) -> Vec<&'static Municipality> {
    municipalities()
        .iter()
        .filter(|m| m.county_code == county.code)
        .collect()
}

/// The (lowercased) query, then without each known suffix.
fn name_variants(lower: &str) -> Vec<String> {
    let mut variants = vec![lower.to_string()];
    for suffix in SUFFIXES {
        if let Some(stem) = lower.strip_suffix(suffix) {
            variants.push(stem.trim_end().to_string());
        }
    }
    variants.retain(|v| !v.is_empty());
    variants
}

/// Words that make a name a region's or a county's, on folded text, tried in this order: "Region
/// Stockholm", "Landstinget i Kalmar län", "Landstinget Dalarna"…
const REGION_PREFIXES: [&str; 3] = ["region ", "landstinget i ", "landstinget "];
/// … "Stockholms läns landsting", "Landstinget i Kalmar län", "Stockholm län",
/// "Västra Götalandsregionen", "Skåne County", "Stockholm region".
const REGION_SUFFIXES: [&str; 6] = [
    " lans landsting",
    " landsting",
    " lan",
    "regionen",
    " county",
    " region",
];
/// Region names that the county's official name does not give (folded): the regions' own names.
const REGION_NAMES: [(&str, &str); 3] = [
    ("sormland", "04"),            // Region Sörmland: Södermanlands län
    ("jamtland harjedalen", "23"), // Region Jämtland Härjedalen: Jämtlands län
    ("harjedalen", "23"),          // "Region Härjedalen"; bare, Härjedalen is the municipality 2361
];

/// For a (folded) query written as a region or a county — a prefix or suffix of
/// [`REGION_PREFIXES`], [`REGION_SUFFIXES`] around a name — the county it names, or `Some(None)`
/// when no county has that name ("Region Atlantis", "Region Gävle"). `None` when it is not
/// written as a region or county.
fn region_form(folded: &str) -> Option<Option<&'static County>> {
    let mut rest = folded;
    let mut marked = false;
    if let Some(stem) = REGION_PREFIXES.iter().find_map(|p| rest.strip_prefix(p)) {
        rest = stem;
        marked = true;
    }
    if let Some(stem) = REGION_SUFFIXES.iter().find_map(|s| rest.strip_suffix(s)) {
        rest = stem.trim_end();
        marked = true;
    }
    (marked && !rest.is_empty()).then(|| county_named(rest, true))
}

/// The county with this (folded) short name ("stockholm", "vastra gotaland") or region name
/// ([`REGION_NAMES`]); with `genitive`, also followed by an "s" ("stockholms", "sormlands").
fn county_named(folded: &str, genitive: bool) -> Option<&'static County> {
    let genitive_stem = folded.strip_suffix('s').filter(|_| genitive);
    name_lookup()
        .county_names
        .iter()
        .find(|(name, _)| folded == name || genitive_stem == Some(name.as_str()))
        .map(|&(_, county)| county)
}

/// A county's name without " län" and the genitive "s": "Stockholm", "Kalmar", "Västra Götaland".
fn county_short_name(county: &County) -> &'static str {
    let stem = county.name.strip_suffix(" län").unwrap_or(county.name);
    stem.strip_suffix('s').unwrap_or(stem)
}

fn region_not_municipality(query: &str, county: Option<&'static County>) -> GeoError {
    GeoError::RegionNotMunicipality {
        query: cut(query),
        county,
        municipalities: county.map(county_municipalities).unwrap_or_default(),
    }
}

/// Municipalities whose folded name starts with one of the folded variants (of two characters
/// or more).
fn suggestions(folded_variants: &[String]) -> Vec<&'static Municipality> {
    municipalities()
        .iter()
        .zip(&name_lookup().folded)
        .filter(|(_, name)| {
            folded_variants
                .iter()
                .any(|v| v.chars().count() >= 2 && name.starts_with(v.as_str()))
        })
        .map(|(m, _)| m)
        .take(MAX_SUGGESTIONS)
        .collect()
}

fn cut(query: &str) -> String {
    query.chars().take(MAX_QUERY_KEPT).collect()
}

fn unknown(query: &str, suggestions: Vec<&'static Municipality>) -> GeoError {
    GeoError::UnknownMunicipality {
        query: cut(query),
        suggestions,
    }
}

/// Name indexes, built once on first use.
struct NameLookup {
    /// Folded name → indexes into [`municipalities`] (two for "habo").
    by_folded: HashMap<String, Vec<usize>>,
    /// Lowercased name with diacritics kept → index (unique).
    by_lower: HashMap<String, usize>,
    /// Folded name of each municipality, by index.
    folded: Vec<String>,
    /// Folded short name of each county ("stockholm", "vastra gotaland"), then [`REGION_NAMES`].
    county_names: Vec<(String, &'static County)>,
}

fn name_lookup() -> &'static NameLookup {
    static LOOKUP: OnceLock<NameLookup> = OnceLock::new();
    LOOKUP.get_or_init(|| {
        let mut by_folded: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_lower = HashMap::new();
        let mut folded = Vec::with_capacity(municipalities().len());
        for (i, m) in municipalities().iter().enumerate() {
            by_folded.entry(fold(m.name)).or_default().push(i);
            by_lower.insert(normalize(m.name, false), i);
            folded.push(fold(m.name));
        }
        let county_names = counties()
            .iter()
            .map(|c| (fold(county_short_name(c)), c))
            .chain(REGION_NAMES.iter().map(|&(name, code)| {
                let county = county_by_code(code).expect("REGION_NAMES has real county codes");
                (name.to_string(), county)
            }))
            .collect();
        NameLookup {
            by_folded,
            by_lower,
            folded,
            county_names,
        }
    })
}

/// What the postal table says about a postal code: the municipalities it lies in.
///
/// A hint, never a verdict: the table covers about 82 % of postal codes, and a postal code can
/// straddle municipalities. Let the officer confirm the municipality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostalHint {
    /// The postal code, normalised to five digits (`11122`).
    pub postal_code: String,
    /// The candidate municipalities, sorted by code; usually exactly one, never empty.
    pub municipalities: Vec<&'static Municipality>,
}

/// Looks up the municipalities of a postal code. Accepts `11122`, `111 22`, ` 111 22 `,
/// `SE-111 22`, `SE11122` and `S-111 22`.
pub fn postal_hint(postal_code: &str) -> Result<PostalHint, GeoError> {
    let number = parse_postal_code(postal_code).ok_or(GeoError::InvalidPostalCode)?;
    let table = &tables::POSTAL[..];
    let first = table.partition_point(|&e| e >> tables::MUNICIPALITY_BITS < number);
    let end = table.partition_point(|&e| e >> tables::MUNICIPALITY_BITS <= number);
    if first == end {
        return Err(GeoError::UnknownPostalCode);
    }
    let mask = (1u32 << tables::MUNICIPALITY_BITS) - 1;
    let municipalities = table[first..end]
        .iter()
        .map(|&e| &tables::MUNICIPALITIES[(e & mask) as usize])
        .collect();
    Ok(PostalHint {
        postal_code: format!("{number:05}"),
        municipalities,
    })
}

/// Swedish postal codes are five digits from 100 00 to 989 99, written `DDDDD` or `DDD DD`,
/// optionally behind a country prefix `SE` or `S` (with or without a hyphen or space).
fn parse_postal_code(input: &str) -> Option<u32> {
    let s = input.trim();
    if s.len() > 16 {
        return None;
    }
    let s = strip_country_prefix(s);
    let chars: Vec<char> = s.chars().collect();
    let digits: String = match chars.as_slice() {
        [a, b, c, d, e] => [*a, *b, *c, *d, *e].iter().collect(),
        [a, b, c, sep, d, e] if sep.is_whitespace() => [*a, *b, *c, *d, *e].iter().collect(),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

fn strip_country_prefix(s: &str) -> &str {
    for prefix in ["se-", "se ", "se", "s-", "s "] {
        if let Some(head) = s.get(..prefix.len()) {
            if head.eq_ignore_ascii_case(prefix) {
                return s[prefix.len()..].trim_start();
            }
        }
    }
    s
}

/// Folds text for matching names: lowercase, diacritics removed (`å ä → a`, `ö ø → o`,
/// `é è → e`, `ü → u`, `æ → ae`, `ß → ss`, …; combining marks are dropped, so decomposed input
/// works too), and runs of whitespace, hyphens and underscores collapsed into one space, trimmed.
///
/// `fold("  Upplands-VÄSBY ")` is `"upplands vasby"`.
pub fn fold(s: &str) -> String {
    normalize(s, true)
}

/// Lowercases and collapses separators; strips diacritics only when asked.
fn normalize(s: &str, strip_diacritics: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if is_separator(c) {
            pending_space = true;
            continue;
        }
        if strip_diacritics && is_combining_mark(c) {
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        match base_letters(c).filter(|_| strip_diacritics) {
            Some(base) => out.push_str(base),
            None => out.push(c),
        }
    }
    out
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '_' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// Combining diacritical marks, as in decomposed (NFD) text: `a` + U+030A is `å`.
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036f}')
}

/// The base letters of a lowercase letter with a diacritic; `None` for anything else.
fn base_letters(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// Why a place could not be looked up. Each variant says what the officer can do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeoError {
    /// No municipality has this code or (folded) name.
    #[error(
        "No Swedish municipality has that name or code. Check the spelling, or enter the four-digit municipality code (kommunkod).{}",
        suggestion_text(.suggestions, "Did you mean")
    )]
    UnknownMunicipality {
        /// The query as typed, cut to 40 characters (for the UI, not for logs).
        query: String,
        /// Municipalities whose names begin with the query; may be empty.
        suggestions: Vec<&'static Municipality>,
    },
    /// The name fits more than one municipality once diacritics are ignored ("Habo": Håbo or
    /// Habo). The officer must choose; the app does not guess.
    #[error(
        "More than one municipality has that name when å, ä and ö are ignored: {}. Choose one, or enter the four-digit municipality code (kommunkod).",
        candidate_text(.candidates, "or")
    )]
    AmbiguousMunicipality {
        /// The query as typed, cut to 40 characters (for the UI, not for logs).
        query: String,
        /// The municipalities it could mean, sorted by code.
        candidates: Vec<&'static Municipality>,
    },
    /// A region or county ("Region Stockholm", "Stockholms län", "Skåne"), which is many
    /// municipalities: the officer must ask which one the person is registered in.
    #[error("{}", region_text(.county, .municipalities, Lang::En))]
    RegionNotMunicipality {
        /// The query as typed, cut to 40 characters (for the UI, not for logs).
        query: String,
        /// The county it names; `None` for a region form no county has ("Region Atlantis").
        county: Option<&'static County>,
        /// The county's municipalities sorted by code, for a picker; empty without a county.
        municipalities: Vec<&'static Municipality>,
    },
    /// [`region_municipalities`] was asked for a municipality ("Stockholm"), which has no list of
    /// municipalities: it is the municipality itself.
    #[error("That is a municipality, not a region or county: use it as the municipality itself.")]
    MunicipalityNotRegion {
        /// The municipality the query names.
        municipality: &'static Municipality,
    },
    /// Not a Swedish postal code (five digits, 100 00 to 989 99).
    #[error("That is not a Swedish postal code. Enter five digits, for example 111 22.")]
    InvalidPostalCode,
    /// A well-formed postal code that the table does not know. It carries no data: a postal code
    /// says where someone lives, and the caller has it anyway.
    #[error(
        "The app does not know that postal code (its table covers about four in five). Ask which municipality the person is registered in instead."
    )]
    UnknownPostalCode,
}

fn suggestion_text(suggestions: &[&'static Municipality], lead: &str) -> String {
    if suggestions.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = suggestions.iter().map(|m| m.name).collect();
    format!(" {lead}: {}?", names.join(", "))
}

/// Names this many municipalities of a region at most, in a text; the error carries them all.
const MAX_NAMED: usize = 5;

/// "Stockholms län is a county (region) with 26 municipalities, …", in either language.
fn region_text(
    county: &Option<&'static County>,
    municipalities: &[&'static Municipality],
    lang: Lang,
) -> String {
    let Some(county) = county else {
        return lang.pick(
            "Det är en region eller ett län, inte en kommun. Fråga vilken kommun personen är folkbokförd i, eller ange den fyrsiffriga kommunkoden.",
            "That is a region or county, not a municipality. Ask which municipality the person is registered in, or enter the four-digit municipality code (kommunkod).",
        )
        .to_string();
    };
    let mut names: Vec<&str> = municipalities.iter().map(|m| m.name).collect();
    names.sort_by_cached_key(|name| swedish_order(name));
    let mut named = names[..names.len().min(MAX_NAMED)].join(", ");
    if names.len() > MAX_NAMED {
        named.push_str(", …");
    }
    let (name, n) = (county.name, municipalities.len());
    match lang {
        Lang::Sv => format!(
            "{name} är ett län (en region) med {n} kommuner, inte en kommun. Fråga vilken kommun personen är folkbokförd i ({named})."
        ),
        Lang::En => format!(
            "{name} is a county (region) with {n} municipalities, not a municipality. Ask which municipality the person is registered in ({named})."
        ),
    }
}

/// A key for Swedish alphabetical order, near enough for names: å, ä, ö after z, other diacritics
/// as their base letters.
fn swedish_order(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for c in normalize(name, false).chars() {
        match c {
            'å' => key.push('{'),
            'ä' | 'æ' => key.push('|'),
            'ö' | 'ø' => key.push('}'),
            c => key.push_str(&fold(c.encode_utf8(&mut [0; 4]))),
        }
    }
    key
}

/// "Håbo (0305, Uppsala län) or Habo (0643, Jönköpings län)", in either language.
fn candidate_text(candidates: &[&'static Municipality], or: &str) -> String {
    let names: Vec<String> = candidates
        .iter()
        .map(|m| format!("{} ({}, {})", m.name, m.code, m.county().name))
        .collect();
    names.join(&format!(" {or} "))
}

impl Reasoned for GeoError {
    fn code(&self) -> &'static str {
        match self {
            GeoError::UnknownMunicipality { .. } => "unknown_municipality",
            GeoError::AmbiguousMunicipality { .. } => "ambiguous_municipality",
            GeoError::RegionNotMunicipality { .. } => "region_not_municipality",
            GeoError::MunicipalityNotRegion { .. } => "municipality_not_region",
            GeoError::InvalidPostalCode => "invalid_postal_code",
            GeoError::UnknownPostalCode => "unknown_postal_code",
        }
    }

    fn message(&self, lang: Lang) -> String {
        let sv = match self {
                GeoError::UnknownMunicipality { suggestions, .. } => format!(
                    "Ingen svensk kommun har det namnet eller den koden. Kontrollera stavningen eller ange den fyrsiffriga kommunkoden.{}",
                    suggestion_text(suggestions, "Menade du")
                ),
                GeoError::AmbiguousMunicipality { candidates, .. } => format!(
                    "Mer än en kommun har det namnet om man bortser från å, ä och ö: {}. Välj en av dem eller ange den fyrsiffriga kommunkoden.",
                    candidate_text(candidates, "eller")
                ),
                GeoError::RegionNotMunicipality {
                    county,
                    municipalities,
                    ..
                } => region_text(county, municipalities, Lang::Sv),
                GeoError::MunicipalityNotRegion { .. } => {
                    "Det är en kommun, inte en region eller ett län: ange den som kommunen.".to_string()
                }
                GeoError::InvalidPostalCode => {
                    "Det är inget svenskt postnummer. Ange fem siffror, till exempel 111 22.".to_string()
                }
                GeoError::UnknownPostalCode => {
                    "Appen känner inte till det postnumret (tabellen täcker ungefär fyra av fem). Fråga i stället vilken kommun personen är folkbokförd i.".to_string()
                }
        };
        lang.pick(sv, self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn code_of(query: &str) -> &'static str {
        match find_municipality(query) {
            Ok(m) => m.code,
            Err(e) => panic!("{query:?}: {e}"),
        }
    }

    #[test]
    fn tables_have_every_county_and_municipality() {
        assert_eq!(counties().len(), 21);
        assert_eq!(municipalities().len(), 290);
        let county_codes: HashSet<_> = counties().iter().map(|c| c.code).collect();
        assert_eq!(county_codes.len(), 21);
        for c in counties() {
            assert!(c.code.len() == 2 && c.code.bytes().all(|b| b.is_ascii_digit()));
            assert!(c.name.ends_with(" län"), "{}", c.name);
        }
        let mut codes = HashSet::new();
        for m in municipalities() {
            assert!(
                m.code.len() == 4 && m.code.bytes().all(|b| b.is_ascii_digit()),
                "{m}"
            );
            assert!(codes.insert(m.code), "duplicate {m}");
            assert!(county_codes.contains(m.county_code), "{m}");
            assert_eq!(m.county().code, m.county_code);
            assert!(m.code.starts_with(m.county_code));
            assert!(!m.name.ends_with("kommun"), "{m}");
        }
        assert!(municipalities().windows(2).all(|w| w[0].code < w[1].code));
        assert!(counties().windows(2).all(|w| w[0].code < w[1].code));
    }

    #[test]
    fn every_county_has_municipalities() {
        for c in counties() {
            assert!(
                municipalities().iter().any(|m| m.county_code == c.code),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn short_names_are_used() {
        assert_eq!(municipality_by_code("1280").unwrap().name, "Malmö");
        assert_eq!(municipality_by_code("0880").unwrap().name, "Kalmar");
        assert_eq!(municipality_by_code("0180").unwrap().name, "Stockholm");
        assert_eq!(municipality_by_code("0980").unwrap().name, "Gotland");
        let vasteras = municipality_by_code("1980").unwrap();
        assert_eq!(vasteras.name, "Västerås");
        assert_eq!(vasteras.county().name, "Västmanlands län");
        assert_eq!(vasteras.to_string(), "Västerås (1980)");
    }

    #[test]
    fn every_name_finds_itself_except_the_habo_pair() {
        let lookup = name_lookup();
        assert_eq!(
            lookup.by_lower.len(),
            290,
            "names are unique with diacritics"
        );
        let ambiguous: Vec<Vec<&str>> = lookup
            .by_folded
            .values()
            .filter(|v| v.len() > 1)
            .map(|v| v.iter().map(|&i| municipalities()[i].code).collect())
            .collect();
        assert_eq!(ambiguous, [["0305", "0643"]], "only Håbo/Habo fold alike");
        for m in municipalities() {
            assert_eq!(code_of(m.code), m.code);
            assert_eq!(code_of(&format!(" {} ", m.code)), m.code);
            if m.code == "0305" || m.code == "0643" {
                continue;
            }
            assert_eq!(code_of(m.name), m.code);
            assert_eq!(code_of(&m.name.to_uppercase()), m.code);
            assert_eq!(code_of(&fold(m.name)), m.code);
            assert_eq!(code_of(&format!("{} kommun", m.name)), m.code);
        }
    }

    #[test]
    fn habo_and_haabo_are_not_guessed() {
        assert_eq!(code_of("Håbo"), "0305");
        assert_eq!(code_of("HÅBO KOMMUN"), "0305");
        assert_eq!(code_of("0643"), "0643");
        for q in ["Habo", "habo", "Habo kommun", "Habos kommun"] {
            let err = find_municipality(q).unwrap_err();
            assert_eq!(err.code(), "ambiguous_municipality", "{q}");
            let GeoError::AmbiguousMunicipality { candidates, .. } = &err else {
                panic!("wrong variant")
            };
            let codes: Vec<_> = candidates.iter().map(|m| m.code).collect();
            assert_eq!(codes, ["0305", "0643"]);
            assert!(err
                .to_string()
                .contains("Håbo (0305, Uppsala län) or Habo (0643, Jönköpings län)"));
            assert!(err
                .message(Lang::Sv)
                .contains("Håbo (0305, Uppsala län) eller Habo (0643, Jönköpings län)"));
        }
        // Typed with a diacritic that fits neither: still refused, not guessed.
        assert_eq!(
            find_municipality("Häbo").unwrap_err().code(),
            "ambiguous_municipality"
        );
    }

    #[test]
    fn programme_municipalities_by_code() {
        for (code, name) in [
            ("0180", "Stockholm"),
            ("0662", "Gislaved"),
            ("0617", "Gnosjö"),
            ("0665", "Vaggeryd"),
            ("0683", "Värnamo"),
            ("0880", "Kalmar"),
        ] {
            assert_eq!(municipality_by_code(code).unwrap().name, name);
        }
        assert_eq!(municipality_by_code("180"), None);
        assert_eq!(municipality_by_code("0000"), None);
        assert_eq!(
            municipality_by_code(" 0180"),
            None,
            "by_code is exact; find_municipality trims"
        );
    }

    #[test]
    fn names_forgive_case_diacritics_and_suffixes() {
        for q in [
            "vasteras",
            "Västerås kommun",
            "VÄSTERÅS",
            "1980",
            " västerås ",
            "Vasteras municipality",
        ] {
            assert_eq!(code_of(q), "1980", "{q}");
        }
        for q in [
            "Stockholms stad",
            "stockholm",
            "Stockholms kommun",
            "STOCKHOLM STAD",
            "0180",
        ] {
            assert_eq!(code_of(q), "0180", "{q}");
        }
        assert_eq!(code_of("Malmö kommun"), "1280");
        assert_eq!(code_of("Malmö stad"), "1280");
        assert_eq!(code_of("Kalmars kommun"), "0880");
        assert_eq!(code_of("Gotlands kommun"), "0980");
        assert_eq!(code_of("Region Gotland"), "0980");
        assert_eq!(code_of("Falun"), "2080");
        assert_eq!(code_of("Faluns kommun"), "2080");
        assert_eq!(code_of("Göteborgs stad"), "1480");
        assert_eq!(code_of("Upplands Väsby"), "0114");
        assert_eq!(code_of("upplands-vasby"), "0114");
        assert_eq!(code_of("Upplands  -  Väsby kommun"), "0114");
        assert_eq!(code_of("Upplands-Bro"), "0139");
        assert_eq!(code_of("upplands bro"), "0139");
        assert_eq!(code_of("Borås kommun"), "1490");
        assert_eq!(code_of("gislaved"), "0662");
        assert_eq!(code_of("GNOSJO"), "0617");
    }

    #[test]
    fn decomposed_input_matches() {
        // "Västerås" typed as base letters plus combining marks (NFD).
        assert_eq!(code_of("Va\u{308}stera\u{30a}s"), "1980");
    }

    #[test]
    fn unknown_names_and_codes_are_refused_without_guessing() {
        for q in [
            "",
            "   ",
            "Atlantis",
            "Vasterass",
            "kommun",
            "s kommun",
            "12345",
            "018",
        ] {
            let err = find_municipality(q).unwrap_err();
            assert_eq!(err.code(), "unknown_municipality", "{q}");
        }
        // A four-digit code that is no municipality.
        let err = find_municipality("0100").unwrap_err();
        assert_eq!(
            err,
            GeoError::UnknownMunicipality {
                query: "0100".into(),
                suggestions: vec![]
            }
        );
        assert_eq!(
            find_municipality("9999").unwrap_err().code(),
            "unknown_municipality"
        );
    }

    #[test]
    fn unknown_names_offer_prefix_suggestions() {
        let GeoError::UnknownMunicipality { query, suggestions } =
            find_municipality("Väster").unwrap_err()
        else {
            panic!("wrong variant")
        };
        assert_eq!(query, "Väster");
        let names: Vec<_> = suggestions.iter().map(|m| m.name).collect();
        assert!(
            names.contains(&"Västerås") && names.contains(&"Västervik"),
            "{names:?}"
        );
        assert!(names.len() <= MAX_SUGGESTIONS);
        let err = find_municipality("Upplands").unwrap_err();
        let en = err.message(Lang::En);
        assert!(
            en.contains("Did you mean: Upplands Väsby, Upplands-Bro?"),
            "{en}"
        );
        assert!(err
            .message(Lang::Sv)
            .contains("Menade du: Upplands Väsby, Upplands-Bro?"));
        // One character is too little to suggest from.
        let GeoError::UnknownMunicipality { suggestions, .. } = find_municipality("v").unwrap_err()
        else {
            panic!("wrong variant")
        };
        assert!(suggestions.is_empty());
    }

    #[test]
    fn long_queries_are_cut_and_never_in_the_message() {
        let long = "19121212-1212 ".repeat(20);
        let err = find_municipality(&long).unwrap_err();
        let GeoError::UnknownMunicipality { query, .. } = &err else {
            panic!("wrong variant")
        };
        assert_eq!(query.chars().count(), MAX_QUERY_KEPT);
        for lang in [Lang::Sv, Lang::En] {
            assert!(!err.message(lang).contains("1212"));
        }
        assert!(!find_municipality("Atlantis")
            .unwrap_err()
            .to_string()
            .contains("Atlantis"));
    }

    #[test]
    fn error_codes_and_texts() {
        let errors = [
            find_municipality("Atlantis").unwrap_err(),
            find_municipality("Habo").unwrap_err(),
            postal_hint("abc").unwrap_err(),
            postal_hint("99999").unwrap_err(),
        ];
        let codes: Vec<_> = errors.iter().map(|e| e.code()).collect();
        assert_eq!(
            codes,
            [
                "unknown_municipality",
                "ambiguous_municipality",
                "invalid_postal_code",
                "unknown_postal_code"
            ]
        );
        for e in &errors {
            assert_eq!(e.to_string(), e.message(Lang::En));
            assert_ne!(e.message(Lang::Sv), e.message(Lang::En));
            assert!(!e.message(Lang::Sv).is_empty());
        }
    }

    #[test]
    fn postal_codes_hint_at_municipalities() {
        let hint = postal_hint("11122").unwrap();
        assert_eq!(hint.postal_code, "11122");
        assert_eq!(
            hint.municipalities,
            vec![municipality_by_code("0180").unwrap()]
        );
        let gislaved = postal_hint("332 30").unwrap();
        assert_eq!(gislaved.postal_code, "33230");
        let codes: Vec<_> = gislaved.municipalities.iter().map(|m| m.code).collect();
        assert_eq!(codes, ["0662"]);
        // The first and last rows of the table.
        assert_eq!(postal_hint("10004").unwrap().municipalities[0].code, "0180");
        assert_eq!(postal_hint("98692").unwrap().municipalities.len(), 1);
    }

    #[test]
    fn postal_code_spellings() {
        for input in [
            "11122",
            "111 22",
            " 111 22 ",
            "SE-111 22",
            "se-11122",
            "SE 111 22",
            "SE11122",
            "S-111 22",
            "111\u{a0}22",
        ] {
            assert_eq!(
                postal_hint(input).unwrap().postal_code,
                "11122",
                "{input:?}"
            );
        }
    }

    #[test]
    fn malformed_postal_codes_are_invalid() {
        for input in [
            "",
            " ",
            "1112",
            "111222",
            "111-22",
            "11 122",
            "1112a",
            "abcde",
            "01122",
            "00000",
            "111  22",
            "DE-11122",
            "SE--11122",
            "١١١٢٢",
            "11122 Stockholm",
            &"1".repeat(1000),
        ] {
            assert_eq!(
                postal_hint(input),
                Err(GeoError::InvalidPostalCode),
                "{input:?}"
            );
        }
    }

    #[test]
    fn absent_postal_code_is_unknown() {
        // Well-formed but not in the table (the table covers about 82 %).
        let first_missing = (10000..99000)
            .find(|n| postal_hint(&n.to_string()).is_err())
            .unwrap();
        assert_eq!(
            postal_hint(&format!("SE-{first_missing}")),
            Err(GeoError::UnknownPostalCode)
        );
        assert_eq!(
            postal_hint("99999").unwrap_err().code(),
            "unknown_postal_code"
        );
    }

    #[test]
    fn postal_table_is_sorted_and_consistent() {
        let table = &tables::POSTAL[..];
        assert!(
            table.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicate pairs"
        );
        let mask = (1u32 << tables::MUNICIPALITY_BITS) - 1;
        let mut per_code: HashMap<u32, usize> = HashMap::new();
        for &e in table {
            let postal = e >> tables::MUNICIPALITY_BITS;
            assert!((10000..99000).contains(&postal));
            assert!(((e & mask) as usize) < municipalities().len());
            *per_code.entry(postal).or_default() += 1;
        }
        assert_eq!(per_code.len(), 15463, "distinct postal codes in the data");
        // Every code in the table returns all its candidates.
        for (&postal, &n) in &per_code {
            let hint = postal_hint(&postal.to_string()).unwrap();
            assert_eq!(hint.municipalities.len(), n);
            assert!(hint
                .municipalities
                .windows(2)
                .all(|w| w[0].code < w[1].code));
        }
    }

    #[test]
    fn compiled_tables_stay_small() {
        use std::mem::size_of_val;
        let strings: usize = counties()
            .iter()
            .map(|c| c.code.len() + c.name.len())
            .sum::<usize>()
            + municipalities()
                .iter()
                .map(|m| m.code.len() + m.name.len() + m.county_code.len())
                .sum::<usize>();
        let total = size_of_val(&tables::POSTAL)
            + size_of_val(&tables::MUNICIPALITIES)
            + size_of_val(&tables::COUNTIES)
            + strings;
        // 15 463 × 4 B postal entries + 290 × 48 B + 21 × 32 B + ~5 KB of strings (64-bit).
        assert!(size_of_val(&tables::POSTAL) <= 64 * 1024);
        assert!(total <= 90 * 1024, "{total} bytes");
    }

    #[test]
    fn fold_rules() {
        assert_eq!(fold("  Upplands-VÄSBY "), "upplands vasby");
        assert_eq!(fold("Åre Älvdalen Övertorneå"), "are alvdalen overtornea");
        assert_eq!(fold("Éé Èè Üü Øø Ææ ß"), "ee ee uu oo aeae ss");
        assert_eq!(fold("a\t\n-–—_ b"), "a b");
        assert_eq!(fold("--a--"), "a");
        assert_eq!(fold(""), "");
        assert_eq!(fold("a\u{30a}"), "a");
        assert_eq!(fold("Malmö, 2"), "malmo, 2");
    }

    /// The county and the municipality codes of a refused region, or a panic.
    fn refused_region(query: &str) -> (Option<&'static str>, Vec<&'static str>) {
        match find_municipality(query) {
            Err(GeoError::RegionNotMunicipality {
                query: kept,
                county,
                municipalities,
            }) => {
                assert_eq!(kept, query.trim(), "{query:?}");
                (
                    county.map(|c| c.code),
                    municipalities.iter().map(|m| m.code).collect(),
                )
            }
            other => panic!("{query:?}: {other:?}"),
        }
    }

    fn codes_in_county(code: &str) -> Vec<&'static str> {
        county_municipalities(county_by_code(code).unwrap())
            .iter()
            .map(|m| m.code)
            .collect()
    }

    #[test]
    fn region_and_county_forms_are_refused_with_the_county_s_municipalities() {
        for (query, county) in [
            ("Region Stockholm", "01"),
            ("region stockholm", "01"),
            ("REGION STOCKHOLM", "01"),
            ("Region-Stockholm", "01"),
            ("Stockholms län", "01"),
            ("Stockholms lan", "01"),
            ("Stockholm län", "01"),
            ("stockholms  län ", "01"),
            ("Region Stockholms län", "01"),
            ("Stockholms läns landsting", "01"),
            ("Landstinget i Stockholms län", "01"),
            ("Stockholm County", "01"),
            ("Stockholmsregionen", "01"),
            ("Västra Götalandsregionen", "14"),
            ("Vastra Gotalandsregionen", "14"),
            ("Västra Götalands län", "14"),
            ("Region Västra Götaland", "14"),
            ("Region Jämtland Härjedalen", "23"),
            ("Region Jamtland Harjedalen", "23"),
            ("Jämtlands län", "23"),
            ("Jämtlands läns landsting", "23"),
            ("Region Härjedalen", "23"),
            ("Region Jönköpings län", "06"),
            ("Jönköpings län", "06"),
            ("Region Jönköping", "06"),
            ("Landstinget i Jönköpings län", "06"),
            ("Region Kalmar län", "08"),
            ("Kalmar län", "08"),
            ("Region Kalmar", "08"),
            ("Landstinget i Kalmar län", "08"),
            ("Region Örebro län", "18"),
            ("Orebro lan", "18"),
            ("Örebro läns landsting", "18"),
            ("Region Sörmland", "04"),
            ("Region Sormland", "04"),
            ("Landstinget Sörmland", "04"),
            ("Södermanlands län", "04"),
            ("Region Uppsala", "03"),
            ("Uppsala län", "03"),
            ("Landstinget i Uppsala län", "03"),
            ("Region Skåne", "12"),
            ("Skåne län", "12"),
            ("Region Halland", "13"),
            ("Hallands län", "13"),
            ("Landstinget Dalarna", "20"),
            ("Dalarnas län", "20"),
            ("Region Västerbotten", "24"),
            ("Västerbottens läns landsting", "24"),
            ("Norrbottens läns landsting", "25"),
            ("Landstinget i Östergötland", "05"),
            ("Region Gävleborg", "21"),
            ("Landstinget Västernorrland", "22"),
            ("Region Kronoberg", "07"),
            ("Region Blekinge", "10"),
            ("Region Värmland", "17"),
            ("Region Västmanland", "19"),
            ("Västmanlands län", "19"),
        ] {
            let (found, codes) = refused_region(query);
            assert_eq!(found, Some(county), "{query:?}");
            assert_eq!(codes, codes_in_county(county), "{query:?}");
            assert!(codes.len() >= 5, "{query:?}");
        }
    }

    #[test]
    fn region_stockholm_lists_its_26_municipalities_sorted_by_code() {
        let (county, codes) = refused_region("Region Stockholm");
        assert_eq!(county, Some("01"));
        assert_eq!(codes.len(), 26);
        assert!(codes.contains(&"0180") && codes.contains(&"0127"));
        assert!(codes.windows(2).all(|w| w[0] < w[1]));
        assert!(codes.iter().all(|c| c.starts_with("01")));
        assert_eq!(refused_region("Skåne").1.len(), 33);
        assert_eq!(refused_region("Västra Götalandsregionen").1.len(), 49);
        assert_eq!(refused_region("Region Blekinge").1.len(), 5);
    }

    #[test]
    fn the_region_text_names_the_county_and_a_few_municipalities_in_each_language() {
        let err = find_municipality("region stockholm").unwrap_err();
        assert_eq!(err.code(), "region_not_municipality");
        assert_eq!(err.to_string(), err.message(Lang::En));
        assert_eq!(
            err.message(Lang::En),
            "Stockholms län is a county (region) with 26 municipalities, not a municipality. \
             Ask which municipality the person is registered in \
             (Botkyrka, Danderyd, Ekerö, Haninge, Huddinge, …)."
        );
        assert_eq!(
            err.message(Lang::Sv),
            "Stockholms län är ett län (en region) med 26 kommuner, inte en kommun. \
             Fråga vilken kommun personen är folkbokförd i \
             (Botkyrka, Danderyd, Ekerö, Haninge, Huddinge, …)."
        );
        // Å, Ä and Ö come after Z, as in Swedish; five names at most, all of them when five.
        let blekinge = find_municipality("Region Blekinge").unwrap_err();
        assert!(
            blekinge
                .message(Lang::En)
                .contains("(Karlshamn, Karlskrona, Olofström, Ronneby, Sölvesborg)."),
            "{blekinge}"
        );
        let norrbotten = find_municipality("Norrbotten")
            .unwrap_err()
            .message(Lang::Sv);
        assert!(
            norrbotten.contains("(Arjeplog, Arvidsjaur, Boden, Gällivare, Haparanda, …)"),
            "{norrbotten}"
        );
        // Neither text echoes the query: it names the county from the table.
        for lang in [Lang::Sv, Lang::En] {
            assert!(!err.message(lang).contains("region stockholm"));
            let text = err.message(lang);
            let named = text.rsplit_once('(').unwrap().1;
            assert_eq!(named.split(", ").count(), MAX_NAMED + 1, "{text}");
        }
    }

    #[test]
    fn gotland_is_a_municipality_even_as_a_region_or_county() {
        for q in [
            "Region Gotland",
            "region gotland",
            "REGION GOTLAND",
            "Gotlands län",
            "Gotlands lan",
            "Gotland län",
            "Landstinget Gotland",
            "Gotland County",
            "Gotland",
            "Gotlands kommun",
            "0980",
        ] {
            assert_eq!(code_of(q), "0980", "{q}");
        }
        assert_eq!(
            region_municipalities("Region Gotland").unwrap(),
            vec![municipality_by_code("0980").unwrap()]
        );
    }

    #[test]
    fn bare_county_names_that_are_no_municipality_are_regions() {
        for (query, county) in [
            ("Västerbotten", "24"),
            ("vasterbotten", "24"),
            ("Norrbotten", "25"),
            ("Skåne", "12"),
            ("SKANE", "12"),
            ("Halland", "13"),
            ("Dalarna", "20"),
            ("Blekinge", "10"),
            ("Värmland", "17"),
            ("Jämtland", "23"),
            ("Jämtland Härjedalen", "23"),
            ("Jämtland-Härjedalen", "23"),
            ("Sörmland", "04"),
            ("Södermanland", "04"),
            ("Östergötland", "05"),
            ("Kronoberg", "07"),
            ("Västra Götaland", "14"),
            ("Västmanland", "19"),
            ("Gävleborg", "21"),
            ("Västernorrland", "22"),
            (" västernorrland ", "22"),
        ] {
            assert_eq!(refused_region(query).0, Some(county), "{query:?}");
        }
    }

    #[test]
    fn county_names_that_are_also_municipalities_stay_the_municipality() {
        for (query, code) in [
            ("Stockholm", "0180"),
            ("Uppsala", "0380"),
            ("Jönköping", "0680"),
            ("Jonkoping", "0680"),
            ("Kalmar", "0880"),
            ("Örebro", "1880"),
            ("Gotland", "0980"),
            ("Härjedalen", "2361"),
            ("Härjedalens kommun", "2361"),
            ("Gävle", "2180"),
            ("Kalmar kommun", "0880"),
            ("Uppsala kommun", "0380"),
        ] {
            assert_eq!(code_of(query), code, "{query:?}");
        }
    }

    #[test]
    fn a_region_form_no_county_has_is_refused_with_an_empty_list() {
        for q in [
            "Region Atlantis",
            "Atlantis län",
            "Region Gävle",
            "Region Västerås",
            "Region Malmö",
            "Region Gotlands kommun",
            "Landstinget i Atlantis",
            "Skaraborgs län",
        ] {
            assert_eq!(refused_region(q), (None, vec![]), "{q:?}");
            let err = find_municipality(q).unwrap_err();
            assert_eq!(err.to_string(), err.message(Lang::En));
            assert!(err.message(Lang::Sv).contains("inte en kommun"));
            assert!(err.message(Lang::En).contains("not a municipality"));
        }
        // Words alone are no region form.
        for q in ["Region", "region ", "län", "Regionen", "Landstinget"] {
            assert_eq!(
                find_municipality(q).unwrap_err().code(),
                "unknown_municipality",
                "{q:?}"
            );
        }
    }

    #[test]
    fn a_long_region_query_is_cut_and_never_in_the_message() {
        let long = format!("Region {}", "19121212-1212 ".repeat(20));
        let err = find_municipality(&long).unwrap_err();
        let GeoError::RegionNotMunicipality { query, county, .. } = &err else {
            panic!("wrong variant: {err:?}")
        };
        assert_eq!(query.chars().count(), MAX_QUERY_KEPT);
        assert_eq!(*county, None);
        for lang in [Lang::Sv, Lang::En] {
            assert!(!err.message(lang).contains("1212"));
        }
    }

    #[test]
    fn no_municipality_name_is_read_as_a_region() {
        for m in municipalities() {
            for q in [
                m.name.to_string(),
                format!("{} kommun", m.name),
                format!("{}s kommun", m.name),
            ] {
                assert_eq!(region_form(&fold(&q)), None, "{q}");
            }
        }
    }

    #[test]
    fn every_county_is_found_by_its_official_name_and_as_a_region() {
        let short: Vec<_> = counties().iter().map(county_short_name).collect();
        assert_eq!(
            short,
            [
                "Stockholm",
                "Uppsala",
                "Södermanland",
                "Östergötland",
                "Jönköping",
                "Kronoberg",
                "Kalmar",
                "Gotland",
                "Blekinge",
                "Skåne",
                "Halland",
                "Västra Götaland",
                "Värmland",
                "Örebro",
                "Västmanland",
                "Dalarna",
                "Gävleborg",
                "Västernorrland",
                "Jämtland",
                "Västerbotten",
                "Norrbotten"
            ]
        );
        for c in counties().iter().filter(|c| c.code != "09") {
            let short = county_short_name(c);
            for q in [
                c.name.to_string(),
                fold(c.name),
                format!("Region {short}"),
                format!("{short} län"),
                format!("{} landsting", c.name.strip_suffix(" län").unwrap()),
                format!("{short} County"),
            ] {
                assert_eq!(refused_region(&q).0, Some(c.code), "{q}");
                assert_eq!(
                    region_municipalities(&q).unwrap(),
                    county_municipalities(c),
                    "{q}"
                );
            }
        }
    }

    #[test]
    fn region_municipalities_lists_a_county_and_refuses_anything_else() {
        let stockholm = region_municipalities(" Region Stockholm ").unwrap();
        assert_eq!(stockholm.len(), 26);
        assert_eq!(stockholm[0].code, "0114");
        assert_eq!(region_municipalities("Skåne").unwrap().len(), 33);
        assert_eq!(
            region_municipalities("Stockholms län").unwrap(),
            stockholm,
            "one county, one list"
        );
        for q in ["Stockholm", "Kalmar", "0180", "Västerås kommun", "Gotland"] {
            let err = region_municipalities(q).unwrap_err();
            assert_eq!(err.code(), "municipality_not_region", "{q}");
            let GeoError::MunicipalityNotRegion { municipality } = err else {
                panic!("wrong variant")
            };
            assert_eq!(municipality, find_municipality(q).unwrap());
        }
        for (q, code) in [
            ("Region Atlantis", "region_not_municipality"),
            ("Atlantis", "unknown_municipality"),
            ("", "unknown_municipality"),
            ("Habo", "ambiguous_municipality"),
        ] {
            assert_eq!(region_municipalities(q).unwrap_err().code(), code, "{q:?}");
        }
    }

    #[test]
    fn the_new_errors_have_codes_and_a_text_per_language() {
        let errors = [
            find_municipality("Region Stockholm").unwrap_err(),
            find_municipality("Region Atlantis").unwrap_err(),
            region_municipalities("Stockholm").unwrap_err(),
        ];
        let codes: Vec<_> = errors.iter().map(|e| e.code()).collect();
        assert_eq!(
            codes,
            [
                "region_not_municipality",
                "region_not_municipality",
                "municipality_not_region"
            ]
        );
        for e in &errors {
            assert_eq!(e.to_string(), e.message(Lang::En));
            assert_ne!(e.message(Lang::Sv), e.message(Lang::En));
            assert!(!e.message(Lang::Sv).is_empty());
        }
    }
}
