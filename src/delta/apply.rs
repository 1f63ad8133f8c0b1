//! What each op does to a playbook, and when it is refused.

use serde::Serialize;

use super::ChangeSummary;

/// What to do with an ADD or UPDATE naming a section the playbook does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SectionPolicy {
    /// Create the section (appended after the others); the creation is part of the revision.
    Create,
    /// Reject the batch.
    #[default]
    Reject,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    pub sections: SectionPolicy,
}

impl ApplyOptions {
    pub fn create_sections() -> Self {
        ApplyOptions {
            sections: SectionPolicy::Create,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ApplyOutcome {
    Applied {
        revision: i64,
        added: Vec<String>,
        summary: ChangeSummary,
    },
    /// The batch id was applied before, as this revision; nothing was written now.
    AlreadyApplied { revision: i64 },
}

impl ApplyOutcome {
    pub fn revision(&self) -> i64 {
        match self {
            ApplyOutcome::Applied { revision, .. } | ApplyOutcome::AlreadyApplied { revision } => {
                *revision
            }
        }
    }
}
