//! `ace bench --serve`: the HTTP API under load, against a real `ace serve` process on loopback —
//! GETs of a rendered playbook from many concurrent clients (latency percentiles), a burst of trace
//! POSTs (every one accepted or refused with 429/503, none lost), and the server's peak memory.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::bench_refine::{synthetic_playbook, tasks, vocabulary};
use crate::playbook::format::{self, Format};
use crate::store::Store;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Reads a response to its end, chunk by chunk, keeping nothing (the client's share of the work
/// stays small: what is timed is the server).
async fn drain(mut r: reqwest::Response) -> Result<usize> {
    let mut n = 0;
    while let Some(chunk) = r.chunk().await? {
        n += chunk.len();
    }
    Ok(n)
}

/// `clients` clients each GET `url` `per_client` times back to back (with `If-None-Match: etag`
/// when given, expecting 304, else 200); every latency, sorted, and the wall time.
async fn readers(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    clients: usize,
    per_client: usize,
    etag: Option<String>,
) -> Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, url, token, etag) = (
            http.clone(),
            url.to_string(),
            token.to_string(),
            etag.clone(),
        );
        readers.spawn(async move {
            let mut times = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                let mut request = http.get(&url).bearer_auth(&token);
                if let Some(etag) = &etag {
                    request = request.header(reqwest::header::IF_NONE_MATCH, etag);
                }
                let r = request.send().await?;
                let expected = if etag.is_some() { 304 } else { 200 };
                if r.status().as_u16() != expected {
                    anyhow::bail!("GET answered {} (expected {expected})", r.status());
                }
                drain(r).await?;
                times.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(times)
        });
    }
    gather(readers, started).await
}

/// Every latency the clients measured, sorted, and the wall time since `started`.
async fn gather(
    mut clients: tokio::task::JoinSet<Result<Vec<Duration>>>,
    started: Instant,
) -> Result<(Vec<Duration>, Duration)> {
    let mut times = Vec::new();
    while let Some(r) = clients.join_next().await {
        times.extend(r??);
    }
    let wall = started.elapsed();
    times.sort();
    Ok((times, wall))
}

pub fn run(args: &super::BenchArgs, out: &mut impl Write) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ace-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&dir, args, out);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(dir: &Path, args: &super::BenchArgs, out: &mut impl Write) -> Result<()> {
    let db = dir.join("bench.db");
    let words = vocabulary(40_000);
    {
        let mut store = Store::open(&db)?;
        let text = synthetic_playbook(args.bullets, &words, 0x5eed);
        let parsed = format::parse(Format::Ace, &text, "bench")?;
        store.import_playbook(
            "bench",
            &crate::delta::import_batch(&parsed, "import"),
            parsed.next_bullet_number,
        )?;
    }
    let token_file = dir.join("token");
    let mut server = std::process::Command::new(std::env::current_exe()?)
        .env_remove("ACE_DB")
        .arg("--db")
        .arg(&db)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-learn",
            "--token-file",
        ])
        .arg(&token_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("cannot start ace serve")?;
    let pid = server.id();
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().context("no stdout")?).read_line(&mut first)?;
    let Some(base) = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(str::to_string)
    else {
        let _ = server.kill();
        bail!("ace serve did not say where it listens: {first}");
    };
    let token = std::fs::read_to_string(&token_file)?.trim().to_string();
    let clients = args.concurrency.max(1);
    let per_client = (args.samples / clients).max(1);
    let traces = tasks(args.traces, &words, 7);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let measured = runtime.block_on(async {
        crate::llm::install_crypto_provider();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()?;
        let url = format!("{base}/v1/playbooks/bench");
        // one warm-up read fills the server's cache, as a running server's would be
        let warm = http.get(&url).bearer_auth(&token).send().await?;
        let etag = warm
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = warm.bytes().await?.len();
        let (times, wall) = readers(&http, &url, &token, clients, per_client, None).await?;
        // agents that hold the current playbook and ask whether it changed (If-None-Match)
        let etag = etag.ok_or_else(|| anyhow::anyhow!("the server sent no ETag"))?;
        let (held_times, held_wall) =
            readers(&http, &url, &token, clients, per_client, Some(etag)).await?;
        // what an agent asks for: the bullets relevant to its task within 2,000 tokens (a new
        // query each time, so nothing is served from the cache)
        let queries = tasks(clients * per_client.min(40), &words, 11);
        let started = Instant::now();
        let mut tasks_q = tokio::task::JoinSet::new();
        for chunk in queries.chunks(per_client.min(40)) {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            let chunk = chunk.to_vec();
            tasks_q.spawn(async move {
                let mut times = Vec::with_capacity(chunk.len());
                for q in chunk {
                    let t = Instant::now();
                    let u = reqwest::Url::parse_with_params(
                        &url,
                        &[("query", q.as_str()), ("budget", "2000")],
                    )?;
                    let r = http
                        .get(u)
                        .bearer_auth(&token)
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        anyhow::bail!("GET answered {}", r.status());
                    }
                    drain(r).await?;
                    times.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(times)
            });
        }
        let (query_times, query_wall) = gather(tasks_q, started).await?;
        // a burst of traces, `clients` at a time
        let post = format!("{base}/v1/playbooks/bench/traces");
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(clients));
        let mut burst = tokio::task::JoinSet::new();
        let burst_started = Instant::now();
        for (i, task) in traces.into_iter().enumerate() {
            let (http, post, token, sem) = (http.clone(), post.clone(), token.clone(), sem.clone());
            burst.spawn(async move {
                let _p = sem.acquire_owned().await?;
                let body = serde_json::json!({"task": task, "answer": format!("answer {i}"), "success": i % 2 == 0});
                let r = http.post(&post).bearer_auth(&token).json(&body).send().await?;
                Ok::<_, anyhow::Error>(r.status().as_u16())
            });
        }
        let (mut accepted, mut refused, mut other) = (0u64, 0u64, 0u64);
        while let Some(r) = burst.join_next().await {
            match r?? {
                202 => accepted += 1,
                429 | 503 => refused += 1,
                _ => other += 1,
            }
        }
        let burst_wall = burst_started.elapsed();
        let ready: serde_json::Value = http
            .get(format!("{base}/ready"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        Ok::<_, anyhow::Error>((bytes, times, wall, held_times, held_wall, query_times, query_wall, accepted, refused, other, burst_wall, ready))
    });
    let rss = peak_rss_kib(pid);
    let _ = server.kill();
    let _ = server.wait();
    let (
        bytes,
        times,
        wall,
        held_times,
        held_wall,
        query_times,
        query_wall,
        accepted,
        refused,
        other,
        burst_wall,
        ready,
    ) = measured?;
    let stored = ready["inbox"]["pending"].as_u64().unwrap_or(0);
    writeln!(
        out,
        "GET /v1/playbooks/bench ({} bullets, {} KiB rendered): {} requests from {clients} clients in {:.2} s ({:.0}/s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.bullets,
        bytes / 1024,
        times.len(),
        wall.as_secs_f64(),
        times.len() as f64 / wall.as_secs_f64(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    )?;
    writeln!(
        out,
        "GET /v1/playbooks/bench with If-None-Match (the current ETag: 304, no body): {} requests from {clients} clients in {:.2} s ({:.0}/s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        held_times.len(),
        held_wall.as_secs_f64(),
        held_times.len() as f64 / held_wall.as_secs_f64(),
        percentile(&held_times, 0.5).as_secs_f64() * 1e3,
        percentile(&held_times, 0.99).as_secs_f64() * 1e3,
        held_times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    )?;
    writeln!(
        out,
        "GET /v1/playbooks/bench?query=TASK&budget=2000 (a new task each): {} requests from {clients} clients in {:.2} s ({:.0}/s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        query_times.len(),
        query_wall.as_secs_f64(),
        query_times.len() as f64 / query_wall.as_secs_f64(),
        percentile(&query_times, 0.5).as_secs_f64() * 1e3,
        percentile(&query_times, 0.99).as_secs_f64() * 1e3,
        query_times
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
    )?;
    writeln!(
        out,
        "POST traces, a burst of {} ({clients} at a time) in {:.2} s: {accepted} accepted, {refused} refused (429/503), {other} other; {stored} stored in the inbox ({})",
        args.traces,
        burst_wall.as_secs_f64(),
        if stored == accepted && other == 0 {
            "none lost"
        } else {
            "MISMATCH"
        }
    )?;
    if let Some(kib) = rss {
        writeln!(out, "server peak memory: {:.1} MiB", kib as f64 / 1024.0)?;
    }
    if stored != accepted || other != 0 {
        bail!(
            "{accepted} traces were accepted but {stored} are in the inbox ({other} other answers)"
        );
    }
    Ok(())
}
