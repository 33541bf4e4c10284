//! Structured bodies: JSON objects and logfmt lines, mined on keys and value
//! shapes rather than as free text.
//!
//! A JSON object becomes its keys in their order with each value replaced by
//! its shape: numbers and booleans are `<*>`, arrays are `[<*>]`, `null`
//! stays, nested objects recurse, and strings are tokenized like free text (so
//! `"msg":"user alice logged in from 10.0.0.1"` keeps its words and masks the
//! address). Output is compact:
//! `{"level":"info","msg":"user <*> logged in","latency_ms":<*>}`.
//!
//! A logfmt line (`key=value` pairs only, values optionally quoted with
//! `\"` escapes) keeps its keys and masks each value by shape:
//! `level=info msg="cache miss" key=<*> took=<*>`.
//!
//! Anything that does not parse as one of them is mined as free text.

use crate::tokenize::{Kind, Line};

/// How a body was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Free text.
    Text,
    /// A JSON object.
    Json,
    /// logfmt pairs.
    Logfmt,
}

/// Nesting deeper than this is masked as one value.
const MAX_DEPTH: usize = 8;

/// Tokenizes `body` into `line`, trying the structured readers first when
/// `structured` is set.
pub(crate) fn push_body(line: &mut Line, body: &str, structured: bool) -> Shape {
    if structured {
        let t = body.trim_ascii();
        if t.len() >= 2 && t.starts_with('{') && t.ends_with('}') {
            let mark = line.toks.len();
            let mut p = JsonReader {
                s: t,
                b: t.as_bytes(),
                i: 0,
                line,
            };
            if p.object(0).is_some() && p.at_end() {
                return Shape::Json;
            }
            line.truncate_tokens(mark);
            line.truncated = false;
        } else if is_logfmt(t) {
            push_logfmt(line, t);
            return Shape::Logfmt;
        }
    }
    line.push_text(body, false);
    Shape::Text
}

struct JsonReader<'a, 'l> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    line: &'l mut Line,
}

impl JsonReader<'_, '_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    fn emit(&mut self, kind: Kind, text: &str) {
        if !self.line.full() {
            let glue = !self.line.toks.is_empty();
            self.line.push(kind, glue, text);
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// Reads a string starting at its opening quote; returns the raw inner
    /// span (escapes left as written).
    fn string(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.i;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Some((start, end));
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        None
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        self.emit(Kind::Punct, "{");
        self.ws();
        if self.eat(b'}').is_some() {
            self.emit(Kind::Punct, "}");
            return Some(());
        }
        loop {
            self.ws();
            let (ks, ke) = self.string()?;
            let key = self.s.get(ks.saturating_sub(1)..ke + 1)?;
            self.emit(Kind::Word, key);
            self.eat(b':')?;
            self.emit(Kind::Punct, ":");
            self.value(depth)?;
            self.ws();
            match self.b.get(self.i)? {
                b',' => {
                    self.i += 1;
                    self.emit(Kind::Punct, ",");
                }
                b'}' => {
                    self.i += 1;
                    self.emit(Kind::Punct, "}");
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        self.ws();
        match *self.b.get(self.i)? {
            b'"' => {
                let (s, e) = self.string()?;
                self.emit(Kind::Punct, "\"");
                if !self.line.full() {
                    let inner = self.s.get(s..e)?;
                    self.line.push_text(inner, true);
                }
                self.emit(Kind::Punct, "\"");
            }
            b'{' if depth + 1 < MAX_DEPTH => self.object(depth + 1)?,
            b'{' | b'[' => {
                let open = self.b[self.i];
                self.skip_nested()?;
                if open == b'[' {
                    self.emit(Kind::Punct, "[");
                    self.emit(Kind::Var, "");
                    self.emit(Kind::Punct, "]");
                } else {
                    self.emit(Kind::Var, "");
                }
            }
            b't' => self.literal("true", Kind::Var)?,
            b'f' => self.literal("false", Kind::Var)?,
            b'n' => self.literal("null", Kind::Word)?,
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
                self.emit(Kind::Var, "");
            }
            _ => return None,
        }
        Some(())
    }

    fn literal(&mut self, word: &str, kind: Kind) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? != word.as_bytes() {
            return None;
        }
        self.i += word.len();
        self.emit(kind, word);
        Some(())
    }

    /// Skips a balanced `{…}` or `[…]` (strings respected).
    fn skip_nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        None
    }
}

/// One `key=value` field of a logfmt line: where the next field may start,
/// the key span, the value span (inside the quotes when quoted), and whether
/// the value was quoted.
type Field = (usize, (usize, usize), (usize, usize), bool);

fn logfmt_field(b: &[u8], mut i: usize) -> Option<Field> {
    let ks = i;
    match b.get(i) {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return None,
    }
    while i < b.len()
        && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'/' | b'@'))
    {
        i += 1;
    }
    let ke = i;
    if b.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    if b.get(i) == Some(&b'"') {
        i += 1;
        let vs = i;
        while i < b.len() {
            match b[i] {
                b'"' => return Some((i + 1, (ks, ke), (vs, i), true)),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        None
    } else {
        let vs = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            if b[i] == b'"' {
                return None;
            }
            i += 1;
        }
        Some((i, (ks, ke), (vs, i), false))
    }
}

/// At least two fields, and nothing but fields.
fn is_logfmt(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut fields = 0;
    while i < b.len() {
        match logfmt_field(b, i) {
            Some((next, ..)) => {
                fields += 1;
                i = next;
                if i < b.len() && !b[i].is_ascii_whitespace() {
                    return false;
                }
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
            None => return false,
        }
    }
    fields >= 2
}

fn push_logfmt(line: &mut Line, s: &str) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let Some((next, (ks, ke), (vs, ve), quoted)) = logfmt_field(b, i) else {
            break;
        };
        if line.full() {
            break;
        }
        line.push(Kind::Word, false, &s[ks..ke]);
        line.push(Kind::Punct, true, "=");
        if quoted {
            line.push(Kind::Punct, true, "\"");
            line.push_text(&s[vs..ve], true);
            line.push(Kind::Punct, true, "\"");
        } else if ve > vs {
            line.push_text(&s[vs..ve], true);
        }
        i = next;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Limits;

    fn render(body: &str) -> (String, Shape) {
        let mut line = Line::default();
        line.reset(Limits {
            max_tokens: 256,
            max_token_bytes: 128,
        });
        let shape = push_body(&mut line, body, true);
        line.finish();
        (line.text.clone(), shape)
    }

    #[test]
    fn json_bodies_keep_keys_and_mask_value_shapes() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"level":"info","msg":"user alice logged in from 10.0.0.1","latency_ms":42}"#,
                r#"{"level":"info","msg":"user alice logged in from <*>","latency_ms":<*>}"#,
            ),
            (
                r#" { "ok" : true, "err": null, "tags": ["a", "b"], "ctx": {"pod": "web-7f9c", "n": 1.5e3} } "#,
                r#"{"ok":<*>,"err":null,"tags":[<*>],"ctx":{"pod":"<*>","n":<*>}}"#,
            ),
            (
                r#"{"msg":"say \"hi\" 3 times"}"#,
                r#"{"msg":"say \"hi\" <*> times"}"#,
            ),
            (r#"{}"#, r#"{}"#),
        ];
        for (input, want) in cases {
            let (got, shape) = render(input);
            assert_eq!(shape, Shape::Json, "{input}");
            assert_eq!(got, *want, "{input}");
        }
    }

    #[test]
    fn broken_json_is_free_text() {
        let (got, shape) = render(r#"{"level":"info", oops}"#);
        assert_eq!(shape, Shape::Text);
        assert_eq!(got, r#"{"level":"info", oops}"#);
    }

    #[test]
    fn logfmt_bodies_keep_keys_and_mask_value_shapes() {
        let (got, shape) = render(
            r#"level=info msg="cache miss for key 42" user=42 path=/api/v1/users took=15ms"#,
        );
        assert_eq!(shape, Shape::Logfmt);
        assert_eq!(
            got,
            r#"level=info msg="cache miss for key <*>" user=<*> path=<*> took=<*>"#
        );
        let (got, _) = render(r#"at=error msg="said \"no\"" code="""#);
        assert_eq!(got, r#"at=error msg="said \"no\"" code="""#);
        // Prose with a pair in it is not logfmt.
        let (_, shape) = render("authentication failure; uid=0 euid=0");
        assert_eq!(shape, Shape::Text);
    }
}
