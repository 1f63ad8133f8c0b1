//! Human-readable and JSON printing for the CLI.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::adaptation::{RunRecord, RunSummary};
use crate::approval::{DecideOutcome, PendingBatch};
use crate::delta::ApplyOutcome;
use crate::delta::Change;
use crate::playbook::{Bullet, Playbook};
use crate::store::{BulletStory, PlaybookSummary, Revision, RevisionDetail};

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
    // the name column fits the longest name (AppWorld's names run past 30 characters)
    let w = list
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    writeln!(
        out,
        "{:<w$} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "PLAYBOOK", "SECTIONS", "BULLETS", "REMOVED", "REVISIONS", "TOKENS", "BUDGET"
    )?;
    let number = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    for p in list {
        writeln!(
            out,
            "{:<w$} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
            p.name,
            p.sections,
            p.active_bullets,
            p.removed_bullets,
            p.revisions,
            number(p.tokens),
            number(p.token_budget)
        )?;
    }
    Ok(())
}

/// The size line atop `playbook show`: an HTML comment, which ACE text readers skip.
pub fn size_line(out: &mut impl Write, tokens: u64, budget: Option<u64>) -> Result<()> {
    match budget {
        Some(b) if tokens > b => writeln!(out, "<!-- {tokens} tokens, over its budget of {b} -->")?,
        Some(b) => writeln!(out, "<!-- {tokens} tokens of a {b}-token budget -->")?,
        None => writeln!(out, "<!-- {tokens} tokens, no budget -->")?,
    }
    writeln!(out)?;
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
            Change::Section { .. } => {
                if let Some((sign, line)) = change.section_line() {
                    writeln!(out, "{sign} {line}")?;
                }
            }
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

/// Two states of one playbook, bullet by bullet (in the later one's order, removed bullets last).
pub fn playbook_diff(
    out: &mut impl Write,
    label: (&str, &str),
    before: &Playbook,
    after: &Playbook,
) -> Result<usize> {
    writeln!(out, "playbook '{}': {} → {}", after.name, label.0, label.1)?;
    let mut changes = 0;
    for a in &after.bullets {
        match before.bullet(&a.id) {
            None if a.is_active() => {
                writeln!(out, "+ [{}] ({}) {}", a.id, a.section, a.content)?;
                changes += 1;
            }
            None => {}
            Some(b) if b != a => {
                let mut shown = Vec::new();
                bullet_diff(&mut shown, &a.id, b, a)?;
                if !shown.is_empty() {
                    out.write_all(&shown)?;
                    changes += 1;
                }
            }
            Some(_) => {}
        }
    }
    for b in before.bullets.iter().filter(|b| b.is_active()) {
        if after.bullet(&b.id).is_none() {
            writeln!(
                out,
                "- [{}] ({}) {}   (deleted)",
                b.id, b.section, b.content
            )?;
            changes += 1;
        }
    }
    let names = |p: &Playbook| {
        p.sections
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    };
    if names(before) != names(after) {
        writeln!(
            out,
            "~ sections: {} → {}",
            names(before).join(", "),
            names(after).join(", ")
        )?;
        changes += 1;
    }
    if changes == 0 {
        writeln!(out, "no differences")?;
    }
    Ok(changes)
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

pub fn queue_list(out: &mut impl Write, list: &[PendingBatch]) -> Result<()> {
    if list.is_empty() {
        writeln!(out, "the queue is empty")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>5}  {:<18} {:<10} {:<9} {:>4}  OPS",
        "ID", "PLAYBOOK", "RUN", "STATUS", "N"
    )?;
    for b in list {
        let ops: Vec<String> = b.ops.iter().map(|o| o.op.describe()).collect();
        let mut preview = ops.join("; ");
        if preview.chars().count() > 70 {
            preview = preview.chars().take(69).collect::<String>() + "…";
        }
        writeln!(
            out,
            "{:>5}  {:<18} {:<10} {:<9} {:>4}  {preview}",
            b.id,
            b.playbook,
            b.run_id.as_deref().unwrap_or("-"),
            b.state(),
            b.ops.len()
        )?;
    }
    Ok(())
}

/// A queued batch as a diff against the playbook, with its evidence.
pub fn queued(
    out: &mut impl Write,
    b: &PendingBatch,
    playbook: &Playbook,
    effect: Option<crate::refine::SizeEffect>,
) -> Result<()> {
    use crate::delta::DeltaOp;
    writeln!(
        out,
        "queued batch {} for playbook '{}' · {} · {}",
        b.id,
        b.playbook,
        b.state(),
        b.created_at
    )?;
    if let Some(e) = effect {
        writeln!(out, "size if approved: {}", e.describe())?;
        if e.over() {
            writeln!(
                out,
                "approving all of it takes the playbook over its token budget (auto-approval holds such a batch)"
            )?;
        }
    }
    if let Some(note) = &b.provenance.budget {
        writeln!(out, "{}", note.describe())?;
        for p in &note.prunes {
            writeln!(out, "  prune {}: {}", p.op, p.reason)?;
        }
    }
    if let Some(run) = &b.run_id {
        writeln!(out, "from run {run}")?;
    }
    if let Some(r) = &b.reasoning {
        writeln!(out, "curator: {r}")?;
    }
    writeln!(out)?;
    for op in &b.ops {
        writeln!(out, "[{}] {}", op.idx + 1, op.status)?;
        if op.edited.is_some() {
            // what gets applied is the edit; the proposal is kept for the record
            writeln!(out, "  (edited; proposed: {})", op.op.describe())?;
        }
        match op.effective() {
            DeltaOp::Add(a) => {
                writeln!(out, "  + ({}) {}", a.section, a.content)?;
                if !playbook.has_section(&a.section) {
                    writeln!(
                        out,
                        "    approving creates section '{}' (the playbook has no such section)",
                        a.section
                    )?;
                }
                if let Some(m) = &a.metadata
                    && let Some(similar) = m.get("similar_to").and_then(|v| v.as_str())
                {
                    let other = playbook
                        .bullet(similar)
                        .map(|b| b.content.as_str())
                        .unwrap_or("");
                    writeln!(
                        out,
                        "    similar to [{similar}] ({}): {other}",
                        m.get("similarity").cloned().unwrap_or_default()
                    )?;
                }
            }
            DeltaOp::Update(u) => {
                if let Some(before) = playbook.bullet(&u.bullet_id) {
                    if let Some(c) = &u.content {
                        writeln!(
                            out,
                            "  - [{}] {}\n  + [{}] {c}",
                            u.bullet_id, before.content, u.bullet_id
                        )?;
                    }
                    if let Some(s) = &u.section {
                        writeln!(
                            out,
                            "  ~ [{}] moved '{}' → '{s}'",
                            u.bullet_id, before.section
                        )?;
                    }
                } else {
                    writeln!(out, "  ~ {}", op.op.describe())?;
                }
            }
            DeltaOp::Remove { bullet_id } => match playbook.bullet(bullet_id) {
                Some(b) => writeln!(out, "  - [{bullet_id}] {}", b.content)?,
                None => writeln!(out, "  - [{bullet_id}]")?,
            },
            DeltaOp::Merge(m) => {
                let text = |id: &str| {
                    playbook
                        .bullet(id)
                        .map(|b| b.content.clone())
                        .unwrap_or_default()
                };
                let similarity = m
                    .similarity
                    .map(|s| format!(" (similarity {s:.2})"))
                    .unwrap_or_default();
                writeln!(out, "  ≈ merge into [{}]{similarity}", m.bullet_id)?;
                writeln!(out, "    kept:     {}", text(&m.bullet_id))?;
                if let Some(dup) = &m.duplicate {
                    writeln!(
                        out,
                        "  - [{dup}] {} (its counters join the kept bullet)",
                        text(dup)
                    )?;
                }
                if let Some(p) = &m.proposed {
                    writeln!(
                        out,
                        "    proposed: {p} (helpful +1 instead of a second bullet)"
                    )?;
                }
                if let Some(c) = &m.content {
                    writeln!(out, "  + becomes: {c}")?;
                }
            }
            other => writeln!(out, "  {}", other.describe())?,
        }
        if let Some(r) = &op.reason {
            writeln!(out, "  reason: {r}")?;
        }
    }
    if !b.samples().is_empty() {
        writeln!(out, "\nevidence:")?;
        for s in b.samples() {
            writeln!(
                out,
                "- {} ({}): answer {} · expected {}",
                s.key,
                verdict(s.correct),
                quoted(Some(&s.answer)),
                quoted(s.ground_truth.as_deref())
            )?;
            if !s.question.is_empty() {
                writeln!(out, "  question: {}", s.question)?;
            }
            if let Some(r) = &s.reflection {
                writeln!(out, "  insight: {}", r.key_insight)?;
            }
        }
    }
    Ok(())
}

fn verdict(correct: bool) -> &'static str {
    if correct { "right" } else { "wrong" }
}

/// A text as a JSON string (quoted, escaped), or `null`.
fn quoted(text: Option<&str>) -> String {
    serde_json::to_string(&text).unwrap_or_default()
}

pub fn decided(out: &mut impl Write, id: i64, o: &DecideOutcome) -> Result<()> {
    match (o.closed, o.revision) {
        (true, Some(r)) => writeln!(
            out,
            "queued batch {id} decided; approved ops applied as revision {r}"
        )?,
        (true, None) => writeln!(
            out,
            "queued batch {id} decided; nothing was approved, the playbook is unchanged"
        )?,
        (false, _) => writeln!(
            out,
            "decisions recorded; queued batch {id} still has undecided ops"
        )?,
    }
    Ok(())
}

fn wall(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Runs, newest first; `stopped` runs (marked running but driven by no process) are starred.
pub fn run_list(
    out: &mut impl Write,
    list: &[RunRecord],
    totals: &std::collections::HashMap<String, crate::adaptation::RunTotals>,
    stopped: &[String],
) -> Result<()> {
    if list.is_empty() {
        writeln!(
            out,
            "no runs yet: `ace train --playbook NAME --dataset FILE`"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<10} {:<16} {:<10} {:<20} {:>7} {:>7} {:>7} {:>10} {:>9} {:>8}",
        "RUN", "PLAYBOOK", "STATUS", "STARTED", "TRAIN", "VAL", "TEST", "TOKENS", "COST $", "WALL"
    )?;
    let (mut tokens, mut cost, mut secs) = (0u64, 0f64, 0f64);
    let none = crate::adaptation::RunTotals::default();
    for r in list {
        let status = if stopped.contains(&r.id) {
            format!("{}*", r.status)
        } else {
            r.status.to_string()
        };
        let t = totals.get(&r.id).unwrap_or(&none);
        let used = t.prompt_tokens + t.completion_tokens;
        tokens += used;
        cost += t.cost_usd;
        secs += t.wall_secs;
        let rate = crate::adaptation::RunTotals::percent;
        writeln!(
            out,
            "{:<10} {:<16} {:<10} {:<20} {:>7} {:>7} {:>7} {:>10} {:>9.4} {:>8}",
            r.id,
            r.playbook,
            status,
            r.created_at.get(..19).unwrap_or(&r.created_at),
            rate(t.learning()),
            rate(t.val),
            rate(t.test),
            used,
            t.cost_usd,
            wall(t.wall_secs)
        )?;
    }
    writeln!(
        out,
        "{:<10} {:<16} {:<10} {:<20} {:>7} {:>7} {:>7} {:>10} {:>9.4} {:>8}",
        format!("TOTAL {}", list.len()),
        "",
        "",
        "",
        "",
        "",
        "",
        tokens,
        cost,
        wall(secs)
    )?;
    if !stopped.is_empty() {
        writeln!(
            out,
            "* no process is driving it any more (killed or crashed): `ace train --resume RUN`, or R in the workbench"
        )?;
    }
    Ok(())
}

/// A run's model calls: each with its sample, role, prompt version, model, tokens and outcome, then
/// its messages and answer (the playbook text replaced by one line saying what it held, unless
/// `full`).
pub fn transcript(
    out: &mut impl Write,
    run: &str,
    calls: &[(String, crate::llm::CallRecord)],
    full: bool,
) -> Result<()> {
    if calls.is_empty() {
        writeln!(
            out,
            "run {run} has no model calls recorded (or they were pruned)"
        )?;
        return Ok(());
    }
    for (i, (key, c)) in calls.iter().enumerate() {
        writeln!(
            out,
            "── call {} · {key} · {} · {} · {} · {} in / {} out tokens · {} ms · {} attempt(s) · {}",
            i + 1,
            c.role.as_str(),
            c.prompt_version,
            c.model,
            c.usage.prompt_tokens,
            c.usage.completion_tokens,
            c.latency_ms,
            c.attempts,
            if c.outcome.is_empty() {
                "ok"
            } else {
                &c.outcome
            },
        )?;
        for (n, m) in c.messages.iter().enumerate() {
            let mut content = m.content.clone();
            if let Some(shown) = c.playbook.as_ref().filter(|_| n == 0 && !full)
                && !shown.text.is_empty()
            {
                let what = match &shown.view.bullets {
                    Some(ids) => format!("{} bullets chosen", ids.len()),
                    None => "the whole playbook".to_string(),
                };
                let note = format!(
                    "[playbook at revision {}: {what}, {} counters, {} characters; --full prints it]",
                    shown.view.revision.map_or("-".into(), |r| r.to_string()),
                    if shown.view.counters {
                        "with"
                    } else {
                        "without"
                    },
                    shown.text.chars().count()
                );
                content = content.replacen(&shown.text, &note, 1);
            }
            writeln!(out, "[{}]\n{content}", m.role)?;
        }
        writeln!(out, "[answer]\n{}\n", c.response)?;
    }
    Ok(())
}

pub fn run_summary(out: &mut impl Write, s: &RunSummary) -> Result<()> {
    let r = &s.run;
    writeln!(
        out,
        "{} · playbook '{}' · {} · {} · feedback: {}",
        r.id, r.playbook, r.kind, r.status, r.feedback_mode
    )?;
    if let Some(e) = &r.error {
        writeln!(out, "error: {e}")?;
    }
    let (calls, tokens, cost) = s.roles.values().fold((0, 0, 0.0), |(c, t, d), x| {
        (
            c + x.calls,
            t + x.prompt_tokens + x.completion_tokens,
            d + x.cost_usd,
        )
    });
    writeln!(
        out,
        "total: {calls} calls ({}) · {tokens} tokens · ${cost:.4} · wall time {}",
        s.outcomes
            .iter()
            .map(|(o, n)| format!("{n} {o}"))
            .collect::<Vec<_>>()
            .join(", "),
        wall(s.wall_secs)
    )?;
    for a in &s.accuracy {
        writeln!(out, "{a}")?;
    }
    if let Some(best) = r.best_revision {
        writeln!(out, "best validation playbook: revision {best}")?;
    }
    writeln!(
        out,
        "deltas: {} proposed, {} approved, {} rejected, {} pending · tags: helpful {} / harmful {}",
        s.proposed_ops,
        s.approved_ops,
        s.rejected_ops,
        s.pending_ops,
        s.helpful_tags,
        s.harmful_tags
    )?;
    let cost = s.cost_usd();
    if cost > 0.0 {
        let per_bullet = if s.approved_bullets > 0 {
            format!(
                "${:.4} per approved bullet ({})",
                cost / s.approved_bullets as f64,
                s.approved_bullets
            )
        } else {
            "no bullet approved".to_string()
        };
        let per_point = match s.accuracy_gain() {
            Some(g) if g > 0.0 => format!(
                "${:.4} per point of validation accuracy gained ({g:+.1})",
                cost / g
            ),
            Some(g) => format!("validation accuracy {g:+.1} points"),
            None => "no validation gain measured".to_string(),
        };
        writeln!(out, "value: {per_bullet} · {per_point}")?;
    }
    if s.unknown_ids > 0 {
        writeln!(
            out,
            "ids cited or tagged that match no bullet shown: {} (not counted; see the samples' unknown_ids)",
            s.unknown_ids
        )?;
    }
    for (role, t) in &s.roles {
        let mut retried = if t.requests > t.calls {
            format!("  ({} requests with retries)", t.requests)
        } else {
            String::new()
        };
        if t.cached_prompt_tokens > 0 {
            retried.push_str(&format!(
                "  ({} prompt tokens from the cache)",
                t.cached_prompt_tokens
            ));
        }
        writeln!(
            out,
            "  {role:<10} {:>5} calls {:>9} tokens in {:>8} out  ${:.4}{retried}",
            t.calls, t.prompt_tokens, t.completion_tokens, t.cost_usd
        )?;
    }
    Ok(())
}

pub fn story(out: &mut impl Write, s: &BulletStory) -> Result<()> {
    writeln!(out, "bullet {}", s.bullet_id)?;
    match (s.origin_revision, s.origin_batch, &s.origin_run) {
        (Some(rev), Some(batch), Some(run)) => writeln!(
            out,
            "added by revision {rev}, from queued batch {batch} of {run} (`ace queue show {batch}`)"
        )?,
        (Some(rev), _, _) => writeln!(out, "added by revision {rev}")?,
        _ => {}
    }
    for p in &s.history {
        writeln!(
            out,
            "  revision {:>5} {} {:<12} helpful={} harmful={} neutral={} {}{}{}",
            p.revision,
            p.created_at,
            p.source,
            p.helpful,
            p.harmful,
            p.neutral,
            p.status.map_or("deleted", |s| s.as_str()),
            p.author
                .as_deref()
                .map(|a| format!(" by {a}"))
                .unwrap_or_default(),
            if p.changed.is_empty() {
                String::new()
            } else {
                format!(" · {}", p.changed.join(", "))
            }
        )?;
        if let Some(c) = &p.content {
            writeln!(out, "      now: {c}")?;
        }
    }
    if s.cited_by.is_empty() {
        writeln!(out, "not cited by any run yet")?;
    }
    for (run, n) in &s.cited_by {
        writeln!(out, "cited by {run} in {n} samples")?;
    }
    Ok(())
}

/// "Behind this revision": the queued batch and the samples and reflections that led to it.
pub fn provenance(out: &mut impl Write, batch: &PendingBatch) -> Result<()> {
    writeln!(
        out,
        "\nbehind it: queued batch {} ({}), decided by {}",
        batch.id,
        batch.run_id.as_deref().unwrap_or("no run"),
        batch.decided_by.as_deref().unwrap_or("?")
    )?;
    for s in batch.samples() {
        writeln!(
            out,
            "- sample {} ({}): {}",
            s.key,
            verdict(s.correct),
            s.reflection.as_ref().map_or("", |r| r.key_insight.as_str())
        )?;
    }
    Ok(())
}
