use std::fmt;
use std::path::PathBuf;

/// One problem in a manifest: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The manifest, or the directory when the problem is the directory itself (unreadable, no
    /// manifest in it).
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    /// 1-based; 0 when `line` is.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is one thing to do.
    pub fix: Option<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "; {fix}")?;
        }
        Ok(())
    }
}

/// A duration that does not read as a number and a unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No number before the unit.
    #[error("'{text}' is not a duration; write a number and a unit, like 30d or 5m")]
    NotANumber {
        /// What was written.
        text: String,
    },
    /// More milliseconds than the node can count (about 584 million years).
    #[error("'{text}' is longer than a duration can be; write a shorter one")]
    TooLong {
        /// What was written.
        text: String,
    },
    /// A unit other than ms, s, m, h or d.
    #[error("'{text}' has unit '{unit}'; use ms, s, m, h or d (like 30d or 5m)")]
    UnknownUnit {
        /// What was written.
        text: String,
        /// The unit found.
        unit: String,
    },
}

/// A pipeline output that does not name exactly one target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// A view output without the field that keys it.
    #[error("view '{view}' has no key; add `key: <field>` to the output")]
    ViewWithoutKey {
        /// The view.
        view: String,
    },
    /// None of stream, table or view.
    #[error("the output names no target; set one of stream, table or view")]
    NoTarget,
    /// More than one of stream, table or view.
    #[error("the output names more than one target; keep one of stream, table or view")]
    SeveralTargets,
}

/// Why a name (of a domain, stream, pipeline, table or view) is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// An empty name.
    #[error("it is empty")]
    Empty,
    /// A first character other than a letter or a digit.
    #[error("it starts with '{found}'; start it with a letter or a digit (names starting with '_' are the node's own)")]
    Start {
        /// The first character.
        found: char,
    },
    /// A character outside the allowed set.
    #[error("character '{found}' is not allowed (use ASCII letters, digits, '_' and '-')")]
    Character {
        /// The first character not allowed.
        found: char,
    },
    /// A name longer than topic names leave room for.
    #[error("it is {length} characters long; keep it to {max}")]
    TooLong {
        /// The name's length.
        length: usize,
        /// The longest allowed.
        max: usize,
    },
}
