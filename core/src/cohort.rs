//! Cohorts: the groups of traffic a rollout compares, and how a record's
//! cohort is decided.
//!
//! A record's cohort is decided once, at ingest, in this order (DESIGN §3):
//!
//! 1. the trace id's [gray flag](crate::gray_flag): `0x0001` staging,
//!    `0x0002` canary, and the values mapped by the configuration's
//!    `[gray_flags]` table;
//! 2. the configuration's `[[cohorts]]` rules, in the order written: the
//!    first rule that matches names the cohort;
//! 3. otherwise [`BASELINE`].
//!
//! # What a rule reads
//!
//! A rule's attribute name is looked up in the record's own attributes
//! (span, log record or data point), then in its resource's attributes
//! ([`resolve`] is the definition; ingest and the SQL function
//! `cohort_match` implement exactly this order). A name that starts with
//! `baggage.` also reads the W3C baggage the SDKs copied onto the record,
//! after the two plain lookups: for `baggage.group`,
//!
//! 1. the attribute `baggage.group` (record, then resource) — what baggage
//!    processors that add a prefix write;
//! 2. the member `group` of a raw W3C `baggage` header captured as a record
//!    attribute, named `baggage` or `http.request.header.baggage` (the
//!    semantic conventions' name for a captured request header; its value may
//!    be the header text or an array of header texts). Values are
//!    percent-decoded, so `geo=%E5%8D%8E%E5%8D%97` reads as `华南`;
//! 3. the record attribute `group` — what the OpenTelemetry contrib baggage
//!    span and log record processors (Java, Python, JavaScript, .NET, Go)
//!    write: they copy each baggage entry under its own key, with no prefix.
//!
//! The first of these that is present gives the value.

use std::borrow::Cow;

use crate::gray_flag::GrayFlag;
use crate::rule::Attributes;

/// The cohort of everything not routed elsewhere.
pub const BASELINE: &str = "baseline";
/// The cohort of requests whose trace id carries the canary flag.
pub const CANARY: &str = "canary";
/// The cohort of requests whose trace id carries the staging flag.
pub const STAGING: &str = "staging";

/// A rule attribute name with this prefix also reads W3C baggage.
pub const BAGGAGE_PREFIX: &str = "baggage.";

/// Record attributes that may hold a raw W3C `baggage` header value.
pub const BAGGAGE_HEADER_ATTRIBUTES: [&str; 2] = ["baggage", "http.request.header.baggage"];

/// Longest cohort name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// The cohort of a record from its (binary) trace id alone, with only the
/// built-in flags.
pub fn from_trace_id(trace_id: &[u8]) -> &'static str {
    GrayFlag::from_trace_id(trace_id)
        .cohort()
        .unwrap_or(BASELINE)
}

/// Checks a cohort name: 1 to [`MAX_NAME_LEN`] bytes of letters or digits
/// (any script) and `_`, `-`, `.`, starting with a letter or digit. Names go
/// into SQL results, Prometheus labels and router signals, so they stay
/// plain.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a cohort name must not be empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "cohort name {name:?} is longer than {MAX_NAME_LEN} bytes"
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(char::is_alphanumeric);
    if !first_ok || !chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(format!(
            "cohort name {name:?} must start with a letter or digit and contain only letters, digits, '_', '-' and '.'"
        ));
    }
    Ok(())
}

/// The value a rule reads for `name` from a record's attributes and its
/// resource's attributes, in the order the [module docs](self) define.
///
/// This is the reference definition: ingest evaluates rules over OTLP
/// attributes without building maps, and `cohort_match` in SQL compiles the
/// same order into map lookups; both are tested against this function.
pub fn resolve<'a, R, S>(name: &str, record: &'a R, resource: &'a S) -> Option<Cow<'a, str>>
where
    R: Attributes + ?Sized,
    S: Attributes + ?Sized,
{
    if let Some(value) = record.get(name).or_else(|| resource.get(name)) {
        return Some(Cow::Borrowed(value));
    }
    let key = name.strip_prefix(BAGGAGE_PREFIX)?;
    BAGGAGE_HEADER_ATTRIBUTES
        .iter()
        .filter_map(|attribute| record.get(attribute))
        .find_map(|header| baggage_value(header, key))
        .or_else(|| record.get(key).map(Cow::Borrowed))
}

/// The value of member `key` in a W3C `baggage` header, percent-decoded; the
/// first member with that key wins. `header` may also be a JSON array of
/// header texts (`["a=1,b=2", "c=3"]`), which is how a captured header
/// attribute whose value is an array of strings is stored; the arrays are
/// searched in order.
///
/// Properties (`;k=v` after a value) are ignored. A value whose
/// percent-encoding is malformed or not UTF-8 is returned as written.
///
/// ```
/// use grayscope_core::cohort::baggage_value;
///
/// let header = "userId=alice, geo=%E5%8D%8E%E5%8D%97;ttl=60 ,group=beta";
/// assert_eq!(baggage_value(header, "geo").as_deref(), Some("华南"));
/// assert_eq!(baggage_value(header, "group").as_deref(), Some("beta"));
/// assert_eq!(baggage_value(r#"["a=1", "group=gamma"]"#, "group").as_deref(), Some("gamma"));
/// assert_eq!(baggage_value(header, "ttl"), None);
/// ```
pub fn baggage_value<'a>(header: &'a str, key: &str) -> Option<Cow<'a, str>> {
    let trimmed = header.trim_start();
    if trimmed.starts_with('[')
        && let Some(items) = json_string_array(trimmed)
    {
        return items.into_iter().find_map(|item| match item {
            Cow::Borrowed(text) => member_value(text, key),
            Cow::Owned(text) => member_value(&text, key).map(|v| Cow::Owned(v.into_owned())),
        });
    }
    member_value(header, key)
}

/// One header text: `member ( "," member )*`.
fn member_value<'a>(header: &'a str, key: &str) -> Option<Cow<'a, str>> {
    header.split(',').find_map(|member| {
        let member = member.split(';').next().unwrap_or_default();
        let (name, value) = member.split_once('=')?;
        (name.trim_matches(is_ows) == key).then(|| percent_decode(value.trim_matches(is_ows)))
    })
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `%XX` sequences decoded as UTF-8; the text unchanged when there are none
/// or when they do not decode.
fn percent_decode(value: &str) -> Cow<'_, str> {
    if !value.contains('%') {
        return Cow::Borrowed(value);
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|pair| {
                let text = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(text, 16).ok()
            });
            match hex {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => return Cow::Borrowed(value),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_or(Cow::Borrowed(value), Cow::Owned)
}

/// Parses `[ "…", "…" ]` (JSON strings only, with JSON escapes); `None` for
/// anything else.
fn json_string_array(text: &str) -> Option<Vec<Cow<'_, str>>> {
    let mut rest = text.trim().strip_prefix('[')?.trim_start();
    let mut items = Vec::new();
    if let Some(after) = rest.strip_prefix(']') {
        return after.trim().is_empty().then_some(items);
    }
    loop {
        let (item, after) = json_string(rest)?;
        items.push(item);
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if let Some(after) = rest.strip_prefix(']') {
            return after.trim().is_empty().then_some(items);
        } else {
            return None;
        }
    }
}

/// One JSON string at the start of `text`, and what follows it.
fn json_string(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let body = text.strip_prefix('"')?;
    let end = body.find(['"', '\\'])?;
    if body.as_bytes()[end] == b'"' {
        return Some((Cow::Borrowed(&body[..end]), &body[end + 1..]));
    }
    let mut out = String::from(&body[..end]);
    let mut chars = body[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(out), &body[end + i + 1..])),
            '\\' => {
                let (_, escape) = chars.next()?;
                match escape {
                    '"' | '\\' | '/' => out.push(escape),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let high = hex_unit(&mut chars)?;
                        let code = if (0xD800..0xDC00).contains(&high) {
                            let (_, backslash) = chars.next()?;
                            let (_, u) = chars.next()?;
                            if backslash != '\\' || u != 'u' {
                                return None;
                            }
                            let low = hex_unit(&mut chars)?;
                            if !(0xDC00..0xE000).contains(&low) {
                                return None;
                            }
                            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            high
                        };
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Four hex digits of a `\\u` escape.
fn hex_unit(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
    let mut unit = 0;
    for _ in 0..4 {
        unit = unit * 16 + chars.next()?.1.to_digit(16)?;
    }
    Some(unit)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn unflagged_and_unknown_flags_are_baseline() {
        assert_eq!(from_trace_id(&[0x11; 16]), BASELINE);
        assert_eq!(from_trace_id(&[]), BASELINE);
        let mut id = [0x11; 16];
        id[14..].copy_from_slice(&[0, 2]);
        assert_eq!(from_trace_id(&id), CANARY);
        id[14..].copy_from_slice(&[0, 1]);
        assert_eq!(from_trace_id(&id), STAGING);
    }

    #[test]
    fn cohort_names() {
        for good in ["gray-a", "canary", "v2.1", "灰度_b", "A1"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", ".a", "gray a", "gray/a", "a\n", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn baggage_members() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("group=beta", "group", Some("beta")),
            (" group = beta ;prop=1", "group", Some("beta")),
            ("a=1,group=beta,group=gamma", "group", Some("beta")),
            ("a=1,\tgroup=%20x%2C", "group", Some(" x,")),
            ("geo=%E5%8D%8E%E5%8D%97", "geo", Some("华南")),
            ("geo=%E5%8D", "geo", Some("%E5%8D")),
            ("geo=%zz", "geo", Some("%zz")),
            ("geo=", "geo", Some("")),
            ("geo", "geo", None),
            ("groups=beta", "group", None),
            ("", "group", None),
            (r#"["a=1,b=2", "group=beta"]"#, "group", Some("beta")),
            (r#"["group=\u0062eta"]"#, "group", Some("beta")),
            (r#"["g\"=1","group=x"]"#, "group", Some("x")),
            (r#"["group=😀","x"]"#, "group", Some("😀")),
            (r#"["group=\ud83d\ude00"]"#, "group", Some("😀")),
            (r#"[]"#, "group", None),
            // Not a JSON array: read as one header.
            (r#"[group=beta"#, "[group", Some("beta")),
        ];
        for (header, key, want) in cases {
            assert_eq!(
                baggage_value(header, key).as_deref(),
                *want,
                "{header:?} {key}"
            );
        }
    }

    #[test]
    fn resolution_order() {
        let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let record = map(&[
            ("geo", "record"),
            ("group", "bare"),
            ("baggage", "group=header,x=1"),
        ]);
        let resource = map(&[("geo", "resource"), ("isp", "resource")]);
        let get = |name| resolve(name, &record, &resource).map(Cow::into_owned);
        assert_eq!(get("geo").as_deref(), Some("record"));
        assert_eq!(get("isp").as_deref(), Some("resource"));
        assert_eq!(get("baggage.group").as_deref(), Some("header"));
        assert_eq!(
            get("baggage.isp"),
            None,
            "bare keys come from the record only"
        );
        assert_eq!(get("baggage.x").as_deref(), Some("1"));
        assert_eq!(get("nope"), None);

        let record = map(&[("baggage.group", "prefixed"), ("group", "bare")]);
        assert_eq!(
            resolve("baggage.group", &record, &map(&[])).as_deref(),
            Some("prefixed")
        );
        let record = map(&[("group", "bare")]);
        assert_eq!(
            resolve("baggage.group", &record, &map(&[])).as_deref(),
            Some("bare")
        );
        let record = map(&[("http.request.header.baggage", r#"["group=captured"]"#)]);
        assert_eq!(
            resolve("baggage.group", &record, &map(&[])).as_deref(),
            Some("captured")
        );
    }
}
