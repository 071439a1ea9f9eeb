//! Template matching: can an invalidation pattern (or tag) clear a key
//! (or tag) that a cached template builds? Both are small regular languages;
//! the check is whether they intersect.

/// How a template is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A cached key or a tag: names whole keys.
    Exact,
    /// An `#[invalidates]` key pattern: a trailing `*` clears a prefix.
    Pattern,
}

/// One piece of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Token {
    /// A literal character.
    Lit(char),
    /// `<name>`: any encoded value.
    Value,
    /// `<name:hash>`: 16 lowercase hex digits.
    Hash,
}

/// One step of the automaton a template compiles to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Exactly this character.
    Lit(char),
    /// Any run, possibly empty, of value characters (a self-loop).
    Value,
    /// One lowercase hex digit.
    Hex,
}

/// Characters an encoded placeholder value can contain.
pub(super) fn is_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~' | '%')
}

pub(super) fn is_hash_char(c: char) -> bool {
    matches!(c, '0'..='9' | 'a'..='f')
}

/// Whether one character can be consumed by both steps.
pub(super) fn steps_overlap(a: Step, b: Step) -> bool {
    match (a, b) {
        (Step::Lit(x), Step::Lit(y)) => x == y,
        (Step::Lit(c), Step::Value) | (Step::Value, Step::Lit(c)) => is_value_char(c),
        (Step::Lit(c), Step::Hex) | (Step::Hex, Step::Lit(c)) => is_hash_char(c),
        // Hex digits are value characters.
        (Step::Value | Step::Hex, Step::Value | Step::Hex) => true,
    }
}

/// A parsed template.
#[derive(Debug)]
pub(super) struct Shape {
    pub(super) tokens: Vec<Token>,
    /// A pattern ending in `*`: matches every key starting with `tokens`.
    pub(super) prefix: bool,
}

impl Shape {
    /// Parses as the macro does; the macro has already rejected malformed
    /// templates, and anything unexpected is read as literal text.
    pub(super) fn parse(template: &str, kind: Kind) -> Shape {
        let (body, prefix) = match template.strip_suffix('*') {
            Some(body) if kind == Kind::Pattern => (body, true),
            _ => (template, false),
        };
        let mut tokens = Vec::with_capacity(body.len());
        let mut rest = body;
        while let Some(c) = rest.chars().next() {
            if c == '<' {
                let after = &rest[1..];
                let close = after
                    .find(['<', '>'])
                    .filter(|&at| after.as_bytes()[at] == b'>');
                if let Some(close) = close {
                    let hash = after[..close]
                        .split_once(':')
                        .is_some_and(|(_, modifier)| modifier == "hash");
                    tokens.push(if hash { Token::Hash } else { Token::Value });
                    rest = &after[close + 1..];
                    continue;
                }
            }
            tokens.push(Token::Lit(c));
            rest = &rest[c.len_utf8()..];
        }
        Shape { tokens, prefix }
    }

    pub(super) fn steps(&self) -> Vec<Step> {
        let mut steps = Vec::with_capacity(self.tokens.len());
        for token in &self.tokens {
            match *token {
                Token::Lit(c) => steps.push(Step::Lit(c)),
                Token::Value => steps.push(Step::Value),
                Token::Hash => steps.extend([Step::Hex; 16]),
            }
        }
        steps
    }

    /// Whether some key is built by both `self` (a pattern or a key) and
    /// `key` (a whole key): a search over pairs of positions in the two
    /// automata, which is empty-intersection checking for these simple
    /// regular languages.
    pub(super) fn intersects(&self, key: &Shape) -> bool {
        let (a, b) = (self.steps(), key.steps());
        let (n, m) = (a.len(), b.len());
        let mut seen = vec![false; (n + 1) * (m + 1)];
        let mut todo = vec![(0, 0)];
        let advance = |steps: &[Step], i: usize| if steps[i] == Step::Value { i } else { i + 1 };
        while let Some((i, j)) = todo.pop() {
            if std::mem::replace(&mut seen[i * (m + 1) + j], true) {
                continue;
            }
            // Every rest of a key template can be filled in, so a pattern
            // that is used up has matched a prefix of some key.
            if i == n && (self.prefix || j == m) {
                return true;
            }
            // A value may end here (or be empty).
            if i < n && a[i] == Step::Value {
                todo.push((i + 1, j));
            }
            if j < m && b[j] == Step::Value {
                todo.push((i, j + 1));
            }
            // One character read by both (two values reading together go nowhere new).
            if i < n
                && j < m
                && (a[i], b[j]) != (Step::Value, Step::Value)
                && steps_overlap(a[i], b[j])
            {
                todo.push((advance(&a, i), advance(&b, j)));
            }
        }
        false
    }

    /// Edit distance in tokens; a prefix pattern is compared with the
    /// closest prefix of `other`.
    pub(super) fn distance(&self, other: &Shape) -> usize {
        let (a, b) = (&self.tokens, &other.tokens);
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, x) in a.iter().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, y) in b.iter().enumerate() {
                let substitute = diagonal + usize::from(x != y);
                diagonal = row[j + 1];
                row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
            }
        }
        if self.prefix {
            row.into_iter().min().unwrap_or(0)
        } else {
            row[b.len()]
        }
    }
}

/// Whether the `#[invalidates]` key pattern can clear some key that the
/// `#[cached]` key template builds.
pub(super) fn pattern_matches(pattern: &str, key_template: &str) -> bool {
    Shape::parse(pattern, Kind::Pattern).intersects(&Shape::parse(key_template, Kind::Exact))
}

/// Whether the invalidated tag can be a tag the cached tag template builds.
pub(super) fn tag_matches(tag: &str, cached_tag: &str) -> bool {
    Shape::parse(tag, Kind::Exact).intersects(&Shape::parse(cached_tag, Kind::Exact))
}

/// The template among `candidates` closest to `template`, if it is close
/// enough to be the one meant: at most 3 edits, and at most a third of it.
pub(super) fn nearest(
    template: &str,
    kind: Kind,
    candidates: impl Iterator<Item = &'static str>,
) -> Option<&'static str> {
    let wanted = Shape::parse(template, kind);
    let limit = (wanted.tokens.len() / 3).min(3);
    candidates
        .map(|c| (wanted.distance(&Shape::parse(c, Kind::Exact)), c))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests;
