//! A managed block in an instruction file (`AGENTS.md`, `CLAUDE.md`, `.cursorrules`): the playbook
//! between two marker lines, replaced in place on every write, the rest of the file left exactly
//! as it was. Writing the same playbook twice changes nothing.

use std::path::Path;

use anyhow::{Context, Result, bail};

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- ace:playbook {name} begin (managed by ace; edits inside are replaced) -->"),
        format!("<!-- ace:playbook {name} end -->"),
    )
}

/// `text` with the playbook's block replaced (or appended), or an error if its markers are broken.
pub fn with_block(text: &str, name: &str, body: &str) -> Result<String> {
    let (begin, end) = markers(name);
    let block = format!("{begin}\n{}\n{end}", body.trim_end());
    let starts: Vec<usize> = text.match_indices(&begin).map(|(i, _)| i).collect();
    match starts.as_slice() {
        [] => {
            if text.contains(&end) {
                bail!(
                    "the file has the end marker of playbook '{name}' but no begin marker; fix it by hand"
                );
            }
            let mut out = text.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&block);
            out.push('\n');
            Ok(out)
        }
        [start] => {
            let Some(stop) = text[*start..].find(&end).map(|i| start + i + end.len()) else {
                bail!("the block of playbook '{name}' has no end marker ({end}); fix it by hand");
            };
            Ok(format!("{}{block}{}", &text[..*start], &text[stop..]))
        }
        _ => bail!("the file holds the block of playbook '{name}' twice; keep one by hand"),
    }
}

/// Writes the block into `path` (created if missing); whether the file changed.
pub fn write_block(path: &Path, name: &str, body: &str) -> Result<bool> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let new = with_block(&text, name, body)?;
    if new == text {
        return Ok(false);
    }
    // written beside and renamed: the file is never left half written
    let tmp = path.with_extension("ace-tmp");
    std::fs::write(&tmp, &new).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_added_then_replaced_in_place_and_the_rest_kept() {
        let doc = "# Agents\n\nBe kind.\n";
        let once = with_block(doc, "fin", "## S\n\n- one\n").unwrap();
        assert!(once.starts_with(doc));
        assert_eq!(with_block(&once, "fin", "## S\n\n- one\n").unwrap(), once);
        let edited = format!("{once}\nMore rules after.\n");
        let twice = with_block(&edited, "fin", "## S\n\n- two\n").unwrap();
        assert!(twice.contains("- two") && !twice.contains("- one"));
        assert!(twice.starts_with(doc) && twice.ends_with("\nMore rules after.\n"));
        // another playbook gets its own block
        let both = with_block(&twice, "other", "x").unwrap();
        assert!(
            both.contains("ace:playbook fin begin") && both.contains("ace:playbook other begin")
        );
        let broken = once.replace("<!-- ace:playbook fin end -->", "");
        assert!(with_block(&broken, "fin", "x").is_err());
    }
}
