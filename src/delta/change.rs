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

/// The changes a playbook went through after a revision it is known at, and its counters after
/// them: enough to bring a copy in memory up to date without reading it whole again.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The revision the changes lead to.
    pub head: i64,
    pub changes: Vec<Change>,
    pub next_bullet_number: u64,
    pub next_position: i64,
}

impl Replay {
    /// Applies the changes to `playbook` (as [`crate::store`] records them: each change holds the
    /// state after it), then sets its revision and counters. Only a change of order re-sorts.
    pub fn apply_to(&self, playbook: &mut crate::playbook::Playbook) {
        let mut resort = false;
        for change in &self.changes {
            match change {
                Change::Section {
                    name,
                    before,
                    after,
                } => {
                    resort = true;
                    playbook.sections.retain(|s| s.name != *name);
                    playbook.removed_sections.retain(|s| s.name != *name);
                    let Some(s) = after else {
                        continue;
                    };
                    // a rename: the bullets follow their section
                    if let Some(old) = before.as_ref().filter(|b| b.name != s.name) {
                        playbook.sections.retain(|x| x.name != old.name);
                        playbook.removed_sections.retain(|x| x.name != old.name);
                        for b in playbook
                            .bullets
                            .iter_mut()
                            .filter(|b| b.section == old.name)
                        {
                            b.section.clone_from(&s.name);
                        }
                    }
                    if s.removed {
                        playbook.removed_sections.push(s.clone());
                    } else {
                        playbook.sections.push(s.clone());
                    }
                }
                Change::Bullet { id, after, .. } => {
                    let at = playbook.bullets.iter().position(|b| b.id == *id);
                    match (at, after) {
                        (Some(i), Some(b)) => {
                            let old = &playbook.bullets[i];
                            resort |= old.section != b.section || old.position != b.position;
                            playbook.bullets[i] = b.clone();
                        }
                        (None, Some(b)) => {
                            resort = true;
                            playbook.bullets.push(b.clone());
                        }
                        (Some(i), None) => {
                            playbook.bullets.remove(i);
                        }
                        (None, None) => {}
                    }
                }
            }
        }
        if resort {
            playbook.sort();
        }
        playbook.revision = Some(self.head);
        playbook.next_bullet_number = self.next_bullet_number;
        playbook.next_position = self.next_position;
    }
}

/// What differs between two states of a playbook, as changes from `before` to `after`: bullets
/// added, removed, or changed in any field, and sections added or removed (for comparing two
/// revisions, or a revision with the playbook now).
pub fn diff(before: &crate::playbook::Playbook, after: &crate::playbook::Playbook) -> Vec<Change> {
    let mut out = Vec::new();
    let old: std::collections::HashMap<&str, &Bullet> =
        before.bullets.iter().map(|b| (b.id.as_str(), b)).collect();
    let new: std::collections::HashMap<&str, &Bullet> =
        after.bullets.iter().map(|b| (b.id.as_str(), b)).collect();
    for s in &after.sections {
        if !before.sections.iter().any(|x| x.name == s.name) {
            out.push(Change::Section {
                name: s.name.clone(),
                before: None,
                after: Some(s.clone()),
            });
        }
    }
    for s in &before.sections {
        if !after.sections.iter().any(|x| x.name == s.name) {
            out.push(Change::Section {
                name: s.name.clone(),
                before: Some(s.clone()),
                after: None,
            });
        }
    }
    for b in &after.bullets {
        match old.get(b.id.as_str()) {
            Some(o) if *o == b => {}
            o => out.push(Change::Bullet {
                id: b.id.clone(),
                before: o.map(|o| (*o).clone()),
                after: Some(b.clone()),
            }),
        }
    }
    for b in &before.bullets {
        if !new.contains_key(b.id.as_str()) {
            out.push(Change::Bullet {
                id: b.id.clone(),
                before: Some(b.clone()),
                after: None,
            });
        }
    }
    out
}
