//! Why a rule text does not parse.

use std::fmt;

/// A rule text that does not parse: where, what the parser expected there,
/// what it found, and sometimes a hint.
///
/// Its `Display` is one line,
/// `line 1, column 14: expected a value (string, number or boolean) after '==', found 'AND'`,
/// followed by `; <note>` when there is a note. Lines and columns count from
/// 1; columns count characters (Unicode scalar values), not bytes, so a
/// position after Chinese text is where an editor shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) offset: usize,
    pub(crate) expected: String,
    pub(crate) found: String,
    pub(crate) note: Option<String>,
}

/// Where in the rule text something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    /// Byte offset.
    pub(crate) offset: usize,
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column, in characters.
    pub(crate) column: usize,
}

impl RuleError {
    pub(crate) fn new(pos: Pos, expected: impl Into<String>, found: impl Into<String>) -> Self {
        RuleError {
            line: pos.line,
            column: pos.column,
            offset: pos.offset,
            expected: expected.into(),
            found: found.into(),
            note: None,
        }
    }

    pub(crate) fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The 1-based line of the error.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column of the error, counted in characters.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The byte offset of the error in the rule text (for slicing it).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What the parser expected, e.g. `a value (string, number or boolean)
    /// after '=='`.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// What it found instead, e.g. `'AND'`, `string "华南"`, `end of input`.
    pub fn found(&self) -> &str {
        &self.found
    }

    /// A hint on how to fix it, if there is one.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The offending line of `source` with a caret under the error's column,
    /// for a terminal: call it with the text that failed to parse.
    pub fn snippet(&self, source: &str) -> String {
        let line = source
            .split('\n')
            .nth(self.line.saturating_sub(1))
            .unwrap_or("")
            .trim_end_matches('\r');
        let pad: String = line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!("{line}\n{pad}^")
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: expected {}, found {}",
            self.line, self.column, self.expected, self.found
        )?;
        if let Some(note) = &self.note {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleError {}
