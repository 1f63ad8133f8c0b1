//! What applying a batch did: each bullet's or section's state before and after, and the counts
//! shown in summaries.

use serde::{Deserialize, Serialize};

use crate::playbook::{Bullet, Section};

/// One recorded effect of a revision: the state of a bullet or section before and after.
/// `None` means "did not exist". These records make revert and time travel exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
// Nearly every change is a bullet change; boxing them would add an allocation to the hot write path
// to save space only on the rare section changes.
#[allow(clippy::large_enum_variant)]
pub enum Change {
    Bullet {
        id: String,
        before: Option<Bullet>,
        after: Option<Bullet>,
    },
    Section {
        name: String,
        before: Option<Section>,
        after: Option<Section>,
    },
}

impl Change {
    pub fn key(&self) -> &str {
        match self {
            Change::Bullet { id, .. } => id,
            Change::Section { name, .. } => name,
        }
    }

    /// For a section change: a sign (`+` added or back, `-` removed, `~` renamed or moved) and a
    /// line for diffs, e.g. `section 'Dates' renamed to 'Dates and times'`.
    pub fn section_line(&self) -> Option<(char, String)> {
        let Change::Section {
            name,
            before,
            after,
        } = self
        else {
            return None;
        };
        Some(match (before, after) {
            (None, _) => ('+', format!("section '{name}'")),
            (Some(_), None) => ('-', format!("section '{name}'")),
            (Some(b), Some(a)) if b.removed && !a.removed => {
                ('+', format!("section '{name}' brought back"))
            }
            (Some(b), Some(a)) if !b.removed && a.removed => {
                ('-', format!("section '{name}' removed"))
            }
            (Some(b), Some(a)) if b.name != a.name => {
                ('~', format!("section '{}' renamed to '{}'", b.name, a.name))
            }
            (Some(_), Some(_)) => ('~', format!("section '{name}' moved")),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Change::Bullet { .. } => "bullet",
            Change::Section { .. } => "section",
        }
    }
}

/// How a revision changed the playbook, counted for summaries like `+3 ~1 -0 tag×5`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub tagged: u64,
    pub sections: u64,
}

impl ChangeSummary {
    pub fn of<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Self {
        let mut s = ChangeSummary::default();
        for c in changes {
            match c {
                Change::Section { .. } => s.sections += 1,
                Change::Bullet { before, after, .. } => match (before, after) {
                    (None, Some(a)) if a.is_active() => s.added += 1,
                    (Some(b), None) if b.is_active() => s.removed += 1,
                    (Some(b), Some(a)) if b.is_active() && !a.is_active() => s.removed += 1,
                    (Some(b), Some(a)) if !b.is_active() && a.is_active() => s.added += 1,
                    (Some(b), Some(a)) => {
                        let counters_moved =
                            (b.helpful, b.harmful, b.neutral) != (a.helpful, a.harmful, a.neutral);
                        let body_moved = b.content != a.content
                            || b.section != a.section
                            || b.metadata != a.metadata
                            || b.position != a.position;
                        if body_moved {
                            s.changed += 1;
                        } else if counters_moved {
                            s.tagged += 1;
                        }
                    }
                    _ => {}
                },
            }
        }
        s
    }
}

impl std::fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "+{} ~{} -{} tag×{}",
            self.added, self.changed, self.removed, self.tagged
        )?;
        if self.sections > 0 {
            write!(f, " §{}", self.sections)?;
        }
        Ok(())
    }
}
