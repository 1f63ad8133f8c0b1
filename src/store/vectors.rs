//! Embedding vectors cached by model and text, so a text is embedded once per model.

use std::collections::HashMap;

use rusqlite::params;

use super::{Result, Store, classify};

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Store {
    /// The cached vectors of `model` for these text keys (missing ones are left out).
    pub fn cached_vectors(&self, model: &str, keys: &[u64]) -> Result<HashMap<u64, Vec<f32>>> {
        self.require_latest()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT vector FROM embeddings WHERE model = ?1 AND hash = ?2")?;
        let mut out = HashMap::new();
        for key in keys {
            let mut rows = stmt.query(params![model, *key as i64])?;
            if let Some(row) = rows.next()? {
                out.insert(*key, from_blob(&row.get::<_, Vec<u8>>(0)?));
            }
        }
        Ok(out)
    }

    /// Caches vectors of `model` by text key (derived data: one short transaction of its own).
    pub fn cache_vectors(&mut self, model: &str, vectors: &[(u64, Vec<f32>)]) -> Result<()> {
        let tx = self.begin()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO embeddings (model, hash, dim, vector) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (key, v) in vectors {
                stmt.execute(params![model, *key as i64, v.len() as i64, to_blob(v)])?;
            }
        }
        tx.commit().map_err(classify)
    }
}
