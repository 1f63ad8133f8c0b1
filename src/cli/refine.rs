//! `ace playbook dedup`: a scan of a playbook for near duplicates, queued as MERGE proposals.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::adaptation::refining::{self, Scan};
use crate::approval::Provenance;
use crate::delta::DeltaOp;
use crate::llm::{Embedder, OpenAiEmbedder};
use crate::store::Store;

pub struct DedupArgs {
    pub name: String,
    pub threshold: Option<f64>,
    pub lexical: bool,
    pub dry_run: bool,
    pub json: bool,
}

/// The embedding model from the configuration, if one is configured.
fn embedder() -> Result<Option<Arc<dyn Embedder>>> {
    let cfg = crate::config::load(&crate::config::process_env)?;
    Ok(match cfg.embedding {
        Some(endpoint) => Some(Arc::new(OpenAiEmbedder::new(endpoint)?)),
        None => None,
    })
}

pub fn dedup(db: &Path, args: DedupArgs, out: &mut impl Write) -> Result<()> {
    if let Some(t) = args.threshold
        && !(t > 0.0 && t <= 1.0)
    {
        bail!("--threshold {t} is not a similarity: give a number above 0 and at most 1");
    }
    let store = Store::open(db)?;
    let name = store.resolve_playbook(Some(&args.name))?;
    let head = store.head_revision(&name)?;
    let store = crate::shared::shared(store);
    let embedder = if args.lexical { None } else { embedder()? };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let scan = runtime
        .block_on(refining::scan(
            &store,
            embedder,
            &name,
            args.threshold,
            &CancellationToken::new(),
        ))
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot scan playbook '{name}'"))?;
    let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
    let playbook = store.load_playbook(&name)?;
    let batch = if args.dry_run || scan.merges.is_empty() {
        None
    } else {
        let ops: Vec<DeltaOp> = scan.merges.iter().cloned().map(DeltaOp::Merge).collect();
        let keyed: Vec<(String, DeltaOp)> = crate::roles::curator::keyed(ops)
            .into_iter()
            .map(|c| (c.key, c.op))
            .collect();
        let key = format!(
            "dedup/r{}/{}/{}",
            head.unwrap_or(0),
            scan.method.describe(),
            scan.threshold
        );
        store.propose(
            &name,
            &key,
            None,
            &reasoning(&scan),
            &keyed,
            &Provenance::default(),
        )?
    };
    if args.json {
        let merges: Vec<_> = scan
            .merges
            .iter()
            .map(|m| {
                json!({
                    "keep": m.bullet_id,
                    "keep_content": playbook.bullet(&m.bullet_id).map(|b| b.content.clone()),
                    "duplicate": m.duplicate,
                    "duplicate_content": m.duplicate.as_deref().and_then(|d| playbook.bullet(d)).map(|b| b.content.clone()),
                    "similarity": m.similarity,
                })
            })
            .collect();
        return super::print::json(
            out,
            &json!({
                "playbook": name,
                "method": scan.method.describe(),
                "threshold": scan.threshold,
                "bullets": scan.bullets,
                "warning": scan.warning,
                "merges": merges,
                "queued_batch": batch,
            }),
        );
    }
    if let Some(w) = &scan.warning {
        writeln!(out, "warning: {w}")?;
    }
    writeln!(out, "{}", reasoning(&scan))?;
    for m in &scan.merges {
        let text = |id: &str| {
            playbook
                .bullet(id)
                .map(|b| b.content.clone())
                .unwrap_or_default()
        };
        let dup = m.duplicate.clone().unwrap_or_default();
        writeln!(
            out,
            "  {:.2}  keep [{}] {}\n        fold [{dup}] {}",
            m.similarity.unwrap_or(0.0),
            m.bullet_id,
            text(&m.bullet_id),
            text(&dup)
        )?;
    }
    match batch {
        Some(id) => {
            let status = store.pending_batch(id)?.status;
            if status == crate::approval::BatchStatus::Pending {
                writeln!(
                    out,
                    "queued as batch {id}: review with `ace queue show {id}` (or the workbench), then approve or reject"
                )?
            } else {
                writeln!(
                    out,
                    "this scan of this revision was queued before, as batch {id} ({status}); nothing new queued"
                )?
            }
        }
        None if args.dry_run && !scan.merges.is_empty() => {
            writeln!(out, "dry run: nothing queued")?
        }
        None => {}
    }
    Ok(())
}

fn reasoning(scan: &Scan) -> String {
    format!(
        "near-duplicate scan by {}, threshold {}: {} bullets, {} pair{} to merge",
        scan.method.describe(),
        scan.threshold,
        scan.bullets,
        scan.merges.len(),
        if scan.merges.len() == 1 { "" } else { "s" }
    )
}
