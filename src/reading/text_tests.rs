//! Tests of word matching: stems, whole words, phrases, negation scope and cues, the safety line.

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
