//! Workbench speed: one frame with a 100k-bullet playbook, and opening such a playbook up to its first
//! frame (store open, snapshot, filter, render), both on ratatui's TestBackend.

use std::hint::black_box;

use ace::adaptation::{Event, FeedbackMode, RunConfig};
use ace::cli::sample_content;
use ace::delta::ApplyOptions;
use ace::delta::{AddOp, DeltaBatch, DeltaOp, Source};
use ace::playbook::DEFAULT_SECTIONS;
use ace::store::Store;
use ace::tui::action::Action;
use ace::tui::state::State;
use ace::tui::{render, snapshot, update::update};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn filled(path: &std::path::Path, n: usize) {
    let mut store = Store::open(path).unwrap();
    store.create_playbook("big", DEFAULT_SECTIONS).unwrap();
    for (b, start) in (0..n).step_by(1000).enumerate() {
        let ops = (start..(start + 1000).min(n))
            .map(|i| DeltaOp::Add(AddOp::new(DEFAULT_SECTIONS[i % 8], sample_content(i))))
            .collect();
        store
            .apply(
                "big",
                &DeltaBatch::new(format!("b{b}"), Source::Human, ops),
                &ApplyOptions::default(),
            )
            .unwrap();
    }
}

fn open_and_draw(path: &std::path::Path, terminal: &mut Terminal<TestBackend>) -> State {
    let mut store = Store::open(path).unwrap();
    let mut state = State::new("bench".into(), "model: none".into(), RunConfig::default());
    update(
        &mut state,
        Action::Loaded(Box::new(snapshot(&mut store, "big").unwrap())),
    );
    terminal.draw(|f| render(&state, f)).unwrap();
    state
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    filled(&path, 100_000);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut group = c.benchmark_group("workbench");
    group.sample_size(20);
    group.bench_function("open a 100k-bullet playbook to the first frame", |b| {
        b.iter_with_large_drop(|| open_and_draw(&path, &mut terminal))
    });
    let mut state = open_and_draw(&path, &mut terminal);
    // the biggest section, scrolled to the middle, with the detail view open
    update(
        &mut state,
        Action::Key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::NONE)),
    );
    update(
        &mut state,
        Action::Key(KeyEvent::new(KeyCode::Right, KeyModifiers::NONE)),
    );
    for _ in 0..300 {
        update(
            &mut state,
            Action::Key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE)),
        );
    }
    group.sample_size(100);
    group.bench_function("one frame, 100k bullets, 160x48", |b| {
        b.iter(|| {
            terminal.draw(|f| render(black_box(&state), f)).unwrap();
        })
    });
    group.bench_function("key press: next bullet, then a frame", |b| {
        b.iter(|| {
            update(
                &mut state,
                Action::Key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE)),
            );
            terminal.draw(|f| render(&state, f)).unwrap();
        })
    });
    // a live run streaming: 16 samples in flight, a full log, accuracy per epoch; each iteration
    // handles one sample's events (as concurrency 16 delivers them) and draws the Run pane
    update(
        &mut state,
        Action::Run(Box::new(Event::Started {
            run: "run-1".into(),
            playbook: "big".into(),
            kind: Default::default(),
            feedback_mode: FeedbackMode::GroundTruth,
            train: 100_000,
            val: 0,
            test: 0,
            resumed: false,
        })),
    );
    update(
        &mut state,
        Action::Key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE)),
    );
    let mut n = 0u64;
    group.bench_function(
        "live run: one sample's events, then a Run pane frame",
        |b| {
            b.iter(|| {
                n += 1;
                let key = format!("train/1/{}/{}", n / 16 + 1, n % 16);
                for event in [
                    Event::SampleStarted {
                        key: key.clone(),
                        question: sample_content(n as usize),
                    },
                    Event::Generated {
                        key: key.clone(),
                        answer: "2.00".into(),
                        cited: vec!["calc-00001".into()],
                    },
                    Event::Evaluated {
                        key: key.clone(),
                        round: 1,
                        correct: !n.is_multiple_of(3),
                        feedback: "exact match".into(),
                    },
                ] {
                    update(&mut state, Action::Run(Box::new(event)));
                }
                if n.is_multiple_of(16) {
                    for i in 0..16 {
                        let k = format!("train/1/{}/{i}", n / 16);
                        update(
                            &mut state,
                            Action::Run(Box::new(Event::Reflected {
                                key: k,
                                key_insight: "check the sign first".into(),
                                rounds: 1,
                            })),
                        );
                    }
                }
                terminal.draw(|f| render(&state, f)).unwrap();
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
