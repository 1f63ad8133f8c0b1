//! The workbench: a ratatui terminal UI over the store and the loop.
//!
//! One [`state::State`], [`action::Action`]s in and [`action::Effect`]s out of a pure
//! [`update::update`], a pure [`render::render`], and one key table ([`keymap`]) that the update,
//! the footer, the help and the popup titles all read. Each pane ([`panes`]) and popup
//! ([`popups`]) is a file with its own key handling and drawing. The effects [`runner`] does the
//! store work and drives the run off the render path; [`workbench`] owns the terminal loop.

pub mod action;
pub mod keymap;
pub mod panes;
pub mod popups;
pub mod render;
mod runner;
pub mod state;
pub mod theme;
pub mod update;
pub mod widgets;
mod workbench;

pub use render::render;
pub use runner::write_clipboard;
pub use workbench::{Workbench, run};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::adaptation::{self, Models};
use crate::llm::{Ledger, LlmClient, OpenAiClient, Role};
use crate::playbook::format::{self, Format};
use crate::store::Store;
use state::Snapshot;

/// The bundled sample playbook and dataset (written for this project), loaded on first run.
pub const SAMPLE_PLAYBOOK: &str = include_str!("../../assets/sample/playbook.txt");
pub const SAMPLE_DATASET: &str = include_str!("../../assets/sample/dataset.jsonl");
/// The scripted model of `ace demo`.
pub const DEMO_SCRIPT: &str = include_str!("../../assets/demo/script.json");

/// How the workbench reaches models.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// From the configuration (docs/CONFIGURATION.md).
    Configured,
    /// A scripted model served on loopback at this base URL (`ace demo`).
    Demo(String),
}

/// Loads the sample playbook into an empty database and writes the sample dataset next to it.
pub fn first_run(store: &mut Store, data_dir: &Path) -> Result<PathBuf> {
    if store.playbooks()?.is_empty() {
        let parsed = format::parse(Format::Ace, SAMPLE_PLAYBOOK, "sample playbook")?;
        store.import_playbook(
            "sample",
            &crate::delta::import_batch(&parsed, "import:sample"),
            parsed.next_bullet_number,
        )?;
    }
    let dataset = data_dir.join("sample-dataset.jsonl");
    if !dataset.exists() {
        std::fs::create_dir_all(data_dir)?;
        std::fs::write(&dataset, SAMPLE_DATASET)?;
    }
    Ok(dataset)
}

/// Everything the panes show, read from the store in one go.
pub fn snapshot(store: &mut Store, playbook: &str) -> Result<Snapshot, crate::store::StoreError> {
    let playbooks = store.playbook_names()?;
    let name = if playbooks.iter().any(|p| p == playbook) {
        playbook.to_string()
    } else {
        playbooks.first().cloned().unwrap_or_default()
    };
    let (playbook, tokens, token_budget) = if name.is_empty() {
        Default::default()
    } else {
        (
            store.load_playbook(&name)?,
            store.playbook_tokens(&name)?,
            store.token_budget(&name)?,
        )
    };
    let mut queue = store.pending(None)?;
    queue.extend(
        store
            .queue(None, false)?
            .into_iter()
            .filter(|b| !b.is_pending())
            .take(20),
    );
    let effects = queue
        .iter()
        .filter(|b| b.is_pending() && b.playbook == playbook.name && !name.is_empty())
        .filter_map(|b| {
            crate::refine::budget::queued_effect(b, &playbook, tokens, token_budget)
                .map(|e| (b.id, e))
        })
        .collect();
    let mut trials = HashMap::new();
    for b in &queue {
        let t = store.trials(b.id)?;
        if !t.is_empty() {
            trials.insert(b.id, t);
        }
    }
    Ok(Snapshot {
        playbooks,
        playbook,
        tokens,
        token_budget,
        queue,
        effects,
        trials,
        revisions: if name.is_empty() {
            Vec::new()
        } else {
            store.revisions(Some(&name), 500)?
        },
    })
}

pub(crate) async fn models(source: &ModelSource, ledger: &Ledger) -> Result<Models> {
    match source {
        ModelSource::Configured => adaptation::models_from_config(ledger).await,
        ModelSource::Demo(url) => {
            let mut endpoint = crate::llm::EndpointConfig::new(url.clone(), "scripted-demo");
            endpoint.min_backoff = Duration::from_millis(50);
            let client: Arc<dyn LlmClient> = Arc::new(OpenAiClient::new(
                endpoint.clone(),
                ledger.clone(),
                Default::default(),
            )?);
            // the demo server answers /embeddings too (hashed words: alike texts, alike vectors)
            endpoint.model = "scripted-embed".into();
            Ok(Models::one(client, ledger.clone())
                .with_embedder(Some(Arc::new(crate::llm::OpenAiEmbedder::new(endpoint)?))))
        }
    }
}

/// What the header says about models.
pub async fn model_label(source: &ModelSource) -> String {
    match source {
        ModelSource::Demo(_) => "model: SCRIPTED DEMO (not a real model)".into(),
        ModelSource::Configured => match crate::config::load(&crate::config::process_env) {
            Ok(cfg) => match crate::config::resolve(&cfg).await {
                Ok(endpoints) => {
                    let g = &endpoints[&Role::Generator];
                    format!("model: {} at {}", g.model, g.base_url)
                }
                Err(_) => {
                    "no model configured: export OPENAI_API_KEY=… or ACE_BASE_URL=… ACE_MODEL=…"
                        .into()
                }
            },
            Err(e) => format!("model config error: {e}"),
        },
    }
}
