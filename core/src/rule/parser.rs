//! Tokens → [`Expr`], by recursive descent over
//!
//! ```text
//! rule       = or EOF
//! or         = and { OR and }
//! and        = unary { AND unary }
//! unary      = NOT unary | primary
//! primary    = "(" or ")" | comparison
//! comparison = name op value | name IN list
//! list       = "[" value { "," value } [ "," ] "]"  |  "(" … ")"
//! ```

use super::ast::Expr;
use super::compare::{CompareOp, Literal};
use super::error::{Pos, RuleError};
use super::lexer::{Invalid, Lexer, Token, TokenKind, shorten};
use super::version::Version;

/// How deeply parentheses and `NOT`s may nest, so that neither the parser
/// nor the evaluator can be driven out of stack by a rule.
pub const MAX_DEPTH: usize = 64;

const START: &str = "an attribute name, 'NOT' or '('";
const OPERATORS: &str = "a comparison operator (==, !=, <, <=, >, >= or IN)";

pub(crate) fn parse(src: &str) -> Result<Expr, RuleError> {
    let mut parser = Parser {
        lexer: Lexer::new(src),
        peeked: None,
        depth: 0,
    };
    if parser.peek()?.kind == TokenKind::Eof {
        let eof = parser.next()?;
        return Err(unexpected(&eof, START).with_note("the rule is empty"));
    }
    let expr = parser.or()?;
    let end = parser.next()?;
    match end.kind {
        TokenKind::Eof => Ok(expr),
        TokenKind::RParen => Err(unexpected(&end, "'AND', 'OR' or end of input")
            .with_note("this ')' has no '(' to close")),
        _ => Err(unexpected(&end, "'AND', 'OR' or end of input")),
    }
}

struct Parser<'s> {
    lexer: Lexer<'s>,
    peeked: Option<Token<'s>>,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&mut self) -> Result<&Token<'s>, RuleError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn next(&mut self) -> Result<Token<'s>, RuleError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut operands = vec![self.and()?];
        while self.peek()?.kind == TokenKind::Or {
            self.next()?;
            operands.push(self.and()?);
        }
        Ok(flatten(operands, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut operands = vec![self.unary()?];
        while self.peek()?.kind == TokenKind::And {
            self.next()?;
            operands.push(self.unary()?);
        }
        Ok(flatten(operands, Expr::And))
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if self.peek()?.kind != TokenKind::Not {
            return self.primary();
        }
        let not = self.next()?;
        self.enter(&not)?;
        let operand = self.unary()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(operand)))
    }

    fn primary(&mut self) -> Result<Expr, RuleError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::LParen => {
                self.enter(&token)?;
                let inner = self.or()?;
                let close = self.next()?;
                if close.kind != TokenKind::RParen {
                    let Pos { line, column, .. } = token.pos;
                    return Err(unexpected(
                        &close,
                        format!(
                            "'AND', 'OR' or ')' to close the '(' at line {line}, column {column}"
                        ),
                    ));
                }
                self.depth -= 1;
                Ok(inner)
            }
            TokenKind::Name(ref name) => self.comparison(name.clone(), &token),
            _ => {
                let note = match token.kind {
                    TokenKind::Str(_)
                    | TokenKind::Number(_)
                    | TokenKind::True
                    | TokenKind::False => Some(
                        "a comparison starts with the attribute name, as in tls.version >= \"1.3\""
                            .to_owned(),
                    ),
                    TokenKind::Invalid(Invalid::Number) => Some(format!(
                        "a name starts with a letter or '_'; write other names in backticks, as in `{}`",
                        shorten(token.text)
                    )),
                    _ => invalid_note(&token),
                };
                Err(with_optional_note(unexpected(&token, START), note))
            }
        }
    }

    fn comparison(&mut self, attr: String, name: &Token<'s>) -> Result<Expr, RuleError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::Op(op) => Ok(Expr::Compare {
                attr,
                op,
                value: self.value(op)?,
            }),
            TokenKind::In => Ok(Expr::In {
                attr,
                values: self.list()?,
            }),
            _ => {
                let note = match token.kind {
                    TokenKind::Not => Some(format!(
                        "NOT goes before a condition, as in NOT ({} IN [...])",
                        name.text
                    )),
                    _ => invalid_note(&token),
                };
                let expected = format!("{OPERATORS} after '{}'", shorten(name.text));
                Err(with_optional_note(unexpected(&token, expected), note))
            }
        }
    }

    fn value(&mut self, op: CompareOp) -> Result<Literal, RuleError> {
        let token = self.next()?;
        let expected = if op.is_ordering() {
            format!("a value (string or number) after '{op}'")
        } else {
            format!("a value (string, number or boolean) after '{op}'")
        };
        match token.kind {
            TokenKind::True | TokenKind::False if op.is_ordering() => {
                Err(unexpected(&token, expected)
                    .with_note("booleans have no order; compare them with == or !="))
            }
            _ => literal(token, &expected),
        }
    }

    fn list(&mut self) -> Result<Vec<Literal>, RuleError> {
        let open = self.next()?;
        let close = match open.kind {
            TokenKind::LBracket => TokenKind::RBracket,
            TokenKind::LParen => TokenKind::RParen,
            _ => return Err(unexpected(&open, "'[' after 'IN'")),
        };
        let close_text = if close == TokenKind::RBracket {
            ']'
        } else {
            ')'
        };
        let expected_value = "a value (string, number or boolean) in the IN list";
        let mut values = Vec::new();
        loop {
            let token = self.next()?;
            if token.kind == close {
                if values.is_empty() {
                    return Err(unexpected(&token, expected_value)
                        .with_note("an IN list needs at least one value"));
                }
                return Ok(values); // after a trailing comma
            }
            values.push(literal(token, expected_value)?);
            let separator = self.next()?;
            if separator.kind == close {
                return Ok(values);
            }
            if separator.kind != TokenKind::Comma {
                return Err(unexpected(
                    &separator,
                    format!("',' or '{close_text}' in the IN list"),
                ));
            }
        }
    }

    fn enter(&mut self, token: &Token<'_>) -> Result<(), RuleError> {
        if self.depth >= MAX_DEPTH {
            return Err(RuleError::new(
                token.pos,
                format!("at most {MAX_DEPTH} nested parentheses and NOTs"),
                format!("one more '{}'", token.text),
            ));
        }
        self.depth += 1;
        Ok(())
    }
}

fn flatten(mut operands: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    match operands.pop() {
        Some(only) if operands.is_empty() => only,
        Some(last) => {
            operands.push(last);
            make(operands)
        }
        None => make(operands),
    }
}

/// A token where a value must be.
fn literal(token: Token<'_>, expected: &str) -> Result<Literal, RuleError> {
    match token.kind {
        TokenKind::Str(text) => Ok(Literal::String(text)),
        TokenKind::Number(n) => Ok(Literal::Number(n)),
        TokenKind::True => Ok(Literal::Bool(true)),
        TokenKind::False => Ok(Literal::Bool(false)),
        TokenKind::Name(_) if !token.text.starts_with('`') => {
            let note = format!(
                "to compare with the text {0}, quote it: \"{0}\" (comparing two attributes is not supported)",
                shorten(token.text)
            );
            Err(unexpected(&token, expected).with_note(note))
        }
        TokenKind::Invalid(Invalid::Number) => {
            let what = if Version::parse(token.text).is_some() {
                "versions"
            } else {
                "text"
            };
            let note = format!(
                "{} is not a number; write {what} in quotes: \"{}\"",
                shorten(token.text),
                shorten(token.text)
            );
            Err(unexpected(&token, expected).with_note(note))
        }
        _ => {
            let note = invalid_note(&token);
            Err(with_optional_note(unexpected(&token, expected), note))
        }
    }
}

/// The hint an invalid token carries by itself.
fn invalid_note(token: &Token<'_>) -> Option<String> {
    match token.kind {
        TokenKind::Invalid(Invalid::Operator(hint) | Invalid::Name(hint)) => Some(hint.to_owned()),
        TokenKind::Invalid(Invalid::Char(hint)) => hint.map(str::to_owned),
        _ => None,
    }
}

fn with_optional_note(error: RuleError, note: Option<String>) -> RuleError {
    match note {
        Some(note) => error.with_note(note),
        None => error,
    }
}

fn unexpected(token: &Token<'_>, expected: impl Into<String>) -> RuleError {
    RuleError::new(token.pos, expected, describe(token))
}

/// How an error message names what it found.
fn describe(token: &Token<'_>) -> String {
    let text = shorten(token.text);
    match token.kind {
        TokenKind::Eof => "end of input".to_owned(),
        TokenKind::Name(_) if token.text.starts_with('`') => format!("attribute name {text}"),
        TokenKind::Name(_) => format!("attribute name '{text}'"),
        TokenKind::Str(_) => format!("string {text}"),
        TokenKind::Number(_) => format!("number {text}"),
        TokenKind::Invalid(Invalid::Char(_)) => match token.text.chars().next() {
            Some(c) => format!("character {c:?}"),
            None => "end of input".to_owned(),
        },
        _ => format!("'{text}'"),
    }
}
