//! The cohort routing rule language: the text a `[[cohorts]]` entry and a
//! traffic router share, parsed once into a [`Rule`] and evaluated on every
//! record's attributes.
//!
//! ```
//! use std::collections::HashMap;
//! use grayscope_core::rule::Rule;
//!
//! let rule = Rule::parse(
//!     r#"(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3")"#,
//! )?;
//! let attrs: HashMap<String, String> = [("device.type", "iOS"), ("tls.version", "1.10")]
//!     .into_iter()
//!     .map(|(k, v)| (k.to_owned(), v.to_owned()))
//!     .collect();
//! assert!(rule.evaluate(&attrs)); // 1.10 ≥ 1.3 as versions
//! assert_eq!(rule.attributes(), ["device.type", "geo", "isp", "tls.version"]);
//!
//! let err = Rule::parse(r#"geo == AND isp == "移动""#).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "line 1, column 8: expected a value (string, number or boolean) after '==', found 'AND'"
//! );
//! # Ok::<(), grayscope_core::rule::RuleError>(())
//! ```
//!
//! # The language
//!
//! A rule is a boolean expression over a record's attributes:
//!
//! ```text
//! rule       = or
//! or         = and { ( "OR" | "||" ) and }
//! and        = unary { ( "AND" | "&&" ) unary }
//! unary      = ( "NOT" | "!" ) unary | "(" or ")" | comparison
//! comparison = name ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) value
//!            | name "IN" ( "[" values "]" | "(" values ")" )
//! values     = value { "," value } [ "," ]           -- at least one value
//! value      = string | number | "true" | "false"
//! ```
//!
//! - **Precedence**: `NOT` binds tighter than `AND`, which binds tighter than
//!   `OR`: `a == "1" OR b == "2" AND NOT c == "3"` is
//!   `a == "1" OR (b == "2" AND (NOT c == "3"))`. Parentheses group.
//! - **Keywords** `AND OR NOT IN true false` are case-insensitive (`and`,
//!   `Or`, `TRUE`). `&&`, `||` and `!` are synonyms of `AND`, `OR`, `NOT`, for
//!   rules copied from Envoy/CEL- or C-style router expressions.
//! - **Names**: a letter (any script) or `_`, then letters, digits, `_`, `-`
//!   and `.`, with no empty dotted segment: `geo`, `device.type`,
//!   `http.request.header.x-canary`, `k8s.pod.name`, `地区`. A name that is
//!   a keyword (`in`) or has other characters is written in backticks:
//!   `` `in` ``, `` `x canary` ``, `` `http.header.:authority` ``. (A dotted name
//!   is never a keyword: `baggage.not` is a name.) The attribute is always on
//!   the left of the operator and the constant on the right.
//! - **Strings** are in double or single quotes, UTF-8, on one line. Escapes:
//!   `\"` `\'` `` \` `` `\\` `\n` `\r` `\t` `\0`, `\u{1F600}` (1 to 6 hex
//!   digits) and `\u00E9` (exactly 4; a JSON-style surrogate pair
//!   `\uD83D\uDE00` is one character, a lone surrogate is an error). Backtick
//!   names take the same escapes.
//! - **Numbers**: `-?digits[.digits][(e|E)[+|-]digits]`: `200`, `-1.5`,
//!   `2.5e3`. No `+`, no `.5`, no `5.`. An unquoted `1.2.3` is an error that
//!   says to quote versions.
//! - **Booleans**: `true`, `false`.
//! - **Whitespace** (any Unicode white space, newlines included) separates
//!   tokens and is otherwise ignored. There are no comments.
//! - `IN` takes a non-empty list in `[…]` (or `(…)`, as SQL writes it);
//!   `IN []` is an error, because a list left empty by mistake would silently
//!   select nothing. There is no `NOT IN`: write `NOT (x IN [...])`.
//! - Parentheses and `NOT`s nest at most [`MAX_DEPTH`] deep.
//!
//! # What a comparison means
//!
//! Every attribute value is text (an integer in decimal, a boolean as
//! `true`/`false`). `attr op literal` is **false when the attribute is
//! missing**, whatever the operator — never an error. Otherwise, with `v` the
//! attribute's text, the literal's type decides ([`compare`] is the one
//! implementation):
//!
//! | literal | `==` | `!=` | `< <= > >=` |
//! |---|---|---|---|
//! | string `s` | `v` and `s` are the same bytes | not `==` | 1. both are [versions](Version): version order; 2. else both are [numbers](parse_number): numeric order; 3. else byte order (= code point order) |
//! | number `n` | `v` is a number equal to `n` (as doubles) | not `==` | `v` is a number: numeric order; else false |
//! | boolean `b` | `v` is `true`/`false` (any ASCII case) matching `b` | not `==` | a parse error |
//!
//! So, on a present attribute, exactly one of `==` and `!=` holds;
//! `"1.3" == "1.3.0"` is false (exact text) while `"1.3" >= "1.3.0"` and
//! `"1.3" <= "1.3.0"` are both true (versions pad with zeros); `"1.10" >
//! "1.9"` is true; `"v1.3" >= "1.3"` is true; `"1.3.0-rc1" < "1.3"` is
//! true (pre-releases come first; see [`version`] for the exact order);
//! `"0.25" > "0.5"` is true — quoted, they are versions, so compare decimals
//! with unquoted numbers: `ratio > 0.5`. A number literal never matches a
//! non-numeric value: `tls.version >= 1.3` is false for `1.3.1`, which is
//! why versions belong in quotes.
//!
//! Because the domain is chosen per pair of texts, order over values of
//! mixed kinds is not transitive (`"0.25" > "0.5"` as versions, `"0.5" >
//! "3e-1"` and `"3e-1" > "0.25"` as numbers). Each single comparison is
//! still well defined, which is all a rule needs; within one kind (all
//! versions, all numbers) the order is a total preorder.
//!
//! `x IN [a, b]` means `x == a OR x == b` (same per-type rules).
//!
//! To evaluate the same semantics elsewhere (a DataFusion expression, a
//! router), [`compare`], [`equals`], [`order`], [`parse_number`] and
//! [`Version`] are public and pure; [`Expr::evaluate`] is the reference walk.
//!
//! `AND`, `OR`, `NOT` are plain two-valued logic on top: a comparison on a
//! missing attribute is simply false, so `x != "a"` is false when `x` is
//! missing and `NOT x == "a"` is true. Evaluation stops early (left to right)
//! but has no side effects, so the order never changes the answer.
//!
//! # Errors
//!
//! [`RuleError`] names the line and column (1-based, in characters), what was
//! expected and what was found, and sometimes a hint:
//! `line 1, column 5: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'geo', found '='; write '==' to compare`.

mod ast;
mod attributes;
mod compare;
mod error;
mod lexer;
mod parser;
mod plan;
pub mod version;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use ast::Expr;
pub use attributes::{Attributes, SortedAttributes};
pub use compare::{CompareOp, Literal, compare, equals, order, parse_number};
pub use error::RuleError;
pub use parser::MAX_DEPTH;
pub use version::Version;

/// A parsed rule, ready to evaluate on records.
///
/// Two rules are equal when their trees are; [`Rule::source`] keeps the text
/// as written, `Display` gives the canonical text.
#[derive(Debug, Clone)]
pub struct Rule {
    expr: Expr,
    source: String,
    attributes: Vec<String>,
    plan: plan::Node,
}

impl Rule {
    /// Parses a rule text.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let expr = parser::parse(text)?;
        Ok(Rule::with_source(expr, text.to_owned()))
    }

    /// Makes a rule of a tree built by hand; its source is the canonical
    /// text.
    pub fn from_expr(expr: Expr) -> Rule {
        let source = expr.to_string();
        Rule::with_source(expr, source)
    }

    fn with_source(expr: Expr, source: String) -> Rule {
        let attributes = expr.attributes().into_iter().map(str::to_owned).collect();
        let plan = plan::Node::compile(&expr);
        Rule {
            expr,
            source,
            attributes,
            plan,
        }
    }

    /// Whether a record with these attributes matches the rule. Never fails
    /// and never allocates; a missing attribute makes its comparisons false.
    #[inline]
    pub fn evaluate<A: Attributes + ?Sized>(&self, attrs: &A) -> bool {
        self.plan.evaluate(attrs)
    }

    /// The syntax tree, to walk or to compile into another form.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The tree, giving up the rest.
    pub fn into_expr(self) -> Expr {
        self.expr
    }

    /// The text the rule was parsed from, as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every attribute name the rule reads, sorted, without duplicates — the
    /// only attributes a caller needs to fetch.
    pub fn attributes(&self) -> &[String] {
        &self.attributes
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

/// The canonical text of the rule (see [`Expr`]'s `Display`); it parses back
/// to an equal rule.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Rule, RuleError> {
        Rule::parse(text)
    }
}

impl From<Expr> for Rule {
    fn from(expr: Expr) -> Rule {
        Rule::from_expr(expr)
    }
}

/// A rule in configuration is its text; a bad rule fails deserialization
/// with the [`RuleError`] message.
impl<'de> serde::Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Rule, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Rule::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serializes as the source text, as written.
impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}
