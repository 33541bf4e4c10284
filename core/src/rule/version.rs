//! Dotted versions, as the rule language orders them.
//!
//! A text is a version when it matches
//!
//! ```text
//! version    = [ "v" | "V" ] core [ "-" pre ] [ "+" build ]
//! core       = digits { "." digits }
//! pre, build = ident { "." ident }      ident = 1*( ASCII letter | digit | "-" )
//! ```
//!
//! so `1`, `1.3`, `v1.10.2`, `2.0.0-rc.1` and `1.3+build.7` are versions, and
//! `1.`, `.5`, `1.3rc1`, `TLSv1.3` and `1.3-` are not.
//!
//! Two versions compare as [SemVer 2.0] does, generalised to any number of
//! components: the cores component by component as unsigned integers of any
//! length, a missing component counting as `0` (so `1.3` and `1.3.0` are
//! equal in order, as in PEP 440, Maven and Go modules); on equal cores a
//! version without a pre-release is greater than one with (`1.3.0-rc1 <
//! 1.3.0`); two pre-releases compare identifier by identifier, numeric ones
//! numerically and below alphanumeric ones, alphanumeric ones by ASCII byte
//! order, and a shorter list that is a prefix of the longer one is smaller.
//! Build metadata and the leading `v` are ignored.
//!
//! [SemVer 2.0]: https://semver.org/#spec-item-11

use std::cmp::Ordering;

/// A version, borrowed from the text it was parsed from.
///
/// There is deliberately no `Ord` or `PartialEq`: version order is a total
/// *pre*order (`1.3` and `1.3.0+x` are equal in order but are different
/// texts), so use [`Version::compare`].
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    /// The numeric core, without the leading `v`: `1.10.2`.
    core: &'a str,
    /// The pre-release, without its `-`: `rc.1`.
    pre: Option<&'a str>,
}

impl<'a> Version<'a> {
    /// Parses `text` as a version, or `None` when it is not one. Never
    /// allocates.
    pub fn parse(text: &'a str) -> Option<Version<'a>> {
        let rest = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let bytes = rest.as_bytes();
        let mut i = 0;
        loop {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            if i < bytes.len() && bytes[i] == b'.' {
                i += 1;
            } else {
                break;
            }
        }
        let core = &rest[..i];
        let mut tail = &rest[i..];
        let mut pre = None;
        if let Some(after) = tail.strip_prefix('-') {
            let end = after.find('+').unwrap_or(after.len());
            if !is_dotted_idents(&after[..end]) {
                return None;
            }
            pre = Some(&after[..end]);
            tail = &after[end..];
        }
        if let Some(build) = tail.strip_prefix('+') {
            if !is_dotted_idents(build) {
                return None;
            }
            tail = "";
        }
        tail.is_empty().then_some(Version { core, pre })
    }

    /// Builds a version from parts already validated by [`Version::parse`];
    /// lets a compiled rule keep its literal's parts without re-parsing.
    pub(crate) fn from_parts(core: &'a str, pre: Option<&'a str>) -> Version<'a> {
        Version { core, pre }
    }

    /// The numeric core, without a leading `v`: `"1.10.2"`.
    pub fn core(&self) -> &'a str {
        self.core
    }

    /// The pre-release identifiers without their `-`, if any: `"rc.1"`.
    pub fn pre_release(&self) -> Option<&'a str> {
        self.pre
    }

    /// The order of `self` relative to `other`, as the module docs define it.
    pub fn compare(&self, other: &Version<'_>) -> Ordering {
        let mut mine = self.core.as_bytes();
        let mut theirs = other.core.as_bytes();
        while !mine.is_empty() || !theirs.is_empty() {
            let order = compare_digits(next_component(&mut mine), next_component(&mut theirs));
            if order != Ordering::Equal {
                return order;
            }
        }
        match (self.pre, other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => compare_pre_release(a, b),
        }
    }
}

/// `1*( ASCII letter | digit | "-" ) { "." ... }`
fn is_dotted_idents(text: &str) -> bool {
    text.split('.').all(|ident| {
        !ident.is_empty()
            && ident
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// The next `.`-separated component of a core, consuming it; empty (which
/// [`compare_digits`] reads as 0) once the core is used up.
fn next_component<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let end = rest.iter().position(|&b| b == b'.').unwrap_or(rest.len());
    let component = &rest[..end];
    *rest = rest.get(end + 1..).unwrap_or(&[]);
    component
}

/// Compares two ASCII digit strings as unsigned integers of any length; an
/// empty string is 0.
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let skip = |d: &[u8]| d.iter().take_while(|&&c| c == b'0').count();
    let a = &a[skip(a)..];
    let b = &b[skip(b)..];
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn compare_pre_release(a: &str, b: &str) -> Ordering {
    let mut mine = a.split('.');
    let mut theirs = b.split('.');
    loop {
        let order = match (mine.next(), theirs.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let x_numeric = x.bytes().all(|c| c.is_ascii_digit());
                let y_numeric = y.bytes().all(|c| c.is_ascii_digit());
                match (x_numeric, y_numeric) {
                    (true, true) => compare_digits(x.as_bytes(), y.as_bytes()),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.as_bytes().cmp(y.as_bytes()),
                }
            }
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        Version::parse(a)
            .unwrap()
            .compare(&Version::parse(b).unwrap())
    }

    #[test]
    fn what_is_a_version() {
        for yes in [
            "1",
            "0",
            "1.3",
            "v1.10.2",
            "V2",
            "2.0.0-rc.1",
            "1.3+build.7",
            "1.0.0-alpha-1+x.y",
            "007.01",
            "123456789012345678901234567890.1",
        ] {
            assert!(Version::parse(yes).is_some(), "{yes} should be a version");
        }
        for no in [
            "",
            "v",
            "1.",
            ".5",
            "1..2",
            "1.3rc1",
            "TLSv1.3",
            "1.3-",
            "1.3+",
            "1.3-rc..1",
            "-1",
            "1.3 ",
            " 1.3",
            "1,3",
            "1e5",
            "1.3-rc_1",
            "vv1",
            "１.３",
        ] {
            assert!(
                Version::parse(no).is_none(),
                "{no:?} should not be a version"
            );
        }
    }

    #[test]
    fn parts() {
        let v = Version::parse("v1.2.3-rc.1+b7").unwrap();
        assert_eq!(v.core(), "1.2.3");
        assert_eq!(v.pre_release(), Some("rc.1"));
    }

    #[test]
    fn order() {
        use Ordering::*;
        let cases = [
            ("1.10", "1.9", Greater),
            ("1.9", "1.10", Less),
            ("1.3", "1.3.0", Equal),
            ("1.3.0.0", "1.3", Equal),
            ("1.3.1", "1.3", Greater),
            ("v1.3", "1.3", Equal),
            ("1.03", "1.3", Equal),
            ("2", "10", Less),
            ("1.3.0-rc1", "1.3.0", Less),
            ("1.3-rc1", "1.3.0", Less),
            ("1.3.0-rc.2", "1.3.0-rc.10", Less),
            ("1.3.0-alpha", "1.3.0-alpha.1", Less),
            ("1.3.0-1", "1.3.0-alpha", Less),
            ("1.3.0-beta", "1.3.0-alpha", Greater),
            ("1.3+a", "1.3+b", Equal),
            (
                "99999999999999999999999.1",
                "99999999999999999999998.9",
                Greater,
            ),
            ("1.2.3-rc.1+x", "1.2.3-rc.1", Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
