//! The playbook as prompt text, and its size in tokens.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

use crate::playbook::{Bullet, Playbook, View};

/// What an empty playbook renders as.
pub const EMPTY: &str = "(the playbook is empty so far)";

/// One bullet's line: `[id] content` for the generator; with counters (`[id] helpful=X harmful=Y ::
/// content`, the official ACE text) for the curator, who weighs them.
pub fn bullet_line(bullet: &Bullet, counters: bool) -> String {
    if counters {
        format!(
            "[{}] helpful={} harmful={} :: {}",
            bullet.id, bullet.helpful, bullet.harmful, bullet.content
        )
    } else {
        format!("[{}] {}", bullet.id, bullet.content)
    }
}

/// The playbook as prompt text: `## section` then a line per bullet, sections in their order and
/// bullets in theirs, active bullets only; with `view.bullets`, only those (and only the sections
/// holding them). The same view of the same revision always renders the same text, which is what
/// lets stored prompts refer to it instead of holding it.
pub fn render(playbook: &Playbook, view: &View) -> String {
    let shown: Option<HashSet<&str, BuildHasherDefault<Fnv>>> = view
        .bullets
        .as_ref()
        .map(|ids| ids.iter().map(String::as_str).collect());
    // one pass over the bullets, each to its section's list (in playbook order within it)
    let slot: std::collections::HashMap<&str, usize> = playbook
        .sections
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut lists: Vec<Vec<&Bullet>> = vec![Vec::new(); playbook.sections.len()];
    let mut current: Option<(&str, Option<usize>)> = None;
    let mut any = false;
    for b in &playbook.bullets {
        if !b.is_active() || shown.as_ref().is_some_and(|s| !s.contains(b.id.as_str())) {
            continue;
        }
        // bullets come grouped by section: look a section up once per run of its bullets
        let at = match current {
            Some((name, at)) if name == b.section => at,
            _ => {
                let at = slot.get(b.section.as_str()).copied();
                current = Some((b.section.as_str(), at));
                at
            }
        };
        if let Some(at) = at {
            lists[at].push(b);
            any = true;
        }
    }
    if !any {
        return EMPTY.to_string();
    }
    let mut out = String::new();
    for (section, lines) in playbook.sections.iter().zip(&lists) {
        // every section of the whole playbook; of a selection only those it draws from
        if shown.is_some() && lines.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("## ");
        out.push_str(&section.name);
        out.push('\n');
        for b in lines {
            push_line(&mut out, b, view.counters);
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}

/// [`bullet_line`], written into `out`.
fn push_line(out: &mut String, bullet: &Bullet, counters: bool) {
    use std::fmt::Write;
    out.push('[');
    out.push_str(&bullet.id);
    out.push_str("] ");
    if counters {
        let _ = write!(
            out,
            "helpful={} harmful={} :: ",
            bullet.helpful, bullet.harmful
        );
    }
    out.push_str(&bullet.content);
}

/// FNV-1a: a fast hash for short keys such as bullet ids (no untrusted flooding concern here).
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// What one bullet adds to the generator's playbook, in tokens: its line and the line break.
pub fn bullet_cost(bullet: &Bullet) -> u64 {
    tokens(&bullet_line(bullet, false)) as u64 + 1
}

/// What one section adds to the generator's playbook, in tokens: its header and the blank line.
pub fn section_cost(name: &str) -> u64 {
    tokens(&format!("## {name}\n")) as u64 + 1
}

/// What one recorded change does to the playbook's size ([`playbook_tokens`]), in tokens.
pub fn change_cost(change: &crate::delta::Change) -> i64 {
    use crate::delta::Change;
    let bullet = |b: &Option<Bullet>| {
        b.as_ref()
            .filter(|b| b.is_active())
            .map_or(0, |b| bullet_cost(b) as i64)
    };
    let section = |s: &Option<crate::playbook::Section>| {
        s.as_ref()
            .filter(|s| !s.removed)
            .map_or(0, |s| section_cost(&s.name) as i64)
    };
    match change {
        Change::Bullet { before, after, .. } => bullet(after) - bullet(before),
        Change::Section { before, after, .. } => section(after) - section(before),
    }
}

/// The playbook's size as the generator sees it whole, in tokens: the sum of [`bullet_cost`] over
/// its active bullets and [`section_cost`] over its sections (the tokens of the rendered text, up
/// to a few where lines meet).
pub fn playbook_tokens(playbook: &Playbook) -> u64 {
    playbook.active_bullets().map(bullet_cost).sum::<u64>()
        + playbook
            .sections
            .iter()
            .map(|s| section_cost(&s.name))
            .sum::<u64>()
}

fn bpe() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    // The cl100k tables ship inside the tiktoken-rs crate: nothing is downloaded.
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().expect("the cl100k tables are built in"))
}

/// The size of `text` in tokens of the cl100k BPE (GPT-4-family models; other models' tokenizers
/// differ by a few percent, which budgets leave room for).
pub fn tokens(text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    bpe().encode_ordinary(text).len()
}
