//! `ace serve` (HTTP API) and `ace playbook agents` (what agents may change): the CLI side.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::agent::{Agents, LearnerConfig};
use crate::llm::Ledger;
use crate::serve::{self, ServerState};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (a loopback address unless --allow-remote; port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub bind: SocketAddr,
    /// Allow a non-loopback address (prints a warning; put TLS in front)
    #[arg(long)]
    pub allow_remote: bool,
    /// The bearer token's file (created with a random token if missing, readable by you only)
    /// [default: serve-token in the config dir]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Largest request body in bytes (larger ones get 413 and change nothing)
    #[arg(long, value_name = "BYTES", default_value_t = serve::DEFAULT_BODY_LIMIT)]
    pub max_body: usize,
    /// Traces that may wait to be learned from before new ones get 429
    #[arg(long, value_name = "N", default_value_t = crate::agent::DEFAULT_INBOX_LIMIT)]
    pub inbox_limit: u64,
    /// Serve Prometheus metrics at /metrics (same listener, same token)
    #[arg(long)]
    pub metrics: bool,
    /// Receive traces but do not learn from them here (another server, or `ace learn`, does)
    #[arg(long)]
    pub no_learn: bool,
    /// Traces per learn run (one curator batch)
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub learn_batch: usize,
}

/// Where a server spools the traces of its learn runs: beside the database.
pub fn spool_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".traces");
    db.with_file_name(name)
}

/// Starts the trace learner beside a server when a model is configured; says (and returns) whether
/// it runs.
async fn start_learner(
    agents: &Agents,
    db: &Path,
    batch: usize,
    cancel: &tokio_util::sync::CancellationToken,
) -> String {
    match crate::adaptation::models_from_config(&Ledger::default()).await {
        Ok(models) => {
            let config = LearnerConfig {
                spool: spool_dir(db),
                batch,
                concurrency: 2,
                poll: std::time::Duration::from_secs(2),
            };
            tokio::spawn(crate::agent::learner(
                agents.clone(),
                models,
                config,
                cancel.clone(),
            ));
            "on".to_string()
        }
        Err(e) => {
            let reason = format!("off: {e:#}");
            eprintln!(
                "note: the trace learner is {reason}; traces are kept until a model is configured"
            );
            reason
        }
    }
}

pub fn run(db: &Path, args: ServeArgs, out: &mut impl Write) -> Result<()> {
    serve::check_bind(args.bind, args.allow_remote)?;
    let token_file = args
        .token_file
        .clone()
        .unwrap_or_else(serve::default_token_path);
    let (token, created) = serve::token(&token_file)?;
    if created {
        eprintln!(
            "created an API token in {} (readable by you only); send it as 'Authorization: Bearer {token}'",
            token_file.display()
        );
    }
    let mut agents = Agents::open(db)?;
    agents.inbox_limit = args.inbox_limit;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let metrics = if args.metrics {
            Some(
                metrics_exporter_prometheus::PrometheusBuilder::new()
                    .install_recorder()
                    .context("cannot start the metrics recorder")?,
            )
        } else {
            None
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let learner = if args.no_learn {
            "off (--no-learn): traces wait for another server or `ace learn`".to_string()
        } else {
            start_learner(&agents, db, args.learn_batch, &cancel).await
        };
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addr = listener.local_addr()?;
        writeln!(
            out,
            "serving playbooks on http://{addr} (token in {}); Ctrl-C stops",
            token_file.display()
        )?;
        out.flush()?;
        let app = serve::router(
            ServerState::new(agents, token, metrics, learner),
            args.max_body,
        );
        let stop = cancel.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = stop.cancelled() => {}
                }
            })
            .await?;
        cancel.cancel();
        Ok(())
    })
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The playbook the tools use when a call names none (else the only one there is)
    #[arg(long)]
    pub playbook: Option<String>,
    /// Offer only the reading tools (get_playbook, search_bullets, get_bullet)
    #[arg(long)]
    pub read_only: bool,
    /// Keep recorded outcomes for another process to learn from (ace serve) instead of learning here
    #[arg(long)]
    pub no_learn: bool,
}

/// `ace mcp`: the MCP server on stdin/stdout (stdout carries only the protocol).
pub fn mcp(db: &Path, args: McpArgs) -> Result<()> {
    use rmcp::ServiceExt;
    let agents = Agents::open(db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        if !args.read_only && !args.no_learn {
            start_learner(&agents, db, 4, &cancel).await;
        }
        let tools = crate::mcp::PlaybookTools::new(agents, args.playbook, args.read_only);
        let service = tools
            .serve(rmcp::transport::stdio())
            .await
            .context("the MCP handshake failed")?;
        service.waiting().await.context("the MCP session failed")?;
        cancel.cancel();
        Ok(())
    })
}
