//! Variable masking: which parts of a line are values rather than template.
//!
//! Two layers, both cheap enough for the ingest hot path:
//!
//! 1. Shapes that span punctuation — URLs (the scheme is kept:
//!    `https://<*>`), paths, IPv6 and MAC addresses, e-mail addresses, host
//!    names with a known top-level domain, UUIDs, ISO-8601 timestamps — are
//!    found by one anchored, multi-pattern DFA (`regex-automata`), run at the
//!    start of a token. Plain words never pay for it: it runs only for words
//!    with a digit or one of `. @ : \ / ~`, only where a shape could start
//!    (a connector `: @ . - \` follows, or a path begins), and not for plain
//!    numbers, IPv4 addresses, hex ids or `12:34:56` times, which the piece
//!    rules mask the same way. The longest match that ends on a token
//!    boundary wins.
//! 2. What is left is split at punctuation into pieces; a piece is a variable
//!    when it holds a digit (numbers, hex, durations such as `150ms` or
//!    `2.5s`, ids such as `blk_-1608` or `container_1445_0020`), is a boolean or
//!    `null`, is a long all-hex-letter word, or is longer than the configured
//!    token limit — except names like `ssh2`, `eth0` or `IPv6` (letters and one
//!    or two digits), which stay template text. Inside a dotted piece only the
//!    parts with digits are masked, so `core.2275` reads `core.<*>` and `1.4.1`
//!    reads `<*>`; a piece that starts with a value is a value (`002.xml`).

use std::sync::LazyLock;

use regex_automata::{
    Anchored, MatchKind,
    dfa::{Automaton, StartKind, dense},
    nfa::thompson,
    util::{primitives::StateID, start, syntax},
};

/// What a DFA match is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VarClass {
    /// `scheme://…`: rendered `scheme://<*>`, keeping the scheme.
    Url,
    /// Everything else: rendered `<*>`.
    Value,
}

/// The patterns, in priority order (earlier wins a tie on length).
/// Byte-oriented, ASCII classes, no Unicode tables: fast to build and to run.
const PATTERNS: &[(&str, Pat)] = &[
    (
        r"[A-Za-z][A-Za-z0-9+.\-]{0,39}://[^\s\x22'<>\[\](){},;|]*[^\s\x22'<>\[\](){},;|:.]",
        Pat::Url,
    ),
    (
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:Z|[+\-][0-9]{2}:?[0-9]{2})?",
        Pat::Plain,
    ),
    (
        r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}(?:%[0-9A-Za-z]+)?",
        Pat::Ipv6,
    ),
    (r"[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5,}", Pat::Plain),
    (
        r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
        Pat::Plain,
    ),
    (
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
        Pat::Plain,
    ),
    (
        // Host names: dotted labels ending in a well-known top-level domain.
        // Java packages (`org.apache.x`) and property keys (`mapred.task.id`)
        // end in other words, so they stay template text.
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?i:com|net|org|edu|gov|mil|int|info|biz|io|co|cloud|dev|app|local|localdomain|lan|internal|intranet|corp|home|arpa|cn|jp|kr|tw|hk|sg|au|nz|uk|de|fr|nl|ru|br|ca|ch|se|pl|es|eu|om|za|mx|ar|cz|at|dk|fi|no|be|ie|il|tr|ua|vn|th|my|ph|pk|ir|sa|ae|eg|ng|ke|cl|pe|ro|hu|gr|pt|sk|bg|hr|rs|lt|lv|ee|si|lu)",
        Pat::Plain,
    ),
    // Paths; a bracketed group inside one (`…/[2017-07-03_13,48,39]-x.xml`)
    // belongs to it.
    (
        r"(?:/|~/|\./|\.\./)(?:[^\s\x22'\[\](){},;|:]|\[[^\]\s/]*\])+",
        Pat::Plain,
    ),
    (r"[A-Za-z]:\\[^\s\x22'\[\](){},;|]+", Pat::Plain),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pat {
    Url,
    Ipv6,
    Plain,
}

/// Bytes that always end a piece and are kept as their own token.
pub(crate) const DELIMITERS: &[u8] = b",;:=|\"'[](){}#/";

const CLASS_WS: u8 = 1;
const CLASS_DELIM: u8 = 2;
const CLASS_DIGIT: u8 = 4;
/// `.`, `@`, `:`, `\`, `/` and `~`: a word with one of them may hold a DFA
/// shape.
const CLASS_SHAPE: u8 = 8;
/// A letter that is not a hex digit.
const CLASS_NONHEX: u8 = 16;
/// `:`, `@`, `.`, `-` and `\`: every multi-part shape needs one after its
/// first byte.
const CLASS_CONNECT: u8 = 32;

static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b == b' ' || b == b'\t' || b == b'\n' || b == b'\r' || b == 0x0b || b == 0x0c {
            c |= CLASS_WS;
        }
        if b.is_ascii_digit() {
            c |= CLASS_DIGIT;
        }
        if b == b'.' || b == b'@' || b == b':' || b == b'\\' || b == b'/' || b == b'~' {
            c |= CLASS_SHAPE;
        }
        if b.is_ascii_alphabetic() && !b.is_ascii_hexdigit() {
            c |= CLASS_NONHEX;
        }
        if b == b':' || b == b'@' || b == b'.' || b == b'-' || b == b'\\' {
            c |= CLASS_CONNECT;
        }
        i += 1;
        t[b as usize] = c;
    }
    let mut k = 0;
    while k < DELIMITERS.len() {
        t[DELIMITERS[k] as usize] |= CLASS_DELIM;
        k += 1;
    }
    t
};

#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    CLASSES[b as usize] & CLASS_WS != 0
}

#[inline]
pub(crate) fn is_delim(b: u8) -> bool {
    CLASSES[b as usize] & CLASS_DELIM != 0
}

/// Longest stretch the DFA is allowed to read from one start; keeps a 1 MB
/// line of `a:a:a:…` linear.
const SCAN_LIMIT: usize = 512;

/// The compiled variable shapes.
pub(crate) struct Masker {
    dfa: Option<(dense::DFA<Vec<u32>>, StateID)>,
    pats: Vec<Pat>,
}

/// The process-wide masker: the DFA depends on nothing configurable, so it is
/// built once (a few milliseconds) and shared by every miner.
pub(crate) static MASKER: LazyLock<Masker> = LazyLock::new(Masker::build);

impl Masker {
    fn build() -> Masker {
        let pats = PATTERNS.iter().map(|(_, p)| *p).collect();
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .match_kind(MatchKind::All)
                    .start_kind(StartKind::Anchored)
                    .minimize(false),
            )
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .thompson(thompson::Config::new().utf8(false))
            .build_many(&PATTERNS.iter().map(|(p, _)| *p).collect::<Vec<_>>())
            .ok()
            .and_then(|dfa| {
                let start = dfa
                    .start_state(&start::Config::new().anchored(Anchored::Yes))
                    .ok()?;
                Some((dfa, start))
            });
        // A DFA that does not build is a bug caught by the tests; masking then
        // degrades to the piece rules instead of failing ingest.
        Masker { dfa, pats }
    }

    /// Scans the whitespace-delimited word starting at `i`: its end, whether
    /// it may hold a DFA shape at all (plain words never run the DFA), and one
    /// past its last connector (`: @ . - \`), before which every shape must
    /// have one.
    #[inline]
    pub(crate) fn scan_word(b: &[u8], i: usize) -> (usize, bool, usize) {
        let mut acc = 0u8;
        let mut last_connect = 0;
        let mut j = i;
        while j < b.len() {
            let c = CLASSES[b[j] as usize];
            if c & CLASS_WS != 0 {
                break;
            }
            if c & CLASS_CONNECT != 0 {
                last_connect = j + 1;
            }
            acc |= c;
            j += 1;
        }
        (j, acc & (CLASS_DIGIT | CLASS_SHAPE) != 0, last_connect)
    }

    /// Longest shape starting at `pos` that ends on a token boundary.
    pub(crate) fn longest_at(&self, s: &[u8], pos: usize) -> Option<(usize, VarClass)> {
        let (dfa, start) = self.dfa.as_ref()?;
        let stop = s.len().min(pos.saturating_add(SCAN_LIMIT));
        let mut sid = *start;
        let mut best: Option<(usize, usize)> = None; // (end, pattern index)
        let mut i = pos;
        while i < stop {
            sid = dfa.next_state(sid, s[i]);
            if dfa.is_special_state(sid) {
                if dfa.is_dead_state(sid) {
                    break;
                }
                if dfa.is_match_state(sid) && is_boundary(s, i) {
                    self.consider(dfa, sid, s, pos, i, &mut best);
                }
            }
            i += 1;
        }
        if i == s.len() {
            let eoi = dfa.next_eoi_state(sid);
            if dfa.is_match_state(eoi) {
                self.consider(dfa, eoi, s, pos, s.len(), &mut best);
            }
        }
        let (end, p) = best?;
        let class = match self.pats.get(p) {
            Some(Pat::Url) => VarClass::Url,
            _ => VarClass::Value,
        };
        Some((end, class))
    }

    fn consider(
        &self,
        dfa: &dense::DFA<Vec<u32>>,
        sid: StateID,
        s: &[u8],
        pos: usize,
        end: usize,
        best: &mut Option<(usize, usize)>,
    ) {
        for k in 0..dfa.match_len(sid) {
            let p = dfa.match_pattern(sid, k).as_usize();
            let valid = match self.pats.get(p) {
                Some(Pat::Ipv6) => valid_ipv6(&s[pos..end]),
                Some(_) => true,
                None => false,
            };
            if !valid {
                continue;
            }
            let better = match *best {
                None => true,
                Some((e, q)) => end > e || (end == e && p < q),
            };
            if better {
                *best = Some((end, p));
            }
        }
    }
}

/// A shape may end at the end of the line, before whitespace or a delimiter,
/// or before a sentence-ending dot.
#[inline]
fn is_boundary(s: &[u8], i: usize) -> bool {
    match s.get(i) {
        None => true,
        Some(&b) if is_ws(b) || is_delim(b) => true,
        Some(b'.') => s.get(i + 1).is_none_or(|&n| is_ws(n)),
        Some(_) => false,
    }
}

/// The DFA's IPv6 pattern is loose (it would accept `12:30:45`); an address
/// has eight groups, or `::` once, and at least one digit.
fn valid_ipv6(m: &[u8]) -> bool {
    let core = match m.iter().position(|&b| b == b'%') {
        Some(p) => &m[..p],
        None => m,
    };
    if !core.iter().any(u8::is_ascii_digit) {
        return false;
    }
    let double = core.windows(2).filter(|w| w == b"::").count();
    let colons = core.iter().filter(|&&b| b == b':').count();
    let has_v4 = core.contains(&b'.');
    if double > 1 || core.windows(3).any(|w| w == b":::") {
        return false;
    }
    if double == 1 {
        return colons >= 2;
    }
    // No `::`: every group present.
    let groups_ok = core
        .split(|&b| b == b':')
        .all(|g| !g.is_empty() && (g.len() <= 4 || has_v4));
    groups_ok && (colons == 7 || (has_v4 && colons == 6))
}

/// The end of the piece (run of bytes that are neither whitespace nor
/// delimiters) starting at `i`, and the union of its byte classes.
#[inline]
pub(crate) fn piece_end(b: &[u8], i: usize) -> (usize, u8) {
    let mut acc = 0u8;
    let mut j = i;
    while j < b.len() {
        let c = CLASSES[b[j] as usize];
        if c & (CLASS_WS | CLASS_DELIM) != 0 {
            break;
        }
        acc |= c;
        j += 1;
    }
    (j, acc)
}

/// How a piece (text between delimiters) is masked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PieceMask {
    /// Template text as written.
    Word,
    /// A variable: `<*>`.
    Var,
    /// Partly masked, e.g. `core.<*>`; the text was written to the output.
    Mixed,
}

/// Masks one piece. For [`PieceMask::Mixed`] the masked text is appended to
/// `out`; otherwise `out` is unchanged.
/// `classes` is the union of the piece's byte classes ([`piece_end`]).
pub(crate) fn mask_piece(
    piece: &str,
    classes: u8,
    max_token_bytes: usize,
    out: &mut String,
) -> PieceMask {
    let b = piece.as_bytes();
    if b.len() > max_token_bytes {
        return PieceMask::Var;
    }
    let acc = classes;
    if acc & CLASS_DIGIT == 0 {
        if (b.len() >= 8 && acc & CLASS_NONHEX == 0 && b.iter().all(u8::is_ascii_hexdigit))
            || is_keyword_value(b)
        {
            return PieceMask::Var;
        }
        return PieceMask::Word;
    }
    if is_numbered_name(b) {
        return PieceMask::Word;
    }
    if !b.contains(&b'.') {
        return PieceMask::Var;
    }
    // Dotted: mask only the dot-separated parts with digits, and fold
    // `<*>.<*>` into one `<*>` (`core.2275` → `core.<*>`, `1.4.1` → `<*>`).
    // A piece that starts with a value is a value as a whole: `002.xml` or
    // `web-3.prod` name one thing. Sentence dots at the end stay.
    let body = piece.trim_end_matches('.');
    // A leading digit (numbers, IPv4 addresses, versions) needs no split.
    let first_has_digit = b[0].is_ascii_digit()
        || body.split('.').next().is_some_and(|p| {
            p.bytes().any(|c| c.is_ascii_digit()) && !is_numbered_name(p.as_bytes())
        });
    if first_has_digit
        || body
            .split('.')
            .all(|p| p.bytes().any(|c| c.is_ascii_digit()))
    {
        if body.len() == piece.len() {
            return PieceMask::Var;
        }
        out.push_str("<*>");
        out.push_str(&piece[body.len()..]);
        return PieceMask::Mixed;
    }
    let start = out.len();
    let mut last_var_end: Option<usize> = None; // out position right after a `<*>`
    for (k, part) in body.split('.').enumerate() {
        let digit = part.bytes().any(|c| c.is_ascii_digit()) && !is_numbered_name(part.as_bytes());
        if digit {
            // `<*>` `.` `<*>` → `<*>`: drop the dot just written.
            if k > 0 && last_var_end == Some(out.len() - 1) {
                out.truncate(out.len() - 1);
            } else {
                out.push_str("<*>");
            }
            last_var_end = Some(out.len());
        } else {
            out.push_str(part);
        }
        out.push('.');
    }
    out.pop(); // the dot after the last part
    out.push_str(&piece[body.len()..]);
    if &out[start..] == piece {
        out.truncate(start);
        PieceMask::Word
    } else {
        PieceMask::Mixed
    }
}

/// Letters followed by one or two digits — `ssh2`, `eth0`, `tty2`, `IPv6`,
/// `L1`, `NAT64` — name protocols, interfaces and levels far more often than
/// they carry values, so they stay template text (the miner still merges
/// them when lines show several of them in one place).
fn is_numbered_name(b: &[u8]) -> bool {
    let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    let digits = b.len() - letters;
    letters >= 1 && (1..=2).contains(&digits) && b[letters..].iter().all(u8::is_ascii_digit)
}

fn is_keyword_value(b: &[u8]) -> bool {
    b.eq_ignore_ascii_case(b"true")
        || b.eq_ignore_ascii_case(b"false")
        || b.eq_ignore_ascii_case(b"null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dfa_builds() {
        assert!(MASKER.dfa.is_some());
    }

    fn shape(s: &str) -> Option<(String, VarClass)> {
        MASKER
            .longest_at(s.as_bytes(), 0)
            .map(|(e, c)| (s[..e].to_string(), c))
    }

    #[test]
    fn dfa_shapes() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "http://example.com/a?b=1 rest",
                Some("http://example.com/a?b=1"),
            ),
            (
                "hdfs://10.10.34.11:9000/pjhe/logs/x.log:1+2",
                Some("hdfs://10.10.34.11:9000/pjhe/logs/x.log:1+2"),
            ),
            ("/usr/local/bin/x: found", Some("/usr/local/bin/x")),
            ("/10.251.30.6:33145", Some("/10.251.30.6")),
            ("~/x/y", Some("~/x/y")),
            (
                "/var/log/[2017-07-03_13,48,39.3]-x.xml, next",
                Some("/var/log/[2017-07-03_13,48,39.3]-x.xml"),
            ),
            (r"C:\Users\me\a.txt", Some(r"C:\Users\me\a.txt")),
            (
                "2607:f140:6000:8:c6b3:1ff:fecd:467f",
                Some("2607:f140:6000:8:c6b3:1ff:fecd:467f"),
            ),
            ("fe80::1%lo0)", Some("fe80::1%lo0")),
            ("::ffff:10.0.0.1", Some("::ffff:10.0.0.1")),
            ("12:30:45", None),
            ("AppleCamIn::systemWakeCall", None),
            ("5c:50:15:36:bc:03", Some("5c:50:15:36:bc:03")),
            (
                "123e4567-e89b-12d3-a456-426614174000",
                Some("123e4567-e89b-12d3-a456-426614174000"),
            ),
            ("ops@example.com,", Some("ops@example.com")),
            (
                "ns.marryaldkfaczcz.com [1.2.3.4]",
                Some("ns.marryaldkfaczcz.com"),
            ),
            (
                "MSRA-SA-39.fareast.corp.microsoft.com to",
                Some("MSRA-SA-39.fareast.corp.microsoft.com"),
            ),
            ("org.apache.hadoop.mapreduce.v2.app.MRAppMaster", None),
            ("mapred.task.id", None),
            (
                "2024-05-01T12:00:00.123Z x",
                Some("2024-05-01T12:00:00.123Z"),
            ),
            ("Received", None),
        ];
        for (input, want) in cases {
            let got = shape(input).map(|(m, _)| m);
            assert_eq!(got.as_deref(), *want, "input {input:?}");
        }
        assert_eq!(shape("http://x.y/z").map(|s| s.1), Some(VarClass::Url));
    }

    #[test]
    fn pieces() {
        let cases: &[(&str, PieceMask, &str)] = &[
            ("2275", PieceMask::Var, ""),
            ("core.2275", PieceMask::Mixed, "core.<*>"),
            ("1.4.1", PieceMask::Var, ""),
            ("2.6.5-1.358", PieceMask::Var, ""),
            ("150ms", PieceMask::Var, ""),
            ("2.5s", PieceMask::Var, ""),
            ("0x7f9950712080", PieceMask::Var, ""),
            ("blk_-6952295868487656571", PieceMask::Var, ""),
            (
                "instruction......0",
                PieceMask::Mixed,
                "instruction......<*>",
            ),
            ("55904.", PieceMask::Mixed, "<*>."),
            ("-CCIOReporter-002.xml", PieceMask::Var, ""),
            ("v1.0.0", PieceMask::Var, ""),
            (
                "org.apache.hadoop.mapreduce.v2.app.MRAppMaster",
                PieceMask::Word,
                "",
            ),
            (
                "com.apple.iokit.IO80211Family",
                PieceMask::Mixed,
                "com.apple.iokit.<*>",
            ),
            ("deadbeefcafe", PieceMask::Var, ""),
            ("True", PieceMask::Var, ""),
            ("null", PieceMask::Var, ""),
            ("Received", PieceMask::Word, ""),
            ("ssh2", PieceMask::Word, ""),
            ("NAT64", PieceMask::Word, ""),
            ("bglio559", PieceMask::Var, ""),
            ("2x", PieceMask::Var, ""),
            ("accepted", PieceMask::Word, ""),
        ];
        for (input, want, text) in cases {
            let mut out = String::new();
            let got = mask_piece(input, piece_end(input.as_bytes(), 0).1, 128, &mut out);
            assert_eq!(&got, want, "input {input:?}");
            assert_eq!(out, *text, "input {input:?}");
        }
        let mut out = String::new();
        let long = "a".repeat(200);
        assert_eq!(
            mask_piece(&long, piece_end(long.as_bytes(), 0).1, 128, &mut out),
            PieceMask::Var
        );
    }
}
