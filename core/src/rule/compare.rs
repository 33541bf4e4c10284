//! The meaning of one comparison: `attribute <op> literal`, on attribute
//! values that are always text.
//!
//! This file is the single definition of the comparison semantics; the module
//! docs of [`crate::rule`] restate it for users. Everything here is pure and
//! allocation-free, so a DataFusion UDF may call [`compare`] row by row.

use std::cmp::Ordering;
use std::fmt;

use super::version::Version;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// Every operator, in the order the docs list them.
    pub const ALL: [CompareOp; 6] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ];

    /// The operator as written in a rule: `"=="`, `"<="`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// Whether this is one of the four ordering operators `< <= > >=`.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }

    /// Whether `value <op> literal` holds when `value` orders as `order`
    /// relative to `literal`. Meaningful for the ordering operators; for `==`
    /// and `!=` it answers for an order, which is *not* how those operators
    /// are evaluated (they compare exactly, see [`equals`]).
    pub fn accepts(self, order: Ordering) -> bool {
        match self {
            CompareOp::Eq => order == Ordering::Equal,
            CompareOp::Ne => order != Ordering::Equal,
            CompareOp::Lt => order == Ordering::Less,
            CompareOp::Le => order != Ordering::Greater,
            CompareOp::Gt => order == Ordering::Greater,
            CompareOp::Ge => order != Ordering::Less,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A constant on the right of a comparison or in an `IN` list.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `"华南"`, `'1.3'`: compared exactly, or ordered as a version, a number
    /// or bytes.
    String(String),
    /// `200`, `-1.5`, `2.5e3`: compared numerically. The parser only makes
    /// finite numbers.
    Number(f64),
    /// `true` / `false`: matches the text `true` / `false`, in any ASCII case.
    Bool(bool),
}

impl From<&str> for Literal {
    fn from(text: &str) -> Self {
        Literal::String(text.to_owned())
    }
}

impl From<String> for Literal {
    fn from(text: String) -> Self {
        Literal::String(text)
    }
}

impl From<f64> for Literal {
    fn from(number: f64) -> Self {
        Literal::Number(number)
    }
}

impl From<i64> for Literal {
    #[allow(clippy::cast_precision_loss)] // numbers are doubles in this language
    fn from(number: i64) -> Self {
        Literal::Number(number as f64)
    }
}

impl From<bool> for Literal {
    fn from(value: bool) -> Self {
        Literal::Bool(value)
    }
}

/// Whether `value <op> literal` holds for a *present* attribute `value`.
///
/// - `==`: [`equals`]. `!=`: `!equals(..)` — for a present attribute exactly
///   one of `==` and `!=` holds. (A missing attribute satisfies neither; that
///   is decided by the caller, which has no value to pass.)
/// - `< <= > >=`: [`order`] of the value relative to the literal; when the
///   two are not comparable (`None`) all four are false.
pub fn compare(op: CompareOp, value: &str, literal: &Literal) -> bool {
    match op {
        CompareOp::Eq => equals(value, literal),
        CompareOp::Ne => !equals(value, literal),
        _ => order(value, literal).is_some_and(|o| op.accepts(o)),
    }
}

/// `==` on a present attribute value:
/// - string literal: the two texts are byte for byte equal (no version or
///   numeric equivalence: `"1.3" == "1.3.0"` is false);
/// - number literal: the value is a number ([`parse_number`]) equal to it as
///   an IEEE-754 double (`"200.0" == 200`);
/// - boolean literal: the value is `true` / `false` in any ASCII case.
pub fn equals(value: &str, literal: &Literal) -> bool {
    match literal {
        Literal::String(text) => value == text,
        Literal::Number(number) => parse_number(value).is_some_and(|v| v == *number),
        Literal::Bool(b) => value.eq_ignore_ascii_case(bool_text(*b)),
    }
}

/// The order of a present attribute value relative to a literal, or `None`
/// when they cannot be ordered. The literal's type picks the domain:
/// - number literal: numeric, when the value is a number; otherwise `None`;
/// - boolean literal: always `None` (the parser rejects it anyway);
/// - string literal, first rule that applies:
///   1. both texts are [versions](Version) → version order;
///   2. both texts are numbers → numeric order;
///   3. otherwise byte order of the UTF-8 texts (which is code point order).
pub fn order(value: &str, literal: &Literal) -> Option<Ordering> {
    match literal {
        Literal::String(text) => Some(order_text(
            value,
            text,
            Version::parse(text),
            parse_number(text),
        )),
        Literal::Number(number) => parse_number(value)?.partial_cmp(number),
        Literal::Bool(_) => None,
    }
}

/// [`order`] against a string literal whose version and number readings are
/// already known; the compiled evaluator calls this with pre-parsed literals.
pub(crate) fn order_text(
    value: &str,
    literal: &str,
    literal_version: Option<Version<'_>>,
    literal_number: Option<f64>,
) -> Ordering {
    if let Some(lit) = literal_version
        && let Some(v) = Version::parse(value)
    {
        return v.compare(&lit);
    }
    if let Some(lit) = literal_number
        && let Some(v) = parse_number(value)
        && let Some(o) = v.partial_cmp(&lit)
    {
        return o;
    }
    value.as_bytes().cmp(literal.as_bytes())
}

/// Reads `text` as a number when it matches, in full,
///
/// ```text
/// number = [ "-" ] digits [ "." digits ] [ ( "e" | "E" ) [ "+" | "-" ] digits ]
/// ```
///
/// (ASCII digits; no `+` sign, no leading or trailing `.`, no spaces, no
/// `inf`/`nan`, no hex) and converts it to the nearest double, as Rust's
/// `f64::from_str` does. Too large a magnitude gives an infinity; the result
/// is never NaN.
pub fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    // Fast path, exact: integers of up to 15 digits are below 2^53.
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if (1..=15).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) {
        let n = digits
            .iter()
            .fold(0_u64, |n, d| n * 10 + u64::from(d - b'0'));
        #[allow(clippy::cast_precision_loss)] // n < 10^15 < 2^53: exact
        let n = n as f64;
        return Some(if negative { -n } else { n });
    }
    if !is_number(bytes) {
        return None;
    }
    text.parse().ok()
}

fn is_number(b: &[u8]) -> bool {
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

pub(crate) fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CompareOp::*;

    #[test]
    fn numbers() {
        for (text, want) in [
            ("0", Some(0.0)),
            ("-0", Some(0.0)),
            ("200", Some(200.0)),
            ("007", Some(7.0)),
            ("-1.5", Some(-1.5)),
            ("2.5e3", Some(2500.0)),
            ("1E-2", Some(0.01)),
            ("1e+2", Some(100.0)),
            ("", None),
            ("-", None),
            ("+1", None),
            (".5", None),
            ("5.", None),
            ("1e", None),
            ("1e+", None),
            (" 1", None),
            ("1 ", None),
            ("inf", None),
            ("NaN", None),
            ("0x10", None),
            ("1.2.3", None),
            ("1_000", None),
            ("٣", None),
        ] {
            assert_eq!(parse_number(text), want, "{text:?}");
        }
        assert_eq!(parse_number("1e400"), Some(f64::INFINITY));
        assert!(parse_number("-0").unwrap().is_sign_negative());
        for text in [
            "999999999999999",
            "-123456789012345",
            "9999999999999999",
            "000000000000001",
        ] {
            assert_eq!(parse_number(text), text.parse().ok(), "{text}");
        }
    }

    #[test]
    fn the_literal_type_picks_the_domain() {
        let s = |t: &str| Literal::from(t);
        let n = Literal::Number;
        let cases: &[(&str, CompareOp, Literal, bool)] = &[
            // strings: exact equality, versions, numbers, bytes
            ("1.3", Eq, s("1.3"), true),
            ("1.3.0", Eq, s("1.3"), false),
            ("1.3.0", Ge, s("1.3"), true),
            ("1.3.0", Le, s("1.3"), true),
            ("1.3.0", Gt, s("1.3"), false),
            ("1.10", Gt, s("1.9"), true),
            ("v1.10", Gt, s("1.9"), true),
            ("1.3.0-rc1", Lt, s("1.3"), true),
            ("0.25", Gt, s("0.5"), true), // both versions: 25 > 5
            ("-10", Lt, s("-5"), true),   // both numbers, not versions
            ("1.5", Gt, s("-2"), true),   // "1.5" is a version, "-2" is not
            ("b", Gt, s("a"), true),
            ("TLSv1.3", Ge, s("1.3"), true), // bytes: 'T' > '1'
            ("华南", Gt, s("华北"), "南" > "北"),
            ("", Lt, s("a"), true),
            // numbers: numeric only
            ("200.0", Eq, n(200.0), true),
            ("2e2", Eq, n(200.0), true),
            ("abc", Eq, n(200.0), false),
            ("abc", Ne, n(200.0), true),
            ("1.10", Gt, n(1.9), false),  // 1.1 < 1.9 numerically
            ("1.3.1", Ge, n(1.3), false), // not a number: incomparable
            ("1.3.1", Lt, n(1.3), false),
            ("-0", Eq, n(0.0), true),
            // booleans: equality only, ASCII case-insensitive
            ("true", Eq, Literal::Bool(true), true),
            ("True", Eq, Literal::Bool(true), true),
            ("1", Eq, Literal::Bool(true), false),
            ("false", Ne, Literal::Bool(true), true),
            ("true", Ge, Literal::Bool(true), false),
            ("true", Lt, Literal::Bool(true), false),
        ];
        for (value, op, literal, want) in cases {
            assert_eq!(
                compare(*op, value, literal),
                *want,
                "{value:?} {op} {literal:?}"
            );
        }
    }

    #[test]
    fn nan_literal_is_incomparable_and_never_equal() {
        let nan = Literal::Number(f64::NAN);
        assert!(!compare(Eq, "1", &nan));
        assert!(compare(Ne, "1", &nan));
        for op in [Lt, Le, Gt, Ge] {
            assert!(!compare(op, "1", &nan));
        }
    }
}
