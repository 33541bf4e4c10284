//! User log rules: named regexes compiled into one multi-pattern automaton.
//!
//! Every rule's pattern is first compiled alone, so a bad one is reported by
//! name; then all are compiled together into one `regex-automata` meta regex
//! with `MatchKind::All`, and [`RuleSet::matches`] asks it which patterns match
//! anywhere in the line (`which_overlapping_matches`). The line is scanned
//! once, and every matching rule is reported, not only the leftmost one.

use regex_automata::{Input, MatchKind, PatternSet, meta};

use crate::error::{Error, Result};

/// Compiled user rules.
#[derive(Clone, Debug)]
pub struct RuleSet {
    names: Vec<String>,
    re: Option<meta::Regex>,
}

impl RuleSet {
    /// Compiles `(name, pattern)` pairs. Patterns use the `regex` crate's
    /// syntax (`timeout.*redis`, `(?i)oomkilled`). Names must be unique and
    /// non-empty.
    pub fn new(rules: &[(String, String)]) -> Result<RuleSet> {
        let mut names: Vec<String> = Vec::with_capacity(rules.len());
        for (index, (name, pattern)) in rules.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(Error::InvalidRuleName {
                    index,
                    name: name.clone(),
                    reason: "a rule needs a name",
                });
            }
            if names.contains(name) {
                return Err(Error::InvalidRuleName {
                    index,
                    name: name.clone(),
                    reason: "another rule has the same name",
                });
            }
            meta::Regex::new(pattern).map_err(|source| Error::InvalidRulePattern {
                name: name.clone(),
                pattern: pattern.clone(),
                source: Box::new(source),
            })?;
            names.push(name.clone());
        }
        if rules.is_empty() {
            return Ok(RuleSet { names, re: None });
        }
        let patterns: Vec<&str> = rules.iter().map(|(_, p)| p.as_str()).collect();
        let re = meta::Builder::new()
            .configure(meta::Config::new().match_kind(MatchKind::All))
            .build_many(&patterns)
            .map_err(|source| Error::BuildRuleSet {
                count: rules.len(),
                source: Box::new(source),
            })?;
        Ok(RuleSet {
            names,
            re: Some(re),
        })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Rule names, in the order given (index `i` is rule `i`).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Names of all rules that match somewhere in `line`, in rule order.
    pub fn matches(&self, line: &str) -> Vec<&str> {
        let mut out = Vec::new();
        self.matching_indices(line, &mut out);
        out.into_iter()
            .filter_map(|i| self.names.get(i).map(String::as_str))
            .collect()
    }

    /// Indices of all rules that match somewhere in `line`, in rule order,
    /// written to `out` (cleared first).
    pub fn matching_indices(&self, line: &str, out: &mut Vec<usize>) {
        let mut hits = self.hits();
        self.scan(line, &mut hits);
        out.clear();
        out.extend(hits.indices());
    }

    /// A reusable result buffer for [`RuleSet::scan`].
    pub fn hits(&self) -> RuleHits {
        RuleHits {
            set: PatternSet::new(self.re.as_ref().map_or(0, |r| r.pattern_len())),
        }
    }

    /// Scans `line` once and records every matching rule in `hits`
    /// (cleared first): the allocation-free form of [`RuleSet::matches`]
    /// for the ingest hot path.
    pub fn scan(&self, line: &str, hits: &mut RuleHits) {
        hits.set.clear();
        if let Some(re) = &self.re
            && hits.set.capacity() == re.pattern_len()
        {
            re.which_overlapping_matches(&Input::new(line), &mut hits.set);
        }
    }

    /// The names of the rules recorded in `hits`, in rule order.
    pub fn names_of<'a>(&'a self, hits: &'a RuleHits) -> impl Iterator<Item = &'a str> + 'a {
        hits.indices()
            .filter_map(|i| self.names.get(i).map(String::as_str))
    }
}

/// Which rules matched a line; made by [`RuleSet::hits`], filled by
/// [`RuleSet::scan`].
#[derive(Clone, Debug)]
pub struct RuleHits {
    set: PatternSet,
}

impl RuleHits {
    /// Indices of the matching rules, ascending.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.set.iter().map(|p| p.as_usize())
    }

    /// Whether no rule matched.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(&str, &str)]) -> Result<RuleSet> {
        let owned: Vec<(String, String)> = list
            .iter()
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .collect();
        RuleSet::new(&owned)
    }

    #[test]
    fn reports_every_matching_rule() {
        let set = rules(&[
            ("redis_timeout", "timeout.*redis"),
            ("oom", "OOMKilled"),
            ("timeout", "(?i)timed? ?out"),
            ("redis", "redis"),
            ("http_5xx", r"\bstatus=5\d\d\b"),
        ])
        .unwrap();
        let table: &[(&str, &[&str])] = &[
            (
                "timeout talking to redis at 10.0.0.1:6379",
                &["redis_timeout", "timeout", "redis"],
            ),
            ("container web-1 OOMKilled (exit 137)", &["oom"]),
            ("redis connection timed out", &["timeout", "redis"]),
            ("GET /api status=503 took=2s", &["http_5xx"]),
            ("GET /api status=5034", &[]),
            ("all good", &[]),
            ("", &[]),
            (
                "OOMKilled after timeout; redis gone",
                &["redis_timeout", "oom", "timeout", "redis"],
            ),
        ];
        let mut hits = set.hits();
        for (line, want) in table {
            assert_eq!(set.matches(line), *want, "line {line:?}");
            set.scan(line, &mut hits);
            assert_eq!(
                set.names_of(&hits).collect::<Vec<_>>(),
                *want,
                "line {line:?}"
            );
            assert_eq!(hits.is_empty(), want.is_empty());
        }
    }

    #[test]
    fn bad_pattern_names_the_rule() {
        let err = rules(&[("ok", "a"), ("broken", "timeout(")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("broken"), "{msg}");
        assert!(std::error::Error::source(&err).is_some());
        assert!(rules(&[("a", "x"), ("a", "y")]).is_err());
        assert!(rules(&[("", "x")]).is_err());
    }

    #[test]
    fn empty_rule_set_matches_nothing() {
        let set = rules(&[]).unwrap();
        assert!(set.is_empty());
        assert!(set.matches("anything").is_empty());
    }
}
