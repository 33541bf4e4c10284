//! Templates, their stable ids, and what callers see of them.

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    hashing::fnv1a64,
    tokenize::{Kind, WILDCARD},
};

/// A template's id: the 64-bit FNV-1a hash of its text, shown as 16 lowercase
/// hex digits.
///
/// Derived from the text alone, so two miners (or one miner before and after a
/// restart) that produce the same template give it the same id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateId(u64);

impl TemplateId {
    /// The id of the template whose text is `template`.
    pub fn of(template: &str) -> TemplateId {
        TemplateId(fnv1a64(template.as_bytes()))
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// An id from its number.
    pub fn from_u64(v: u64) -> TemplateId {
        TemplateId(v)
    }
}

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TemplateId({:016x})", self.0)
    }
}

/// Error of parsing a [`TemplateId`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a template id is 16 hex digits, got {0:?}")]
pub struct ParseTemplateIdError(String);

impl FromStr for TemplateId {
    type Err = ParseTemplateIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseTemplateIdError(s.to_string()));
        }
        u64::from_str_radix(s, 16)
            .map(TemplateId)
            .map_err(|_| ParseTemplateIdError(s.to_string()))
    }
}

impl Serialize for TemplateId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TemplateId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What the miner knows about one template (a row of the `templates` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInfo {
    /// The template's id.
    pub id: TemplateId,
    /// The template text, variables written `<*>`.
    pub template: Arc<str>,
    /// Time of the first line of this template (or of a template it
    /// generalised), Unix nanoseconds.
    pub first_seen: u64,
    /// Time of the latest line, Unix nanoseconds.
    pub last_seen: u64,
    /// Lines this template stands for: its own, plus those of the templates
    /// it generalised, counted when it replaced them. A replaced template
    /// keeps the count it had then.
    pub count: u64,
    /// For a template that was generalised, the template that replaced it;
    /// `None` for a current template.
    pub parent_id: Option<TemplateId>,
}

/// One token of a stored template shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TTok {
    pub kind: Kind,
    pub glue: bool,
    /// Empty for [`Kind::Var`].
    pub text: Box<str>,
}

/// Whether `word` fits `glob` (`prefix<*>suffix`, one wildcard standing for
/// a non-empty middle).
pub(crate) fn glob_matches(glob: &str, word: &str) -> bool {
    match glob.split_once(WILDCARD) {
        Some((prefix, suffix)) => {
            word.len() > prefix.len() + suffix.len()
                && word.starts_with(prefix)
                && word.ends_with(suffix)
        }
        None => false,
    }
}

/// The glob covering dotted names that share leading or trailing parts:
/// `com.apple.icloud.fmfd` and `com.apple.xpc.launchd` give `com.apple.<*>`.
/// `None` when a value is not a dotted name, holds a wildcard already, or
/// nothing is shared.
pub(crate) fn dotted_glob(values: &[&str]) -> Option<String> {
    let first = values.first()?;
    if values
        .iter()
        .any(|v| !v.contains('.') || v.contains(WILDCARD))
    {
        return None;
    }
    let parts: Vec<Vec<&str>> = values.iter().map(|v| v.split('.').collect()).collect();
    let shortest = parts.iter().map(Vec::len).min()?;
    let f: Vec<&str> = first.split('.').collect();
    let mut pre = 0;
    // Keep at least one part of the shortest value for the variable middle.
    while pre + 1 < shortest && parts.iter().all(|p| p[pre] == f[pre] && !p[pre].is_empty()) {
        pre += 1;
    }
    let mut suf = 0;
    while pre + suf + 1 < shortest
        && parts.iter().all(|p| {
            p[p.len() - 1 - suf] == f[f.len() - 1 - suf] && !p[p.len() - 1 - suf].is_empty()
        })
    {
        suf += 1;
    }
    // The variable middle must be non-empty in every value.
    if (pre == 0 && suf == 0) || parts.iter().any(|p| p.len() <= pre + suf) {
        return None;
    }
    let mut g = String::new();
    for p in &f[..pre] {
        g.push_str(p);
        g.push('.');
    }
    g.push_str(WILDCARD);
    for p in &f[f.len() - suf..] {
        g.push('.');
        g.push_str(p);
    }
    Some(g)
}

impl TTok {
    #[inline]
    pub(crate) fn text(&self) -> &str {
        match self.kind {
            Kind::Var => WILDCARD,
            _ => &self.text,
        }
    }
}

/// Renders a shape as template text: whitespace-separated tokens joined by one
/// space, and adjacent variables shown once (as a line's own text is).
pub(crate) fn render(toks: &[TTok]) -> String {
    let mut out = String::new();
    let mut prev_var = false;
    for (k, t) in toks.iter().enumerate() {
        let var = t.kind == Kind::Var;
        if var && prev_var {
            continue;
        }
        if k > 0 && !t.glue {
            out.push(' ');
        }
        out.push_str(t.text());
        prev_var = var;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_hex_of_fnv_and_round_trips() {
        let id = TemplateId::of("Received block <*> of size <*> from <*>");
        let s = id.to_string();
        assert_eq!(s.len(), 16);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(s.parse::<TemplateId>().unwrap(), id);
        assert_eq!(TemplateId::of("").to_string(), "cbf29ce484222325");
        assert!("xyz".parse::<TemplateId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<TemplateId>(&json).unwrap(), id);
    }

    #[test]
    fn dotted_globs_keep_shared_parts() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (
                &["com.apple.icloud.fmfd", "com.apple.xpc.launchd"],
                Some("com.apple.<*>"),
            ),
            (
                &["c.e.checkout.OrderService", "c.e.cart.OrderService"],
                Some("c.e.<*>.OrderService"),
            ),
            (&["a.b", "a.b.c"], Some("a.<*>")),
            (&["x.y", "z.w"], None),
            (&["alice", "bob"], None),
            (&["com.apple.<*>", "com.apple.x"], None),
        ];
        for (values, want) in cases {
            assert_eq!(dotted_glob(values).as_deref(), *want, "{values:?}");
        }
        assert!(glob_matches("com.apple.<*>", "com.apple.xpc"));
        assert!(!glob_matches("com.apple.<*>", "com.apple."));
        assert!(!glob_matches("com.apple.<*>", "org.apache.x"));
        assert!(glob_matches(
            "c.e.<*>.OrderService",
            "c.e.cart.OrderService"
        ));
        assert!(!glob_matches("plain", "plain"));
    }

    #[test]
    fn render_folds_adjacent_variables() {
        let t = |kind, glue, text: &str| TTok {
            kind,
            glue,
            text: text.into(),
        };
        let toks = vec![
            t(Kind::Word, false, "size"),
            t(Kind::Var, false, ""),
            t(Kind::Var, false, ""),
            t(Kind::Punct, true, ","),
            t(Kind::Word, false, "free"),
        ];
        assert_eq!(render(&toks), "size <*>, free");
    }
}
