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
mod tests {
    use super::*;

    fn kw(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stem_plural_pairs_meet() {
        for (a, b) in [
            ("mug", "mugs"),
            ("box", "boxes"),
            ("knife", "knives"),
            ("person", "people"),
            ("child", "children"),
            ("glass", "glasses"),
            ("lady", "ladies"),
            ("man", "men"),
            ("woman", "women"),
            ("flame", "flames"),
            ("house", "houses"),
            ("bus", "buses"),
            ("bench", "benches"),
            ("dish", "dishes"),
            ("cookie", "cookies"),
            ("headache", "headaches"),
            ("tomato", "tomatoes"),
            ("shoe", "shoes"),
            ("fireman", "firemen"),
            ("camera", "cameras"),
            ("lens", "lenses"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
    }

    #[test]
    fn stem_keeps_distinct_words_apart() {
        for (a, b) in [
            ("fire", "firearm"),
            ("fire", "fireplace"),
            ("cap", "cape"),
            ("mat", "mate"),
            ("can", "cane"),
            ("glass", "gas"),
            ("man", "mane"),
        ] {
            assert_ne!(stem(a), stem(b), "{a} / {b}");
        }
        assert_eq!(stem("Man's"), "man");
        assert_eq!(stem("status"), "status");
        assert_eq!(stem("this"), "this");
    }

    #[test]
    fn mentions_whole_words_only() {
        assert!(mentions("There is a FIRE here.", "fire"));
        assert!(mentions("Two fires burn.", "fire"));
        assert!(!mentions("A man holds a firearm.", "fire"));
        assert!(!mentions("A cosy fireplace.", "fire"));
        assert!(!mentions("Campfire", "fire"));
        assert!(mentions("'Fire!' he said", "fire"));
        assert!(!mentions("anything", ""));
        assert!(!mentions("", "fire"));
    }

    #[test]
    fn mentions_plural_both_ways() {
        assert!(mentions("Three mugs on a desk", "mug"));
        assert!(mentions("A mug on a desk", "mugs"));
        assert!(mentions("Several people walk by", "person"));
        assert!(mentions("A person walks by", "people"));
        assert!(mentions("Two knives on the board", "knife"));
        assert!(mentions("The children play", "child"));
        assert!(mentions("She wears glasses", "glass"));
        assert!(mentions("Two ladies chat", "lady"));
        assert!(mentions("Men and women wait", "man"));
        assert!(mentions("Men and women wait", "woman"));
        assert!(mentions("Boxes are stacked", "box"));
    }

    #[test]
    fn mentions_phrases() {
        assert!(mentions("A white coffee mug on the desk.", "coffee mug"));
        assert!(mentions("Two Coffee  Mugs.", "coffee mug"));
        assert!(!mentions("Coffee. Mug.", "coffee mug"));
        assert!(!mentions("coffee, mug", "coffee mug"));
        assert!(!mentions("a mug of coffee", "coffee mug"));
        assert!(mentions("There are safety concerns.", "safety concern"));
    }

    #[test]
    fn negation_cues_before_the_term() {
        for (text, term) in [
            ("An office. No smoke or fire visible.", "smoke"),
            ("An office. No smoke or fire visible.", "fire"),
            ("There is no sign of fire.", "fire"),
            ("There are no signs of any smoke or fire.", "fire"),
            ("There is no evidence of smoke.", "smoke"),
            ("The stove is not on fire.", "fire"),
            ("A kitchen without any smoke.", "smoke"),
            ("No visible smoke.", "smoke"),
            ("The room isn't on fire.", "fire"),
            ("It doesn’t look like fire.", "fire"),
            ("The air is free of smoke.", "smoke"),
            ("An absence of flames.", "flame"),
            ("A lack of smoke.", "smoke"),
            ("Neither smoke nor fire.", "fire"),
            ("I never saw fire.", "fire"),
            ("Nothing unsafe here.", "unsafe"),
            ("None of the people are on fire.", "fire"),
        ] {
            assert!(mentions(text, term), "{text}");
            assert!(!affirmed_mention(text, term), "{text} / {term}");
        }
    }

    #[test]
    fn negation_after_the_term_conservative() {
        for (text, term) in [
            ("Smoke is not visible.", "smoke"),
            ("Fire isn't present in the frame.", "fire"),
            ("Smoke does not appear to be present.", "smoke"),
            ("Flames are absent.", "flame"),
            ("A smoke-free room.", "smoke"),
            ("Hazards: none.", "hazard"),
        ] {
            assert!(!affirmed_mention(text, term), "{text}");
        }
        // Not an absence: the fire is there.
        assert!(affirmed_mention("The fire is not contained.", "fire"));
        assert!(affirmed_mention("The fire is not small.", "fire"));
    }

    #[test]
    fn scope_ends_at_breaks_and_contrasts() {
        let t = "Smoke is rising but no fire.";
        assert!(affirmed_mention(t, "smoke"));
        assert!(!affirmed_mention(t, "fire"));
        assert!(affirmed_mention("There is a fire.", "fire"));
        assert!(affirmed_mention("A flame, not a lamp.", "flame"));
        assert!(!affirmed_mention("A flame, not a lamp.", "lamp"));
        assert!(affirmed_mention("No people. Fire in the corner.", "fire"));
        assert!(affirmed_mention("No people; fire in the corner.", "fire"));
        assert!(affirmed_mention("No people\nfire in the corner", "fire"));
        assert!(affirmed_mention(
            "No people, however fire is visible.",
            "fire"
        ));
        assert!(affirmed_mention("No people, only a fire.", "fire"));
        assert!(affirmed_mention("Not only smoke but fire.", "smoke"));
        assert!(affirmed_mention("Nothing but fire.", "fire"));
        assert!(affirmed_mention("There is no doubt there is fire.", "fire"));
    }

    #[test]
    fn window_is_limited() {
        // The cue is too far away to reach the term.
        assert!(affirmed_mention(
            "No people are visible in the room and a big fire burns.",
            "fire"
        ));
    }

    #[test]
    fn one_affirmed_mention_is_enough() {
        assert!(affirmed_mention(
            "No fire at first. Then a fire starts.",
            "fire"
        ));
        assert!(!affirmed_mention("No fire. Still no fire.", "fire"));
    }

    #[test]
    fn safety_stance_keywords_and_generic_terms() {
        let k = kw(&["smoke", "fire", "weapon"]);
        assert!(safety_stance("Thick smoke fills the room.", &k));
        assert!(!safety_stance("A man holds a firearm case.", &k));
        assert!(safety_stance("A person with a weapon.", &k));
        assert!(safety_stance("This is a dangerous situation.", &k));
        assert!(safety_stance(
            "There is a safety concern near the stove.",
            &k
        ));
        assert!(safety_stance("A hazard: wet floor.", &k));
        assert!(safety_stance("Risk of falling.", &k));
        assert!(!safety_stance("A calm office. No safety concerns.", &k));
        assert!(!safety_stance("Nothing unsafe.", &k));
        assert!(!safety_stance("There are no hazards.", &k));
        assert!(!safety_stance("No smoke or fire visible.", &k));
        assert!(!safety_stance("A cat sleeps on a sofa.", &k));
    }

    #[test]
    fn safety_line_decides() {
        let k = kw(&["fire"]);
        assert!(!safety_stance("A fireplace with fire.\nSAFETY: no", &k));
        assert!(!safety_stance(
            "Fire in the fireplace.\n**Safety:** none",
            &k
        ));
        assert!(safety_stance("A desk.\nsafety: YES", &k));
        assert!(safety_stance("A desk.\n- **SAFETY**: yes", &k));
        // An unreadable value leaves the decision to the words.
        assert!(safety_stance("A fire.\nSAFETY: maybe", &k));
        // A sentence that merely starts with "safety" is not the line.
        assert!(!safety_stance("Safety first, the room is calm.", &k));
    }

    #[test]
    fn affirmed_mentions_agrees_with_one_term_at_a_time() {
        let terms = ["smoke", "fire", "coffee mug", "", "knife", "hazard"];
        for text in [
            "No smoke or fire is visible. A coffee mug on the desk.",
            "Smoke rises; there is no fire. Knives on the counter.",
            "A smoke-free room, but a fire hazard near the stove.",
            "",
        ] {
            let many = affirmed_mentions(text, &terms);
            let one: Vec<bool> = terms.iter().map(|t| affirmed_mention(text, t)).collect();
            assert_eq!(many, one, "{text}");
        }
        assert_eq!(
            affirmed_mentions("Smoke rises; there is no fire.", &["smoke", "fire"]),
            vec![true, false]
        );
    }
}
