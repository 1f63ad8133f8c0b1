//! `ace bench`: store speed and memory on a scratch database file, for docs/BENCHMARKS.md.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

use crate::delta::{AddOp, DeltaBatch, DeltaOp, Source, TagOp};
use crate::playbook::DEFAULT_SECTIONS;
use crate::store::{ApplyOptions, Store};

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
    Ok(())
}
