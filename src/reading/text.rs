//! Word matching for model answers: whole words, plural-tolerant, negation-aware.
//!
//! The text is split into tokens: words (letters, digits and apostrophes, Unicode
//! lowercased), commas, and clause breaks (`. ; : ! ? ( ) [ ]`, newline, dashes that stand
//! between spaces, em/en dashes). A term (`"fire"`, `"coffee mug"`) is mentioned when its
//! words appear as consecutive words of the text with equal [`stem`]s, so `fire` matches
//! `fires` and `Fire` but never `firearm`.
//!
//! A mention is negated when, in the same clause, a negation cue (`no`, `not`, `without`,
//! `none`, `never`, `nor`, `neither`, `nothing`, `nobody`, `cannot`, any `n't` form,
//! `free of`, `absence of`, `lack of`, `devoid of`, …) stands at most
//! [`NEGATION_WINDOW`] counted words before it. Articles, `any`, `of`, `or` and `nor`
//! are not counted, so coordination keeps the scope: "no smoke or fire visible" negates
//! both. The scope ends at a clause break or at a contrast word (`but`, `however`,
//! `although`, `though`, `whereas`, `while`, `except`, `instead`, `only`, `just`).
//! A few negations *after* the term are recognised too, conservatively: "smoke is not
//! visible", "fire isn't present", "smoke is absent", "smoke-free", "Hazards: none".

/// Most counted words between a negation cue and the term it negates.
pub const NEGATION_WINDOW: usize = 4;

/// Generic words that flag safety-relevant activity in [`safety_stance`], besides the
/// configured keywords.
pub const SAFETY_GENERIC_TERMS: &[&str] = &[
    "safety concern",
    "safety issue",
    "safety risk",
    "safety hazard",
    "hazard",
    "hazardous",
    "danger",
    "dangerous",
    "unsafe",
    "risk",
    "emergency",
];

/// True when `term` (a word or phrase) is mentioned as a whole word, case-insensitive,
/// singular/plural tolerant. An empty term is never mentioned.
pub fn mentions(text: &str, term: &str) -> bool {
    let toks = tokenize(text);
    let term = term_stems(term);
    !term.is_empty() && !matches(&toks, &term).is_empty()
}

/// True when `term` is mentioned and at least one mention is not negated
/// ("no smoke", "no sign of fire", "not on fire", "without flames" do not count).
pub fn affirmed_mention(text: &str, term: &str) -> bool {
    affirmed_mentions(text, &[term])[0]
}

/// [`affirmed_mention`] for several terms against one text, tokenizing the text once:
/// element `i` tells whether `terms[i]` has an affirmed mention.
pub fn affirmed_mentions<S: AsRef<str>>(text: &str, terms: &[S]) -> Vec<bool> {
    let toks = tokenize(text);
    terms
        .iter()
        .map(|term| {
            let term = term_stems(term.as_ref());
            !term.is_empty()
                && matches(&toks, &term)
                    .into_iter()
                    .any(|start| !negated(&toks, start, start + term.len()))
        })
        .collect()
}

/// Does the answer flag safety-relevant activity? Negation-aware ("no safety concerns" is
/// not a flag). `keywords` are the configured safety words.
///
/// An explicit line `SAFETY: yes|no|none` (any case, markdown bold allowed; the last such
/// line wins) decides on its own. Otherwise the answer flags safety when it has an
/// affirmed mention of a keyword or of one of [`SAFETY_GENERIC_TERMS`].
pub fn safety_stance(text: &str, keywords: &[String]) -> bool {
    if let Some(explicit) = explicit_safety_line(text) {
        return explicit;
    }
    let toks = tokenize(text);
    keywords
        .iter()
        .map(String::as_str)
        .chain(SAFETY_GENERIC_TERMS.iter().copied())
        .any(|term| {
            let stems = term_stems(term);
            !stems.is_empty()
                && matches(&toks, &stems)
                    .into_iter()
                    .any(|start| !negated(&toks, start, start + stems.len()))
        })
}

/// The value of the last `SAFETY: yes|no|none` line, if any.
fn explicit_safety_line(text: &str) -> Option<bool> {
    let mut decision = None;
    for line in text.lines() {
        let l = line
            .trim_start_matches(|c: char| c.is_whitespace() || "*_#`>-".contains(c))
            .to_lowercase();
        let Some(rest) = l.strip_prefix("safety") else {
            continue;
        };
        let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '*' || c == '_');
        // Optional single qualifier word: "Safety concern: no", "Safety flag: yes".
        let rest = rest.trim_start_matches(|c: char| c.is_alphabetic());
        let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '*' || c == '_');
        let Some(rest) = rest.strip_prefix(':').or_else(|| rest.strip_prefix('=')) else {
            continue;
        };
        let value: String = rest
            .trim_start_matches(|c: char| c.is_whitespace() || c == '*' || c == '_')
            .chars()
            .take_while(|c| c.is_alphabetic())
            .collect();
        match value.as_str() {
            "yes" | "true" => decision = Some(true),
            "no" | "none" | "false" => decision = Some(false),
            _ => {}
        }
    }
    decision
}

/// Normalise a lowercase word so singular and plural forms compare equal.
///
/// Rules, first match wins:
/// 1. Apostrophes: a trailing possessive `'s` is dropped (`man's` → `man`).
/// 2. Irregular table: `people`/`persons` → `person`, `children` → `child`, `men` → `man`,
///    `women` → `woman`, `knives` → `knife` (and other `-ves` nouns), `feet`, `teeth`,
///    `mice`, `geese`, `-oes` nouns (`tomatoes`), `buses`, `lenses`, ….
/// 3. `…men` → `…man` (`firemen` → `fireman`) except a few non-plurals (`specimen`).
/// 4. `…ies` (longer than 4) → `…y` (`ladies` → `lady`), and a singular `…ie` (longer
///    than 3) → `…y` too, so `cookie`/`cookies` meet at `cooky`.
/// 5. `…sses`, `…xes`, `…zzes`, `…shes`, `…ches` → drop `es` (`glasses` → `glass`,
///    `boxes` → `box`, `benches` → `bench`), except `…aches` after a consonant-ish
///    (`headaches` → `headache`) which just drops `s`.
/// 6. `…s` (longer than 3, not `…ss`, `…us`, `…is`) → drop `s` (`mugs` → `mug`,
///    `flames` → `flame`, `houses` → `house`).
///
/// Both the text and the term go through this, so an imperfect singular (`series` →
/// `sery`) still matches itself; what matters is that distinct words rarely collide.
pub fn stem(word: &str) -> String {
    let w = word.replace('\u{2019}', "'");
    let w = w.trim_matches('\'');
    let w = w.strip_suffix("'s").unwrap_or(w);
    let w = w.to_lowercase();
    if let Some(&(_, s)) = IRREGULAR.iter().find(|(p, _)| *p == w) {
        return s.to_string();
    }
    let n = w.chars().count();
    if let Some(base) = w.strip_suffix("men") {
        if !MEN_EXCEPTIONS.contains(&w.as_str()) && n > 3 {
            return format!("{base}man");
        }
    }
    if n > 4 {
        if let Some(base) = w.strip_suffix("ies") {
            return format!("{base}y");
        }
    }
    if n > 3 {
        if let Some(base) = w.strip_suffix("ie") {
            return format!("{base}y");
        }
    }
    if w.ends_with("aches") && !w.ends_with("eaches") && !w.ends_with("oaches") {
        return w[..w.len() - 1].to_string();
    }
    for suffix in ["sses", "xes", "zzes", "shes", "ches"] {
        if w.ends_with(suffix) && n > suffix.len() {
            return w[..w.len() - 2].to_string();
        }
    }
    if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_string();
    }
    w
}

/// Irregular plural (or awkward singular) → stem.
const IRREGULAR: &[(&str, &str)] = &[
    ("people", "person"),
    ("persons", "person"),
    ("children", "child"),
    ("men", "man"),
    ("women", "woman"),
    ("feet", "foot"),
    ("teeth", "tooth"),
    ("mice", "mouse"),
    ("geese", "goose"),
    ("oxen", "ox"),
    ("cacti", "cactus"),
    ("knives", "knife"),
    ("wives", "wife"),
    ("lives", "life"),
    ("leaves", "leaf"),
    ("wolves", "wolf"),
    ("shelves", "shelf"),
    ("halves", "half"),
    ("loaves", "loaf"),
    ("thieves", "thief"),
    ("scarves", "scarf"),
    ("calves", "calf"),
    ("selves", "self"),
    ("elves", "elf"),
    ("hooves", "hoof"),
    ("tomatoes", "tomato"),
    ("potatoes", "potato"),
    ("heroes", "hero"),
    ("echoes", "echo"),
    ("volcanoes", "volcano"),
    ("mosquitoes", "mosquito"),
    ("torpedoes", "torpedo"),
    ("dominoes", "domino"),
    ("mangoes", "mango"),
    ("tornadoes", "tornado"),
    ("buses", "bus"),
    ("gases", "gas"),
    ("lens", "lens"),
    ("lenses", "lens"),
    ("avalanches", "avalanche"),
    ("niches", "niche"),
    ("quiches", "quiche"),
    ("cliches", "cliche"),
];

/// Words ending in "men" that are not plurals of "-man".
const MEN_EXCEPTIONS: &[&str] = &[
    "omen", "amen", "semen", "specimen", "abdomen", "stamen", "regimen", "hymen", "acumen",
    "bitumen", "albumen", "lumen", "yemen", "germen",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word {
        /// Lowercase, apostrophes normalised to `'` and trimmed at the ends.
        lower: String,
        stem: String,
        /// Joined to the previous word by a hyphen ("smoke-free").
        hyphen_before: bool,
    },
    Comma,
    Break(char),
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\'' || c == '\u{2019}'
}

fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_word_char(c) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            let raw: String = chars[start..i].iter().collect();
            let lower = raw.replace('\u{2019}', "'").to_lowercase();
            let lower = lower.trim_matches('\'').to_string();
            if lower.is_empty() {
                continue;
            }
            let hyphen_before =
                start >= 2 && chars[start - 1] == '-' && is_word_char(chars[start - 2]);
            let stem = stem(&lower);
            toks.push(Tok::Word {
                lower,
                stem,
                hyphen_before,
            });
            continue;
        }
        match c {
            ',' => toks.push(Tok::Comma),
            '.' | ';' | ':' | '!' | '?' | '\n' | '(' | ')' | '[' | ']' | '\u{2014}'
            | '\u{2013}' | '\u{2022}' => toks.push(Tok::Break(c)),
            '-' => {
                let joined = i > 0
                    && is_word_char(chars[i - 1])
                    && chars.get(i + 1).is_some_and(|n| is_word_char(*n));
                if !joined {
                    toks.push(Tok::Break('-'));
                }
            }
            _ => {}
        }
        i += 1;
    }
    toks
}

fn term_stems(term: &str) -> Vec<String> {
    tokenize(term)
        .into_iter()
        .filter_map(|t| match t {
            Tok::Word { stem, .. } => Some(stem),
            _ => None,
        })
        .collect()
}

/// Start indices (into `toks`) of every run of consecutive words matching `term`.
fn matches(toks: &[Tok], term: &[String]) -> Vec<usize> {
    if term.is_empty() || toks.len() < term.len() {
        return Vec::new();
    }
    (0..=toks.len() - term.len())
        .filter(|&i| {
            term.iter()
                .enumerate()
                .all(|(k, t)| matches!(&toks[i + k], Tok::Word { stem, .. } if stem == t))
        })
        .collect()
}

fn word(t: &Tok) -> Option<&str> {
    match t {
        Tok::Word { lower, .. } => Some(lower),
        _ => None,
    }
}

/// Words that end a negation's scope like a full stop.
const SCOPE_BREAK_WORDS: &[&str] = &[
    "but", "however", "although", "though", "whereas", "while", "except", "instead", "only", "just",
];

/// Words that do not count towards the negation window.
const UNCOUNTED: &[&str] = &["a", "an", "the", "any", "of", "or", "nor"];

const NEGATION_WORDS: &[&str] = &[
    "no", "not", "without", "none", "never", "nor", "neither", "nothing", "nobody", "cannot",
    "lacks", "lacking", "nowhere", "isnt", "arent", "doesnt", "dont", "didnt", "wasnt", "werent",
    "cant", "wont", "hasnt", "havent",
];

fn is_negation_word(w: &str) -> bool {
    NEGATION_WORDS.contains(&w) || w.ends_with("n't")
}

/// Is the word at `j` a negation cue (looking at its neighbours for phrases)?
fn is_cue_at(toks: &[Tok], j: usize) -> bool {
    let Some(w) = word(&toks[j]) else {
        return false;
    };
    let next = toks.get(j + 1).and_then(word);
    if is_negation_word(w) {
        // "no doubt there is fire" affirms.
        return !matches!(next, Some("doubt" | "question"));
    }
    if w == "of" && j > 0 {
        if let Some(prev) = word(&toks[j - 1]) {
            return matches!(prev, "free" | "absence" | "lack" | "devoid");
        }
    }
    false
}

fn negated(toks: &[Tok], start: usize, end: usize) -> bool {
    negated_before(toks, start) || negated_after(toks, end)
}

fn negated_before(toks: &[Tok], start: usize) -> bool {
    let mut counted = 0;
    let mut j = start;
    while j > 0 {
        j -= 1;
        match &toks[j] {
            Tok::Break(_) => return false,
            Tok::Comma => continue,
            Tok::Word { lower, .. } => {
                if SCOPE_BREAK_WORDS.contains(&lower.as_str()) {
                    return false;
                }
                if is_cue_at(toks, j) {
                    return true;
                }
                if !UNCOUNTED.contains(&lower.as_str()) {
                    counted += 1;
                    if counted > NEGATION_WINDOW {
                        return false;
                    }
                }
            }
        }
    }
    false
}

const COPULAS: &[&str] = &[
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "appears",
    "appear",
    "appeared",
    "seems",
    "seem",
    "seemed",
    "to",
    "does",
    "do",
    "did",
    "can",
    "could",
    "currently",
    "clearly",
    "actually",
    "really",
    "readily",
    "immediately",
];

const ABSENCE_PREDICATES: &[&str] = &[
    "visible",
    "present",
    "detected",
    "seen",
    "apparent",
    "observed",
    "evident",
    "noticeable",
    "shown",
    "found",
    "identified",
    "observable",
    "discernible",
    "detectable",
    "depicted",
    "spotted",
    "there",
];

/// Conservative negation after the term: "smoke is not visible", "fire is absent",
/// "smoke-free", "Hazards: none".
fn negated_after(toks: &[Tok], end: usize) -> bool {
    match toks.get(end) {
        Some(Tok::Word {
            lower,
            hyphen_before: true,
            ..
        }) if lower == "free" => return true,
        Some(Tok::Break(':' | '-' | '\u{2014}' | '\u{2013}')) => {
            return matches!(
                toks.get(end + 1).and_then(word),
                Some("none" | "no" | "absent" | "nil" | "not")
            );
        }
        _ => {}
    }
    let mut k = end;
    let mut skipped = 0;
    while let Some(w) = toks.get(k).and_then(word) {
        if !COPULAS.contains(&w) || skipped == 3 {
            break;
        }
        k += 1;
        skipped += 1;
    }
    match toks.get(k).and_then(word) {
        Some("absent" | "nowhere") => return true,
        Some(w) if is_negation_word(w) => {}
        _ => return false,
    }
    k += 1;
    let mut skipped = 0;
    while let Some(w) = toks.get(k).and_then(word) {
        if !COPULAS.contains(&w) || skipped == 3 {
            break;
        }
        k += 1;
        skipped += 1;
    }
    toks.get(k)
        .and_then(word)
        .is_some_and(|w| ABSENCE_PREDICATES.contains(&w))
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
