//! Rule text → tokens, on demand, each with its position.
//!
//! Malformed words and unknown operators become [`TokenKind::Invalid`]
//! tokens rather than errors, so that the parser, which knows what it wanted
//! there, writes the message. Only malformed strings (unterminated, bad
//! escapes) and out-of-range numbers are errors here.

use super::compare::{CompareOp, parse_number};
use super::error::{Pos, RuleError};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'s> {
    pub(crate) kind: TokenKind,
    pub(crate) pos: Pos,
    /// The token exactly as written.
    pub(crate) text: &'s str,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// An attribute name, bare (`device.type`) or in backticks.
    Name(String),
    Str(String),
    Number(f64),
    Op(CompareOp),
    /// `AND` / `&&`
    And,
    /// `OR` / `||`
    Or,
    /// `NOT` / `!`
    Not,
    In,
    True,
    False,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Invalid(Invalid),
    Eof,
}

/// Why a word or symbol is not a token, with what the parser may suggest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Starts like a number (digit, or `-` and a digit) but is not one:
    /// `1.2.3`, `12abc`, `1e`.
    Number,
    /// Starts like a name but is not one; the reason.
    Name(&'static str),
    /// An operator we do not have; how to say it instead.
    Operator(&'static str),
    /// A character that starts no token; a hint when we have one.
    Char(Option<&'static str>),
}

/// The keywords, matched case-insensitively on undotted names.
const KEYWORDS: [(&str, TokenKind); 6] = [
    ("and", TokenKind::And),
    ("or", TokenKind::Or),
    ("not", TokenKind::Not),
    ("in", TokenKind::In),
    ("true", TokenKind::True),
    ("false", TokenKind::False),
];

/// The escapes a string or quoted name may contain, for error messages.
pub(crate) const ESCAPES: &str =
    r#"an escape (\" \' \` \\ \n \r \t \0 \u{1F600} or \u00E9) after '\'"#;

pub(crate) struct Lexer<'s> {
    src: &'s str,
    pos: Pos,
}

impl<'s> Lexer<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Lexer {
            src,
            pos: Pos {
                offset: 0,
                line: 1,
                column: 1,
            },
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos.offset..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.src[self.pos.offset..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos.offset += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn bump_while(&mut self, mut keep: impl FnMut(char) -> bool) {
        while self.peek().is_some_and(&mut keep) {
            self.bump();
        }
    }

    /// The next token; [`TokenKind::Eof`] forever once the text is used up.
    pub(crate) fn next_token(&mut self) -> Result<Token<'s>, RuleError> {
        self.bump_while(char::is_whitespace);
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Ok(self.token(start, TokenKind::Eof));
        };
        let second = self.peek();
        let op = |op| TokenKind::Op(op);
        let invalid_op = |hint| TokenKind::Invalid(Invalid::Operator(hint));
        let kind = match (c, second) {
            ('(', _) => TokenKind::LParen,
            (')', _) => TokenKind::RParen,
            ('[', _) => TokenKind::LBracket,
            (']', _) => TokenKind::RBracket,
            (',', _) => TokenKind::Comma,
            ('"' | '\'', _) => TokenKind::Str(self.quoted(start, c)?),
            ('`', _) => {
                let name = self.quoted(start, c)?;
                if name.is_empty() {
                    return Err(RuleError::new(
                        start,
                        "an attribute name between the backticks",
                        "``",
                    ));
                }
                TokenKind::Name(name)
            }
            ('=', Some('=')) => {
                self.bump();
                if self.peek() == Some('=') {
                    self.bump();
                    invalid_op("write '==' to compare")
                } else {
                    op(CompareOp::Eq)
                }
            }
            ('=', Some('>')) => self.two(invalid_op("did you mean '>='?")),
            ('=', Some('<')) => self.two(invalid_op("did you mean '<='?")),
            ('=', Some('~')) => self.two(invalid_op("regular expressions are not supported")),
            ('=', _) => invalid_op("write '==' to compare"),
            ('!', Some('=')) => {
                self.bump();
                if self.peek() == Some('=') {
                    self.bump();
                    invalid_op("write '!=' to compare")
                } else {
                    op(CompareOp::Ne)
                }
            }
            ('!', _) => TokenKind::Not,
            ('<', Some('=')) => self.two(op(CompareOp::Le)),
            ('<', Some('>')) => self.two(invalid_op("write '!=' for 'not equal'")),
            ('<', _) => op(CompareOp::Lt),
            ('>', Some('=')) => self.two(op(CompareOp::Ge)),
            ('>', _) => op(CompareOp::Gt),
            ('&', Some('&')) => self.two(TokenKind::And),
            ('&', _) => invalid_op("write 'AND' or '&&'"),
            ('|', Some('|')) => self.two(TokenKind::Or),
            ('|', _) => invalid_op("write 'OR' or '||'"),
            ('-', Some(d)) if d.is_ascii_digit() => self.number(start)?,
            (d, _) if d.is_ascii_digit() => self.number(start)?,
            (c, _) if c.is_alphabetic() || c == '_' => self.name(start),
            (c, _) => TokenKind::Invalid(Invalid::Char(full_width_hint(c))),
        };
        Ok(self.token(start, kind))
    }

    fn token(&self, start: Pos, kind: TokenKind) -> Token<'s> {
        Token {
            kind,
            pos: start,
            text: &self.src[start.offset..self.pos.offset],
        }
    }

    fn two(&mut self, kind: TokenKind) -> TokenKind {
        self.bump();
        kind
    }

    /// A word that starts like a number. Versions and words like `12abc`
    /// are read whole so the parser can show and quote them.
    fn number(&mut self, start: Pos) -> Result<TokenKind, RuleError> {
        self.bump_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
        let text = &self.src[start.offset..self.pos.offset];
        match parse_number(text) {
            Some(n) if n.is_finite() => Ok(TokenKind::Number(n)),
            Some(_) => Err(RuleError::new(
                start,
                "a number of magnitude below 1.8e308",
                format!("'{}'", shorten(text)),
            )),
            None => Ok(TokenKind::Invalid(Invalid::Number)),
        }
    }

    /// A bare name (`device.type`) or keyword (`AND`, `in`, `True`).
    fn name(&mut self, start: Pos) -> TokenKind {
        self.bump_while(is_name_char);
        let text = &self.src[start.offset..self.pos.offset];
        if !text.contains('.') {
            for (word, kind) in KEYWORDS {
                if text.eq_ignore_ascii_case(word) {
                    return kind;
                }
            }
        }
        match name_problem(text) {
            None => TokenKind::Name(text.to_owned()),
            Some(reason) => TokenKind::Invalid(Invalid::Name(reason)),
        }
    }

    /// The body of a `"…"`, `'…'` or `` `…` `` whose opening quote (at
    /// `start`) was just read, with escapes resolved.
    fn quoted(&mut self, start: Pos, quote: char) -> Result<String, RuleError> {
        let what = if quote == '`' { "name" } else { "string" };
        let unterminated = |found: &str| {
            RuleError::new(
                start,
                format!("{quote:?} to close the {what} that starts here"),
                found,
            )
        };
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(unterminated("end of input"));
            };
            match c {
                '\n' | '\r' => return Err(unterminated("end of line")),
                '\\' => out.push(self.escape()?),
                c if c == quote => {
                    self.bump();
                    return Ok(out);
                }
                c => {
                    self.bump();
                    out.push(c);
                }
            }
        }
    }

    fn escape(&mut self) -> Result<char, RuleError> {
        let at = self.pos;
        self.bump(); // '\'
        let c = match self.bump() {
            None => return Err(RuleError::new(at, ESCAPES, "end of input")),
            Some(c) => c,
        };
        Ok(match c {
            '"' | '\'' | '`' | '\\' => c,
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            'u' if self.peek() == Some('{') => self.braced_unicode(at)?,
            'u' => self.four_hex_unicode(at)?,
            c => return Err(RuleError::new(at, ESCAPES, format!("'\\{c}'"))),
        })
    }

    /// `\u{1F600}`: 1 to 6 hex digits naming a Unicode scalar value.
    fn braced_unicode(&mut self, at: Pos) -> Result<char, RuleError> {
        self.bump(); // '{'
        let digits_start = self.pos.offset;
        self.bump_while(|c| c.is_ascii_hexdigit());
        let digits = &self.src[digits_start..self.pos.offset];
        let escape = &self.src[at.offset..self.pos.offset];
        if digits.is_empty() || digits.len() > 6 || self.peek() != Some('}') {
            let found = match self.peek() {
                _ if digits.len() > 6 => format!("'{}'", shorten(escape)),
                None => "end of input".to_owned(),
                Some(c) => format!("{c:?}"),
            };
            let expected = if digits.is_empty() {
                r"a hex digit after '\u{'"
            } else if digits.len() > 6 {
                r"at most 6 hex digits in '\u{…}'"
            } else {
                r"'}' to end '\u{…}'"
            };
            return Err(RuleError::new(at, expected, found));
        }
        self.bump(); // '}'
        let escape = &self.src[at.offset..self.pos.offset];
        u32::from_str_radix(digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| RuleError::new(at, SCALAR, format!("'{escape}'")))
    }

    /// `\u00E9`, and JSON's surrogate pairs `\uD83D\uDE00`.
    fn four_hex_unicode(&mut self, at: Pos) -> Result<char, RuleError> {
        let high = self.four_hex(at, r"4 hex digits after '\u'")?;
        if !(0xD800..0xDC00).contains(&high) {
            return char::from_u32(high).ok_or_else(|| {
                RuleError::new(
                    at,
                    SCALAR,
                    format!("'{}'", &self.src[at.offset..self.pos.offset]),
                )
            });
        }
        let first = &self.src[at.offset..self.pos.offset];
        let expected = format!(r"a low surrogate '\uDC00' to '\uDFFF' after '{first}'");
        let low_at = self.pos;
        if self.peek() != Some('\\') || self.peek_second() != Some('u') {
            let found = match self.peek() {
                None => "end of input".to_owned(),
                Some(c) => format!("{c:?}"),
            };
            return Err(RuleError::new(low_at, expected, found));
        }
        self.bump();
        self.bump();
        let low = self.four_hex(low_at, r"4 hex digits after '\u'")?;
        if !(0xDC00..0xE000).contains(&low) {
            let found = format!("'{}'", &self.src[low_at.offset..self.pos.offset]);
            return Err(RuleError::new(low_at, expected, found));
        }
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            .ok_or_else(|| RuleError::new(at, SCALAR, "a surrogate pair"))
    }

    fn four_hex(&mut self, at: Pos, expected: &str) -> Result<u32, RuleError> {
        let mut value = 0;
        for _ in 0..4 {
            match self.peek() {
                Some(c) if c.is_ascii_hexdigit() => {
                    self.bump();
                    value = value * 16 + c.to_digit(16).unwrap_or(0);
                }
                None => return Err(RuleError::new(at, expected, "end of input")),
                Some(c) => return Err(RuleError::new(at, expected, format!("{c:?}"))),
            }
        }
        Ok(value)
    }
}

const SCALAR: &str = "a Unicode scalar value (0 to 10FFFF, not a lone surrogate D800 to DFFF)";

/// Characters of a bare name after its first (a letter or `_`).
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Why `text` (a run of name characters starting with a letter or `_`) is
/// not a bare name, if it is not.
fn name_problem(text: &str) -> Option<&'static str> {
    if text.ends_with('.') {
        Some("a name cannot end with '.'")
    } else if text.contains("..") {
        Some("a name cannot contain '..'")
    } else {
        None
    }
}

/// Whether `name` can be written bare, as opposed to in backticks: it lexes
/// as one name token and is not a keyword.
pub(crate) fn is_bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(is_name_char)
        && name_problem(name).is_none()
        && (name.contains('.') || !KEYWORDS.iter().any(|(k, _)| name.eq_ignore_ascii_case(k)))
}

/// A full-width look-alike of our punctuation, as a Chinese or Japanese
/// input method types it.
fn full_width_hint(c: char) -> Option<&'static str> {
    matches!(
        c,
        '（' | '）'
            | '【'
            | '】'
            | '［'
            | '］'
            | '“'
            | '”'
            | '‘'
            | '’'
            | '，'
            | '＝'
            | '！'
            | '＜'
            | '＞'
            | '＆'
            | '｜'
    )
    .then_some("this is a full-width character; rules use ASCII punctuation")
}

/// `text`, cut to 40 characters for an error message.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            if token.kind == TokenKind::Eof {
                return out;
            }
            out.push(token.kind);
        }
    }

    fn name(s: &str) -> TokenKind {
        TokenKind::Name(s.to_owned())
    }

    #[test]
    fn tokens() {
        use TokenKind::*;
        assert_eq!(
            kinds(r#"(geo=="华南"&&isp!='移动')||!x<=-1.5e3"#),
            vec![
                LParen,
                name("geo"),
                Op(CompareOp::Eq),
                Str("华南".into()),
                And,
                name("isp"),
                Op(CompareOp::Ne),
                Str("移动".into()),
                RParen,
                Or,
                Not,
                name("x"),
                Op(CompareOp::Le),
                Number(-1500.0),
            ]
        );
        assert_eq!(
            kinds("a and B Or not c IN [TRUE, false] `x y`"),
            vec![
                name("a"),
                And,
                name("B"),
                Or,
                Not,
                name("c"),
                In,
                LBracket,
                True,
                Comma,
                False,
                RBracket,
                name("x y"),
            ]
        );
        assert_eq!(
            kinds("http.request.header.x-canary k8s.pod.uid _a.0 and.or 设备.类型"),
            vec![
                name("http.request.header.x-canary"),
                name("k8s.pod.uid"),
                name("_a.0"),
                name("and.or"),
                name("设备.类型"),
            ]
        );
    }

    #[test]
    fn positions_count_characters() {
        let mut lexer = Lexer::new("地区 == \"华南\"\n\t AND x");
        let mut positions = Vec::new();
        loop {
            let t = lexer.next_token().unwrap();
            positions.push((t.pos.line, t.pos.column, t.text));
            if t.kind == TokenKind::Eof {
                break;
            }
        }
        assert_eq!(
            positions,
            vec![
                (1, 1, "地区"),
                (1, 4, "=="),
                (1, 7, "\"华南\""),
                (2, 3, "AND"),
                (2, 7, "x"),
                (2, 8, ""),
            ]
        );
    }

    #[test]
    fn escapes() {
        let s = |src: &str| match kinds(src).pop() {
            Some(TokenKind::Str(s)) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s(r#""a\"b\\c\nd\te\rf\0""#), "a\"b\\c\nd\te\rf\0");
        assert_eq!(s(r#"'it\'s "quoted"'"#), "it's \"quoted\"");
        assert_eq!(s(r#""\u{1F600}\u{e9}\u00E9\uD83D\uDE00""#), "😀éé😀");
        assert_eq!(s("\"\\`\""), "`");
        assert_eq!(s("\"tab\there\""), "tab\there");
    }

    #[test]
    fn invalid_words_are_tokens() {
        use TokenKind::Invalid as I;
        assert_eq!(kinds("1.2.3"), vec![I(Invalid::Number)]);
        assert_eq!(kinds("12abc"), vec![I(Invalid::Number)]);
        assert_eq!(
            kinds("a..b"),
            vec![I(Invalid::Name("a name cannot contain '..'"))]
        );
        assert_eq!(
            kinds("a."),
            vec![I(Invalid::Name("a name cannot end with '.'"))]
        );
        assert!(matches!(kinds("<>")[..], [I(Invalid::Operator(_))]));
        assert!(matches!(kinds("@")[..], [I(Invalid::Char(None))]));
        assert!(matches!(kinds("（")[..], [I(Invalid::Char(Some(_)))]));
    }

    #[test]
    fn bare_names() {
        for yes in [
            "a",
            "device.type",
            "x-canary",
            "_",
            "k8s.0",
            "and.or",
            "设备",
        ] {
            assert!(is_bare_name(yes), "{yes}");
        }
        for no in [
            "", "and", "IN", "True", "1a", "a b", "a.", "a..b", ".a", "-a", "a`",
        ] {
            assert!(!is_bare_name(no), "{no}");
        }
    }
}
