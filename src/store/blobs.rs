//! What recurs across model calls, stored once: message texts (a role's system prompt is the same
//! in every call) and lists of bullet ids (what a task was shown, which the sample's row and its
//! generator calls share), by content hash. Id lists are packed: ids grouped by section slug, their
//! numbers sorted and delta-encoded as varints (about a byte an id), so a selection of a large
//! playbook costs hundreds of bytes, not kilobytes.

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

const PACKED: u8 = 1;
const JSON: u8 = 0;

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
    let mut out = vec![PACKED];
    put_varint(&mut out, groups.len() as u64);
    for (slug, numbers) in groups {
        put_varint(&mut out, slug.len() as u64);
        out.extend_from_slice(slug.as_bytes());
        put_varint(&mut out, numbers.len() as u64);
        let mut last = 0;
        for n in numbers {
            put_varint(&mut out, n - last);
            last = n;
        }
    }
    out
}

pub fn unpack_ids(bytes: &[u8]) -> Option<Vec<String>> {
    match *bytes.first()? {
        JSON => serde_json::from_slice(&bytes[1..]).ok(),
        PACKED => {
            let mut at = 1;
            let mut ids = Vec::new();
            for _ in 0..get_varint(bytes, &mut at)? {
                let len = get_varint(bytes, &mut at)? as usize;
                let slug = std::str::from_utf8(bytes.get(at..at + len)?).ok()?;
                at += len;
                let mut n = 0u64;
                for _ in 0..get_varint(bytes, &mut at)? {
                    n += get_varint(bytes, &mut at)?;
                    ids.push(format!("{slug}-{n:05}"));
                }
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
        assert!(packed.len() < 2 * ids.len(), "{} bytes", packed.len());
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
    }
}
