//! Human-readable and JSON printing for the CLI.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::delta::Change;
use crate::playbook::{Bullet, Playbook};
use crate::store::{ApplyOutcome, PlaybookSummary, Revision, RevisionDetail};

pub fn json<T: Serialize + ?Sized>(out: &mut impl Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

pub fn playbook_list(out: &mut impl Write, list: &[PlaybookSummary]) -> Result<()> {
    if list.is_empty() {
        writeln!(
            out,
            "no playbooks yet: `ace playbook create NAME` or `ace playbook import FILE`"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<28} {:>8} {:>8} {:>8} {:>9}",
        "PLAYBOOK", "SECTIONS", "BULLETS", "REMOVED", "REVISIONS"
    )?;
    for p in list {
        writeln!(
            out,
            "{:<28} {:>8} {:>8} {:>8} {:>9}",
            p.name, p.sections, p.active_bullets, p.removed_bullets, p.revisions
        )?;
    }
    Ok(())
}

pub fn playbook(out: &mut impl Write, playbook: &Playbook, all: bool) -> Result<()> {
    for section in &playbook.sections {
        writeln!(out, "## {}", section.name)?;
        for b in playbook
            .bullets
            .iter()
            .filter(|b| b.section == section.name && (all || b.is_active()))
        {
            let removed = if b.is_active() { "" } else { " (removed)" };
            writeln!(
                out,
                "[{}] helpful={} harmful={} :: {}{removed}",
                b.id, b.helpful, b.harmful, b.content
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

pub fn outcome(out: &mut impl Write, batch: &str, outcome: &ApplyOutcome) -> Result<()> {
    match outcome {
        ApplyOutcome::Applied {
            revision,
            added,
            summary,
        } => {
            writeln!(
                out,
                "applied batch '{batch}' as revision {revision} ({summary})"
            )?;
            if !added.is_empty() {
                writeln!(out, "new bullets: {}", added.join(", "))?;
            }
        }
        ApplyOutcome::AlreadyApplied { revision } => {
            writeln!(
                out,
                "batch '{batch}' was already applied as revision {revision}; nothing changed"
            )?;
        }
    }
    Ok(())
}

pub fn revision_list(out: &mut impl Write, list: &[Revision]) -> Result<()> {
    if list.is_empty() {
        writeln!(out, "no revisions")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>5}  {:<24} {:<18} {:<12} {:<22} REASON",
        "ID", "TIME", "PLAYBOOK", "SOURCE", "CHANGES"
    )?;
    for r in list {
        writeln!(
            out,
            "{:>5}  {:<24} {:<18} {:<12} {:<22} {}",
            r.id,
            r.created_at,
            r.playbook,
            r.source,
            r.summary.to_string(),
            r.reason.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

fn counters(b: &Bullet) -> String {
    format!(
        "helpful={} harmful={} neutral={}",
        b.helpful, b.harmful, b.neutral
    )
}

pub fn revision(out: &mut impl Write, d: &RevisionDetail) -> Result<()> {
    let r = &d.revision;
    writeln!(
        out,
        "revision {} of playbook '{}' · {} · source {}",
        r.id, r.playbook, r.created_at, r.source
    )?;
    writeln!(
        out,
        "batch {} · parent {}{}",
        r.batch_id,
        r.parent.map_or_else(|| "none".into(), |p| p.to_string()),
        r.author
            .as_ref()
            .map(|a| format!(" · by {a}"))
            .unwrap_or_default()
    )?;
    if let Some(reason) = &r.reason {
        writeln!(out, "reason: {reason}")?;
    }
    writeln!(out, "changes: {}\n", r.summary)?;
    for change in &d.changes {
        match change {
            Change::Section {
                name, before: None, ..
            } => writeln!(out, "+ section '{name}'")?,
            Change::Section {
                name, after: None, ..
            } => writeln!(out, "- section '{name}'")?,
            Change::Section { .. } => {}
            Change::Bullet {
                id,
                before: None,
                after: Some(a),
            } => {
                writeln!(out, "+ [{id}] ({}) {}", a.section, a.content)?;
            }
            Change::Bullet {
                id,
                before: Some(b),
                after: None,
            } => {
                writeln!(out, "- [{id}] ({}) {}   (deleted)", b.section, b.content)?;
            }
            Change::Bullet {
                id,
                before: Some(b),
                after: Some(a),
            } => bullet_diff(out, id, b, a)?,
            Change::Bullet {
                before: None,
                after: None,
                ..
            } => {}
        }
    }
    Ok(())
}

fn bullet_diff(out: &mut impl Write, id: &str, b: &Bullet, a: &Bullet) -> Result<()> {
    if b.is_active() && !a.is_active() {
        return Ok(writeln!(out, "- [{id}] ({}) {}", b.section, b.content)?);
    }
    if !b.is_active() && a.is_active() {
        writeln!(out, "+ [{id}] ({}) {}   (restored)", a.section, a.content)?;
    }
    if b.content != a.content {
        writeln!(
            out,
            "~ [{id}] content\n    - {}\n    + {}",
            b.content, a.content
        )?;
    }
    if b.section != a.section {
        writeln!(out, "~ [{id}] moved: '{}' → '{}'", b.section, a.section)?;
    }
    if b.metadata != a.metadata {
        writeln!(
            out,
            "~ [{id}] metadata: {} → {}",
            serde_json::Value::Object(b.metadata.clone()),
            serde_json::Value::Object(a.metadata.clone())
        )?;
    }
    if (b.helpful, b.harmful, b.neutral) != (a.helpful, a.harmful, a.neutral) {
        writeln!(out, "  [{id}] {} → {}", counters(b), counters(a))?;
    }
    Ok(())
}
