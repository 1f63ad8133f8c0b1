//! The commands over the store: playbooks, revisions, the queue, runs and the database.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::args::{DbCmd, PlaybookCmd, QueueCmd, RevisionsCmd, RunsCmd};
use super::{print, read_file};
use crate::approval::Decision;
use crate::delta::ApplyOutcome;
use crate::playbook::DEFAULT_SECTIONS;
use crate::playbook::format::{self, Format};
use crate::store::{LATEST_VERSION, Store};

/// Ops are numbered from 1 everywhere a person sees them (`queue show`, the workbench); the store
/// counts from 0.
fn op_index(n: usize) -> Result<usize> {
    n.checked_sub(1)
        .ok_or_else(|| anyhow::anyhow!("ops are numbered from 1, as `ace queue show` lists them"))
}

pub(super) fn queue(db: &Path, cmd: QueueCmd, out: &mut impl Write) -> Result<()> {
    if let QueueCmd::Trial { id, op, trial } = cmd {
        return super::trial::queue_trial(db, id, op, trial, out);
    }
    let mut store = match cmd {
        QueueCmd::List { .. } | QueueCmd::Show { .. } => Store::open_reading(db)?,
        _ => Store::open(db)?,
    };
    match cmd {
        QueueCmd::List {
            playbook,
            all,
            json,
        } => {
            let list = store.queue(playbook.as_deref(), !all)?;
            if json {
                print::json(out, &list)
            } else {
                print::queue_list(out, &list)
            }
        }
        QueueCmd::Show { id, json } => {
            let batch = store.pending_batch(id)?;
            let trials = store.trials(id)?;
            if json {
                let mut value = serde_json::to_value(&batch)?;
                value["trials"] = serde_json::to_value(&trials)?;
                return print::json(out, &value);
            }
            let playbook = store.load_playbook(&batch.playbook)?;
            let effect = crate::refine::budget::queued_effect(
                &batch,
                &playbook,
                store.playbook_tokens(&batch.playbook)?,
                store.token_budget(&batch.playbook)?,
            );
            print::queued(out, &batch, &playbook, effect)?;
            for t in &trials {
                writeln!(
                    out,
                    "trial {} ({}{}): {}",
                    t.created_at,
                    t.subject,
                    if t.op.is_none() { ", all ops" } else { "" },
                    t.report.summary()
                )?;
            }
            Ok(())
        }
        QueueCmd::Trial { .. } => unreachable!("tried above"),
        QueueCmd::Approve { id, ops, author } => {
            let outcome = if ops.is_empty() {
                store.decide_all(id, true, None, &author)?
            } else {
                store.decide(
                    id,
                    &ops.iter()
                        .map(|i| Ok((op_index(*i)?, Decision::Approve)))
                        .collect::<Result<Vec<_>>>()?,
                    &author,
                )?
            };
            print::decided(out, id, &outcome)
        }
        QueueCmd::Reject {
            id,
            ops,
            reason,
            author,
        } => {
            let outcome = if ops.is_empty() {
                store.decide_all(id, false, reason.as_deref(), &author)?
            } else {
                let d = Decision::Reject {
                    reason: reason.clone(),
                };
                store.decide(
                    id,
                    &ops.iter()
                        .map(|i| Ok((op_index(*i)?, d.clone())))
                        .collect::<Result<Vec<_>>>()?,
                    &author,
                )?
            };
            print::decided(out, id, &outcome)
        }
        QueueCmd::Edit {
            id,
            op,
            file,
            author,
        } => {
            let text = read_file(&file)?;
            let edited: crate::delta::DeltaOp = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a delta op", file.display()))?;
            let outcome = store.decide(id, &[(op_index(op)?, Decision::Edit(edited))], &author)?;
            print::decided(out, id, &outcome)
        }
    }
}

pub(super) fn runs(db: &Path, cmd: RunsCmd, out: &mut impl Write) -> Result<()> {
    let store = Store::open_reading(db)?;
    match cmd {
        RunsCmd::List { json } => {
            let list = store.runs()?;
            let totals = store.run_totals()?;
            if json {
                // each run with its totals
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|r| {
                        let mut v = serde_json::to_value(r).unwrap_or_default();
                        v["totals"] =
                            serde_json::to_value(totals.get(&r.id).cloned().unwrap_or_default())
                                .unwrap_or_default();
                        v
                    })
                    .collect();
                return print::json(out, &rows);
            }
            // A run marked running or waiting that no process holds was stopped (killed, crashed).
            let mut stopped = Vec::new();
            for r in &list {
                if matches!(r.status.as_str(), "running" | "waiting")
                    && !store.run_is_live(&r.id)?
                {
                    stopped.push(r.id.clone());
                }
            }
            print::run_list(out, &list, &totals, &stopped)
        }
        RunsCmd::Show { run, json } => {
            let summary = store.run_summary(&run)?;
            if json {
                print::json(out, &summary)
            } else {
                print::run_summary(out, &summary)
            }
        }
        RunsCmd::Calls {
            run,
            sample,
            full,
            json,
        } => {
            let calls = store.run_transcript(&run, sample.as_deref())?;
            if json {
                let rows: Vec<_> = calls
                    .iter()
                    .map(|(key, call)| {
                        let mut v = serde_json::to_value(call).unwrap_or_default();
                        v["sample"] = serde_json::Value::String(key.clone());
                        v
                    })
                    .collect();
                return print::json(out, &rows);
            }
            print::transcript(out, &run, &calls, full)
        }
    }
}

pub(super) fn overview(db: &Path, out: &mut impl Write) -> Result<()> {
    let mut store = Store::open_reading(db)?;
    let mut list = store.playbooks()?;
    for p in &mut list {
        p.tokens = Some(store.playbook_tokens(&p.name)?);
    }
    writeln!(
        out,
        "ace — ACE playbook workbench (database: {})\n",
        db.display()
    )?;
    print::playbook_list(out, &list)?;
    writeln!(
        out,
        "\ncommands:\n  ace workbench                 (on a terminal, plain `ace` opens it; `ace demo` with a scripted model)\n  \
         ace playbook list|create|show|import|export\n  ace delta apply FILE --playbook NAME\n  \
         ace revisions list|show N|revert N\n  ace train --playbook NAME --dataset FILE [--approve wait|auto|queue]\n  \
         ace queue list|show N|approve N|reject N|edit N\n  ace runs list|show RUN|calls RUN\n  ace doctor                    (the model configuration, checked)\n  \
         ace db migrate|rollback --to N|status\n  ace --help for everything"
    )?;
    Ok(())
}

pub(super) fn playbook(db: &Path, cmd: PlaybookCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        PlaybookCmd::List {
            json,
            deleted: true,
        } => {
            let gone = Store::open_reading(db)?.deleted_playbooks()?;
            if json {
                let rows: Vec<_> = gone
                    .iter()
                    .map(|(name, at)| serde_json::json!({"name": name, "deleted_at": at}))
                    .collect();
                return print::json(out, &rows);
            }
            if gone.is_empty() {
                writeln!(out, "no deleted playbooks")?;
            }
            for (name, at) in gone {
                writeln!(out, "{name:<30} deleted {at}")?;
            }
            Ok(())
        }
        PlaybookCmd::Rename { name, new_name } => {
            Store::open(db)?.rename_playbook(&name, &new_name)?;
            writeln!(out, "renamed playbook '{name}' to '{new_name}'")?;
            Ok(())
        }
        PlaybookCmd::Copy { name, new_name } => {
            let bullets = Store::open(db)?.copy_playbook(&name, &new_name)?;
            writeln!(
                out,
                "copied playbook '{name}' to '{new_name}' ({bullets} bullets)"
            )?;
            Ok(())
        }
        PlaybookCmd::Delete { name, yes } => {
            let mut store = Store::open(db)?;
            store.resolve_playbook(Some(&name))?;
            if !yes
                && !confirm(&format!(
                    "delete playbook '{name}'? It is kept, hidden, and `ace playbook restore {name}` brings it back"
                ))?
            {
                bail!("not confirmed; nothing changed (add --yes to confirm without a terminal)");
            }
            store.delete_playbook(&name)?;
            writeln!(
                out,
                "deleted playbook '{name}' (restore it with `ace playbook restore {name}`)"
            )?;
            Ok(())
        }
        PlaybookCmd::Prompt {
            name,
            ids,
            counters,
            include_harmful,
            into,
        } => {
            let playbook = Store::open_reading(db)?.load_playbook(&name)?;
            let options = format::PromptOptions {
                ids,
                counters,
                harmful: include_harmful,
            };
            let text =
                crate::text::visible(&format::export_prompt(&playbook, options)).into_owned();
            let left_out = playbook
                .active_bullets()
                .filter(|b| !include_harmful && b.harmful > b.helpful)
                .count();
            eprintln!(
                "note: {} tokens (cl100k){}",
                crate::prompts::tokens(&text),
                if left_out > 0 {
                    format!(", {left_out} harmful-dominated bullet(s) left out (--include-harmful)")
                } else {
                    String::new()
                }
            );
            match into {
                None => out.write_all(text.as_bytes())?,
                Some(path) => {
                    let changed = super::managed::write_block(&path, &name, &text)?;
                    writeln!(
                        out,
                        "{} the block of playbook '{name}' in {}",
                        if changed { "wrote" } else { "unchanged:" },
                        path.display()
                    )?;
                }
            }
            Ok(())
        }
        PlaybookCmd::Restore { name } => {
            Store::open(db)?.restore_playbook(&name)?;
            writeln!(out, "restored playbook '{name}'")?;
            Ok(())
        }
        PlaybookCmd::List { json, .. } => {
            let mut store = Store::open_reading(db)?;
            let mut list = store.playbooks()?;
            for p in &mut list {
                p.tokens = Some(store.playbook_tokens(&p.name)?);
            }
            if json {
                print::json(out, &list)
            } else {
                print::playbook_list(out, &list)
            }
        }
        PlaybookCmd::Create {
            name,
            empty,
            budget,
        } => {
            let sections: &[&str] = if empty { &[] } else { DEFAULT_SECTIONS };
            let mut store = Store::open(db)?;
            store.create_playbook(&name, sections)?;
            if budget.is_some() {
                store.set_token_budget(&name, budget)?;
            }
            writeln!(
                out,
                "created playbook '{name}' with {} sections{}",
                sections.len(),
                budget
                    .map(|b| format!(", budget {b} tokens"))
                    .unwrap_or_default()
            )?;
            Ok(())
        }
        PlaybookCmd::Dedup {
            name,
            threshold,
            lexical,
            dry_run,
            json,
        } => super::refine::dedup(
            db,
            super::refine::DedupArgs {
                name,
                threshold,
                lexical,
                dry_run,
                json,
            },
            out,
        ),
        PlaybookCmd::Impact { name, yes, trial } => {
            super::trial::playbook_impact(db, &name, yes, trial, out)
        }
        PlaybookCmd::Agents { name, policy } => {
            let mut store = Store::open(db)?;
            if let Some(p) = policy {
                store.set_agent_policy(&name, p)?;
            }
            let policy = store.agent_policy(&name)?;
            let what = match policy {
                crate::store::AgentPolicy::Queue => {
                    "nothing: their judgements and proposals wait in the queue for a person"
                }
                crate::store::AgentPolicy::Counters => {
                    "counters: their helpful/harmful judgements apply at once; content still waits for a person"
                }
            };
            writeln!(out, "playbook '{name}': agents may change {what}")?;
            Ok(())
        }
        PlaybookCmd::Budget { name, tokens } => {
            let budget = match tokens.trim() {
                "none" => None,
                t => Some(t.parse::<u64>().ok().filter(|n| *n > 0).with_context(|| {
                    format!("'{t}' is not a token budget: give a whole number above 0, or none")
                })?),
            };
            let mut store = Store::open(db)?;
            store.set_token_budget(&name, budget)?;
            let size = store.playbook_tokens(&name)?;
            match budget {
                Some(b) => writeln!(
                    out,
                    "playbook '{name}': budget {b} tokens; it holds {size} ({})",
                    if size > b { "over budget" } else { "within it" }
                )?,
                None => writeln!(out, "playbook '{name}': no budget; it holds {size} tokens")?,
            }
            Ok(())
        }
        PlaybookCmd::Show {
            name,
            at,
            all,
            json,
        } => {
            let mut store = Store::open_reading(db)?;
            let playbook = match at {
                Some(rev) => store.playbook_at(rev)?,
                None => store.load_playbook(&store.resolve_playbook(name.as_deref())?)?,
            };
            // the size now (a past revision is shown as it was, without it)
            let size = match at {
                Some(_) => None,
                None => Some((
                    store.playbook_tokens(&playbook.name)?,
                    store.token_budget(&playbook.name)?,
                )),
            };
            if let (Some(_), Some(name)) = (at, &name)
                && &playbook.name != name
            {
                bail!(
                    "revision {} belongs to playbook '{}', not '{name}'",
                    at.unwrap_or_default(),
                    playbook.name
                );
            }
            if json {
                let mut value = serde_json::to_value(&playbook)?;
                if let Some((tokens, budget)) = size {
                    value["tokens"] = tokens.into();
                    value["token_budget"] = budget.into();
                }
                print::json(out, &value)
            } else {
                if let Some((tokens, budget)) = size {
                    print::size_line(out, tokens, budget)?;
                }
                print::playbook(out, &playbook, all)
            }
        }
        PlaybookCmd::Import {
            file,
            name,
            format,
            budget,
        } => {
            let text = read_file(&file)?;
            let format = format.unwrap_or_else(|| Format::detect(&text));
            let label = file.display().to_string();
            let parsed = format::parse(format, &text, &label)?;
            let name = match name {
                Some(n) => n,
                // our JSON carries the playbook's name
                None if !parsed.name.trim().is_empty() => parsed.name.clone(),
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "imported".into()),
            };
            if parsed.sections.is_empty() && parsed.bullets.is_empty() {
                bail!("{label} holds no sections and no bullets; nothing to import");
            }
            let batch = crate::delta::import_batch(&parsed, &format!("import:{label}"));
            let mut store = Store::open(db)?;
            let outcome = store.import_playbook(&name, &batch, parsed.next_bullet_number)?;
            if budget.is_some() {
                store.set_token_budget(&name, budget)?;
            }
            writeln!(
                out,
                "imported {} bullets in {} sections from {label} into playbook '{name}' (revision {})",
                parsed.bullets.len(),
                parsed.sections.len(),
                outcome.revision()
            )?;
            Ok(())
        }
        PlaybookCmd::Export {
            name,
            format,
            output,
        } => {
            let playbook = Store::open_reading(db)?.load_playbook(&name)?;
            let (text, notes) = format::export_with_notes(format, &playbook);
            for note in notes {
                eprintln!("note: {note}");
            }
            // a text export is read by people: hidden characters show escaped (JSON escapes its own)
            let text = match format {
                Format::Ace | Format::Markdown => crate::text::visible(&text).into_owned(),
                _ => text,
            };
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => out.write_all(text.as_bytes())?,
            }
            Ok(())
        }
    }
}

pub(super) fn revisions(db: &Path, cmd: RevisionsCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        RevisionsCmd::List {
            playbook,
            limit,
            json,
        } => {
            let list = Store::open_reading(db)?.revisions(playbook.as_deref(), limit)?;
            if json {
                print::json(out, &list)
            } else {
                print::revision_list(out, &list)
            }
        }
        RevisionsCmd::Show { id, json } => {
            let store = Store::open_reading(db)?;
            let detail = store.revision(id)?;
            if json {
                return print::json(out, &detail);
            }
            print::revision(out, &detail)?;
            if let Some(batch) = store.revision_provenance(id)? {
                print::provenance(out, &batch)?;
            }
            Ok(())
        }
        RevisionsCmd::Diff { a, b, json } => {
            let store = Store::open_reading(db)?;
            let before = store.playbook_at(a)?;
            let (after, label) = match b {
                Some(b) => {
                    let after = store.playbook_at(b)?;
                    if after.name != before.name {
                        bail!(
                            "revision {a} is of playbook '{}' and {b} of '{}': compare revisions of one playbook",
                            before.name,
                            after.name
                        );
                    }
                    (after, format!("revision {b}"))
                }
                None => (store.load_playbook(&before.name)?, "now".to_string()),
            };
            if json {
                let changed: Vec<serde_json::Value> = after
                    .bullets
                    .iter()
                    .filter(|x| before.bullet(&x.id) != Some(*x))
                    .map(|x| serde_json::json!({"id": x.id, "before": before.bullet(&x.id), "after": x}))
                    .collect();
                return print::json(
                    out,
                    &serde_json::json!({"playbook": after.name, "from": a, "to": b, "changes": changed}),
                );
            }
            print::playbook_diff(out, (&format!("revision {a}"), &label), &before, &after)?;
            Ok(())
        }
        RevisionsCmd::Revert { id, force } => {
            let mut store = Store::open(db)?;
            let author = std::env::var("USER").ok();
            let outcome = store.revert(id, force, author.as_deref())?;
            if let ApplyOutcome::Applied {
                revision, summary, ..
            } = outcome
            {
                writeln!(
                    out,
                    "reverted revision {id} as revision {revision} ({summary})"
                )?;
            }
            Ok(())
        }
    }
}

/// Asks on the terminal; without one, the answer is no.
fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Beside the database, named for the version it holds; never over an earlier copy.
fn backup_path(db: &Path, version: u32) -> std::path::PathBuf {
    let name = db.file_name().unwrap_or_default().to_string_lossy();
    (0..)
        .map(|n| {
            let suffix = if n == 0 {
                String::new()
            } else {
                format!("-{n}")
            };
            db.with_file_name(format!("{name}.v{version}{suffix}.bak"))
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| db.with_file_name(format!("{name}.bak")))
}

pub(super) fn database(db: &Path, cmd: DbCmd, out: &mut impl Write) -> Result<()> {
    let mut store = Store::open_unmigrated(db)?;
    let from = store.schema_version()?;
    match cmd {
        DbCmd::Status { json: true } => print::json(
            out,
            &serde_json::json!({"path": db, "schema_version": from, "latest": LATEST_VERSION}),
        )?,
        DbCmd::Status { json: false } => writeln!(
            out,
            "schema version {from} (this binary writes version {LATEST_VERSION})"
        )?,
        DbCmd::Migrate => {
            let done = store.migrate_to(LATEST_VERSION)?;
            if done.is_empty() {
                writeln!(out, "already at schema version {from}")?;
            } else {
                writeln!(out, "migrated from version {from} to {LATEST_VERSION}")?;
            }
        }
        DbCmd::Prune {
            older_than,
            run,
            dry_run,
        } => {
            store.migrate_to(LATEST_VERSION)?;
            if let Some(r) = &run
                && store.run_is_live(r)?
            {
                bail!("run {r} is being run right now; prune it when it has ended");
            }
            let cutoff: String = store.connection().query_row(
                "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)",
                [format!("-{older_than} days")],
                |r| r.get(0),
            )?;
            let p = store.prune_calls(Some(&cutoff), run.as_deref(), dry_run)?;
            writeln!(
                out,
                "{} the model-call records of {} run(s): {} calls, {:.1} MB of prompts and answers{}",
                if dry_run { "would delete" } else { "deleted" },
                p.runs,
                p.calls,
                p.bytes as f64 / 1e6,
                if dry_run {
                    ""
                } else {
                    "; `ace db vacuum` gives the space back to the file system"
                }
            )?;
        }
        DbCmd::Vacuum => {
            store.migrate_to(LATEST_VERSION)?;
            let (before, after) = store.vacuum()?;
            writeln!(
                out,
                "vacuumed: {:.1} MB → {:.1} MB",
                before as f64 / 1e6,
                after as f64 / 1e6
            )?;
        }
        DbCmd::Rollback { to, yes } => {
            if to > from {
                bail!(
                    "the database is at version {from}; rollback only goes down (use `ace db migrate` to go up)"
                );
            }
            if to == from {
                writeln!(out, "already at schema version {from}")?;
                return Ok(());
            }
            if !yes
                && !confirm(&format!(
                    "roll {} back from schema version {from} to {to}? What later versions added is dropped{}",
                    db.display(),
                    if to == 0 {
                        " (version 0: every playbook)"
                    } else {
                        ""
                    }
                ))?
            {
                bail!(
                    "rollback not confirmed; nothing changed (add --yes to confirm without a terminal)"
                );
            }
            let backup = backup_path(db, from);
            store.backup_to(&backup)?;
            writeln!(out, "saved a copy of the database as {}", backup.display())?;
            store.migrate_to(to)?;
            writeln!(out, "rolled back from version {from} to {to}")?;
        }
    }
    Ok(())
}
