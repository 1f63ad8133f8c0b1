//! The command line: clap commands ([`args`]) over the core and the store; printing lives in
//! [`print`], the store commands in `commands`.

mod args;
mod bench;
mod bench_refine;
mod bench_serve;
mod commands;
mod doctor;
mod managed;
mod print;
mod refine;
mod serve;
mod train;
mod trial;

pub use args::*;
pub use bench::{peak_rss_mib, sample_content};

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::delta::{ApplyOptions, DeltaBatch, SectionPolicy};
use crate::store::Store;
use commands::{database, overview, playbook, queue, revisions, runs};

/// The default database: `ace.db` in the platform data directory.
pub fn default_db_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "ace")
        .map(|d| d.data_dir().join("ace.db"))
        .unwrap_or_else(|| PathBuf::from("ace.db"))
}

/// `~` or `~/…` as the home directory (a shell leaves it as is inside quotes or `ACE_DB=~/x`);
/// `~user` forms are refused rather than taken as a folder named `~user`.
pub fn expand_home(path: &Path) -> Result<PathBuf> {
    let Some(text) = path.to_str() else {
        return Ok(path.to_path_buf());
    };
    let rest = match text.strip_prefix('~') {
        None => return Ok(path.to_path_buf()),
        Some("") => "",
        Some(rest) if rest.starts_with('/') => &rest[1..],
        Some(_) => bail!(
            "cannot read the database path {text}: only ~ and ~/… are expanded; give the full path"
        ),
    };
    let home = directories::BaseDirs::new()
        .map(|d| d.home_dir().to_path_buf())
        .context("cannot expand ~: no home directory is known")?;
    Ok(home.join(rest))
}

/// Whether creating the database is part of what the command is for (the workbench, creating or
/// importing a playbook, training, migrating, benchmarks). Other commands only read or change a
/// database that exists: a mistyped path is an error, not a new empty database.
fn creates_database(command: &Option<Command>) -> bool {
    match command {
        None
        | Some(
            Command::Workbench { .. }
            | Command::Demo
            | Command::Train(_)
            | Command::Learn(_)
            | Command::Serve(_)
            | Command::Mcp(_)
            | Command::Bench(_)
            | Command::Doctor { .. }
            | Command::MockModel(_)
            | Command::Completions { .. }
            | Command::Db(DbCmd::Migrate),
        ) => true,
        Some(Command::Playbook(cmd)) => {
            matches!(cmd, PlaybookCmd::Create { .. } | PlaybookCmd::Import { .. })
        }
        _ => false,
    }
}

pub fn run(cli: Cli) -> Result<()> {
    use std::io::IsTerminal;
    let demo = matches!(cli.command, Some(Command::Demo));
    let db = match &cli.db {
        Some(path) => expand_home(path)?,
        // the demo's scripted runs, proposals and counters never reach the user's playbooks
        None if demo => default_db_path().with_file_name("demo.db"),
        None => default_db_path(),
    };
    if demo {
        eprintln!("note: the demo uses its own database, {}", db.display());
    }
    if !db.exists() {
        if !creates_database(&cli.command) {
            bail!(
                "no database at {} (from {}); nothing was created. Check the path, or create one with `ace playbook create NAME` or `ace`",
                db.display(),
                if cli.db.is_some() {
                    "--db or ACE_DB"
                } else {
                    "the default location"
                }
            );
        }
        if !matches!(
            cli.command,
            Some(
                Command::Bench(_)
                    | Command::Doctor { .. }
                    | Command::MockModel(_)
                    | Command::Completions { .. }
            )
        ) {
            eprintln!("note: creating a new database at {}", db.display());
        }
    }
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
    // the MCP server owns stdout (the protocol, JSON that escapes what it carries)
    if let Some(Command::Mcp(args)) = cli.command {
        return serve::mcp(&db, args);
    }
    // everything printed shows control characters from models, files and agents escaped
    let out = &mut crate::text::Visible::new(std::io::stdout().lock());
    match cli.command {
        None | Some(Command::Workbench { .. } | Command::Demo) => overview(&db, out),
        Some(Command::Playbook(cmd)) => playbook(&db, cmd, out),
        Some(Command::Delta(DeltaCmd::Apply {
            file,
            playbook,
            new_sections,
            json,
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
            if json {
                return print::json(
                    out,
                    &serde_json::json!({"batch": batch.id, "outcome": outcome}),
                );
            }
            print::outcome(out, &batch.id, &outcome)
        }
        Some(Command::Revisions(cmd)) => revisions(&db, cmd, out),
        Some(Command::Db(cmd)) => database(&db, cmd, out),
        Some(Command::Bench(args)) if args.run_loop => bench::run_loop(&args, out),
        Some(Command::Bench(args)) if args.refine_run.is_some() => bench_refine::child(&args, out),
        Some(Command::Bench(args)) if args.refine => bench_refine::run(&args, out),
        Some(Command::Bench(args)) if args.serve => bench_serve::run(&args, out),
        Some(Command::Bench(args)) if args.trial => bench::run_trial(&args, out),
        Some(Command::Bench(args)) => bench::run(args.bullets, args.tags, out),
        Some(Command::Doctor { json }) => {
            let config = crate::config::load(&crate::config::process_env)?;
            let healthy = runtime()?.block_on(doctor::run(&config, out, json))?;
            if !healthy {
                bail!("some roles cannot reach their model (see above)");
            }
            Ok(())
        }
        Some(Command::MockModel(args)) => mock_model(args, out),
        Some(Command::Serve(args)) => serve::run(&db, args, out),
        Some(Command::Mcp(_)) => unreachable!("served above"),
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            // into memory first: the generator panics on a closed pipe (`| head`)
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ace", &mut script);
            out.write_all(&script)?;
            Ok(())
        }
        Some(Command::Train(args)) => train::run(&db, args, out),
        Some(Command::Learn(args)) => train::run(&db, args.into(), out),
        Some(Command::Queue(cmd)) => queue(&db, cmd, out),
        Some(Command::Bullet(BulletCmd::Impact {
            id,
            playbook,
            trial,
        })) => trial::bullet_impact(&db, &id, playbook.as_deref(), trial, out),
        Some(Command::Runs(cmd)) => runs(&db, cmd, out),
        Some(Command::Bullet(BulletCmd::Story { id, playbook, json })) => {
            let store = Store::open_reading(&db)?;
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

fn need_terminal() -> Result<()> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        return Ok(());
    }
    bail!(
        "the workbench needs a terminal (standard input and output are not one); the `ace` subcommands work without one (`ace --help`)"
    )
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
        need_terminal()?;
        return crate::tui::run(db, ModelSource::Configured, config, &label);
    }
    need_terminal()?;
    let script =
        crate::llm::mock::Script::from_json(DEMO_SCRIPT).map_err(|e| anyhow::anyhow!(e))?;
    let rt = runtime()?;
    let server = rt.block_on(crate::llm::mock::MockServer::start(
        script,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        std::time::Duration::from_millis(150),
    ))?;
    // nobody reads the log of a demo: keep only the latest requests
    server.keep_requests(100);
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
    // colour only for a terminal, and never under NO_COLOR
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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
        server.keep_requests(100);
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

/// The largest file read as input (playbooks, delta files, scripts): 256 MiB unless
/// `ACE_MAX_FILE_BYTES` says otherwise (a 100,000-bullet playbook is about 15 MB).
const DEFAULT_MAX_FILE_BYTES: u64 = 256 << 20;

fn read_file(path: &Path) -> Result<String> {
    let limit = std::env::var("ACE_MAX_FILE_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_FILE_BYTES);
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > limit {
        bail!(
            "{} is {size} bytes; the limit is {limit} (ACE_MAX_FILE_BYTES); nothing was read",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
