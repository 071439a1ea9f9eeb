//! The matching rules of the module documentation's "Behavior" section,
//! example by example, then checked against brute force with proptest.

use super::*;

#[test]
fn prefix_pattern_matches_every_filter_variant() {
    assert!(pattern_matches(
        "sets:user:<set.user_id>:*",
        "sets:user:<user_id>:<prompt>:<model>"
    ));
    assert!(pattern_matches(
        "sets:user:*",
        "sets:user:<user_id>:<prompt>:<model>"
    ));
    assert!(pattern_matches("sets:*", "sets:user:<user_id>"));
    assert!(pattern_matches("*", "anything:<x>"));
}

#[test]
fn a_typo_matches_nothing() {
    assert!(!pattern_matches(
        "user-collection:<user_id>",
        "user-collections:<user_id>"
    ));
    assert!(!pattern_matches(
        "set:user:<id>:*",
        "sets:user:<user_id>:<prompt>:<model>"
    ));
    assert!(!pattern_matches(
        "sets:users:<id>:*",
        "sets:user:<user_id>:<prompt>"
    ));
}

#[test]
fn exact_pattern_matches_whole_keys_only() {
    assert!(!pattern_matches("user:<id>", "user:<id>:profile"));
    assert!(pattern_matches("user:<id>*", "user:<id>:profile"));
    assert!(pattern_matches("user:<id>:*", "user:<id>:profile"));
    // A value never contains `:`, so it cannot swallow the rest of the key.
    assert!(!pattern_matches("user:<id>", "user:<a>:<b>"));
    assert!(!pattern_matches("user:<id>:profile", "user:<id>"));
}

#[test]
fn placeholder_names_do_not_matter() {
    assert!(pattern_matches("set:<id>", "set:<set_id>"));
    assert!(pattern_matches("set:<set.id>", "set:<id>"));
    assert!(pattern_matches("user:<user.profile.id>:x", "user:<uid>:x"));
}

#[test]
fn placeholders_meet_literals() {
    // `<id>` may be `me`: the pattern can clear that key.
    assert!(pattern_matches("user:<id>", "user:me"));
    assert!(pattern_matches("user:me", "user:<id>"));
    assert!(pattern_matches("user:<id>", "user:"));
    assert!(pattern_matches("page:<a>-<b>", "page:<n>"));
    assert!(pattern_matches("page:<n>", "page:<a>-<b>"));
    // `~` (None) and `%XX` escapes are value characters.
    assert!(pattern_matches("f:~", "f:<filter>"));
    assert!(pattern_matches("f:a%3Ab", "f:<filter>"));
    // A `:` or `/` is never inside a value.
    assert!(!pattern_matches("f:a:b", "f:<filter>"));
    assert!(!pattern_matches("f:a/b", "f:<filter>"));
}

#[test]
fn hash_placeholders_are_sixteen_hex_digits() {
    assert!(pattern_matches("search:<q:hash>", "search:<filters:hash>"));
    assert!(pattern_matches("search:<q>", "search:<filters:hash>"));
    assert!(pattern_matches(
        "search:0123456789abcdef",
        "search:<q:hash>"
    ));
    assert!(!pattern_matches(
        "search:0123456789ABCDEF",
        "search:<q:hash>"
    ));
    assert!(!pattern_matches(
        "search:0123456789abcde",
        "search:<q:hash>"
    ));
    assert!(!pattern_matches("search:latest", "search:<q:hash>"));
    assert!(pattern_matches("search:0123*", "search:<q:hash>:<page>"));
    assert!(!pattern_matches(
        "search:<q:hash>:<p:hash>",
        "search:<q:hash>"
    ));
}

#[test]
fn braces_and_question_marks_are_literal() {
    assert!(pattern_matches("user:{<user_id>}:*", "user:{<id>}:feed"));
    assert!(!pattern_matches("user:<user_id>:*", "user:{<id>}:feed"));
    assert!(pattern_matches(
        "explore?q=<q>&page=<p>",
        "explore?q=<query>&page=<page>"
    ));
    assert!(!pattern_matches("explore?q=<q>", "explore-q=<q>"));
}

#[test]
fn tags_match_whole_tags() {
    assert!(tag_matches("user:<user.id>", "user:<user_id>"));
    assert!(tag_matches("feed", "feed"));
    assert!(!tag_matches("user", "user:<user_id>"));
    assert!(!tag_matches("users:<id>", "user:<user_id>"));
    // `*` is literal in a tag.
    assert!(!tag_matches("user:*", "user:<user_id>"));
}

#[test]
fn malformed_text_is_literal() {
    assert_eq!(Shape::parse("a<b", Kind::Exact).tokens.len(), 3);
    assert!(pattern_matches("a<b", "a<b"));
    assert!(!pattern_matches("a<b", "a<x>"));
    assert!(pattern_matches("a>b", "a>b"));
}

#[test]
fn distance_finds_the_typo() {
    let d = |a, b| Shape::parse(a, Kind::Pattern).distance(&Shape::parse(b, Kind::Exact));
    assert_eq!(d("user-collection:<user_id>", "user-collections:<id>"), 1);
    assert_eq!(
        d("set:user:<id>:*", "sets:user:<user_id>:<prompt>:<model>"),
        1
    );
    assert_eq!(d("abc", "abc"), 0);
    assert_eq!(d("", "abc"), 3);
}

mod properties {
    use crate::registry::matching::*;
    use proptest::prelude::*;

    /// A concrete key, matched against a template by backtracking: an
    /// independent reference for `intersects`.
    fn builds(tokens: &[Token], key: &str, prefix: bool) -> bool {
        match tokens.split_first() {
            None => prefix || key.is_empty(),
            Some((Token::Lit(c), rest)) => key
                .strip_prefix(*c)
                .is_some_and(|key| builds(rest, key, prefix)),
            Some((Token::Value, rest)) => (0..=key.len())
                .take_while(|&n| key[..n].chars().all(is_value_char))
                .any(|n| builds(rest, &key[n..], prefix)),
            Some((Token::Hash, rest)) => {
                key.len() >= 16
                    && key[..16].chars().all(is_hash_char)
                    && builds(rest, &key[16..], prefix)
            }
        }
    }

    fn template_text(tokens: &[Token]) -> String {
        tokens
            .iter()
            .map(|t| match t {
                Token::Lit(c) => c.to_string(),
                Token::Value => "<v>".into(),
                Token::Hash => "<h:hash>".into(),
            })
            .collect()
    }

    fn small_token() -> impl Strategy<Value = Token> {
        prop_oneof![
            Just(Token::Lit('a')),
            Just(Token::Lit('b')),
            Just(Token::Lit(':')),
            Just(Token::Value),
        ]
    }

    fn token() -> impl Strategy<Value = Token> {
        prop_oneof![
            3 => "[a-z0-9:{}?~%-]".prop_map(|s| Token::Lit(s.chars().next().unwrap())),
            2 => Just(Token::Value),
            1 => Just(Token::Hash),
        ]
    }

    /// Every key over `{a, b, :}` with values of up to 3 characters.
    fn all_keys(tokens: &[Token]) -> Vec<String> {
        let values = [
            "", "a", "b", "aa", "ab", "ba", "bb", "aaa", "aab", "aba", "abb", "baa", "bab", "bba",
            "bbb",
        ];
        let mut keys = vec![String::new()];
        for token in tokens {
            keys = match *token {
                Token::Lit(c) => keys.into_iter().map(|k| format!("{k}{c}")).collect(),
                _ => keys
                    .into_iter()
                    .flat_map(|k| values.iter().map(move |v| format!("{k}{v}")))
                    .collect(),
            };
        }
        keys
    }

    proptest! {
        /// On small templates, `intersects` agrees with trying every key.
        #[test]
        fn agrees_with_brute_force(
            pattern in proptest::collection::vec(small_token(), 0..4),
            key in proptest::collection::vec(small_token(), 0..4),
            prefix in any::<bool>(),
        ) {
            let p = Shape { tokens: pattern.clone(), prefix };
            let k = Shape { tokens: key.clone(), prefix: false };
            let brute = all_keys(&key).iter().any(|s| builds(&pattern, s, prefix));
            prop_assert_eq!(p.intersects(&k), brute, "{:?} vs {:?}", pattern, key);
        }

        /// A pattern written from a real key of a template (some of its
        /// values turned back into placeholders, maybe cut short with
        /// `*`) always matches that template.
        #[test]
        fn patterns_of_real_keys_match(
            template in proptest::collection::vec(token(), 0..8),
            values in proptest::collection::vec("[a-zA-Z0-9._~%-]{0,5}", 8),
            hashes in proptest::collection::vec("[0-9a-f]{16}", 8),
            holes in proptest::collection::vec((0..40usize, 0..6usize), 0..3),
            cut in proptest::option::of(0..40usize),
        ) {
            // The key, and for each character whether it came from a value.
            let mut key: Vec<(char, bool)> = Vec::new();
            for (i, token) in template.iter().enumerate() {
                match token {
                    Token::Lit(c) => key.push((*c, false)),
                    Token::Value => key.extend(values[i].chars().map(|c| (c, true))),
                    Token::Hash => key.extend(hashes[i].chars().map(|c| (c, true))),
                }
            }
            // Turn runs of value characters back into placeholders.
            let mut pattern = Vec::new();
            let mut at = 0;
            let mut holes = holes.into_iter();
            let mut next_hole = holes.next();
            while at < key.len() {
                if let Some((start, len)) = next_hole
                    && at >= start % (key.len() + 1) && key[at].1 {
                        let run = key[at..]
                            .iter()
                            .take(len)
                            .take_while(|(c, _)| is_value_char(*c))
                            .count();
                        pattern.push(Token::Value);
                        at += run;
                        next_hole = holes.next();
                        continue;
                    }
                pattern.push(Token::Lit(key[at].0));
                at += 1;
            }
            let prefix = cut.is_some();
            if let Some(cut) = cut {
                pattern.truncate(cut % (pattern.len() + 1));
            }
            let p = Shape { tokens: pattern.clone(), prefix };
            let k = Shape::parse(&template_text(&template), Kind::Exact);
            prop_assert_eq!(&k.tokens, &template);
            let (shown, of) = (template_text(&pattern), template_text(&template));
            prop_assert!(p.intersects(&k), "{} vs {}", shown, of);
        }

        /// Matching is symmetric for whole keys, and every template
        /// matches itself.
        #[test]
        fn exact_matching_is_symmetric(
            a in proptest::collection::vec(token(), 0..6),
            b in proptest::collection::vec(token(), 0..6),
        ) {
            let a = Shape { tokens: a, prefix: false };
            let b = Shape { tokens: b, prefix: false };
            prop_assert_eq!(a.intersects(&b), b.intersects(&a));
            prop_assert!(a.intersects(&a));
        }
    }
}
