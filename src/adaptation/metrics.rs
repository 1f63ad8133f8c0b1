//! Prometheus-style metrics of a run (through the `metrics` facade; a no-op unless a recorder, such as
//! the exporter `ace train --metrics-addr` installs, is present).

use super::Event;
use crate::approval::{OpStatus, PendingBatch};

/// Counts what an event says happened.
pub fn record(event: &Event) {
    match event {
        // Each sample once, by its first answer (regenerations are not new samples).
        Event::Evaluated {
            key,
            round: 1,
            correct,
            ..
        } => {
            let split = key.split('/').next().unwrap_or("train").to_string();
            metrics::counter!("ace_samples_total", "split" => split.clone()).increment(1);
            if *correct {
                metrics::counter!("ace_correct_total", "split" => split).increment(1);
            }
        }
        Event::TagsApplied { ops, .. } => {
            metrics::counter!("ace_tag_ops_total").increment(*ops as u64)
        }
        _ => {}
    }
}

/// Deltas proposed (by op) or decided (by op and decision).
pub fn deltas(batch: &PendingBatch, decided: bool) {
    for op in &batch.ops {
        let decision = match (decided, op.status) {
            (false, _) => "proposed",
            (true, OpStatus::Approved) => "approved",
            (true, OpStatus::Edited) => "edited",
            (true, OpStatus::Rejected) => "rejected",
            (true, OpStatus::Pending) => continue,
        };
        metrics::counter!("ace_deltas_total", "op" => op.op.kind(), "decision" => decision)
            .increment(1);
    }
}

pub fn queue_length(n: usize) {
    metrics::gauge!("ace_queue_length").set(n as f64);
}

pub fn harmful_bullets(n: usize) {
    metrics::gauge!("ace_harmful_bullets").set(n as f64);
}
