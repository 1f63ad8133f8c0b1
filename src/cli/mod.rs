//! The command line: clap commands over the store. Printing lives in [`print`].

mod bench;
mod doctor;
mod print;
mod train;

pub use bench::{peak_rss_mib, sample_content};

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::delta::DeltaBatch;
use crate::delta::{ApplyOptions, ApplyOutcome, SectionPolicy};
use crate::playbook::DEFAULT_SECTIONS;
use crate::playbook::format::{self, Format};
use crate::store::{LATEST_VERSION, Store};

#[derive(Debug, Parser)]
#[command(
    name = "ace",
    version,
    about = "A workbench for ACE (Agentic Context Engineering) playbooks"
)]
pub struct Cli {
    /// Database file [default: the platform data dir, e.g. ~/.local/share/ace/ace.db]
    #[arg(long, global = true, env = "ACE_DB")]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
// Parsed once per process; boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Create, list, show, import and export playbooks
    #[command(subcommand)]
    Playbook(PlaybookCmd),
    /// Apply a delta batch (JSON) to a playbook
    #[command(subcommand)]
    Delta(DeltaCmd),
    /// Browse and revert the history of changes
    #[command(subcommand)]
    Revisions(RevisionsCmd),
    /// Schema migrations
    #[command(subcommand)]
    Db(DbCmd),
    /// Measure store speed and memory on a scratch database (see docs/BENCHMARKS.md)
    Bench(BenchArgs),
    /// Show the model configuration (keys masked) and reach each role's endpoint
    Doctor,
    /// Run the ACE loop over a dataset (offline epochs or online windows)
    Train(train::TrainArgs),
    /// Review curator proposals waiting for a decision
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Adaptation runs and their results
    #[command(subcommand)]
    Runs(RunsCmd),
    /// A bullet's story: origin, counters over time, runs that cited it
    #[command(subcommand)]
    Bullet(BulletCmd),
    /// Serve a scripted OpenAI-compatible model on loopback (tests, demos; see docs/MOCK_MODEL.md)
    MockModel(MockModelArgs),
    /// Open the workbench (what `ace` with no arguments does on a terminal)
    Workbench {
        /// The playbook to show first (else the first by name; `P` switches in the workbench)
        #[arg(long)]
        playbook: Option<String>,
    },
    /// Open the workbench against a bundled scripted demo model on loopback
    Demo,
}

#[derive(Debug, Args)]
pub struct MockModelArgs {
    /// Script file (JSON): model name and reply rules
    #[arg(long)]
    pub script: PathBuf,
    /// Extra latency added to every response
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Address to listen on (loopback by default)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
}

#[derive(Debug, Subcommand)]
pub enum PlaybookCmd {
    /// List playbooks
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create an empty playbook (with the paper's default sections unless --empty)
    Create {
        /// Name of the new playbook
        name: String,
        /// Create it without sections
        #[arg(long)]
        empty: bool,
    },
    /// Show a playbook, now or as it stood after revision N
    Show {
        name: Option<String>,
        /// Show the playbook as it stood right after this revision
        #[arg(long, value_name = "N")]
        at: Option<i64>,
        /// Include removed bullets
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Import a playbook file (ACE text, skillbook JSON or ace JSON; detected from content)
    Import {
        /// The file to read
        file: PathBuf,
        /// Name of the new playbook [default: the file name without extension]
        #[arg(long)]
        name: Option<String>,
        /// Force a format: ace, json or skillbook
        #[arg(long)]
        format: Option<Format>,
    },
    /// Export a playbook: ace, json, skillbook or markdown
    Export {
        /// The playbook to export
        name: String,
        /// ace (official text), json (lossless), skillbook (ace-framework) or markdown
        #[arg(long, default_value = "ace")]
        format: Format,
        /// Write to this file instead of standard output
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeltaCmd {
    /// Apply a batch file: {"id", "source", "reason", "operations": [...]} (see docs/DELTAS.md)
    Apply {
        /// The batch file (JSON)
        file: PathBuf,
        /// The playbook to change
        #[arg(long)]
        playbook: String,
        /// What to do when an op names a section the playbook lacks
        #[arg(long, value_enum, default_value = "reject")]
        new_sections: NewSections,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NewSections {
    Create,
    Reject,
}

#[derive(Debug, Subcommand)]
pub enum RevisionsCmd {
    /// List revisions, newest first
    List {
        #[arg(long)]
        playbook: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show one revision as a diff
    Show {
        /// The revision (`ace revisions list`)
        id: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revert a revision with a new revision that applies its exact inverse
    Revert {
        /// The revision to undo
        id: i64,
        /// Revert even if later revisions changed the same bullets
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// Queued batches waiting for decisions (oldest first)
    List {
        /// Only this playbook's batches
        #[arg(long)]
        playbook: Option<String>,
        /// Include decided batches
        #[arg(long)]
        all: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// One queued batch: its ops as a diff, and the samples and reflections behind them
    Show {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Approve a whole batch, or some ops of it (--op N, repeatable)
    Approve {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// Only this op, by its number in `ace queue show` (from 0); repeatable
        #[arg(long = "op")]
        ops: Vec<usize>,
        /// Who decides (recorded on the revision)
        #[arg(long, env = "USER", default_value = "human")]
        author: String,
    },
    /// Reject a whole batch, or some ops of it
    Reject {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// Only this op, by its number in `ace queue show` (from 0); repeatable
        #[arg(long = "op")]
        ops: Vec<usize>,
        /// Why (kept with the decision)
        #[arg(long)]
        reason: Option<String>,
        /// Who decides (recorded on the revision)
        #[arg(long, env = "USER", default_value = "human")]
        author: String,
    },
    /// Approve an edited version of one op (a JSON op from a file, e.g. {"type": "ADD", ...})
    Edit {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// The op to replace, by its number in `ace queue show` (from 0)
        #[arg(long = "op")]
        op: usize,
        /// JSON file with the replacement op
        #[arg(long)]
        file: PathBuf,
        /// Who decides (recorded on the revision)
        #[arg(long, env = "USER", default_value = "human")]
        author: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Accuracy per epoch and split, deltas proposed / approved / rejected, tags, tokens and cost per role
    Show {
        /// The run (`ace runs list`)
        run: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BulletCmd {
    /// Where a bullet came from, its counters over time and the runs that cited it
    Story {
        /// The bullet id, e.g. calc-00012
        id: String,
        #[arg(long)]
        playbook: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Migrate the schema to the latest version
    Migrate,
    /// Roll the schema back to version N (drops what later versions added)
    Rollback {
        #[arg(long)]
        to: u32,
    },
    /// Show the schema version
    Status,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Bullets to add (in batches of 100)
    #[arg(long, default_value_t = 100_000)]
    pub bullets: usize,
    /// TAG ops to apply for the throughput figure (in batches of 100)
    #[arg(long, default_value_t = 20_000)]
    pub tags: usize,
    /// Measure the adaptation loop instead (against an in-process scripted model on loopback)
    #[arg(long = "loop")]
    pub run_loop: bool,
    /// Loop: samples in the epoch
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Loop: latency the scripted model adds to every response
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Loop: samples in flight at once
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Loop: samples per batch
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
}

/// The default database: `ace.db` in the platform data directory.
pub fn default_db_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "ace")
        .map(|d| d.data_dir().join("ace.db"))
        .unwrap_or_else(|| PathBuf::from("ace.db"))
}

pub fn run(cli: Cli) -> Result<()> {
    use std::io::IsTerminal;
    let db = cli.db.clone().unwrap_or_else(default_db_path);
    let tui = match &cli.command {
        None => std::io::stdout().is_terminal(),
        Some(Command::Workbench { .. } | Command::Demo) => true,
        _ => false,
    };
    if tui {
        init_file_logging(&db);
        let playbook = match &cli.command {
            Some(Command::Workbench { playbook }) => playbook.clone(),
            _ => None,
        };
        return workbench(&db, matches!(cli.command, Some(Command::Demo)), playbook);
    }
    init_logging();
    let out = &mut std::io::stdout().lock();
    match cli.command {
        None | Some(Command::Workbench { .. } | Command::Demo) => overview(&db, out),
        Some(Command::Playbook(cmd)) => playbook(&db, cmd, out),
        Some(Command::Delta(DeltaCmd::Apply {
            file,
            playbook,
            new_sections,
        })) => {
            let text = read_file(&file)?;
            let batch = DeltaBatch::from_json(&text)
                .with_context(|| format!("{} is not a valid delta batch", file.display()))?;
            let sections = match new_sections {
                NewSections::Create => SectionPolicy::Create,
                NewSections::Reject => SectionPolicy::Reject,
            };
            let mut store = Store::open(&db)?;
            let outcome = store.apply(&playbook, &batch, &ApplyOptions { sections })?;
            print::outcome(out, &batch.id, &outcome)
        }
        Some(Command::Revisions(cmd)) => revisions(&db, cmd, out),
        Some(Command::Db(cmd)) => database(&db, cmd, out),
        Some(Command::Bench(args)) if args.run_loop => bench::run_loop(&args, out),
        Some(Command::Bench(args)) => bench::run(args.bullets, args.tags, out),
        Some(Command::Doctor) => {
            let config = crate::config::load(&crate::config::process_env)?;
            let healthy = runtime()?.block_on(doctor::run(&config, out))?;
            if !healthy {
                bail!("some roles cannot reach their model (see above)");
            }
            Ok(())
        }
        Some(Command::MockModel(args)) => mock_model(args, out),
        Some(Command::Train(args)) => train::run(&db, args, out),
        Some(Command::Queue(cmd)) => queue(&db, cmd, out),
        Some(Command::Runs(cmd)) => runs(&db, cmd, out),
        Some(Command::Bullet(BulletCmd::Story { id, playbook, json })) => {
            let store = Store::open(&db)?;
            let name = store.resolve_playbook(playbook.as_deref())?;
            let story = store.bullet_story(&name, &id)?;
            if json {
                print::json(out, &story)
            } else {
                print::story(out, &story)
            }
        }
    }
}

fn queue(db: &Path, cmd: QueueCmd, out: &mut impl Write) -> Result<()> {
    use crate::approval::Decision;
    let mut store = Store::open(db)?;
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
            if json {
                return print::json(out, &batch);
            }
            let playbook = store.load_playbook(&batch.playbook)?;
            print::queued(out, &batch, &playbook)
        }
        QueueCmd::Approve { id, ops, author } => {
            let outcome = if ops.is_empty() {
                store.decide_all(id, true, None, &author)?
            } else {
                store.decide(
                    id,
                    &ops.iter()
                        .map(|i| (*i, Decision::Approve))
                        .collect::<Vec<_>>(),
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
                    &ops.iter().map(|i| (*i, d.clone())).collect::<Vec<_>>(),
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
            let outcome = store.decide(id, &[(op, Decision::Edit(edited))], &author)?;
            print::decided(out, id, &outcome)
        }
    }
}

fn runs(db: &Path, cmd: RunsCmd, out: &mut impl Write) -> Result<()> {
    let store = Store::open(db)?;
    match cmd {
        RunsCmd::List { json } => {
            let list = store.runs()?;
            if json {
                return print::json(out, &list);
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
            print::run_list(out, &list, &stopped)
        }
        RunsCmd::Show { run, json } => {
            let summary = store.run_summary(&run)?;
            if json {
                print::json(out, &summary)
            } else {
                print::run_summary(out, &summary)
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// In the workbench, logs go to `ace.log` beside the database (never over the screen).
fn init_file_logging(db: &Path) {
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("ace.log"))
    {
        let filter = tracing_subscriber::EnvFilter::try_from_env("ACE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    }
}

fn workbench(db: &Path, demo: bool, playbook: Option<String>) -> Result<()> {
    use crate::tui::{DEMO_SCRIPT, ModelSource};
    let label = format!("database {}", db.display());
    if !demo {
        let mut config = crate::adaptation::RunConfig::default();
        if let Some(name) = playbook {
            // a wrong name is said here, with the names there are, before the screen opens
            config.playbook = Store::open(db)?.resolve_playbook(Some(&name))?;
        }
        return crate::tui::run(db, ModelSource::Configured, config, &label);
    }
    let script =
        crate::llm::mock::Script::from_json(DEMO_SCRIPT).map_err(|e| anyhow::anyhow!(e))?;
    let rt = runtime()?;
    let server = rt.block_on(crate::llm::mock::MockServer::start(
        script,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        std::time::Duration::from_millis(150),
    ))?;
    let config = crate::adaptation::RunConfig {
        batch_size: 1,
        approve: crate::adaptation::ApproveMode::Wait,
        ..Default::default()
    };
    let result = crate::tui::run(
        db,
        ModelSource::Demo(server.base_url()),
        config,
        &format!("{label} · demo model at {}", server.base_url()),
    );
    drop(server);
    result
}

/// Logs go to stderr, filtered by `ACE_LOG` (e.g. `ACE_LOG=debug`, default `warn`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ACE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn mock_model(args: MockModelArgs, out: &mut impl Write) -> Result<()> {
    use crate::llm::mock::{MockServer, Script};
    let text = read_file(&args.script)?;
    let script =
        Script::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.script.display()))?;
    let rules = script.rules.len();
    runtime()?.block_on(async {
        let addr = std::net::SocketAddr::new(args.host, args.port);
        let server = MockServer::start(
            script,
            addr,
            std::time::Duration::from_millis(args.latency_ms),
        )
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
        // The server keeps serving even if nobody reads its standard output any more.
        let url = server.base_url();
        let _ = writeln!(
            out,
            "scripted model ({rules} rules) at {url} — this is not a real model; Ctrl-C stops it"
        )
        .and_then(|()| writeln!(out, "use it with: ACE_BASE_URL={url} ACE_MODEL=scripted"))
        .and_then(|()| out.flush());
        tokio::signal::ctrl_c().await?;
        Ok(())
    })
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn overview(db: &Path, out: &mut impl Write) -> Result<()> {
    let store = Store::open(db)?;
    writeln!(
        out,
        "ace — ACE playbook workbench (database: {})\n",
        db.display()
    )?;
    print::playbook_list(out, &store.playbooks()?)?;
    writeln!(
        out,
        "\ncommands:\n  ace workbench                 (on a terminal, plain `ace` opens it; `ace demo` with a scripted model)\n  \
         ace playbook list|create|show|import|export\n  ace delta apply FILE --playbook NAME\n  \
         ace revisions list|show N|revert N\n  ace train --playbook NAME --dataset FILE [--approve wait|auto|queue]\n  \
         ace queue list|show N|approve N|reject N|edit N\n  ace runs list|show RUN\n  ace doctor                    (the model configuration, checked)\n  \
         ace db migrate|rollback --to N|status\n  ace --help for everything"
    )?;
    Ok(())
}

fn playbook(db: &Path, cmd: PlaybookCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        PlaybookCmd::List { json } => {
            let list = Store::open(db)?.playbooks()?;
            if json {
                print::json(out, &list)
            } else {
                print::playbook_list(out, &list)
            }
        }
        PlaybookCmd::Create { name, empty } => {
            let sections: &[&str] = if empty { &[] } else { DEFAULT_SECTIONS };
            Store::open(db)?.create_playbook(&name, sections)?;
            writeln!(
                out,
                "created playbook '{name}' with {} sections",
                sections.len()
            )?;
            Ok(())
        }
        PlaybookCmd::Show {
            name,
            at,
            all,
            json,
        } => {
            let store = Store::open(db)?;
            let playbook = match at {
                Some(rev) => store.playbook_at(rev)?,
                None => store.load_playbook(&store.resolve_playbook(name.as_deref())?)?,
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
                print::json(out, &playbook)
            } else {
                print::playbook(out, &playbook, all)
            }
        }
        PlaybookCmd::Import { file, name, format } => {
            let text = read_file(&file)?;
            let format = format.unwrap_or_else(|| Format::detect(&text));
            let label = file.display().to_string();
            let parsed = format::parse(format, &text, &label)?;
            let name = match name {
                Some(n) => n,
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
            let playbook = Store::open(db)?.load_playbook(&name)?;
            let text = format::export(format, &playbook);
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => out.write_all(text.as_bytes())?,
            }
            Ok(())
        }
    }
}

fn revisions(db: &Path, cmd: RevisionsCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        RevisionsCmd::List {
            playbook,
            limit,
            json,
        } => {
            let list = Store::open(db)?.revisions(playbook.as_deref(), limit)?;
            if json {
                print::json(out, &list)
            } else {
                print::revision_list(out, &list)
            }
        }
        RevisionsCmd::Show { id, json } => {
            let store = Store::open(db)?;
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

fn database(db: &Path, cmd: DbCmd, out: &mut impl Write) -> Result<()> {
    let mut store = Store::open_unmigrated(db)?;
    let from = store.schema_version()?;
    match cmd {
        DbCmd::Status => writeln!(
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
        DbCmd::Rollback { to } => {
            if to > from {
                bail!(
                    "the database is at version {from}; rollback only goes down (use `ace db migrate` to go up)"
                );
            }
            store.migrate_to(to)?;
            writeln!(out, "rolled back from version {from} to {to}")?;
        }
    }
    Ok(())
}
