//! The rule language's behaviour as tables — parses, canonical texts,
//! errors, evaluations — and its invariants as properties.

use std::collections::{BTreeMap, HashMap};

use super::*;
use CompareOp::*;

fn parse(text: &str) -> Expr {
    match Rule::parse(text) {
        Ok(rule) => rule.into_expr(),
        Err(e) => panic!("{text:?} should parse, got: {e}"),
    }
}

fn cmp(attr: &str, op: CompareOp, value: impl Into<Literal>) -> Expr {
    Expr::compare(attr, op, value)
}

#[test]
fn design_example() {
    let rule = parse(
        r#"(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3")"#,
    );
    assert_eq!(
        rule,
        Expr::Or(vec![
            Expr::And(vec![cmp("geo", Eq, "华南"), cmp("isp", Eq, "移动")]),
            Expr::And(vec![
                cmp("device.type", Eq, "iOS"),
                cmp("tls.version", Ge, "1.3"),
            ]),
        ])
    );
}

#[test]
fn every_operator() {
    let cases = [
        (r#"a == "x""#, cmp("a", Eq, "x")),
        (r#"a != "x""#, cmp("a", Ne, "x")),
        (r#"a < "x""#, cmp("a", Lt, "x")),
        (r#"a <= "x""#, cmp("a", Le, "x")),
        (r#"a > "x""#, cmp("a", Gt, "x")),
        (r#"a >= "x""#, cmp("a", Ge, "x")),
        ("a==1", cmp("a", Eq, 1.0)),
        ("a!=-2.5", cmp("a", Ne, -2.5)),
        ("a<1e3", cmp("a", Lt, 1000.0)),
        ("a<=-0", cmp("a", Le, -0.0)),
        ("a>007", cmp("a", Gt, 7.0)),
        ("a>=2.5E-1", cmp("a", Ge, 0.25)),
        ("a == true", cmp("a", Eq, true)),
        ("a != FALSE", cmp("a", Ne, false)),
        (
            r#"a IN ["x", 1, true]"#,
            Expr::is_in(
                "a",
                [Literal::from("x"), Literal::from(1.0), Literal::from(true)],
            ),
        ),
        (r#"a in ('x', "y",)"#, Expr::is_in("a", ["x", "y"])),
        ("NOT a == 1", cmp("a", Eq, 1.0).not()),
        ("!a == 1", cmp("a", Eq, 1.0).not()),
        (
            "a == 1 AND b == 2",
            Expr::And(vec![cmp("a", Eq, 1.0), cmp("b", Eq, 2.0)]),
        ),
        (
            "a == 1 && b == 2 and c == 3",
            Expr::And(vec![
                cmp("a", Eq, 1.0),
                cmp("b", Eq, 2.0),
                cmp("c", Eq, 3.0),
            ]),
        ),
        (
            "a == 1 OR b == 2 || c == 3 or d == 4",
            Expr::Or(vec![
                cmp("a", Eq, 1.0),
                cmp("b", Eq, 2.0),
                cmp("c", Eq, 3.0),
                cmp("d", Eq, 4.0),
            ]),
        ),
        ("((a == 1))", cmp("a", Eq, 1.0)),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text), want, "{text}");
    }
}

#[test]
fn precedence_not_and_or() {
    let a = || cmp("a", Eq, "1");
    let b = || cmp("b", Eq, "2");
    let c = || cmp("c", Eq, "3");
    let cases = [
        (
            r#"a == "1" OR b == "2" AND NOT c == "3""#,
            Expr::Or(vec![a(), Expr::And(vec![b(), c().not()])]),
        ),
        (
            r#"NOT a == "1" AND b == "2" OR c == "3""#,
            Expr::Or(vec![Expr::And(vec![a().not(), b()]), c()]),
        ),
        (
            r#"NOT (a == "1" OR b == "2") AND c == "3""#,
            Expr::And(vec![Expr::Or(vec![a(), b()]).not(), c()]),
        ),
        (
            r#"a == "1" AND (b == "2" OR c == "3")"#,
            Expr::And(vec![a(), Expr::Or(vec![b(), c()])]),
        ),
        (r#"NOT NOT a == "1""#, a().not().not()),
        // Parentheses keep the grouping written, even where it is redundant.
        (
            r#"(a == "1" OR b == "2") OR c == "3""#,
            Expr::Or(vec![Expr::Or(vec![a(), b()]), c()]),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text), want, "{text}");
    }
}

#[test]
fn strings_names_and_escapes() {
    let cases = [
        (r#"地区 == "华南""#, cmp("地区", Eq, "华南")),
        (r#"geo == '华南'"#, cmp("geo", Eq, "华南")),
        (r#"x == "say \"hi\"""#, cmp("x", Eq, "say \"hi\"")),
        (r#"x == 'it\'s'"#, cmp("x", Eq, "it's")),
        (r#"x == "a\\b\nc\td\re\0""#, cmp("x", Eq, "a\\b\nc\td\re\0")),
        (
            r#"x == "\u{534E}\u5357\uD83D\uDE00""#,
            cmp("x", Eq, "华南😀"),
        ),
        (r#"x == """#, cmp("x", Eq, "")),
        (
            "http.request.header.x-canary == \"1\"",
            cmp("http.request.header.x-canary", Eq, "1"),
        ),
        (
            "baggage.group == \"beta\"",
            cmp("baggage.group", Eq, "beta"),
        ),
        ("baggage.not == 1", cmp("baggage.not", Eq, 1.0)),
        ("`in` == 1", cmp("in", Eq, 1.0)),
        ("`x canary\\`s` == 1", cmp("x canary`s", Eq, 1.0)),
        (
            "`http.header.:authority` == 1",
            cmp("http.header.:authority", Eq, 1.0),
        ),
        (
            "_private.k8s-pod.0 == 1",
            cmp("_private.k8s-pod.0", Eq, 1.0),
        ),
        ("\u{3000}a\u{3000}==\r\n\t1\n", cmp("a", Eq, 1.0)),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text), want, "{text}");
    }
}

#[test]
fn canonical_text() {
    let cases = [
        (
            r#"(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3")"#,
            r#"geo == "华南" AND isp == "移动" OR device.type == "iOS" AND tls.version >= "1.3""#,
        ),
        (
            "a==1&&(b=='x'||!c in [true,2.50,'y',])",
            r#"a == 1 AND (b == "x" OR NOT c IN [true, 2.5, "y"])"#,
        ),
        ("not (a == 1 and b == 2)", "NOT (a == 1 AND b == 2)"),
        ("!!a == 1", "NOT NOT a == 1"),
        (
            "(a == 1 OR b == 2) OR c == 3",
            "(a == 1 OR b == 2) OR c == 3",
        ),
        (
            "a == 1 AND (b == 2 AND c == 3)",
            "a == 1 AND (b == 2 AND c == 3)",
        ),
        ("x == 1e3 OR y == -0.000", "x == 1000 OR y == -0"),
        (
            "`and` == 1 OR `a b` == 2 OR `and.x` == 3",
            "`and` == 1 OR `a b` == 2 OR and.x == 3",
        ),
        (r#"x == "tab\there\u{7}""#, r#"x == "tab\there\u{7}""#),
        (r#"x IN ("a")"#, r#"x IN ["a"]"#),
    ];
    for (text, want) in cases {
        let rule = Rule::parse(text).unwrap();
        assert_eq!(rule.to_string(), want, "{text}");
        assert_eq!(rule.source(), text);
        assert_eq!(Rule::parse(want).unwrap(), rule, "{want} parses back");
    }
}

/// Each malformed rule and its exact message.
#[test]
fn malformed_rules() {
    let deep = format!("{}a == 1{}", "(".repeat(65), ")".repeat(65));
    let cases: &[(&str, &str)] = &[
        (
            "",
            "line 1, column 1: expected an attribute name, 'NOT' or '(', found end of input; the rule is empty",
        ),
        (
            "  \n  ",
            "line 2, column 3: expected an attribute name, 'NOT' or '(', found end of input; the rule is empty",
        ),
        (
            r#"geo == AND isp == "移动""#,
            "line 1, column 8: expected a value (string, number or boolean) after '==', found 'AND'",
        ),
        (
            r#"geo == "华南" AND isp =="#,
            "line 1, column 23: expected a value (string, number or boolean) after '==', found end of input",
        ),
        (
            r#"geo = "华南""#,
            "line 1, column 5: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'geo', found '='; write '==' to compare",
        ),
        (
            r#"geo <> "华南""#,
            "line 1, column 5: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'geo', found '<>'; write '!=' for 'not equal'",
        ),
        (
            r#"geo === "华南""#,
            "line 1, column 5: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'geo', found '==='; write '==' to compare",
        ),
        (
            r#"v => "1""#,
            "line 1, column 3: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'v', found '=>'; did you mean '>='?",
        ),
        (
            r#"v =~ "1""#,
            "line 1, column 3: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'v', found '=~'; regular expressions are not supported",
        ),
        (
            r#"a & b == 1"#,
            "line 1, column 3: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'a', found '&'; write 'AND' or '&&'",
        ),
        (
            r#"geo == "华南"#,
            r#"line 1, column 8: expected '"' to close the string that starts here, found end of input"#,
        ),
        (
            "geo == '华南\nAND x == 1",
            r#"line 1, column 8: expected '\'' to close the string that starts here, found end of line"#,
        ),
        (
            "`geo == 1",
            "line 1, column 1: expected '`' to close the name that starts here, found end of input",
        ),
        (
            "`` == 1",
            "line 1, column 1: expected an attribute name between the backticks, found ``",
        ),
        (
            r#"(geo == "华南""#,
            "line 1, column 13: expected 'AND', 'OR' or ')' to close the '(' at line 1, column 1, found end of input",
        ),
        (
            "a == 1 AND (b == 2\n  OR (c == 3)",
            "line 2, column 14: expected 'AND', 'OR' or ')' to close the '(' at line 1, column 12, found end of input",
        ),
        (
            r#"geo == "华南")"#,
            "line 1, column 12: expected 'AND', 'OR' or end of input, found ')'; this ')' has no '(' to close",
        ),
        (
            r#"geo == "华南" isp == "移动""#,
            "line 1, column 13: expected 'AND', 'OR' or end of input, found attribute name 'isp'",
        ),
        (
            r#"地区 == "华南" 并且 x == "1""#,
            "line 1, column 12: expected 'AND', 'OR' or end of input, found attribute name '并且'",
        ),
        (
            r#"x == "a\qb""#,
            r#"line 1, column 8: expected an escape (\" \' \` \\ \n \r \t \0 \u{1F600} or \u00E9) after '\', found '\q'"#,
        ),
        (
            r#"x == "a\"#,
            r#"line 1, column 8: expected an escape (\" \' \` \\ \n \r \t \0 \u{1F600} or \u00E9) after '\', found end of input"#,
        ),
        (
            r#"x == "\u{110000}""#,
            r"line 1, column 7: expected a Unicode scalar value (0 to 10FFFF, not a lone surrogate D800 to DFFF), found '\u{110000}'",
        ),
        (
            r#"x == "\u{D800}""#,
            r"line 1, column 7: expected a Unicode scalar value (0 to 10FFFF, not a lone surrogate D800 to DFFF), found '\u{D800}'",
        ),
        (
            r#"x == "\uDC00""#,
            r"line 1, column 7: expected a Unicode scalar value (0 to 10FFFF, not a lone surrogate D800 to DFFF), found '\uDC00'",
        ),
        (
            r#"x == "\u{}""#,
            r"line 1, column 7: expected a hex digit after '\u{', found '}'",
        ),
        (
            r#"x == "\u{1234567}""#,
            r"line 1, column 7: expected at most 6 hex digits in '\u{…}', found '\u{1234567'",
        ),
        (
            r#"x == "\u{12""#,
            r#"line 1, column 7: expected '}' to end '\u{…}', found '"'"#,
        ),
        (
            r#"x == "\u12""#,
            r#"line 1, column 7: expected 4 hex digits after '\u', found '"'"#,
        ),
        (
            r#"x == "\uD83D""#,
            r#"line 1, column 13: expected a low surrogate '\uDC00' to '\uDFFF' after '\uD83D', found '"'"#,
        ),
        (
            r#"x == "\uD83D\u0041""#,
            r"line 1, column 13: expected a low surrogate '\uDC00' to '\uDFFF' after '\uD83D', found '\u0041'",
        ),
        (
            "tls.version >= 1.2.3",
            r#"line 1, column 16: expected a value (string or number) after '>=', found '1.2.3'; 1.2.3 is not a number; write versions in quotes: "1.2.3""#,
        ),
        (
            "x == 12abc",
            r#"line 1, column 6: expected a value (string, number or boolean) after '==', found '12abc'; 12abc is not a number; write text in quotes: "12abc""#,
        ),
        (
            "x == 1e999",
            "line 1, column 6: expected a number of magnitude below 1.8e308, found '1e999'",
        ),
        (
            "x == -",
            "line 1, column 6: expected a value (string, number or boolean) after '==', found character '-'",
        ),
        (
            "x < true",
            "line 1, column 5: expected a value (string or number) after '<', found 'true'; booleans have no order; compare them with == or !=",
        ),
        (
            "x IN []",
            "line 1, column 7: expected a value (string, number or boolean) in the IN list, found ']'; an IN list needs at least one value",
        ),
        (
            r#"x IN "a""#,
            r#"line 1, column 6: expected '[' after 'IN', found string "a""#,
        ),
        (
            r#"x IN ["a" "b"]"#,
            r#"line 1, column 11: expected ',' or ']' in the IN list, found string "b""#,
        ),
        (
            r#"x IN ("a"]"#,
            "line 1, column 10: expected ',' or ')' in the IN list, found ']'",
        ),
        (
            r#"x IN ["a","#,
            "line 1, column 11: expected a value (string, number or boolean) in the IN list, found end of input",
        ),
        (
            r#"x IN ["a", y]"#,
            r#"line 1, column 12: expected a value (string, number or boolean) in the IN list, found attribute name 'y'; to compare with the text y, quote it: "y" (comparing two attributes is not supported)"#,
        ),
        (
            r#"x NOT IN ["a"]"#,
            "line 1, column 3: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'x', found 'NOT'; NOT goes before a condition, as in NOT (x IN [...])",
        ),
        (
            r#""1.3" <= tls.version"#,
            r#"line 1, column 1: expected an attribute name, 'NOT' or '(', found string "1.3"; a comparison starts with the attribute name, as in tls.version >= "1.3""#,
        ),
        (
            "geo == isp",
            r#"line 1, column 8: expected a value (string, number or boolean) after '==', found attribute name 'isp'; to compare with the text isp, quote it: "isp" (comparing two attributes is not supported)"#,
        ),
        (
            r#"a == "1" AND"#,
            "line 1, column 13: expected an attribute name, 'NOT' or '(', found end of input",
        ),
        (
            r#"a == "1" OR OR b == "2""#,
            "line 1, column 13: expected an attribute name, 'NOT' or '(', found 'OR'",
        ),
        (
            "NOT",
            "line 1, column 4: expected an attribute name, 'NOT' or '(', found end of input",
        ),
        (
            "()",
            "line 1, column 2: expected an attribute name, 'NOT' or '(', found ')'",
        ),
        (
            "geo",
            "line 1, column 4: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'geo', found end of input",
        ),
        (
            "a == \"1\"\nAND b = \"2\"",
            "line 2, column 7: expected a comparison operator (==, !=, <, <=, >, >= or IN) after 'b', found '='; write '==' to compare",
        ),
        (
            r#"a == "1" @"#,
            "line 1, column 10: expected 'AND', 'OR' or end of input, found character '@'",
        ),
        (
            "geo == “华南”",
            "line 1, column 8: expected a value (string, number or boolean) after '==', found character '“'; this is a full-width character; rules use ASCII punctuation",
        ),
        (
            "（geo == \"华南\"）",
            "line 1, column 1: expected an attribute name, 'NOT' or '(', found character '（'; this is a full-width character; rules use ASCII punctuation",
        ),
        (
            r#"5xx == "1""#,
            "line 1, column 1: expected an attribute name, 'NOT' or '(', found '5xx'; a name starts with a letter or '_'; write other names in backticks, as in `5xx`",
        ),
        (
            r#"device. == "x""#,
            "line 1, column 1: expected an attribute name, 'NOT' or '(', found 'device.'; a name cannot end with '.'",
        ),
        (
            r#"device..type == "x""#,
            "line 1, column 1: expected an attribute name, 'NOT' or '(', found 'device..type'; a name cannot contain '..'",
        ),
        (
            deep.as_str(),
            "line 1, column 65: expected at most 64 nested parentheses and NOTs, found one more '('",
        ),
    ];
    for (text, want) in cases {
        match Rule::parse(text) {
            Ok(rule) => panic!("{text:?} should not parse, got {rule}"),
            Err(e) => assert_eq!(e.to_string(), *want, "{text:?}"),
        }
    }
}

#[test]
fn error_parts_and_snippet() {
    let text = "geo == \"华南\"\n  AND isp = \"移动\"";
    let e = Rule::parse(text).unwrap_err();
    assert_eq!((e.line(), e.column()), (2, 11));
    assert_eq!(&text[e.offset()..e.offset() + 1], "=");
    assert_eq!(
        e.expected(),
        "a comparison operator (==, !=, <, <=, >, >= or IN) after 'isp'"
    );
    assert_eq!(e.found(), "'='");
    assert_eq!(e.note(), Some("write '==' to compare"));
    assert_eq!(e.snippet(text), "  AND isp = \"移动\"\n          ^");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.source().is_none());
}

#[test]
fn nesting_up_to_the_limit_parses() {
    let text = format!("{}a == 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(parse(&text), cmp("a", Eq, 1.0));
    let text = format!("{}a == 1", "NOT ".repeat(MAX_DEPTH));
    let rule = Rule::parse(&text).unwrap();
    assert_eq!(Rule::parse(&rule.to_string()).unwrap(), rule);
}

fn record(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// (rule, expected) on one realistic record.
#[test]
fn evaluation_table() {
    let attrs = record(&[
        ("geo", "华南"),
        ("isp", "移动"),
        ("device.type", "iOS"),
        ("tls.version", "1.10"),
        ("http.status_code", "200"),
        ("ratio", "0.25"),
        ("retry", "-3"),
        ("enabled", "True"),
        ("app.version", "v2.3.0-rc.1"),
        ("empty", ""),
        ("baggage.group", "beta"),
    ]);
    let cases: &[(&str, bool)] = &[
        (
            r#"(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3")"#,
            true,
        ),
        (r#"geo == "华北" OR tls.version >= "1.3""#, true),
        // versions as versions
        (r#"tls.version > "1.9""#, true),
        (r#"tls.version >= "1.10.0""#, true),
        (r#"tls.version <= "1.10.0""#, true),
        (r#"tls.version == "1.10.0""#, false), // == is exact text
        (r#"tls.version < "v1.11""#, true),
        (r#"tls.version > "1.10.0-rc1""#, true),
        (r#"app.version < "2.3.0""#, true),
        (r#"app.version >= "2.3.0-rc.1""#, true),
        (r#"app.version > "2.3.0-beta""#, true), // "rc" > "beta" in ASCII
        (r#"app.version > "2.3.0-rc""#, true),   // more identifiers
        (r#"app.version < "2.3.0-rc.2""#, true),
        (r#"app.version < "2.3.0-rc.10""#, true), // numerically
        (r#"app.version >= "2.3-rc.1+build.9""#, true), // padding, build ignored
        // unquoted numbers are numbers: 1.10 is 1.1
        ("tls.version > 1.9", false),
        ("tls.version == 1.1", true),
        // numbers
        ("http.status_code == 200", true),
        ("http.status_code == 200.0", true),
        ("http.status_code >= 500", false),
        ("http.status_code < 3e2", true),
        (r#"http.status_code == "200""#, true),
        (r#"http.status_code == "200.0""#, false),
        ("ratio < 0.5", true),
        (r#"ratio < "0.5""#, false), // quoted: versions, 0.25 > 0.5
        ("retry < -2", true),
        (r#"retry < "-2""#, true), // both numbers, not versions
        ("geo == 1", false),
        ("geo != 1", true),
        ("geo < 1", false),
        ("geo >= 1", false),
        // strings by bytes
        (r#"device.type > "Android""#, true),
        (r#"device.type < "ios""#, true), // 'I' < 'i'
        (r#"empty == """#, true),
        (r#"empty < "a""#, true),
        // booleans
        ("enabled == true", true),
        ("enabled != false", true),
        (r#"enabled == "true""#, false),
        ("geo == false", false),
        ("geo != false", true),
        // IN
        (r#"geo IN ["华北", "华南"]"#, true),
        (r#"geo IN ["华北"]"#, false),
        ("http.status_code IN [404, 200.0]", true),
        (r#"http.status_code IN ["200.0", 201]"#, false),
        ("enabled in (TRUE)", true),
        // missing attributes are false, and NOT follows the algebra
        (r#"nope == "a""#, false),
        (r#"nope != "a""#, false),
        ("nope < 1", false),
        ("nope >= 1", false),
        (r#"nope IN ["a"]"#, false),
        (r#"NOT nope == "a""#, true),
        (r#"NOT nope != "a""#, true),
        (r#"NOT (nope IN ["a"])"#, true),
        (r#"NOT NOT nope == "a""#, false),
        (r#"nope == "a" OR geo == "华南""#, true),
        (r#"nope == "a" AND geo == "华南""#, false),
        (
            r#"baggage.group == "beta" AND NOT baggage.internal == "true""#,
            true,
        ),
        // precedence
        (
            r#"geo == "x" OR geo == "华南" AND NOT isp == "移动""#,
            false,
        ),
        (
            r#"(geo == "x" OR geo == "华南") AND NOT isp == "电信""#,
            true,
        ),
    ];
    let sorted = {
        let mut pairs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (&**k, &**v)).collect();
        pairs.sort_unstable();
        pairs
    };
    let tree: BTreeMap<&str, &str> = sorted.iter().copied().collect();
    for (text, want) in cases {
        let rule = Rule::parse(text).unwrap();
        assert_eq!(rule.evaluate(&attrs), *want, "{text}");
        assert_eq!(rule.expr().evaluate(&attrs), *want, "{text} (reference)");
        assert_eq!(
            rule.evaluate(&SortedAttributes::new(&sorted)),
            *want,
            "{text}"
        );
        assert_eq!(rule.evaluate(&sorted[..]), *want, "{text}");
        assert_eq!(rule.evaluate(&tree), *want, "{text}");
    }
}

#[test]
fn attributes_a_rule_reads() {
    let rule = Rule::parse(
        r#"(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3") OR NOT geo IN ["x"]"#,
    )
    .unwrap();
    assert_eq!(
        rule.attributes(),
        ["device.type", "geo", "isp", "tls.version"]
    );
}

#[test]
fn rules_deserialize_from_configuration() {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Cohort {
        rule: Rule,
    }
    let cohort: Cohort = toml::from_str(r#"rule = 'geo == "华南"'"#).unwrap();
    assert_eq!(cohort.rule, Rule::parse(r#"geo == "华南""#).unwrap());
    assert_eq!(
        toml::to_string(&cohort).unwrap().trim(),
        r#"rule = 'geo == "华南"'"#
    );
    let err = toml::from_str::<Cohort>(r#"rule = 'geo = "华南"'"#)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("line 1, column 5: expected a comparison operator"),
        "{err}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;

    /// Names, including ones that need backticks and keyword look-alikes.
    const NAMES: &[&str] = &[
        "geo",
        "isp",
        "device.type",
        "tls.version",
        "http.status_code",
        "baggage.group",
        "x-canary",
        "地区",
        "in",
        "AND",
        "and.or",
        "a b",
        "5xx",
        "quote`d",
    ];

    /// Values that exercise every comparison domain, and texts that also
    /// appear as literals so that equalities hit.
    const TEXTS: &[&str] = &[
        "华南",
        "移动",
        "iOS",
        "ios",
        "",
        "a",
        "b",
        "1",
        "2",
        "10",
        "9",
        "1.3",
        "1.3.0",
        "1.10",
        "1.9",
        "v1.3",
        "1.3.0-rc1",
        "1.3.0-rc.2",
        "1.3+b",
        "2.0.0-alpha",
        "200",
        "200.0",
        "2e2",
        "-1.5",
        "-2",
        "0.25",
        "0.5",
        "3e-1",
        "true",
        "TRUE",
        "false",
        "False",
        "TLSv1.3",
        "1.2.3.4",
        "007",
        "-0",
        "say \"hi\"\n",
        "\\",
        "`",
    ];

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => select(TEXTS).prop_map(str::to_owned),
            1 => any::<String>(),
        ]
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            3 => select(&[0.0, -0.0, 1.0, 2.0, 9.0, 10.0, 200.0, 1.5, -1.5, 0.25, 0.5, 1.3, 1.1][..]),
            1 => any::<i32>().prop_map(f64::from),
            1 => proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
        ]
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            3 => text().prop_map(Literal::String),
            2 => number().prop_map(Literal::Number),
            1 => any::<bool>().prop_map(Literal::Bool),
        ]
    }

    fn op() -> impl Strategy<Value = CompareOp> {
        select(&CompareOp::ALL[..])
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => select(NAMES).prop_map(str::to_owned),
            1 => "[a-z][a-z0-9_.-]{0,8}",
        ]
    }

    /// Any tree the parser can produce.
    fn expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            (name(), op(), literal()).prop_map(|(attr, op, value)| {
                // The parser rejects ordering against a boolean.
                let op = if op.is_ordering() && matches!(value, Literal::Bool(_)) {
                    CompareOp::Eq
                } else {
                    op
                };
                Expr::Compare { attr, op, value }
            }),
            (name(), prop::collection::vec(literal(), 1..4))
                .prop_map(|(attr, values)| Expr::In { attr, values }),
        ];
        leaf.prop_recursive(5, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
    }

    /// A record: some of the names, with values from the pool.
    fn record() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(
            (select(NAMES).prop_map(str::to_owned), text()),
            0..NAMES.len(),
        )
        .prop_map(|mut pairs| {
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            pairs.dedup_by(|a, b| a.0 == b.0);
            pairs
        })
    }

    fn as_map(pairs: &[(String, String)]) -> HashMap<String, String> {
        pairs.iter().cloned().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn display_parses_back_to_the_same_tree(e in expr()) {
            let text = e.to_string();
            let rule = Rule::parse(&text).map_err(|err| {
                TestCaseError::fail(format!("{text}\n{err}"))
            })?;
            prop_assert_eq!(rule.expr(), &e, "{}", text);
            prop_assert_eq!(rule.to_string(), text);
        }

        #[test]
        fn compiled_evaluation_matches_the_reference(e in expr(), pairs in record()) {
            let rule = Rule::from_expr(e);
            let want = rule.expr().evaluate(&pairs[..]);
            prop_assert_eq!(rule.evaluate(&pairs[..]), want);
            prop_assert_eq!(rule.evaluate(&as_map(&pairs)), want);
            prop_assert_eq!(rule.evaluate(&SortedAttributes::new(&pairs)), want);
            // deterministic
            prop_assert_eq!(rule.evaluate(&pairs[..]), want);
        }

        #[test]
        fn boolean_algebra(a in expr(), b in expr(), pairs in record()) {
            let eval = |e: Expr| Rule::from_expr(e).evaluate(&pairs[..]);
            let (va, vb) = (eval(a.clone()), eval(b.clone()));
            prop_assert_eq!(eval(a.clone().not().not()), va);
            prop_assert_eq!(eval(a.clone().not()), !va);
            prop_assert_eq!(
                eval(Expr::And(vec![a.clone(), b.clone()]).not()),
                eval(Expr::Or(vec![a.clone().not(), b.clone().not()]))
            );
            prop_assert_eq!(
                eval(Expr::Or(vec![a.clone(), b.clone()]).not()),
                eval(Expr::And(vec![a.clone().not(), b.clone().not()]))
            );
            prop_assert_eq!(eval(Expr::And(vec![a.clone(), b.clone()])), va && vb);
            prop_assert_eq!(eval(Expr::Or(vec![b, a])), va || vb);
        }

        #[test]
        fn only_the_listed_attributes_matter(e in expr(), pairs in record(), extra in text()) {
            let rule = Rule::from_expr(e);
            let want = rule.evaluate(&pairs[..]);
            let unread: Vec<(String, String)> = NAMES
                .iter()
                .filter(|n| !rule.attributes().iter().any(|a| a == *n))
                .map(|n| ((*n).to_owned(), extra.clone()))
                .collect();
            let kept: Vec<(String, String)> = pairs
                .iter()
                .filter(|(k, _)| rule.attributes().contains(k))
                .cloned()
                .collect();
            prop_assert_eq!(rule.evaluate(&(&kept[..], &unread[..])), want);
        }

        #[test]
        fn missing_attribute_fails_every_comparison(
            attr in name(), op in op(), value in literal(), values in prop::collection::vec(literal(), 1..4)
        ) {
            let none: [(&str, &str); 0] = [];
            let compare = Rule::from_expr(Expr::compare(attr.clone(), op, value));
            let membership = Rule::from_expr(Expr::In { attr, values });
            prop_assert!(!compare.evaluate(&none));
            prop_assert!(!membership.evaluate(&none));
        }

        #[test]
        fn ne_is_the_complement_of_eq_and_in_is_an_or(
            value in text(), literals in prop::collection::vec(literal(), 1..4)
        ) {
            for literal in &literals {
                prop_assert_eq!(compare(Ne, &value, literal), !compare(Eq, &value, literal));
            }
            let attrs = [("x", value.as_str())];
            let membership = Rule::from_expr(Expr::In { attr: "x".into(), values: literals.clone() });
            let disjunction = Rule::from_expr(Expr::Or(
                literals.into_iter().map(|l| Expr::compare("x", Eq, l)).collect(),
            ));
            prop_assert_eq!(membership.evaluate(&attrs), disjunction.evaluate(&attrs));
        }

        #[test]
        fn ordering_operators_agree(value in text(), literal in literal()) {
            let [lt, le, gt, ge] = [Lt, Le, Gt, Ge].map(|op| compare(op, &value, &literal));
            match order(&value, &literal) {
                None => prop_assert!(!lt && !le && !gt && !ge),
                Some(_) => {
                    prop_assert_eq!(lt, !ge);
                    prop_assert_eq!(gt, !le);
                    prop_assert!(le || ge);
                }
            }
        }

        #[test]
        fn numbers_read_as_rust_reads_them(text in "-?[0-9]{1,20}(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?") {
            prop_assert_eq!(parse_number(&text), text.parse::<f64>().ok());
        }

        #[test]
        fn text_order_is_antisymmetric(a in text(), b in text()) {
            let ab = order(&a, &Literal::String(b.clone()));
            let ba = order(&b, &Literal::String(a.clone()));
            prop_assert_eq!(ab.map(std::cmp::Ordering::reverse), ba);
        }

        #[test]
        fn version_order_is_a_total_preorder(
            a in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[a-z0-9]{1,3}(\\.[a-z0-9]{1,3}){0,2})?",
            b in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[a-z0-9]{1,3}(\\.[a-z0-9]{1,3}){0,2})?",
            c in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[a-z0-9]{1,3}(\\.[a-z0-9]{1,3}){0,2})?",
        ) {
            let [va, vb, vc] = [&a, &b, &c].map(|t| Version::parse(t).unwrap());
            prop_assert_eq!(va.compare(&vb), vb.compare(&va).reverse());
            if va.compare(&vb).is_le() && vb.compare(&vc).is_le() {
                prop_assert!(va.compare(&vc).is_le(), "{} <= {} <= {}", a, b, c);
            }
        }

        /// Whatever the text, parsing returns; an error points inside it,
        /// and a success has a canonical text that parses back.
        #[test]
        fn any_text_parses_or_errs_in_bounds(text in prop_oneof![
            any::<String>(),
            "[ a-c=!<>&|()\\[\\],\"'`\\\\.0-9\\-eEuINOTRAD{}华\n]{0,30}",
        ]) {
            check_text(&text)?;
        }

        /// Valid rules with one character deleted, inserted or replaced.
        #[test]
        fn mutated_rules_parse_or_err_in_bounds(
            e in expr(), at in any::<prop::sample::Index>(), c in prop_oneof![
                select(&['(', ')', '"', '\'', '`', '\\', '=', '!', '<', '[', ',', ' ', '\n', '华', 'u', '{', '-', '.'][..]),
                any::<char>(),
            ], how in 0..3u8,
        ) {
            let mut chars: Vec<char> = e.to_string().chars().collect();
            let i = at.index(chars.len() + 1);
            match how {
                0 if i < chars.len() => { chars.remove(i); }
                1 if i < chars.len() => chars[i] = c,
                _ => chars.insert(i, c),
            }
            check_text(&chars.into_iter().collect::<String>())?;
        }
    }

    fn check_text(text: &str) -> Result<(), TestCaseError> {
        match Rule::parse(text) {
            Ok(rule) => {
                let canonical = rule.to_string();
                let again = Rule::parse(&canonical)
                    .map_err(|e| TestCaseError::fail(format!("{canonical}\n{e}")))?;
                prop_assert_eq!(again, rule);
            }
            Err(e) => {
                prop_assert!(e.offset() <= text.len() && text.is_char_boundary(e.offset()));
                let before = &text[..e.offset()];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                prop_assert_eq!((e.line(), e.column()), (line, column), "{}", e);
                prop_assert!(!e.expected().is_empty() && !e.found().is_empty());
            }
        }
        Ok(())
    }
}
