//! Diagnostics shared by every phase: errors collected so a user sees all
//! of them at once, and the "did you mean …?" suggestion.

use proc_macro2::Span;

/// Collects errors so all of them reach the user at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn push_at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }

    pub(crate) fn into_inner(self) -> Option<syn::Error> {
        self.0
    }
}

impl From<Option<syn::Error>> for Errors {
    fn from(e: Option<syn::Error>) -> Self {
        Errors(e)
    }
}

/// The candidate `given` is most likely a misspelling of, if any: within a
/// small edit distance (`tll` → `ttl`) or very similar (`usr_id` → `user_id`).
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            let edits = strsim::damerau_levenshtein(given, c);
            let near =
                edits <= (c.chars().count() / 3).max(1) || strsim::jaro_winkler(given, c) > 0.8;
            (near, edits, c)
        })
        .filter(|(near, _, _)| *near)
        .min_by_key(|(_, edits, _)| *edits)
        .map(|(_, _, c)| c)
}
