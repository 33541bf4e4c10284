//! The syntax tree of a rule, its canonical text, and its reference meaning.

use std::fmt::{self, Write as _};

use super::attributes::Attributes;
use super::compare::{CompareOp, Literal, compare, equals};
use super::lexer::is_bare_name;

/// A rule expression.
///
/// The parser builds `Or` and `And` with at least two operands, flattening a
/// chain of the same operator (`a OR b OR c` is one `Or` of three) but
/// keeping the grouping the text spells with parentheses (`(a OR b) OR c` is
/// an `Or` inside an `Or`), so that the tree mirrors the text. Parentheses
/// themselves leave no node.
///
/// A hand-built `Or` or `And` with fewer than two operands evaluates by the
/// usual identities (an empty `Or` is false, an empty `And` true) but has no
/// text form that parses back to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// True when any operand is; operands are evaluated left to right and
    /// stop at the first true one.
    Or(Vec<Expr>),
    /// True when every operand is; stops at the first false one.
    And(Vec<Expr>),
    /// True when the operand is false — including when the operand is a
    /// comparison on a missing attribute.
    Not(Box<Expr>),
    /// `attr op value`: true when the attribute is present and
    /// [`compare`](super::compare)`(op, its value, value)` holds. False
    /// when the attribute is missing, whatever the operator.
    Compare {
        /// The attribute name, e.g. `tls.version`.
        attr: String,
        /// The operator.
        op: CompareOp,
        /// The constant on the right.
        value: Literal,
    },
    /// `attr IN [v1, v2, …]`: true when the attribute is present and `==`
    /// one of the values. The parser never builds an empty list.
    In {
        /// The attribute name.
        attr: String,
        /// The values, in the order written.
        values: Vec<Literal>,
    },
}

impl Expr {
    /// `attr op value`.
    pub fn compare(attr: impl Into<String>, op: CompareOp, value: impl Into<Literal>) -> Expr {
        Expr::Compare {
            attr: attr.into(),
            op,
            value: value.into(),
        }
    }

    /// `attr IN [values…]`.
    pub fn is_in<L: Into<Literal>>(
        attr: impl Into<String>,
        values: impl IntoIterator<Item = L>,
    ) -> Expr {
        Expr::In {
            attr: attr.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `NOT self`.
    #[allow(clippy::should_implement_trait)] // a constructor, not negation of a value
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// The reference meaning of the expression on one record: a direct walk
    /// of the tree calling [`compare`](super::compare) on every comparison.
    /// [`Rule::evaluate`](super::Rule::evaluate) gives the same answer,
    /// faster; this one is the specification the tests hold it to.
    pub fn evaluate<A: Attributes + ?Sized>(&self, attrs: &A) -> bool {
        match self {
            Expr::Or(operands) => operands.iter().any(|e| e.evaluate(attrs)),
            Expr::And(operands) => operands.iter().all(|e| e.evaluate(attrs)),
            Expr::Not(operand) => !operand.evaluate(attrs),
            Expr::Compare { attr, op, value } => attrs
                .get(attr)
                .is_some_and(|actual| compare(*op, actual, value)),
            Expr::In { attr, values } => attrs
                .get(attr)
                .is_some_and(|actual| values.iter().any(|v| equals(actual, v))),
        }
    }

    /// Every attribute name the expression reads, sorted, without
    /// duplicates.
    pub fn attributes(&self) -> Vec<&str> {
        fn walk<'e>(e: &'e Expr, out: &mut Vec<&'e str>) {
            match e {
                Expr::Or(operands) | Expr::And(operands) => {
                    operands.iter().for_each(|e| walk(e, out));
                }
                Expr::Not(operand) => walk(operand, out),
                Expr::Compare { attr, .. } | Expr::In { attr, .. } => out.push(attr),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The canonical text: keywords in capitals, one space around operators,
/// strings in double quotes, names bare when they can be and in backticks
/// otherwise, and only the parentheses the tree needs. It parses back to the
/// same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(operands) => join(f, operands, " OR ", |e| matches!(e, Expr::Or(_))),
            Expr::And(operands) => join(f, operands, " AND ", |e| {
                matches!(e, Expr::Or(_) | Expr::And(_))
            }),
            Expr::Not(operand) => {
                f.write_str("NOT ")?;
                if matches!(**operand, Expr::Or(_) | Expr::And(_)) {
                    write!(f, "({operand})")
                } else {
                    write!(f, "{operand}")
                }
            }
            Expr::Compare { attr, op, value } => {
                write_name(f, attr)?;
                write!(f, " {op} {value}")
            }
            Expr::In { attr, values } => {
                write_name(f, attr)?;
                f.write_str(" IN [")?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_char(']')
            }
        }
    }
}

fn join(
    f: &mut fmt::Formatter<'_>,
    operands: &[Expr],
    separator: &str,
    needs_parens: impl Fn(&Expr) -> bool,
) -> fmt::Result {
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        if needs_parens(operand) {
            write!(f, "({operand})")?;
        } else {
            write!(f, "{operand}")?;
        }
    }
    Ok(())
}

fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if is_bare_name(name) {
        f.write_str(name)
    } else {
        write_quoted(f, name, '`')
    }
}

/// `text` between `quote`s, escaping the quote, `\` and control characters.
fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str, quote: char) -> fmt::Result {
    f.write_char(quote)?;
    for c in text.chars() {
        match c {
            '\\' => f.write_str(r"\\")?,
            '\n' => f.write_str(r"\n")?,
            '\r' => f.write_str(r"\r")?,
            '\t' => f.write_str(r"\t")?,
            c if c == quote => write!(f, "\\{c}")?,
            c if c.is_control() => write!(f, "\\u{{{:X}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

/// Strings in double quotes with escapes, numbers as the shortest decimal
/// that reads back as the same double (`1.5`, `200`, `-0.001`), booleans as
/// `true` / `false`.
impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(text) => write_quoted(f, text, '"'),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text() {
        let e = Expr::Or(vec![
            Expr::And(vec![
                Expr::compare("geo", CompareOp::Eq, "华南"),
                Expr::compare("isp", CompareOp::Eq, "移动"),
            ]),
            Expr::And(vec![
                Expr::compare("device.type", CompareOp::Eq, "iOS"),
                Expr::compare("tls.version", CompareOp::Ge, "1.3"),
            ]),
        ]);
        assert_eq!(
            e.to_string(),
            r#"geo == "华南" AND isp == "移动" OR device.type == "iOS" AND tls.version >= "1.3""#
        );
        let e = Expr::And(vec![
            Expr::Or(vec![
                Expr::compare("a", CompareOp::Lt, 1.5),
                Expr::is_in("weird key", [Literal::from("x\"\n\u{7}"), true.into()]),
            ]),
            Expr::compare("and", CompareOp::Ne, false).not().not(),
            Expr::Or(vec![Expr::compare("b", CompareOp::Eq, -0.25)]).not(),
        ]);
        assert_eq!(
            e.to_string(),
            r#"(a < 1.5 OR `weird key` IN ["x\"\n\u{7}", true]) AND NOT NOT `and` != false AND NOT (b == -0.25)"#
        );
    }

    #[test]
    fn attributes_sorted_unique() {
        let e = Expr::Or(vec![
            Expr::compare("z", CompareOp::Eq, "1"),
            Expr::is_in("a", ["1"]).not(),
            Expr::compare("z", CompareOp::Eq, "2"),
        ]);
        assert_eq!(e.attributes(), ["a", "z"]);
    }
}
