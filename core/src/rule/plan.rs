//! A rule compiled for evaluation on many records: literals parsed once
//! (numbers, versions), operators resolved into specialised tests, so that
//! evaluating a record walks a small tree, looks attributes up, and never
//! allocates.
//!
//! It must mean exactly what [`Expr::evaluate`] means; the property tests
//! compare the two.

use std::ops::Range;

use super::ast::Expr;
use super::attributes::Attributes;
use super::compare::{CompareOp, Literal, bool_text, order_text, parse_number};
use super::version::Version;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Or(Box<[Node]>),
    And(Box<[Node]>),
    Not(Box<Node>),
    Test {
        attr: Box<str>,
        test: Test,
    },
    In {
        attr: Box<str>,
        values: Box<[Equal]>,
    },
}

/// `value == literal`, literal pre-read.
#[derive(Debug, Clone)]
pub(crate) enum Equal {
    Text(Box<str>),
    Number(f64),
    Bool(&'static str),
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Equal(Equal),
    NotEqual(Equal),
    OrderNumber {
        op: CompareOp,
        number: f64,
    },
    OrderText {
        op: CompareOp,
        text: Box<str>,
        /// Where the literal's version core and pre-release are in `text`,
        /// when the literal is a version.
        version: Option<(Range<usize>, Option<Range<usize>>)>,
        number: Option<f64>,
    },
    /// An ordering against a boolean: never true.
    Never,
}

impl Node {
    pub(crate) fn compile(expr: &Expr) -> Node {
        match expr {
            Expr::Or(operands) => Node::Or(operands.iter().map(Node::compile).collect()),
            Expr::And(operands) => Node::And(operands.iter().map(Node::compile).collect()),
            Expr::Not(operand) => Node::Not(Box::new(Node::compile(operand))),
            Expr::Compare { attr, op, value } => Node::Test {
                attr: attr.as_str().into(),
                test: Test::compile(*op, value),
            },
            Expr::In { attr, values } => Node::In {
                attr: attr.as_str().into(),
                values: values.iter().map(Equal::compile).collect(),
            },
        }
    }

    pub(crate) fn evaluate<A: Attributes + ?Sized>(&self, attrs: &A) -> bool {
        match self {
            Node::Or(operands) => operands.iter().any(|n| n.evaluate(attrs)),
            Node::And(operands) => operands.iter().all(|n| n.evaluate(attrs)),
            Node::Not(operand) => !operand.evaluate(attrs),
            Node::Test { attr, test } => attrs.get(attr).is_some_and(|v| test.holds(v)),
            Node::In { attr, values } => attrs
                .get(attr)
                .is_some_and(|v| values.iter().any(|e| e.holds(v))),
        }
    }
}

impl Equal {
    fn compile(literal: &Literal) -> Equal {
        match literal {
            Literal::String(text) => Equal::Text(text.as_str().into()),
            Literal::Number(n) => Equal::Number(*n),
            Literal::Bool(b) => Equal::Bool(bool_text(*b)),
        }
    }

    #[inline]
    fn holds(&self, value: &str) -> bool {
        match self {
            Equal::Text(text) => value == &**text,
            Equal::Number(n) => parse_number(value).is_some_and(|v| v == *n),
            Equal::Bool(text) => value.eq_ignore_ascii_case(text),
        }
    }
}

impl Test {
    fn compile(op: CompareOp, literal: &Literal) -> Test {
        match (op, literal) {
            (CompareOp::Eq, _) => Test::Equal(Equal::compile(literal)),
            (CompareOp::Ne, _) => Test::NotEqual(Equal::compile(literal)),
            (_, Literal::Number(number)) => Test::OrderNumber {
                op,
                number: *number,
            },
            (_, Literal::Bool(_)) => Test::Never,
            (_, Literal::String(text)) => Test::OrderText {
                op,
                version: Version::parse(text).map(|v| {
                    let core_start = usize::from(text.starts_with(['v', 'V']));
                    let core_end = core_start + v.core().len();
                    let pre = v
                        .pre_release()
                        .map(|pre| core_end + 1..core_end + 1 + pre.len());
                    (core_start..core_end, pre)
                }),
                number: parse_number(text),
                text: text.as_str().into(),
            },
        }
    }

    #[inline]
    fn holds(&self, value: &str) -> bool {
        match self {
            Test::Equal(e) => e.holds(value),
            Test::NotEqual(e) => !e.holds(value),
            Test::OrderNumber { op, number } => parse_number(value)
                .and_then(|v| v.partial_cmp(number))
                .is_some_and(|o| op.accepts(o)),
            Test::OrderText {
                op,
                text,
                version,
                number,
            } => {
                let version = version.as_ref().map(|(core, pre)| {
                    Version::from_parts(&text[core.clone()], pre.clone().map(|p| &text[p]))
                });
                op.accepts(order_text(value, text, version, *number))
            }
            Test::Never => false,
        }
    }
}
