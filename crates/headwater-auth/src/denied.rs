//! A refused request: the one answer an access decision gives besides "allowed".

/// Why a principal may not do what it asked. `reason` is written for that principal: it is told
/// to the client as it stands and recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Denied {
    /// What was refused and what would allow it (who owns the resource, which role it needs).
    pub reason: String,
}

impl Denied {
    /// A refusal for `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Denied {
            reason: reason.into(),
        }
    }
}

impl From<String> for Denied {
    fn from(reason: String) -> Self {
        Denied { reason }
    }
}
