//! `ace bench`: store speed and memory on a scratch database file, for docs/BENCHMARKS.md.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

use crate::delta::ApplyOptions;
use crate::delta::{AddOp, DeltaBatch, DeltaOp, Source, TagOp};
use crate::playbook::DEFAULT_SECTIONS;
use crate::store::Store;

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A bullet text of realistic length (about 120 characters), distinct per `i`.
pub fn sample_content(i: usize) -> String {
    format!(
        "When computing ratio #{i}, strip thousands separators, keep two decimals and check the sign of every input first."
    )
}

pub fn run(bullets: usize, tags: usize, out: &mut impl Write) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ace-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.db");
    let result = measure(&path, bullets, tags, out);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(
    path: &std::path::Path,
    bullets: usize,
    tags: usize,
    out: &mut impl Write,
) -> Result<()> {
    let mut store = Store::open(path)?;
    store.create_playbook("bench", DEFAULT_SECTIONS)?;
    writeln!(
        out,
        "database: {} (file, WAL, synchronous=NORMAL)",
        path.display()
    )?;

    let start = Instant::now();
    for (n, chunk) in (0..bullets).collect::<Vec<_>>().chunks(100).enumerate() {
        let ops = chunk
            .iter()
            .map(|i| {
                DeltaOp::Add(AddOp::new(
                    DEFAULT_SECTIONS[i % DEFAULT_SECTIONS.len()],
                    sample_content(*i),
                ))
            })
            .collect();
        store.apply(
            "bench",
            &DeltaBatch::new(format!("add-{n}"), Source::Human, ops),
            &ApplyOptions::default(),
        )?;
    }
    let add_secs = start.elapsed().as_secs_f64();
    writeln!(
        out,
        "apply {bullets} ADD ops in batches of 100 (with revisions): {add_secs:.3} s ({:.0} ops/s)",
        bullets as f64 / add_secs
    )?;
    writeln!(
        out,
        "peak RSS so far: {:.1} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    )?;

    drop(store);
    let store = Store::open(path)?;
    let start = Instant::now();
    let playbook = store.load_playbook("bench")?;
    let cold = start.elapsed().as_secs_f64() * 1000.0;
    let (loaded, ids): (usize, Vec<String>) = (
        playbook.bullets.len(),
        playbook.bullets.iter().map(|b| b.id.clone()).collect(),
    );
    drop(playbook); // one playbook in memory at a time, as in the workbench
    let mut warm = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let p = store.load_playbook("bench")?;
        warm = warm.min(start.elapsed().as_secs_f64() * 1000.0);
        drop(p);
    }
    writeln!(
        out,
        "load {loaded} bullets: first {cold:.1} ms, best of 5 {warm:.1} ms"
    )?;
    writeln!(
        out,
        "peak RSS after loads: {:.1} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    )?;

    let mut store = store;
    let file_size = |store: &Store| -> Result<u64> {
        // the write-ahead log folded in first, so the figure is the data's
        store
            .connection()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(std::fs::metadata(path)?.len())
    };
    let size_before = file_size(&store)?;
    let start = Instant::now();
    let mut applied = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for n in 0..tags.div_ceil(100) {
        let ops = (0..100.min(tags - applied))
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let id = ids[(seed % ids.len().max(1) as u64) as usize].clone();
                DeltaOp::Tag(TagOp {
                    bullet_id: id,
                    helpful: 1,
                    harmful: 0,
                    neutral: 0,
                })
            })
            .collect::<Vec<_>>();
        applied += ops.len();
        store.apply(
            "bench",
            &DeltaBatch::new(format!("tag-{n}"), Source::Policy, ops),
            &ApplyOptions::default(),
        )?;
    }
    let tag_secs = start.elapsed().as_secs_f64();
    writeln!(
        out,
        "apply {tags} TAG ops in batches of 100 (with revisions): {tag_secs:.3} s ({:.0} ops/s)",
        tags as f64 / tag_secs
    )?;
    let grown = file_size(&store)?.saturating_sub(size_before);
    writeln!(
        out,
        "database growth by the TAGs: {:.0} bytes a TAG (the revisions' changes, the counters)",
        grown as f64 / tags.max(1) as f64
    )?;
    // time travel: the playbook at its newest revision, replayed from the recorded changes
    if let Some(head) = store.head_revision("bench")? {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            std::hint::black_box(store.playbook_at(head)?);
            best = best.min(start.elapsed().as_secs_f64());
        }
        writeln!(
            out,
            "playbook at its newest revision, replayed from {} recorded changes: best of 3 {:.0} ms",
            bullets + tags,
            best * 1000.0
        )?;
    }
    Ok(())
}

/// `ace bench --loop`: one epoch of the full loop (generate, score, reflect, tags by policy, curator,
/// queue, auto-approval, transcripts) on a scratch database against an in-process scripted model.
pub fn run_loop(args: &super::BenchArgs, out: &mut impl Write) -> Result<()> {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use crate::adaptation::{self, ApproveMode, Models, RunConfig};
    use crate::llm::mock::{MockServer, Rule, Script};
    use crate::llm::{EndpointConfig, Ledger, LlmClient, OpenAiClient, PriceTable};

    let dir = std::env::temp_dir().join(format!("ace-bench-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("bench.jsonl");
    let lines: String = (0..args.samples)
        .map(|i| {
            format!(
                "{}\n",
                json!({"question": format!("Task {i}: what is one?"), "ground_truth": "1"})
            )
        })
        .collect();
    std::fs::write(&data, lines)?;
    let rule = |role: &str, reply: serde_json::Value| Rule {
        role: Some(role.into()),
        reply: Some(reply),
        ..Rule::default()
    };
    let script = Script {
        model: "bench".into(),
        reject_formats: vec![],
        embeddings: vec![],
        rules: vec![
            rule(
                "generator",
                json!({"reasoning": "use [calc-00001]", "bullet_ids": ["calc-00001"], "final_answer": "1"}),
            ),
            rule(
                "reflector",
                json!({"reasoning": "r", "error_identification": "none", "root_cause_analysis": "none", "correct_approach": "same", "key_insight": "keep answering one", "bullet_tags": [{"id": "calc-00001", "tag": "helpful"}]}),
            ),
            rule(
                "curator",
                json!({"reasoning": "reinforce", "operations": [{"type": "ADD", "section": "FORMULAS AND CALCULATIONS", "content": "The answer to every bench task is one."}]}),
            ),
        ],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let server = MockServer::start(
            script,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            std::time::Duration::from_millis(args.latency_ms),
        )
        .await?;
        server.keep_requests(16);
        let mut endpoint = EndpointConfig::new(server.base_url(), "bench");
        endpoint.concurrency = args.concurrency * 2;
        let ledger = Ledger::default();
        let client: Arc<dyn LlmClient> = Arc::new(OpenAiClient::new(
            endpoint,
            ledger.clone(),
            PriceTable::default(),
        )?);
        let models = Models::one(client, ledger.clone());
        let store = Arc::new(Mutex::new(Store::open(&dir.join("bench.db"))?));
        let config = RunConfig {
            playbook: "bench".into(),
            dataset: data.clone(),
            env: crate::environment::Environment::Exact,
            batch_size: args.batch_size,
            concurrency: args.concurrency,
            approve: ApproveMode::Auto,
            max_rounds: 1,
            ..RunConfig::default()
        };
        let start = Instant::now();
        let handle = adaptation::start(store, models, config, None);
        handle.task.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        let wall = start.elapsed().as_secs_f64();
        anyhow::Ok((wall, server.request_count()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (wall, calls) = result?;
    writeln!(
        out,
        "loop: {} samples, batch {}, concurrency {}, latency {} ms: {wall:.2} s, {:.0} samples/s, {calls} model calls",
        args.samples,
        args.batch_size,
        args.concurrency,
        args.latency_ms,
        args.samples as f64 / wall
    )?;
    if args.latency_ms > 0 {
        let ideal = calls as f64 * args.latency_ms as f64 / 1000.0 / args.concurrency as f64;
        writeln!(
            out,
            "ideal (calls × latency / concurrency): {ideal:.2} s; measured / ideal = {:.3}",
            wall / ideal
        )?;
    }
    Ok(())
}

/// `ace bench --trial`: a trial of a proposal over `--samples` samples against an in-process scripted
/// model with `--latency-ms` per call and `--concurrency` calls at once, then a second proposal on the
/// same playbook (its baseline answers come from the cache). Compared with the ideal
/// 2 × samples × latency / concurrency.
pub fn run_trial(args: &super::BenchArgs, out: &mut impl Write) -> Result<()> {
    use std::sync::Arc;

    use serde_json::json;

    use crate::adaptation::trial::{TrialSetup, trial};
    use crate::delta::{ApplyOptions, DeltaBatch, DeltaOp, Source};
    use crate::environment::Sample;
    use crate::llm::mock::{MockServer, Rule, Script};
    use crate::llm::{EndpointConfig, Ledger, LlmClient, OpenAiClient, PriceTable};

    let dir = std::env::temp_dir().join(format!("ace-bench-trial-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut store = Store::open(&dir.join("bench.db"))?;
    store.create_playbook("bench", crate::playbook::DEFAULT_SECTIONS)?;
    let before = store.load_playbook("bench")?;
    let cache = crate::shared::shared(store);
    let samples: Vec<Sample> = (0..args.samples)
        .map(|i| Sample {
            id: format!("s{i}"),
            question: format!("Task {i}: what is one?"),
            context: String::new(),
            ground_truth: Some("1".into()),
            metadata: serde_json::Value::Null,
            trace: None,
        })
        .collect();
    let proposal = |content: &str| -> Result<Arc<crate::playbook::Playbook>> {
        let mut after = before.clone();
        let batch = DeltaBatch::new(
            "bench",
            Source::Curator,
            vec![DeltaOp::Add(crate::delta::AddOp::new("OTHERS", content))],
        );
        crate::delta::apply_in_memory(&mut after, &batch, &ApplyOptions::default(), "bench")?;
        Ok(Arc::new(after))
    };
    let (first, second) = (
        proposal("The answer to every bench task is one.")?,
        proposal("Bench tasks are answered with the number one.")?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let timed = runtime.block_on(async {
        let script = Script {
            model: "bench".into(),
            reject_formats: vec![],
            embeddings: vec![],
            rules: vec![Rule {
                role: Some("generator".into()),
                reply: Some(json!({"reasoning": "r", "bullet_ids": [], "final_answer": "1"})),
                ..Rule::default()
            }],
        };
        let server = MockServer::start(
            script,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            std::time::Duration::from_millis(args.latency_ms),
        )
        .await?;
        server.keep_requests(16);
        let mut endpoint = EndpointConfig::new(server.base_url(), "bench");
        endpoint.concurrency = args.concurrency;
        let client: Arc<dyn LlmClient> = Arc::new(OpenAiClient::new(
            endpoint,
            Ledger::default(),
            PriceTable::default(),
        )?);
        let setup = TrialSetup {
            generator: client,
            env: crate::environment::Environment::Exact,
            concurrency: args.concurrency,
            prompt_budget: crate::adaptation::DEFAULT_PROMPT_BUDGET,
            cancel: tokio_util::sync::CancellationToken::new(),
        };
        let before = Arc::new(before.clone());
        let mut timed = Vec::new();
        for after in [first, second] {
            let start = Instant::now();
            let report = trial(&setup, &cache, before.clone(), after, &samples, "bench")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            timed.push((start.elapsed().as_secs_f64(), report.calls, report.cached));
        }
        anyhow::Ok(timed)
    });
    let _ = std::fs::remove_dir_all(&dir);
    let timed = timed?;
    let ideal = 2.0 * args.samples as f64 * args.latency_ms as f64
        / 1000.0
        / args.concurrency.max(1) as f64;
    for ((wall, calls, cached), label) in timed
        .iter()
        .zip(["first trial", "second trial (baseline cached)"])
    {
        writeln!(
            out,
            "{label}: {} samples, latency {} ms, concurrency {}: {wall:.2} s ({:.2}× the ideal {ideal:.2} s), {calls} calls, {cached} answers from the cache",
            args.samples,
            args.latency_ms,
            args.concurrency,
            wall / ideal,
        )?;
    }
    Ok(())
}
