//! `?` parameters, as ADBC and JDBC users write them, numbered into the
//! `$1`, `$2`, … placeholders DataFusion binds.

/// `sql` with each `?` outside string literals, quoted identifiers and
/// comments replaced by `$n`, numbered from the left. Text without `?` is
/// returned unchanged, so `$n` placeholders written by hand keep working.
pub(crate) fn number_question_marks(sql: &str) -> String {
    if !sql.contains('?') {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // A literal or quoted identifier; a doubled quote escapes it.
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == c {
                        if chars.peek() == Some(&c) {
                            out.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                out.push('*');
                chars.next();
                let mut previous = '\0';
                for d in chars.by_ref() {
                    out.push(d);
                    if previous == '*' && d == '/' {
                        break;
                    }
                    previous = d;
                }
            }
            '?' => {
                out.push('$');
                out.push_str(&next.to_string());
                next += 1;
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::number_question_marks;

    #[test]
    fn question_marks_are_numbered_outside_quotes_and_comments() {
        for (sql, expected) in [
            ("SELECT 1", "SELECT 1"),
            (
                "SELECT * FROM spans WHERE cohort = ? AND duration_ns > ?",
                "SELECT * FROM spans WHERE cohort = $1 AND duration_ns > $2",
            ),
            ("SELECT '?', ? FROM t", "SELECT '?', $1 FROM t"),
            ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"),
            (
                "SELECT \"a?\" FROM t WHERE x = ?",
                "SELECT \"a?\" FROM t WHERE x = $1",
            ),
            ("SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"),
            ("SELECT /* ? */ ?", "SELECT /* ? */ $1"),
            ("SELECT $1, $2", "SELECT $1, $2"),
            ("SELECT 'unterminated ?", "SELECT 'unterminated ?"),
        ] {
            assert_eq!(number_question_marks(sql), expected, "{sql}");
        }
    }
}
