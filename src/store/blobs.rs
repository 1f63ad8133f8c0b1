//! What recurs across model calls, stored once: message texts (a role's system prompt is the same
//! in every call) and lists of bullet ids (what a task was shown, which the sample's row and its
//! generator calls share), by content hash. Id lists are packed: ids grouped by section slug, their
//! numbers sorted and the gaps Rice-coded (a few bits an id: 900 bullets shown of 10,000 take
//! about 600 bytes), so a selection of a large playbook costs hundreds of bytes, not kilobytes.
//! A sample's row refers to its list by hash (an integer in place of the bytes) once the list is
//! larger than a reference is worth: rows stay small enough to live in their table's pages.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, StoreError};
use crate::delta::content_hash;
use crate::playbook::parse_bullet_id;

/// Stores `body` once; its key, or `None` if another body holds its hash (then the caller stores
/// the value in place: a collision never mixes two values up).
pub(super) fn intern(conn: &Connection, body: &[u8]) -> Result<Option<i64>> {
    let hash = content_hash(body) as i64;
    conn.prepare_cached("INSERT OR IGNORE INTO blobs (hash, body) VALUES (?1, ?2)")?
        .execute(params![hash, body])?;
    let stored: Vec<u8> = conn
        .prepare_cached("SELECT body FROM blobs WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))?;
    Ok((stored == body).then_some(hash))
}

pub(super) fn fetch(conn: &Connection, hash: i64) -> Result<Vec<u8>> {
    conn.prepare_cached("SELECT body FROM blobs WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::Corrupt(format!("stored text {hash} is missing")))
}

/// Marks a text stored compressed (raw DEFLATE after it): no UTF-8 text starts with this byte.
const DEFLATED: u8 = 0xFF;

/// Texts at least this long are stored compressed when that makes them smaller.
const COMPRESS_FROM: usize = 256;

/// A decompressed text may not exceed this (a corrupt body is an error, not an allocation).
const TEXT_LIMIT: usize = 64 << 20;

fn text_body(text: &str) -> Vec<u8> {
    if text.len() >= COMPRESS_FROM {
        let packed = miniz_oxide::deflate::compress_to_vec(text.as_bytes(), 6);
        if packed.len() + 1 < text.len() {
            let mut body = Vec::with_capacity(packed.len() + 1);
            body.push(DEFLATED);
            body.extend(packed);
            return body;
        }
    }
    text.as_bytes().to_vec()
}

/// The text a stored body holds: as it is, or inflated when it is marked compressed.
pub fn body_text(body: &[u8]) -> Result<String> {
    match body.split_first() {
        Some((&DEFLATED, packed)) => {
            let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(packed, TEXT_LIMIT)
                .map_err(|e| StoreError::Corrupt(format!("a stored text does not inflate: {e}")))?;
            String::from_utf8(raw)
                .map_err(|_| StoreError::Corrupt("a stored text is not UTF-8".into()))
        }
        _ => Ok(String::from_utf8_lossy(body).into_owned()),
    }
}

/// Stores `text` once, compressed when long (its key is the hash of the text itself); its key,
/// or `None` if another text holds its hash (then the caller stores it in place).
pub(super) fn intern_text(conn: &Connection, text: &str) -> Result<Option<i64>> {
    let hash = content_hash(text.as_bytes()) as i64;
    let held = |conn: &Connection| -> Result<Option<Vec<u8>>> {
        Ok(conn
            .prepare_cached("SELECT body FROM blobs WHERE hash = ?1")?
            .query_row([hash], |r| r.get(0))
            .optional()?)
    };
    // compressed only when not stored yet
    let stored = match held(conn)? {
        Some(body) => body,
        None => {
            conn.prepare_cached("INSERT INTO blobs (hash, body) VALUES (?1, ?2)")?
                .execute(params![hash, text_body(text)])?;
            return Ok(Some(hash));
        }
    };
    Ok((body_text(&stored).ok().as_deref() == Some(text)).then_some(hash))
}

/// The text stored under `hash` by [`intern_text`] (or [`intern`], uncompressed).
pub(super) fn fetch_text(conn: &Connection, hash: i64) -> Result<String> {
    body_text(&fetch(conn, hash)?)
}

/// Schema 9 → 8: every compressed text stored whole again (version 8 reads bodies as they are).
pub(super) fn inflate_all(conn: &Connection) -> Result<()> {
    let packed: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT hash, body FROM blobs WHERE substr(body, 1, 1) = x'FF'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = conn.prepare("UPDATE blobs SET body = ?2 WHERE hash = ?1")?;
    for (hash, body) in packed {
        update.execute(params![hash, body_text(&body)?.into_bytes()])?;
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

const JSON: u8 = 0;
/// Gaps as varints (schema 5's first form; still read).
const PACKED: u8 = 1;
/// Gaps Rice-coded: per slug, the parameter k, then each gap as a unary quotient and k low bits.
const RICE: u8 = 2;

/// Below this many bytes a list is kept in its row (a reference and its blob row cost more).
const INLINE: usize = 48;

/// What a sample's row stores for `ids`: the packed list, or (when it is larger than
/// [`INLINE`]) its hash, the list interned in `blobs`.
pub(super) fn store_ids(conn: &Connection, ids: &[String]) -> Result<rusqlite::types::Value> {
    use rusqlite::types::Value;
    let packed = pack_ids(ids);
    if packed.len() > INLINE
        && let Some(hash) = intern(conn, &packed)?
    {
        return Ok(Value::Integer(hash));
    }
    Ok(Value::Blob(packed))
}

/// SQL that reads a row's stored id list as bytes, whether kept in place or by reference (`col`
/// is the column, e.g. `s.shown`).
pub(super) fn ids_sql(col: &str) -> String {
    format!(
        "CASE WHEN typeof({col}) = 'integer' THEN (SELECT body FROM blobs WHERE hash = {col}) ELSE {col} END"
    )
}

/// Bits for the Rice code of `gaps` with parameter `k`.
fn rice_bits(gaps: &[u64], k: u32) -> u64 {
    gaps.iter().fold(0u64, |bits, g| {
        bits.saturating_add((g >> k).saturating_add(1 + u64::from(k)))
    })
}

struct Bits<'a> {
    out: &'a mut Vec<u8>,
    used: u32,
}

impl Bits<'_> {
    fn push(&mut self, bit: bool) {
        if self.used == 0 {
            self.out.push(0);
        }
        if bit {
            *self.out.last_mut().expect("pushed above") |= 1 << self.used;
        }
        self.used = (self.used + 1) % 8;
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    used: u32,
}

impl Reader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let b = *self.bytes.get(self.at)?;
        let bit = b >> self.used & 1 == 1;
        self.used += 1;
        if self.used == 8 {
            self.used = 0;
            self.at += 1;
        }
        Some(bit)
    }

    /// The byte after the last one read from (a partly read byte counts as read).
    fn end(&self) -> usize {
        self.at + usize::from(self.used > 0)
    }
}

/// An id list packed (as a set: read back sorted by slug and number), or as JSON when an id is not
/// of the `slug-00042` form or repeats.
pub fn pack_ids(ids: &[String]) -> Vec<u8> {
    let mut groups: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    let canonical = ids.iter().all(|id| match parse_bullet_id(id) {
        Some((slug, n)) if format!("{slug}-{n:05}") == *id => {
            groups.entry(slug).or_default().push(n);
            true
        }
        _ => false,
    });
    let unique = groups.values_mut().all(|ns| {
        let before = ns.len();
        ns.sort_unstable();
        ns.dedup();
        ns.len() == before
    });
    if !canonical || !unique {
        let mut out = vec![JSON];
        out.extend(serde_json::to_vec(ids).unwrap_or_default());
        return out;
    }
    let mut out = vec![RICE];
    put_varint(&mut out, groups.len() as u64);
    for (slug, numbers) in groups {
        put_varint(&mut out, slug.len() as u64);
        out.extend_from_slice(slug.as_bytes());
        put_varint(&mut out, numbers.len() as u64);
        let Some(&first) = numbers.first() else {
            continue;
        };
        // the first number as a varint, then the gaps less one (the numbers are distinct)
        put_varint(&mut out, first);
        let gaps: Vec<u64> = numbers.windows(2).map(|w| w[1] - w[0] - 1).collect();
        let k = (0..64).min_by_key(|&k| rice_bits(&gaps, k)).unwrap_or(0);
        out.push(k as u8);
        let mut bits = Bits {
            out: &mut out,
            used: 0,
        };
        for g in gaps {
            for _ in 0..g >> k {
                bits.push(true);
            }
            bits.push(false);
            for i in 0..k {
                bits.push(g >> i & 1 == 1);
            }
        }
    }
    out
}

/// A packed group's slug and how many numbers follow.
fn group_header<'a>(bytes: &'a [u8], at: &mut usize) -> Option<(&'a str, u64)> {
    let len = get_varint(bytes, at)? as usize;
    let slug = std::str::from_utf8(bytes.get(*at..at.checked_add(len)?)?).ok()?;
    *at += len;
    Some((slug, get_varint(bytes, at)?))
}

pub fn unpack_ids(bytes: &[u8]) -> Option<Vec<String>> {
    match *bytes.first()? {
        JSON => serde_json::from_slice(&bytes[1..]).ok(),
        PACKED => {
            let mut at = 1;
            let mut ids = Vec::new();
            for _ in 0..get_varint(bytes, &mut at)? {
                let (slug, count) = group_header(bytes, &mut at)?;
                let mut n = 0u64;
                for _ in 0..count {
                    n += get_varint(bytes, &mut at)?;
                    ids.push(format!("{slug}-{n:05}"));
                }
            }
            (at == bytes.len()).then_some(ids)
        }
        RICE => {
            let mut at = 1;
            let mut ids = Vec::new();
            for _ in 0..get_varint(bytes, &mut at)? {
                let (slug, count) = group_header(bytes, &mut at)?;
                if count == 0 {
                    continue;
                }
                let mut n = get_varint(bytes, &mut at)?;
                ids.push(format!("{slug}-{n:05}"));
                let k = u32::from(*bytes.get(at)?);
                at += 1;
                if k >= 64 {
                    return None;
                }
                let mut read = Reader { bytes, at, used: 0 };
                for _ in 1..count {
                    let mut q = 0u64;
                    while read.bit()? {
                        q += 1;
                    }
                    let mut g = q.checked_shl(k)?;
                    for b in 0..k {
                        g |= u64::from(read.bit()?) << b;
                    }
                    n = n.checked_add(g)?.checked_add(1)?;
                    ids.push(format!("{slug}-{n:05}"));
                }
                at = read.end();
            }
            (at == bytes.len()).then_some(ids)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_pack_small_and_read_back_as_the_same_set() {
        let ids: Vec<String> = (1..=700)
            .map(|i| format!("{}-{:05}", ["shr", "calc", "vc"][i % 3], i * 13))
            .collect();
        let packed = pack_ids(&ids);
        // gaps of 39 within a slug: 5 bits for the remainder, 1 for the quotient's end
        assert!(packed.len() < ids.len(), "{} bytes", packed.len());
        let mut back = unpack_ids(&packed).unwrap();
        let mut sorted = ids.clone();
        back.sort();
        sorted.sort();
        assert_eq!(back, sorted);
        // ids of other forms are kept exactly, in order
        for odd in [
            vec!["x-1".to_string(), "shr-00002".into()],
            vec!["shr-00002".into(), "shr-00002".into()],
            vec![],
        ] {
            assert_eq!(unpack_ids(&pack_ids(&odd)).unwrap(), odd);
        }
        assert_eq!(unpack_ids(&[PACKED, 5]), None);
        assert_eq!(unpack_ids(&[RICE, 1, 1, b'a', 3, 2, 0, 0xff]), None);
        // the first form still reads
        assert_eq!(
            unpack_ids(&[PACKED, 1, 1, b'a', 2, 3, 4]).unwrap(),
            vec!["a-00003".to_string(), "a-00007".into()]
        );
    }

    #[test]
    fn any_set_of_numbered_ids_round_trips() {
        // a deterministic spread of sizes, gaps and slugs (0, huge numbers, dense runs, sparse ones)
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..300 {
            let len = (next() % 400) as usize;
            let spread = [2u64, 10, 1000, 1 << 40][case % 4];
            let mut ids: Vec<String> = (0..len)
                .map(|_| {
                    format!(
                        "{}-{:05}",
                        ["s", "ab-c", "x"][(next() % 3) as usize],
                        next() % spread
                    )
                })
                .collect();
            ids.sort();
            ids.dedup();
            let mut back = unpack_ids(&pack_ids(&ids)).unwrap();
            back.sort();
            assert_eq!(back, ids, "case {case}");
        }
    }
}
