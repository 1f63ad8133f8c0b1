//! Running totals of model calls per role: calls, failures, tokens, latency and cost.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Role, Usage};

/// Price of a model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Prompt tokens served from the server's cache (default: the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
}

/// Prices by model name (exact match, else the longest configured prefix, e.g. `gpt-4o` for
/// `gpt-4o-2024-08-06`). Unknown models cost 0 and are reported as unpriced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceTable(pub HashMap<String, Price>);

/// Prices of common hosted models (US dollars per million tokens, list prices as of 2026-11), used
/// when the configuration names none for a model; `[prices."MODEL"]` in the configuration overrides.
pub const BUILT_IN_PRICES: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("o3-mini", 1.10, 4.40),
    ("o4-mini", 1.10, 4.40),
    ("deepseek-chat", 0.27, 1.10),
    ("deepseek-reasoner", 0.55, 2.19),
];

impl PriceTable {
    /// The configured prices over the built-in ones.
    pub fn with_built_ins(mut self) -> Self {
        for (model, input, output) in BUILT_IN_PRICES {
            self.0.entry((*model).to_string()).or_insert(Price {
                input_per_mtok: *input,
                output_per_mtok: *output,
                cached_input_per_mtok: None,
            });
        }
        self
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.0.get(model) {
            return Some(*p);
        }
        self.0
            .iter()
            .filter(|(k, _)| model.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| *p)
    }

    pub fn cost(&self, model: &str, usage: Usage) -> f64 {
        self.price(model).map_or(0.0, |p| {
            let cached = usage.cached_prompt_tokens.min(usage.prompt_tokens);
            ((usage.prompt_tokens - cached) as f64 * p.input_per_mtok
                + cached as f64 * p.cached_input_per_mtok.unwrap_or(p.input_per_mtok)
                + usage.completion_tokens as f64 * p.output_per_mtok)
                / 1e6
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleUsage {
    pub calls: u64,
    pub failed: u64,
    pub retries: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: u64,
    pub cost_usd: f64,
}

/// A call that failed and will be tried again: what went wrong and when the next attempt is.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    pub role: Role,
    /// The attempt that failed (1 is the first).
    pub attempt: u32,
    /// Attempts allowed in all.
    pub of: u32,
    pub delay: Duration,
    pub error: String,
}

impl std::fmt::Display for RetryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} call failed (attempt {} of {}), retrying in {:.1} s: {}",
            self.role.as_str(),
            self.attempt,
            self.of,
            self.delay.as_secs_f64(),
            self.error
        )
    }
}

/// Shared, cheap to clone; every client records into it and callers read snapshots. Retries are
/// also announced as they happen, so a front end can say why a call is taking long.
#[derive(Debug, Clone)]
pub struct Ledger {
    usage: Arc<Mutex<BTreeMap<Role, RoleUsage>>>,
    retries: tokio::sync::broadcast::Sender<RetryNotice>,
    budget: Arc<Mutex<Option<Budget>>>,
}

/// A spending limit in US dollars: what was spent before this process (a resumed run's earlier
/// calls), what this process spent, and what calls in flight are expected to cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    pub max_usd: f64,
    pub carried_usd: f64,
    reserved_usd: f64,
}

/// A call that would take the spend past the budget: not sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverBudget {
    pub spent_usd: f64,
    pub estimate_usd: f64,
    pub max_usd: f64,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            usage: Arc::default(),
            retries: tokio::sync::broadcast::Sender::new(64),
            budget: Arc::default(),
        }
    }
}

impl Ledger {
    /// Sets a spending limit; `carried_usd` was spent before (a resumed run's earlier calls).
    pub fn set_budget(&self, max_usd: f64, carried_usd: f64) {
        *self.budget.lock().unwrap_or_else(|e| e.into_inner()) = Some(Budget {
            max_usd,
            carried_usd,
            reserved_usd: 0.0,
        });
    }

    /// The limit, if any, and what counts against it: (max, spent including earlier processes).
    pub fn budget(&self) -> Option<(f64, f64)> {
        let spent = self.total().cost_usd;
        self.budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|b| (b.max_usd, b.carried_usd + spent))
    }

    /// Whether a limit is set (a call then estimates its cost before it is sent).
    pub fn has_budget(&self) -> bool {
        self.budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Reserves `estimate_usd` for a call about to be sent, or refuses it when the spend, the calls
    /// in flight and this one would pass the limit. [`Ledger::release`] gives the reservation back
    /// when the call ends (its real cost is then recorded).
    pub fn reserve(&self, estimate_usd: f64) -> Result<(), OverBudget> {
        let spent = self.total().cost_usd;
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let Some(b) = budget.as_mut() else {
            return Ok(());
        };
        let committed = b.carried_usd + spent + b.reserved_usd;
        if committed + estimate_usd > b.max_usd {
            return Err(OverBudget {
                spent_usd: b.carried_usd + spent,
                estimate_usd,
                max_usd: b.max_usd,
            });
        }
        b.reserved_usd += estimate_usd;
        Ok(())
    }

    pub fn release(&self, estimate_usd: f64) {
        if let Some(b) = self
            .budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            b.reserved_usd = (b.reserved_usd - estimate_usd).max(0.0);
        }
    }

    /// Announces a retry to every subscriber (none listening is fine).
    pub fn notify_retry(&self, notice: RetryNotice) {
        let _ = self.retries.send(notice);
    }

    /// Retries announced from now on. A slow reader skips the oldest ones.
    pub fn subscribe_retries(&self) -> tokio::sync::broadcast::Receiver<RetryNotice> {
        self.retries.subscribe()
    }

    pub fn record(
        &self,
        role: Role,
        usage: Usage,
        latency: Duration,
        attempts: u32,
        cost_usd: f64,
    ) {
        let mut map = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(role).or_default();
        entry.calls += 1;
        entry.retries += u64::from(attempts.saturating_sub(1));
        entry.prompt_tokens += usage.prompt_tokens;
        entry.completion_tokens += usage.completion_tokens;
        entry.latency_ms += latency.as_millis() as u64;
        entry.cost_usd += cost_usd;
    }

    pub fn record_failure(&self, role: Role) {
        self.usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(role)
            .or_default()
            .failed += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<Role, RoleUsage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn total(&self) -> RoleUsage {
        self.snapshot()
            .values()
            .fold(RoleUsage::default(), |mut t, u| {
                t.calls += u.calls;
                t.failed += u.failed;
                t.retries += u.retries;
                t.prompt_tokens += u.prompt_tokens;
                t.completion_tokens += u.completion_tokens;
                t.latency_ms += u.latency_ms;
                t.cost_usd += u.cost_usd;
                t
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_match_exactly_or_by_longest_prefix() {
        let mut t = PriceTable::default();
        t.0.insert(
            "gpt-4o".into(),
            Price {
                input_per_mtok: 2.5,
                output_per_mtok: 10.0,
                cached_input_per_mtok: None,
            },
        );
        t.0.insert(
            "gpt-4o-mini".into(),
            Price {
                input_per_mtok: 0.15,
                output_per_mtok: 0.6,
                cached_input_per_mtok: None,
            },
        );
        assert_eq!(
            t.price("gpt-4o-mini-2024-07-18").unwrap().input_per_mtok,
            0.15
        );
        assert_eq!(t.price("gpt-4o-2024-08-06").unwrap().input_per_mtok, 2.5);
        assert!(t.price("llama3").is_none());
        let cost = t.cost(
            "gpt-4o",
            Usage {
                prompt_tokens: 1_000_000,
                completion_tokens: 500_000,
                cached_prompt_tokens: 0,
            },
        );
        assert!((cost - 7.5).abs() < 1e-9);
    }

    #[test]
    fn ledger_adds_up_per_role() {
        let l = Ledger::default();
        l.record(
            Role::Generator,
            Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                cached_prompt_tokens: 0,
            },
            Duration::from_millis(30),
            2,
            0.01,
        );
        l.record(
            Role::Generator,
            Usage {
                prompt_tokens: 1,
                completion_tokens: 1,
                cached_prompt_tokens: 0,
            },
            Duration::from_millis(10),
            1,
            0.0,
        );
        l.record_failure(Role::Curator);
        let s = l.snapshot();
        assert_eq!(s[&Role::Generator].calls, 2);
        assert_eq!(s[&Role::Generator].retries, 1);
        assert_eq!(s[&Role::Generator].prompt_tokens, 11);
        assert_eq!(s[&Role::Curator].failed, 1);
        assert_eq!(l.total().latency_ms, 40);
    }
}
