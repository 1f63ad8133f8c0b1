//! Store benchmarks (criterion). The full-size figures of issue #2 (100k ADDs, 100k-bullet load, peak
//! RSS, TAG throughput) come from `ace bench`, which runs each once on a file database; these measure
//! the same paths repeatedly at a size criterion can sample, and cover the 100k load.

use std::hint::black_box;

use ace::cli::sample_content;
use ace::delta::ApplyOptions;
use ace::delta::{AddOp, DeltaBatch, DeltaOp, Source, TagOp};
use ace::playbook::DEFAULT_SECTIONS;
use ace::store::Store;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn adds(n: usize, from: usize) -> Vec<DeltaOp> {
    (from..from + n)
        .map(|i| {
            DeltaOp::Add(AddOp::new(
                DEFAULT_SECTIONS[i % DEFAULT_SECTIONS.len()],
                sample_content(i),
            ))
        })
        .collect()
}

fn filled(dir: &tempfile::TempDir, bullets: usize) -> Store {
    let mut store = Store::open(&dir.path().join("bench.db")).unwrap();
    store.create_playbook("bench", DEFAULT_SECTIONS).unwrap();
    for (n, start) in (0..bullets).step_by(1000).enumerate() {
        let batch = DeltaBatch::new(
            format!("fill-{n}"),
            Source::Human,
            adds(1000.min(bullets - start), start),
        );
        store
            .apply("bench", &batch, &ApplyOptions::default())
            .unwrap();
    }
    store
}

fn apply_add_batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.sample_size(10);
    group.bench_function("10k ADD in batches of 100 (file db, revisions)", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let mut store = Store::open(&dir.path().join("bench.db")).unwrap();
                store.create_playbook("bench", DEFAULT_SECTIONS).unwrap();
                (dir, store)
            },
            |(dir, mut store)| {
                for n in 0..100 {
                    let batch = DeltaBatch::new(format!("b{n}"), Source::Human, adds(100, n * 100));
                    store
                        .apply("bench", &batch, &ApplyOptions::default())
                        .unwrap();
                }
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(&dir, 10_000);
    let ids: Vec<String> = store
        .load_playbook("bench")
        .unwrap()
        .bullets
        .into_iter()
        .map(|b| b.id)
        .collect();
    let mut n = 0usize;
    group.bench_function(
        "batch of 100 TAG on a 10k playbook (file db, revisions)",
        |b| {
            b.iter(|| {
                n += 1;
                let ops = (0..100)
                    .map(|i| {
                        DeltaOp::Tag(TagOp {
                            bullet_id: ids[(i * 97 + n * 31) % ids.len()].clone(),
                            helpful: 1,
                            harmful: 0,
                            neutral: 0,
                        })
                    })
                    .collect::<Vec<_>>();
                store
                    .apply(
                        "bench",
                        &DeltaBatch::new(format!("t{n}"), Source::Policy, ops),
                        &ApplyOptions::default(),
                    )
                    .unwrap();
            })
        },
    );
    group.finish();
}

fn load_playbook(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(&dir, 100_000));
    let store = Store::open(&dir.path().join("bench.db")).unwrap();
    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    group.bench_function("100k-bullet playbook", |b| {
        b.iter_with_large_drop(|| black_box(store.load_playbook("bench").unwrap()))
    });
    group.finish();
}

criterion_group!(benches, apply_add_batches, load_playbook);
criterion_main!(benches);
