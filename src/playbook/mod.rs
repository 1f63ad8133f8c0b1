//! The playbook: ordered sections of short strategy bullets with helpful / harmful / neutral counters.
//!
//! This module holds the in-memory model, bullet-id rules and section slugs. Persistence lives in
//! `store`; text formats (the official ACE text, the `ace-framework` skillbook, our JSON, markdown)
//! live in [`format`].

pub mod format;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Whether a bullet is part of the playbook. Removal is soft: the content stays for history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BulletStatus {
    #[default]
    Active,
    Removed,
}

impl BulletStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BulletStatus::Active => "active",
            BulletStatus::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(BulletStatus::Active),
            "removed" => Some(BulletStatus::Removed),
            _ => None,
        }
    }
}

/// One strategy bullet, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bullet {
    pub id: String,
    pub section: String,
    pub content: String,
    #[serde(default)]
    pub helpful: u64,
    #[serde(default)]
    pub harmful: u64,
    #[serde(default)]
    pub neutral: u64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub status: BulletStatus,
    /// Order key across the whole playbook; bullets are shown by (section position, position).
    #[serde(default)]
    pub position: i64,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
}

impl Bullet {
    pub fn is_active(&self) -> bool {
        self.status == BulletStatus::Active
    }
}

/// A named, ordered group of bullets. The slug prefixes the ids of bullets added to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub name: String,
    pub slug: String,
    pub position: i64,
    /// A removed section is hidden from the playbook; it stays in the store for history.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// A whole playbook in memory: sections in order, bullets in order (active and removed).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Playbook {
    pub name: String,
    /// The sections shown, in order.
    pub sections: Vec<Section>,
    pub bullets: Vec<Bullet>,
    /// The next number the id counter hands out; never decreases.
    pub next_bullet_number: u64,
    /// The next order key for a new bullet or section; never decreases. (0 when unknown, e.g. a
    /// playbook read from a file: applying ops then starts past every key in it.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_position: i64,
    /// Removed sections: hidden, but their names and slugs are kept (adding one back restores it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_sections: Vec<Section>,
    /// The revision this playbook is as of, when it was read from a store (`None`: not stored, or
    /// no revision yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

/// Which part of a playbook a prompt carried, and how it was rendered: enough to rebuild the text
/// exactly from the playbook as of `revision`, so stored prompts need not hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub revision: Option<i64>,
    /// The bullets shown, in playbook order; `None`: every active bullet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bullets: Option<Vec<String>>,
    /// Whether each bullet's helpful/harmful counters were shown (the curator's rendering) or not
    /// (the generator's, which keeps consecutive prompts alike).
    pub counters: bool,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Playbook {
    pub fn active_bullets(&self) -> impl Iterator<Item = &Bullet> {
        self.bullets.iter().filter(|b| b.is_active())
    }

    pub fn bullet(&self, id: &str) -> Option<&Bullet> {
        self.bullets.iter().find(|b| b.id == id)
    }

    /// The bullet a model means by `raw`: exactly, else ignoring case and the brackets, quotes and
    /// punctuation around it (`[CALC-00001].` means `calc-00001`).
    pub fn canonical_id(&self, raw: &str) -> Option<&str> {
        canonical_in(self.bullets.iter(), raw)
    }

    /// Whether an op naming `section` finds one here (exactly or case- and punctuation-insensitively).
    pub fn has_section(&self, section: &str) -> bool {
        let key = normalize_section_key(section);
        self.sections
            .iter()
            .any(|s| s.name == section || normalize_section_key(&s.name) == key)
    }

    /// Active bullets of one section, in order.
    pub fn section_bullets<'a>(
        &'a self,
        section: &'a str,
    ) -> impl Iterator<Item = &'a Bullet> + 'a {
        self.active_bullets().filter(move |b| b.section == section)
    }

    /// Sorts sections and bullets into display order (section position, then bullet position).
    pub fn sort(&mut self) {
        self.sections.sort_by_key(|s| s.position);
        self.removed_sections.sort_by_key(|s| s.position);
        let order: std::collections::HashMap<&str, i64> = self
            .sections
            .iter()
            .map(|s| (s.name.as_str(), s.position))
            .collect();
        self.bullets.sort_by_cached_key(|b| {
            (
                order.get(b.section.as_str()).copied().unwrap_or(i64::MAX),
                b.position,
            )
        });
    }
}

/// The paper's default sections for a new playbook, with the slugs used by the published playbooks.
pub const DEFAULT_SECTIONS: &[&str] = &[
    "STRATEGIES AND HARD RULES",
    "FORMULAS AND CALCULATIONS",
    "USEFUL CODE SNIPPETS AND TEMPLATES",
    "COMMON MISTAKES AND CORRECT STRATEGIES",
    "PROBLEM-SOLVING HEURISTICS AND WORKFLOWS",
    "VERIFICATION CHECKLIST",
    "TROUBLESHOOTING AND PITFALLS",
    "OTHERS",
];

/// Slugs the published ACE playbooks use for their well-known sections (key: normalised name).
const KNOWN_SLUGS: &[(&str, &str)] = &[
    ("strategies and hard rules", "shr"),
    ("apis to use for specific information", "api"),
    ("useful code snippets and templates", "code"),
    ("code snippets and templates", "code"),
    ("common mistakes and correct strategies", "cms"),
    ("common mistakes to avoid", "err"),
    ("problem solving heuristics and workflows", "psw"),
    ("problem solving heuristics", "prob"),
    ("verification checklist", "vc"),
    ("troubleshooting and pitfalls", "ts"),
    ("formulas and calculations", "calc"),
    ("financial strategies and insights", "fin"),
    ("context clues and indicators", "ctx"),
    ("others", "misc"),
    ("general", "gen"),
];

const STOP_WORDS: &[&str] = &[
    "and", "or", "the", "a", "an", "of", "to", "for", "in", "on", "with",
];

/// Normalises a section name for comparison: lowercase, punctuation and `_`/`-` as spaces, single spaces.
pub fn normalize_section_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Derives the id slug of a section: the published slug for well-known sections, else the initials of
/// the significant words (two words or more), else the first four letters; `sec` if nothing is left.
pub fn section_slug(name: &str) -> String {
    let key = normalize_section_key(name);
    if let Some((_, slug)) = KNOWN_SLUGS.iter().find(|(k, _)| *k == key) {
        return (*slug).to_string();
    }
    let words: Vec<&str> = key
        .split(' ')
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
        .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    let slug: String = match words.as_slice() {
        [] => String::new(),
        [one] => one.chars().take(4).collect(),
        many => many
            .iter()
            .filter_map(|w| w.chars().next())
            .take(5)
            .collect(),
    };
    if slug.is_empty() {
        "sec".to_string()
    } else {
        slug
    }
}

/// Formats a bullet id in the published form `{slug}-{n:05}`.
pub fn format_bullet_id(slug: &str, number: u64) -> String {
    format!("{slug}-{number:05}")
}

/// Splits an id of the form `{slug}-{digits}` into slug and number; `None` for other forms.
pub fn parse_bullet_id(id: &str) -> Option<(&str, u64)> {
    let (slug, digits) = id.rsplit_once('-')?;
    if slug.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !slug
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    Some((slug, digits.parse().ok()?))
}

/// [`Playbook::canonical_id`] among `bullets`.
pub fn canonical_in<'a>(
    mut bullets: impl Iterator<Item = &'a Bullet> + Clone,
    raw: &str,
) -> Option<&'a str> {
    if let Some(b) = bullets.clone().find(|b| b.id == raw) {
        return Some(&b.id);
    }
    let key = raw.trim_matches(|c: char| !c.is_alphanumeric());
    if key.is_empty() {
        return None;
    }
    let key = key.to_lowercase();
    bullets
        .find(|b| b.id.to_lowercase() == key)
        .map(|b| b.id.as_str())
}

/// Whether `id` can be used as a bullet id at all: non-empty, no whitespace or brackets.
pub fn is_valid_bullet_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c == '[' || c == ']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sections_use_published_slugs() {
        assert_eq!(section_slug("STRATEGIES AND HARD RULES"), "shr");
        assert_eq!(section_slug("TROUBLESHOOTING AND PITFALLS:"), "ts");
        assert_eq!(section_slug("formulas_and_calculations"), "calc");
        assert_eq!(section_slug("OTHERS"), "misc");
    }

    #[test]
    fn other_sections_use_initials_or_prefix() {
        assert_eq!(section_slug("Date Handling Rules"), "dhr");
        assert_eq!(section_slug("Retrieval"), "retr");
        assert_eq!(section_slug("   "), "sec");
        assert_eq!(section_slug("Überblick"), "sec");
    }

    #[test]
    fn ids_round_trip() {
        assert_eq!(format_bullet_id("calc", 12), "calc-00012");
        assert_eq!(parse_bullet_id("calc-00012"), Some(("calc", 12)));
        assert_eq!(
            parse_bullet_id("customer_service_structure-00001"),
            Some(("customer_service_structure", 1))
        );
        assert_eq!(parse_bullet_id("x-123456"), Some(("x", 123456)));
        assert_eq!(parse_bullet_id("calc"), None);
        assert_eq!(parse_bullet_id("-00001"), None);
        assert_eq!(parse_bullet_id("calc-12a"), None);
    }
}
