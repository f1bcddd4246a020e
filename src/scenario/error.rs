//! [`ScenarioError`]: what is wrong with a scenario file, and where, rendered as
//! `file:line:col: message` (or `file: message` when the file could not be read).

use std::fmt;
use std::ops::Range;

/// A scenario file that cannot be used: where, and what was expected.
///
/// ```
/// let err = grpc_chaos::scenario::Scenario::parse("s.toml", "[[stub]]\nfoo = 1\n", 0).unwrap_err();
/// assert_eq!(err.position(), Some((2, 1)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    file: String,
    position: Option<(usize, usize)>,
    message: String,
}

impl ScenarioError {
    /// An error about the file as a whole, with no position (it could not be read).
    pub(super) fn whole_file(file: &str, message: impl fmt::Display) -> Self {
        Self {
            file: file.to_string(),
            position: None,
            message: message.to_string(),
        }
    }

    /// An error about `text`, at the start of `span` when there is one.
    pub(super) fn in_text(
        file: &str,
        text: &str,
        span: Option<Range<usize>>,
        message: impl fmt::Display,
    ) -> Self {
        Self {
            file: file.to_string(),
            position: span.map(|span| line_col(text, span.start)),
            message: message.to_string(),
        }
    }

    /// The 1-based line and column, when the content is at fault.
    ///
    /// ```
    /// let err = grpc_chaos::scenario::Scenario::load("missing.toml", 0).unwrap_err();
    /// assert_eq!(err.position(), None);
    /// ```
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
