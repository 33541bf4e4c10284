//! Turning a log body into the masked token sequence the miner works on.
//!
//! A line becomes a sequence of tokens, each a word, a variable (`<*>`) or a
//! punctuation run, and each either glued to the token before it or separated
//! from it by whitespace (runs of whitespace count as one space). Rendering the
//! sequence gives the line's masked text, e.g.
//! `Received block <*> of size <*> from <*>`: the key of the miner's cache and,
//! when the line starts a template, its text. Delimiters (`, ; : = | " ' [ ]
//! ( ) { } # /`) are tokens of their own, so `uid=0` and `[1.2.3.4]` mask to
//! `uid=<*>` and `[<*>]`.
//!
//! Rules that tidy the sequence: consecutive variables fold into one, so value
//! lists of any length (`REPORT : 7007 5002 150089`) share a template; month
//! and weekday names next to masked numbers are part of a timestamp
//! (`at Fri Jun 17 07:07:00 2005` → `at <*>:<*>:<*>`); a size unit after a
//! number is part of the value (`5.2 KB` → `<*>`); the key of `key=value`
//! stays even with digits (`r24=<*>`); and a free-standing empty pair
//! (`()`, `""`) is an empty value (`(<*>)`).

use crate::mask::{MASKER, Masker, PieceMask, VarClass, is_delim, is_ws, mask_piece, piece_end};

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Template text.
    Word,
    /// A masked value, rendered `<*>`.
    Var,
    /// A run of one delimiter character, e.g. `:` or `##`.
    Punct,
    /// Only in templates: a dotted name with a variable middle, such as
    /// `com.apple.<*>` or `c.e.<*>.OrderService`, matching any word with
    /// that prefix and suffix.
    Glob,
}

/// One token of a [`Line`]; its text is a span of the line's rendered text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tok {
    /// What it is.
    pub kind: Kind,
    /// Written right after the previous token, without whitespace.
    pub glue: bool,
    start: u32,
    end: u32,
}

/// The wildcard as rendered in templates.
pub(crate) const WILDCARD: &str = "<*>";

/// A reusable buffer holding one tokenized line.
///
/// Tokens are rendered into `text` as they are pushed (the hot path copies
/// each byte once); runs of variables fold as they arrive.
#[derive(Default)]
pub(crate) struct Line {
    /// The tokens, in order.
    pub toks: Vec<Tok>,
    /// The rendered masked text; token spans point into it.
    pub text: String,
    /// Whether the line was cut at the token or byte limit.
    pub truncated: bool,
    max_tokens: usize,
    max_token_bytes: usize,
    spare: String,
    /// A month or weekday name was pushed.
    has_date: bool,
}

/// Limits applied while tokenizing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_tokens: usize,
    pub max_token_bytes: usize,
}

impl Line {
    /// Empties the buffer for a new line.
    pub(crate) fn reset(&mut self, limits: Limits) {
        self.toks.clear();
        self.text.clear();
        self.truncated = false;
        self.has_date = false;
        self.max_tokens = limits.max_tokens;
        self.max_token_bytes = limits.max_token_bytes;
    }

    /// The text of token `t`.
    #[inline]
    pub(crate) fn text_of(&self, t: &Tok) -> &str {
        match t.kind {
            Kind::Var => WILDCARD,
            _ => self
                .text
                .get(t.start as usize..t.end as usize)
                .unwrap_or(""),
        }
    }

    /// Whether no more tokens fit; marks the line truncated.
    #[inline]
    pub(crate) fn full(&mut self) -> bool {
        if self.toks.len() >= self.max_tokens {
            self.truncated = true;
            true
        } else {
            false
        }
    }

    /// Writes the separator a token with `glue` needs; returns the text
    /// length before it.
    #[inline]
    fn open(&mut self, glue: bool) -> usize {
        let mark = self.text.len();
        if !glue && !self.toks.is_empty() {
            self.text.push(' ');
        }
        mark
    }

    /// Records a token whose text was just written from `start` on.
    #[inline]
    fn close(&mut self, kind: Kind, glue: bool, start: usize) {
        let end = self.text.len();
        self.toks.push(Tok {
            kind,
            glue,
            start: start as u32,
            end: end as u32,
        });
    }

    /// Appends a token whose text is `text` (ignored for variables). A
    /// variable right after a variable is folded into it.
    #[inline]
    pub(crate) fn push(&mut self, kind: Kind, glue: bool, text: &str) {
        let after_var = self.toks.last().is_some_and(|t| t.kind == Kind::Var);
        if kind == Kind::Var && after_var {
            return;
        }
        if kind == Kind::Word {
            // `5.2 KB`, `800 B`: human-readable sizes pick the unit by
            // magnitude, so the unit is part of the value.
            if after_var && !glue && is_size_unit(text) {
                return;
            }
            self.has_date |= is_date_word(text);
        }
        self.open(glue);
        let start = self.text.len();
        self.text
            .push_str(if kind == Kind::Var { WILDCARD } else { text });
        self.close(kind, glue, start);
    }

    /// Drops tokens after the first `len` (for backtracking a parser).
    pub(crate) fn truncate_tokens(&mut self, len: usize) {
        if let Some(t) = self.toks.get(len) {
            let spaced = len > 0 && !t.glue;
            self.text.truncate(t.start as usize - usize::from(spaced));
        }
        self.toks.truncate(len);
    }

    /// Tokenizes free text `s`; the first token is glued to what precedes it
    /// when `glue` is true.
    pub(crate) fn push_text(&mut self, s: &str, mut glue: bool) {
        let masker: &Masker = &MASKER;
        let b = s.as_bytes();
        let n = b.len();
        let mut i = 0;
        // The whitespace-delimited word around `i`, and whether it may hold a
        // DFA shape at all.
        let mut word_end = 0;
        let mut word_dfa = false;
        let mut word_connect = 0;
        while i < n {
            let c = b[i];
            if is_ws(c) {
                i += 1;
                glue = false;
                continue;
            }
            if self.full() {
                break;
            }
            if i >= word_end {
                (word_end, word_dfa, word_connect) = Masker::scan_word(b, i);
            }
            if word_dfa && let Some(j) = plain_value_end(b, i) {
                // Numbers, IPv4 addresses, hex ids: no shape to look for.
                if b.get(j) == Some(&b'=') {
                    self.push(Kind::Word, glue, &s[i..j]);
                } else {
                    self.push_piece(&s[i..j], glue);
                }
                i = j;
                glue = true;
                continue;
            }
            if word_dfa && let Some(end) = colon_chain_end(b, i) {
                // `12:34:56.789`, `2024:12:34:56`: numbers joined by colons,
                // too few to be an IPv6 or MAC address. Same tokens as the
                // general path gives, without running the DFA at each group.
                let mut k = i;
                let mut g = glue;
                while k < end {
                    let stop = b[k..end]
                        .iter()
                        .position(|&x| x == b':')
                        .map_or(end, |p| k + p);
                    self.push(Kind::Var, g, "");
                    if stop < end {
                        self.push(Kind::Punct, true, ":");
                    }
                    k = stop + 1;
                    g = true;
                }
                i = end;
                glue = true;
                continue;
            }
            // Paths start with `/ ~ .`; every other shape has a connector
            // after its first byte.
            if word_dfa
                && (word_connect > i + 1 || matches!(c, b'/' | b'~' | b'.'))
                && can_start_shape(b, i)
                && let Some((end, class)) = masker.longest_at(b, i)
            {
                {
                    match class {
                        VarClass::Value => self.push(Kind::Var, glue, ""),
                        VarClass::Url => {
                            let scheme = s[i..end].find("://").map_or(0, |p| p + 3);
                            self.open(glue);
                            let start = self.text.len();
                            self.text.push_str(&s[i..i + scheme]);
                            self.text.push_str(WILDCARD);
                            self.close(Kind::Word, glue, start);
                        }
                    }
                    i = end;
                    glue = true;
                    continue;
                }
            }
            if is_delim(c) {
                // A free-standing empty pair, `()` `[]` `""` `''`, is an
                // empty value, not punctuation: `from 1.2.3.4 () at` reads
                // like `from 1.2.3.4 (host) at`. A call such as `clear()`
                // is glued to its name and stays.
                if !glue
                    && let Some(close) = closer(c)
                    && b.get(i + 1) == Some(&close)
                    && b.get(i + 2).is_none_or(|&x| is_ws(x) || is_delim(x))
                {
                    self.push(Kind::Punct, glue, &s[i..i + 1]);
                    self.push(Kind::Var, true, "");
                    self.push(Kind::Punct, true, &s[i + 1..i + 2]);
                    i += 2;
                    glue = true;
                    continue;
                }
                let mut j = i + 1;
                while j < n && b[j] == c {
                    j += 1;
                }
                self.push(Kind::Punct, glue, &s[i..j]);
                i = j;
                glue = true;
                continue;
            }
            let (j, classes) = piece_end(b, i);
            if b.get(j) == Some(&b'=') && j - i <= self.max_token_bytes {
                // The key of `key=value` is template text even with digits
                // (`r24=`, `PSR0=`); its value is masked by shape.
                self.push(Kind::Word, glue, &s[i..j]);
            } else {
                self.push_classified(&s[i..j], classes, glue);
            }
            i = j;
            glue = true;
        }
    }

    /// Appends one piece (text between delimiters), masked.
    pub(crate) fn push_piece(&mut self, piece: &str, glue: bool) {
        let (_, classes) = piece_end(piece.as_bytes(), 0);
        self.push_classified(piece, classes, glue);
    }

    /// [`Line::push_piece`] with the piece's byte classes already known.
    fn push_classified(&mut self, piece: &str, classes: u8, glue: bool) {
        let mark = self.open(glue);
        let start = self.text.len();
        match mask_piece(piece, classes, self.max_token_bytes, &mut self.text) {
            PieceMask::Var => {
                self.text.truncate(mark);
                self.push(Kind::Var, glue, "");
            }
            PieceMask::Word => {
                self.text.truncate(mark);
                self.push(Kind::Word, glue, piece);
            }
            PieceMask::Mixed => self.close(Kind::Word, glue, start),
        }
    }

    /// Applies the timestamp and size-unit rules; re-renders the text when
    /// they changed anything.
    pub(crate) fn finish(&mut self) {
        if self.truncated {
            self.push(Kind::Var, false, "");
        }
        if self.has_date && self.mask_date_words() {
            self.rerender();
        }
    }

    /// Folds variable runs again and renders `text` afresh from the tokens.
    fn rerender(&mut self) {
        let mut out = std::mem::take(&mut self.spare);
        out.clear();
        let mut w = 0;
        for r in 0..self.toks.len() {
            let mut t = self.toks[r];
            if t.kind == Kind::Var && w > 0 && self.toks[w - 1].kind == Kind::Var {
                continue;
            }
            if w > 0 && !t.glue {
                out.push(' ');
            }
            let start = out.len();
            out.push_str(self.text_of(&t));
            t.start = start as u32;
            t.end = out.len() as u32;
            self.toks[w] = t;
            w += 1;
        }
        self.toks.truncate(w);
        self.spare = std::mem::replace(&mut self.text, out);
    }

    /// Month and weekday names in a run of words and variables that holds a
    /// variable are parts of a timestamp.
    fn mask_date_words(&mut self) -> bool {
        let n = self.toks.len();
        let mut changed = false;
        let (mut start, mut has_var, mut has_date) = (0, false, false);
        for k in 0..=n {
            let class = match self.toks.get(k) {
                Some(t) if t.kind == Kind::Var => 1,
                Some(t) if t.kind == Kind::Word && is_date_word(self.text_of(t)) => 2,
                // Date separators: `01/May/2024`, `Sat, 03 Jun`, `3-Jun-2024`.
                Some(t) if t.kind == Kind::Punct && matches!(self.text_of(t), "/" | "-" | ",") => 3,
                _ => 0,
            };
            match class {
                1 => has_var = true,
                2 => has_date = true,
                3 => {}
                _ => {
                    if has_var && has_date {
                        for u in &mut self.toks[start..k] {
                            if u.kind == Kind::Word {
                                u.kind = Kind::Var;
                            }
                        }
                        changed = true;
                    }
                    start = k + 1;
                    has_var = false;
                    has_date = false;
                }
            }
        }
        changed
    }
}

/// Whether a DFA shape may start at `i`: not inside punctuation, except a
/// path's leading `/` (after whitespace or another delimiter, so `host/ip`
/// stays two tokens) and the `::` of a compressed IPv6 address.
#[inline]
fn can_start_shape(b: &[u8], i: usize) -> bool {
    let c = b[i];
    match c {
        b'/' => i == 0 || is_ws(b[i - 1]) || (is_delim(b[i - 1]) && b[i - 1] != b'/'),
        b':' => b.get(i + 1) == Some(&b':'),
        _ => !is_delim(c),
    }
}

/// The end of a piece of hex digits and dots with at least one digit (a
/// number, an IPv4 address, a hex id, a version) that is not followed by a
/// `:` that could continue it into an IPv6 or MAC address: the piece rules
/// mask it, no DFA needed.
#[inline]
fn plain_value_end(b: &[u8], i: usize) -> Option<usize> {
    let (mut digit, mut dot) = (false, false);
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_hexdigit() || b[j] == b'.') {
        digit |= b[j].is_ascii_digit();
        dot |= b[j] == b'.';
        j += 1;
    }
    // A dotted value before `:` (`10.0.0.1:8080`) cannot start an IPv6 or
    // MAC address.
    let ends = match b.get(j) {
        None => true,
        Some(&c) => is_ws(c) || (is_delim(c) && (c != b':' || dot)),
    };
    (digit && ends).then_some(j)
}

/// The end of `\d+(:\d+){1,4}(\.\d+)?` at `i` when a boundary other than
/// `:` follows: a time or colon-joined counter.
#[inline]
fn colon_chain_end(b: &[u8], i: usize) -> Option<usize> {
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut j = i + digits(i);
    if j == i {
        return None;
    }
    let mut colons = 0;
    while b.get(j) == Some(&b':') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j += 1 + digits(j + 1);
        colons += 1;
    }
    if b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j += 1 + digits(j + 1);
    }
    let ends = match b.get(j) {
        None => true,
        Some(&c) => is_ws(c) || (is_delim(c) && c != b':'),
    };
    ((1..=4).contains(&colons) && ends).then_some(j)
}

/// The closing partner of an opening bracket or quote.
fn closer(open: u8) -> Option<u8> {
    match open {
        b'(' => Some(b')'),
        b'[' => Some(b']'),
        b'"' => Some(b'"'),
        b'\'' => Some(b'\''),
        _ => None,
    }
}

fn is_size_unit(w: &str) -> bool {
    matches!(
        w,
        "B" | "kB" | "KB" | "MB" | "GB" | "TB" | "PB" | "KiB" | "MiB" | "GiB" | "TiB"
    )
}

/// An English month or weekday name or abbreviation, in title case or
/// capitals (`Jun`, `Sept`, `THU`, `Monday`).
fn is_date_word(w: &str) -> bool {
    let b = w.as_bytes();
    if b.len() < 3 || b.len() > 9 || !b[0].is_ascii_uppercase() {
        return false;
    }
    let rest = &b[1..];
    if !(rest.iter().all(u8::is_ascii_lowercase) || rest.iter().all(u8::is_ascii_uppercase)) {
        return false;
    }
    let full: &[u8] = match [b[0] | 0x20, b[1] | 0x20, b[2] | 0x20] {
        [b'j', b'a', b'n'] => b"january",
        [b'f', b'e', b'b'] => b"february",
        [b'm', b'a', b'r'] => b"march",
        [b'a', b'p', b'r'] => b"april",
        [b'm', b'a', b'y'] => b"may",
        [b'j', b'u', b'n'] => b"june",
        [b'j', b'u', b'l'] => b"july",
        [b'a', b'u', b'g'] => b"august",
        [b's', b'e', b'p'] => b"september",
        [b'o', b'c', b't'] => b"october",
        [b'n', b'o', b'v'] => b"november",
        [b'd', b'e', b'c'] => b"december",
        [b'm', b'o', b'n'] => b"monday",
        [b't', b'u', b'e'] => b"tuesday",
        [b'w', b'e', b'd'] => b"wednesday",
        [b't', b'h', b'u'] => b"thursday",
        [b'f', b'r', b'i'] => b"friday",
        [b's', b'a', b't'] => b"saturday",
        [b's', b'u', b'n'] => b"sunday",
        _ => return false,
    };
    // The abbreviation (`Sep`, `Sept`, `Thurs`) or the full name.
    b.len() <= full.len()
        && (b.len() <= 5 || b.len() == full.len())
        && full[..b.len()].eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn masked(s: &str) -> String {
        let mut line = Line::default();
        line.reset(Limits {
            max_tokens: 256,
            max_token_bytes: 128,
        });
        line.push_text(s, false);
        line.finish();
        line.text.clone()
    }

    #[test]
    fn masks_variable_classes() {
        // (class, input, masked) — the table the issue asks for.
        let cases: &[(&str, &str, &str)] = &[
            ("integer", "retry 3 of 10", "retry <*> of <*>"),
            (
                "negative and float",
                "delta -17 ratio 0.023958297",
                "delta <*> ratio <*>",
            ),
            ("hex", "iar 003a90fc dear 0x00b360e8", "iar <*> dear <*>"),
            (
                "hex letters only, key kept",
                "fpr29=0xffffffff ffffffff",
                "fpr29=<*>",
            ),
            (
                "ipv4",
                "connection from 24.54.76.216 refused",
                "connection from <*> refused",
            ),
            (
                "ipv4 with port",
                "to 10.251.73.220:50010 ok",
                "to <*>:<*> ok",
            ),
            (
                "java socket address",
                "src: /10.251.30.6:33145",
                "src: <*>:<*>",
            ),
            (
                "ipv6",
                "addr 2607:f140:6000:8:c6b3:1ff:fecd:467f up",
                "addr <*> up",
            ),
            (
                "ipv6 compressed with port",
                "peer [fe80::1%eth0]:443",
                "peer [<*>]:<*>",
            ),
            (
                "mac",
                "BSSID changed to 5c:50:15:36:bc:03",
                "BSSID changed to <*>",
            ),
            (
                "uuid",
                "trace 123e4567-e89b-12d3-a456-426614174000 done",
                "trace <*> done",
            ),
            (
                "path",
                "Deleting block blk_1 file /mnt/hadoop/dfs/data/current/blk_1",
                "Deleting block <*> file <*>",
            ),
            (
                "path in parentheses",
                "chdir(/p/gb2/glosli/t800) failed",
                "chdir(<*>) failed",
            ),
            (
                "windows path",
                r"open C:\Users\me\a.txt failed",
                "open <*> failed",
            ),
            (
                "url keeps scheme",
                "fetch https://example.com/a?b=1 failed",
                "fetch https://<*> failed",
            ),
            ("duration ms", "took 150ms", "took <*>"),
            ("duration s", "took 2.5s total", "took <*> total"),
            (
                "size with unit",
                "size 5.2 KB, free 800 B",
                "size <*>, free <*>",
            ),
            ("time unit stays", "took 12 ms", "took <*> ms"),
            (
                "quoted value",
                "hostname to \"authorMacBook-Pro.local\"",
                "hostname to \"<*>\"",
            ),
            (
                "quoted text stays",
                "state 'Active' now",
                "state 'Active' now",
            ),
            (
                "key=value",
                "uid=0 euid=0 tty=NODEVssh ruser= rhost=1.2.3.4",
                "uid=<*> euid=<*> tty=NODEVssh ruser= rhost=<*>",
            ),
            (
                "email",
                "mail to ops@example.com failed",
                "mail to <*> failed",
            ),
            (
                "hostname",
                "reverse mapping for ns.marryaldkfaczcz.com [1.2.3.4]",
                "reverse mapping for <*> [<*>]",
            ),
            (
                "java class stays",
                "OutputCommitter is org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter",
                "OutputCommitter is org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter",
            ),
            ("dotted id", "generating core.2275", "generating core.<*>"),
            (
                "version",
                "klogd 1.4.1, log source",
                "klogd <*>, log source",
            ),
            ("boolean", "isScreenOn true", "isScreenOn <*>"),
            (
                "iso timestamp",
                "at 2024-05-01T12:00:00.123Z done",
                "at <*> done",
            ),
            (
                "syslog timestamp",
                "at Fri Jun 17 07:07:00 2005",
                "at <*>:<*>:<*>",
            ),
            (
                "access log time",
                "[01/May/2024:12:34:56 +0000] ok",
                "[<*>/<*>/<*>:<*>:<*>:<*>] ok",
            ),
            (
                "rfc 1123 date",
                "Date: Sat, 03 Jun 2017 10:00:00 GMT",
                "Date: <*>, <*>:<*>:<*> GMT",
            ),
            ("time with fraction", "[22:32:34.846] x", "[<*>:<*>:<*>] x"),
            (
                "month alone stays",
                "see you in May or on Monday",
                "see you in May or on Monday",
            ),
            (
                "date words",
                "SAT Sept 3, Thurs 5 December 2024",
                "<*>, <*>",
            ),
            (
                "colon chain too long",
                "id 1:2:3:4:5:6 x",
                "id <*>:<*>:<*>:<*>:<*>:<*> x",
            ),
            (
                "ipv4 and port",
                "peer 10.0.0.1:8080, ok",
                "peer <*>:<*>, ok",
            ),
            (
                "value list folds",
                "REPORT : 7007 5002 150089 240",
                "REPORT : <*>",
            ),
            (
                "ids with digits",
                "Assigned container container_1445_0020_01_000002 to attempt_1445_0020_m_0",
                "Assigned container <*> to <*>",
            ),
            (
                "hash separated",
                "steps = 1514038440000##6993##548365",
                "steps = <*>##<*>##<*>",
            ),
            ("whitespace normalised", "  a   b\tc  ", "a b c"),
            (
                "empty value",
                "connection from 1.2.3.4 () at 10:00",
                "connection from <*> (<*>) at <*>:<*>",
            ),
            (
                "call stays",
                "clear() done, got []",
                "clear() done, got [<*>]",
            ),
            ("empty", "", ""),
        ];
        for (class, input, want) in cases {
            assert_eq!(masked(input), *want, "class {class}: {input:?}");
        }
    }

    #[test]
    fn truncates_at_token_limit() {
        let mut line = Line::default();
        line.reset(Limits {
            max_tokens: 4,
            max_token_bytes: 128,
        });
        line.push_text("a b c d e f g", false);
        line.finish();
        assert!(line.truncated);
        assert_eq!(line.text, "a b c d <*>");
    }
}
