//! `ace bench --refine`: grow and refine at scale, for docs/BENCHMARKS.md. On a scratch database with
//! a synthetic playbook of `--bullets` bullets (varied wording, so retrieval has work to do):
//! retrieval and rendering per task, the near-duplicate scans (word overlap, and embeddings read
//! from the cache), then a run of `--samples` samples against an in-process scripted model with
//! auto-approval: peak memory, the generator's prompt against its budget, per-sample time early and
//! late in the run, database growth per sample, and how much of consecutive generator prompts is a
//! shared prefix.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::bench::peak_rss_mib;
use crate::adaptation::{self, ApproveMode, Event, Models, RunConfig};
use crate::llm::mock::{MockServer, Rule, Script};
use crate::llm::{EndpointConfig, Ledger, LlmClient, OpenAiClient, OpenAiEmbedder, PriceTable};
use crate::playbook::View;
use crate::playbook::format::{self, Format};
use crate::prompts::{self, Index, Retrieval};
use crate::store::Store;

const SECTIONS: [(&str, &str); 6] = [
    ("STRATEGIES AND HARD RULES", "shr"),
    ("APIS TO USE FOR SPECIFIC INFORMATION", "api"),
    ("USEFUL CODE SNIPPETS AND TEMPLATES", "code"),
    ("COMMON MISTAKES TO AVOID", "cms"),
    ("PROBLEM-SOLVING HEURISTICS AND WORKFLOWS", "psw"),
    ("VERIFICATION CHECKLIST", "vc"),
];

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in 0..n, skewed towards 0 (a few words are common, most are rare).
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((u * u * u) * n as f64) as usize
    }
}

/// A vocabulary of made-up words: common ones first.
pub(super) fn vocabulary(n: usize) -> Vec<String> {
    const SYL: [&str; 24] = [
        "ka", "lo", "mi", "ren", "to", "sa", "vel", "dor", "pi", "qua", "zen", "ul", "bar", "ney",
        "tis", "gor", "fa", "wem", "ix", "hu", "cal", "sto", "pra", "den",
    ];
    (0..n)
        .map(|i| {
            let (a, b, c, d) = (i % 24, (i / 24) % 24, (i / 576) % 24, (i / 13824) % 24);
            if i < 576 {
                format!("{}{}", SYL[a], SYL[b])
            } else if i < 13824 {
                format!("{}{}{}", SYL[a], SYL[b], SYL[c])
            } else {
                format!("{}{}{}{}", SYL[a], SYL[b], SYL[c], SYL[d])
            }
        })
        .collect()
}

fn sentence(rng: &mut Rng, words: &[String], len: usize) -> String {
    (0..len)
        .map(|_| words[rng.skewed(words.len())].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A playbook of `n` bullets of about 25 words (~150 characters, like the published ones), in ACE
/// text form. One bullet in fifty repeats an earlier one of its section with one word changed (the
/// published playbooks hold repeats too).
pub(super) fn synthetic_playbook(n: usize, words: &[String], seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut text = String::new();
    for (s, (name, slug)) in SECTIONS.iter().enumerate() {
        text.push_str(&format!("## {name}\n"));
        let mut earlier: Vec<String> = Vec::new();
        for i in (0..n).filter(|i| i % SECTIONS.len() == s) {
            let content = if i % 50 == 49 && !earlier.is_empty() {
                let base = &earlier[(rng.next() as usize) % earlier.len()];
                let mut w: Vec<&str> = base.split(' ').collect();
                let at = 1 + (rng.next() as usize) % (w.len() - 1);
                let swap = &words[rng.skewed(words.len())];
                w[at] = swap;
                w.join(" ")
            } else {
                let len = 14 + (rng.next() % 8) as usize;
                format!(
                    "When {}, {}.",
                    sentence(&mut rng, words, 4),
                    sentence(&mut rng, words, len)
                )
            };
            text.push_str(&format!("[{slug}-{:05}] {content}\n", i + 1));
            earlier.push(content);
        }
        text.push('\n');
    }
    text
}

pub(super) fn tasks(n: usize, words: &[String], seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| format!("Task {i}: {}?", sentence(&mut rng, words, 14)))
        .collect()
}

fn db_bytes(path: &Path) -> Result<u64> {
    // fold the write-ahead log into the file first, so the figure is the data's
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    let mut total = std::fs::metadata(path)?.len();
    for ext in ["-wal", "-shm"] {
        let p = path.with_file_name(format!(
            "{}{ext}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    Ok(total)
}

fn script(model: &str) -> Script {
    let rule = |role: &str, reply: serde_json::Value| Rule {
        role: Some(role.into()),
        reply: Some(reply),
        ..Rule::default()
    };
    Script {
        model: model.into(),
        reject_formats: vec![],
        embeddings: vec![],
        rules: vec![
            rule(
                "generator",
                json!({"reasoning": "apply [shr-00001]", "bullet_ids": ["shr-00001"], "final_answer": "1"}),
            ),
            rule(
                "reflector",
                json!({"reasoning": "r", "error_identification": "none", "root_cause_analysis": "none", "correct_approach": "same", "key_insight": "keep answering one", "bullet_tags": [{"id": "shr-00001", "tag": "helpful"}]}),
            ),
            rule(
                "curator",
                json!({"reasoning": "reinforce", "operations": [{"type": "ADD", "section": "STRATEGIES AND HARD RULES", "content": "The answer to every bench task is one."}]}),
            ),
        ],
    }
}

fn models(server: &MockServer, embed_model: Option<&str>) -> Result<Models> {
    let endpoint = EndpointConfig::new(server.base_url(), "bench");
    let ledger = Ledger::default();
    let client: Arc<dyn LlmClient> = Arc::new(OpenAiClient::new(
        endpoint.clone(),
        ledger.clone(),
        PriceTable::default(),
    )?);
    let embedder = match embed_model {
        Some(m) => {
            let mut e = endpoint;
            e.model = m.into();
            Some(Arc::new(OpenAiEmbedder::new(e)?) as Arc<dyn crate::llm::Embedder>)
        }
        None => None,
    };
    Ok(Models::one(client, ledger).with_embedder(embedder))
}

pub fn run(args: &super::BenchArgs, out: &mut impl Write) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ace-bench-refine-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&dir, args, out);
    // ACE_BENCH_KEEP=1 keeps the scratch database to look into
    if std::env::var_os("ACE_BENCH_KEEP").is_some() {
        writeln!(out, "kept {}", dir.display())?;
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn measure(dir: &Path, args: &super::BenchArgs, out: &mut impl Write) -> Result<()> {
    let words = vocabulary(40_000);
    let db = dir.join("bench.db");
    let mut store = Store::open(&db)?;
    let text = synthetic_playbook(args.bullets, &words, 0x5eed);
    let parsed = format::parse(Format::Ace, &text, "big")?;
    store.import_playbook(
        "big",
        &crate::delta::import_batch(&parsed, "import"),
        parsed.next_bullet_number,
    )?;
    drop(parsed);
    drop(text);
    let size = store.playbook_tokens("big")?;
    let budget = args.prompt_budget;
    writeln!(
        out,
        "playbook: {} bullets, {size} tokens (cl100k); prompt budget {budget} tokens",
        args.bullets
    )?;

    // retrieval and rendering, per task
    let playbook = store.load_playbook("big")?;
    let start = Instant::now();
    let index = Index::build(&playbook);
    writeln!(
        out,
        "index build (tokenising every bullet): {:.0} ms",
        start.elapsed().as_secs_f64() * 1000.0
    )?;
    let queries = tasks(1000, &words, 0xfeed);
    let mut times = Vec::with_capacity(queries.len());
    let mut retrieval = 0.0;
    let mut largest = 0usize;
    for (i, q) in queries.iter().enumerate() {
        let start = Instant::now();
        // as the loop does (adaptation::Ctx::choose without embeddings)
        let shown = index.select(Retrieval::Auto, budget, q, (budget / 8) as usize);
        retrieval += start.elapsed().as_secs_f64() * 1000.0;
        let view = View {
            revision: playbook.revision,
            bullets: shown,
            counters: false,
        };
        let prompt = prompts::generator(&playbook, view.clone(), q, "", None);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if i % 100 == 0 {
            largest = largest.max(prompts::tokens(&prompts::render(&playbook, &view)));
        }
        std::hint::black_box(prompt);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    writeln!(
        out,
        "retrieval + prompt rendering per task: mean {mean:.2} ms (retrieval {:.2} ms), p50 {:.2} ms, p99 {:.2} ms (1000 tasks); playbook part of the prompt at most {largest} tokens (sampled)",
        retrieval / times.len() as f64,
        times[times.len() / 2],
        times[times.len() * 99 / 100]
    )?;
    drop(index);
    drop(playbook);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = MockServer::start_local(script("bench")).await?;
        server.keep_requests(64);
        // the near-duplicate scans: word overlap, then embeddings all read from the cache
        let shared = crate::shared::shared(store);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let scan = adaptation::refining::scan(&shared, None, "big", None, &cancel)
            .await
            .map_err(anyhow::Error::msg)?;
        writeln!(
            out,
            "dedup scan, word overlap: {:.3} s ({} pairs among {} bullets)",
            start.elapsed().as_secs_f64(),
            scan.merges.len(),
            scan.bullets
        )?;
        {
            let mut s = crate::shared::lock(&shared);
            let playbook = s.load_playbook("big")?;
            // a bag of words: each word a random direction, a text their sum (alike texts, alike
            // vectors, as with a real model)
            let vectors: Vec<(u64, Vec<f32>)> = playbook
                .active_bullets()
                .map(|b| {
                    let mut v = vec![0f32; 768];
                    for word in b.content.split(' ') {
                        let mut rng = Rng(crate::refine::text_key(word) | 1);
                        for x in v.iter_mut() {
                            *x += (rng.next() % 2000) as f32 / 1000.0 - 1.0;
                        }
                    }
                    (crate::refine::text_key(&b.content), v)
                })
                .collect();
            s.cache_vectors("bench-embed", &vectors)?;
        }
        let embedder = models(&server, Some("bench-embed"))?.embedder;
        let start = Instant::now();
        let scan = adaptation::refining::scan(&shared, embedder, "big", None, &cancel)
            .await
            .map_err(anyhow::Error::msg)?;
        let embed_calls = server
            .requests()
            .iter()
            .filter(|r| r.role.as_deref() == Some("embedding"))
            .count();
        writeln!(
            out,
            "dedup scan, embeddings (768 dimensions, cached): {:.3} s ({} pairs; {} embedding requests){}",
            start.elapsed().as_secs_f64(),
            scan.merges.len(),
            embed_calls,
            scan.warning.map(|w| format!(" warning: {w}")).unwrap_or_default()
        )?;

        // the run, in a process of its own so that its memory is measured alone
        let data = dir.join("tasks.jsonl");
        let lines: String = tasks(args.samples, &words, 0xabcd)
            .into_iter()
            .map(|q| json!({"question": q, "ground_truth": "1"}).to_string() + "\n")
            .collect();
        std::fs::write(&data, lines)?;
        drop(shared);
        let before = db_bytes(&db)?;
        if std::env::var_os("ACE_BENCH_KEEP").is_some() {
            // kept beside the database, to see where the growth goes (e.g. with sqlite3's dbstat)
            std::fs::copy(&db, dir.join("before-run.db"))?;
        }
        let exe = std::env::current_exe()?;
        let child = tokio::process::Command::new(exe)
            .args(["bench", "--refine-run"])
            .arg(dir)
            .arg(server.base_url())
            .args(["--samples", &args.samples.to_string()])
            .args(["--batch-size", &args.batch_size.to_string()])
            .args(["--concurrency", &args.concurrency.to_string()])
            .args(["--prompt-budget", &args.prompt_budget.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .await?;
        if !child.status.success() {
            anyhow::bail!("the run failed (its error is above)");
        }
        out.write_all(&child.stdout)?;
        // the generator's prompts: within the budget, and a shared prefix from one to the next
        let prompts: Vec<String> = server
            .requests()
            .iter()
            .filter(|r| r.role.as_deref() == Some("generator"))
            .map(|r| r.text())
            .collect();
        let most = prompts.iter().map(|p| prompts::tokens(p)).max().unwrap_or(0);
        writeln!(
            out,
            "generator prompt, whole (template, playbook, task): at most {most} tokens over the last {} prompts",
            prompts.len()
        )?;
        let shares: Vec<f64> = prompts
            .windows(2)
            .map(|w| {
                let common = w[0]
                    .bytes()
                    .zip(w[1].bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                common as f64 / w[1].len().max(1) as f64
            })
            .collect();
        if !shares.is_empty() {
            let mean = shares.iter().sum::<f64>() / shares.len() as f64;
            let min = shares.iter().copied().fold(f64::MAX, f64::min);
            writeln!(
                out,
                "shared prefix of consecutive generator prompts: mean {:.1}%, least {:.1}% ({} pairs)",
                mean * 100.0,
                min * 100.0,
                shares.len()
            )?;
        }
        let after = db_bytes(&db).context("measuring the database")?;
        let answers = script("bench")
            .rules
            .iter()
            .filter_map(|r| r.reply.as_ref())
            .map(|r| r.to_string().len())
            .sum::<usize>();
        writeln!(
            out,
            "database growth: {:.0} bytes a sample (the scripted answers are {answers} bytes a sample)",
            (after.saturating_sub(before)) as f64 / args.samples as f64
        )?;
        anyhow::Ok(())
    })
}

/// The run of `ace bench --refine`, in its own process: against the scripted model at the given
/// URL, on the scratch database the parent prepared; its peak memory is this process's.
pub fn child(args: &super::BenchArgs, out: &mut impl Write) -> Result<()> {
    let parts = args.refine_run.clone().unwrap_or_default();
    let (dir, url) = (Path::new(&parts[0]), parts[1].clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = crate::shared::shared(Store::open(&dir.join("bench.db"))?);
        let endpoint = EndpointConfig::new(url, "bench");
        let ledger = Ledger::default();
        let client: Arc<dyn LlmClient> =
            Arc::new(OpenAiClient::new(endpoint, ledger.clone(), PriceTable::default())?);
        let models = Models::one(client, ledger);
        let config = RunConfig {
            playbook: "big".into(),
            dataset: dir.join("tasks.jsonl"),
            batch_size: args.batch_size,
            concurrency: args.concurrency,
            approve: ApproveMode::Auto,
            max_rounds: 1,
            prompt_budget: args.prompt_budget,
            ..RunConfig::default()
        };
        let rss_start = peak_rss_mib().unwrap_or(f64::NAN);
        let start = Instant::now();
        let mut handle = adaptation::start(store.clone(), models, config, None);
        let mut marks: Vec<(usize, f64)> = Vec::new();
        let mut done = 0usize;
        while let Some(event) = handle.events.recv().await {
            if let Event::BatchFinished { .. } = &event {
                done += args.batch_size;
                marks.push((done.min(args.samples), start.elapsed().as_secs_f64()));
            }
            if let Event::Failed { error } = &event {
                anyhow::bail!("the run failed: {error}");
            }
        }
        handle.task.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        let wall = start.elapsed().as_secs_f64();
        let peak = peak_rss_mib().unwrap_or(f64::NAN);
        writeln!(
            out,
            "run: {} samples, batch {}, concurrency {}: {wall:.2} s ({:.1} ms a sample); peak RSS during the run {peak:.1} MiB (at its start {rss_start:.1} MiB)",
            args.samples,
            args.batch_size,
            args.concurrency,
            1000.0 * wall / args.samples as f64
        )?;
        // per-sample time in the first and the last tenth of the run
        let tenth = (args.samples / 10).max(1);
        let at = |n: usize| {
            marks
                .iter()
                .find(|(d, _)| *d >= n)
                .map(|(d, t)| (*d, *t))
                .unwrap_or((args.samples, wall))
        };
        let (d1, t1) = at(tenth);
        let (d9, t9) = at(args.samples - tenth);
        let first = t1 / d1.max(1) as f64;
        let last = (wall - t9) / (args.samples - d9).max(1) as f64;
        writeln!(
            out,
            "per-sample time: first tenth {:.2} ms, last tenth {:.2} ms (ratio {:.2})",
            first * 1000.0,
            last * 1000.0,
            last / first
        )?;
        anyhow::Ok(())
    })
}
