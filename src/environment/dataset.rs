//! JSONL datasets: the official ACE `{"context", "target"}` lines, `{"question", "context",
//! "ground_truth", "metadata"}` lines, or any other shape through a field mapping.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `file:line` unless the line carries an `id`.
    pub id: String,
    pub question: String,
    #[serde(default)]
    pub context: String,
    pub ground_truth: Option<String>,
    #[serde(default)]
    pub metadata: Value,
    /// What an agent did (a recorded run): the loop reflects on it instead of answering itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<super::traces::Trace>,
}

/// Which JSON fields hold the question, context and answer (for datasets of other shapes).
#[derive(Debug, Clone, Default)]
pub struct FieldMap {
    pub question: Option<String>,
    pub context: Option<String>,
    pub answer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct DatasetError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub samples: Vec<Sample>,
    /// Lines skipped with `skip_bad` (line number and reason).
    pub skipped: Vec<(usize, String)>,
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn parse_line(text: &str, map: &FieldMap, id: String) -> Result<Sample, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = &value else {
        return Err("the line is not a JSON object".into());
    };
    let get = |name: &str| obj.get(name).and_then(as_text);
    let (question, context, answer) = if let Some(q) = &map.question {
        let question = get(q).ok_or_else(|| format!("no \"{q}\" field"))?;
        (
            question,
            map.context.as_deref().and_then(get).unwrap_or_default(),
            map.answer.as_deref().and_then(get),
        )
    } else if obj.contains_key("question") {
        (
            get("question").unwrap_or_default(),
            get("context").unwrap_or_default(),
            map.answer
                .as_deref()
                .and_then(get)
                .or_else(|| get("ground_truth"))
                .or_else(|| get("answer")),
        )
    } else if obj.contains_key("context") {
        // The official ACE format: the context is the whole prompt (formula, question, "Answer:").
        (
            get("context").unwrap_or_default(),
            String::new(),
            map.answer
                .as_deref()
                .and_then(get)
                .or_else(|| get("target")),
        )
    } else {
        return Err(
            "no \"question\" or \"context\" field (use --question-field to name it)".into(),
        );
    };
    if question.trim().is_empty() {
        return Err("the question is empty".into());
    }
    let id = obj.get("id").and_then(as_text).unwrap_or(id);
    Ok(Sample {
        id,
        question,
        context,
        ground_truth: answer,
        metadata: obj.get("metadata").cloned().unwrap_or(Value::Null),
        trace: None,
    })
}

/// Parses JSONL text. Blank lines are ignored. A bad line fails the whole load with file and line,
/// unless `skip_bad`, which skips and reports it.
pub fn parse(
    text: &str,
    file: &str,
    map: &FieldMap,
    skip_bad: bool,
) -> Result<Dataset, DatasetError> {
    parse_limited(text, file, map, skip_bad, DEFAULT_MAX_LINE_BYTES)
}

/// The longest dataset line read by default: 1 MiB (a task with a long context fits; a runaway
/// line is named rather than fed to a model). `ACE_MAX_LINE_BYTES` changes it.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// [`parse`] with a limit on a line's length in bytes.
pub fn parse_limited(
    text: &str,
    file: &str,
    map: &FieldMap,
    skip_bad: bool,
    max_line: usize,
) -> Result<Dataset, DatasetError> {
    parse_lines(text, file, skip_bad, max_line, |line, id| {
        parse_line(line, map, id)
    })
}

/// JSON lines through `parse_line(line, default_id)`: blank lines ignored, a line over `max_line`
/// bytes or one `parse_line` refuses fails the load with file and line (or, with `skip_bad`, is
/// skipped and reported), and a file with no samples is an error.
pub fn parse_lines(
    text: &str,
    file: &str,
    skip_bad: bool,
    max_line: usize,
    parse_line: impl Fn(&str, String) -> Result<Sample, String>,
) -> Result<Dataset, DatasetError> {
    let mut data = Dataset::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = if line.len() > max_line {
            Err(format!(
                "the line is {} bytes; the limit is {max_line} (ACE_MAX_LINE_BYTES)",
                line.len()
            ))
        } else {
            parse_line(line, format!("{file}:{}", i + 1))
        };
        match parsed {
            Ok(s) => data.samples.push(s),
            Err(reason) if skip_bad => data.skipped.push((i + 1, reason)),
            Err(reason) => {
                return Err(DatasetError {
                    file: file.to_string(),
                    line: i + 1,
                    reason,
                });
            }
        }
    }
    if data.samples.is_empty() {
        return Err(DatasetError {
            file: file.to_string(),
            line: 0,
            reason: "no samples in the file".into(),
        });
    }
    Ok(data)
}

/// Loads a JSONL file (`-` reads standard input).
pub fn load(path: &Path, map: &FieldMap, skip_bad: bool) -> Result<Dataset, DatasetError> {
    load_with(path, |text, name, max_line| {
        parse_limited(text, name, map, skip_bad, max_line)
    })
}

/// Reads `path` (`-`: standard input) and parses it with `parse(text, file name, line limit)`;
/// errors name the path as given.
pub fn load_with(
    path: &Path,
    parse: impl FnOnce(&str, &str, usize) -> Result<Dataset, DatasetError>,
) -> Result<Dataset, DatasetError> {
    let file = path.display().to_string();
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| DatasetError {
        file: file.clone(),
        line: 0,
        reason: format!("cannot read: {e}"),
    })?;
    let name = path
        .file_name()
        .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let max_line = std::env::var("ACE_MAX_LINE_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_LINE_BYTES);
    parse(&text, &name, max_line).map_err(|e| DatasetError {
        file: file.clone(),
        ..e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_and_standard_lines() {
        let text = "{\"context\": \"Q1? Answer:\", \"target\": \"2.0\"}\n\n{\"question\": \"Q2\", \"context\": \"c\", \"ground_truth\": 3, \"metadata\": {\"k\": 1}}\n";
        let d = parse(text, "d.jsonl", &FieldMap::default(), false).unwrap();
        assert_eq!(d.samples[0].question, "Q1? Answer:");
        assert_eq!(d.samples[0].ground_truth.as_deref(), Some("2.0"));
        assert_eq!(d.samples[0].id, "d.jsonl:1");
        assert_eq!(d.samples[1].ground_truth.as_deref(), Some("3"));
        assert_eq!(d.samples[1].context, "c");
    }

    #[test]
    fn mapped_fields() {
        let map = FieldMap {
            question: Some("prompt".into()),
            context: None,
            answer: Some("label".into()),
        };
        let d = parse("{\"prompt\": \"p\", \"label\": \"y\"}", "x", &map, false).unwrap();
        assert_eq!(
            (
                d.samples[0].question.as_str(),
                d.samples[0].ground_truth.as_deref()
            ),
            ("p", Some("y"))
        );
    }

    #[test]
    fn a_line_over_the_limit_is_named_before_it_is_read_as_json() {
        let long = format!(
            "{{\"question\": \"{}\", \"target\": \"1\"}}",
            "x".repeat(200)
        );
        let text = format!("{{\"question\": \"q\", \"target\": \"1\"}}\n{long}\n");
        let err = parse_limited(&text, "d.jsonl", &FieldMap::default(), false, 100).unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("d.jsonl", 2));
        assert!(err.reason.contains("the limit is 100"), "{err}");
        let ok = parse_limited(&text, "d.jsonl", &FieldMap::default(), true, 100).unwrap();
        assert_eq!((ok.samples.len(), ok.skipped.len()), (1, 1));
    }

    #[test]
    fn bad_lines_fail_with_file_and_line_or_are_skipped() {
        let text = "{\"question\": \"ok\"}\n{\"question\": \"broken\"\n{\"other\": 1}\n";
        let err = parse(text, "d.jsonl", &FieldMap::default(), false).unwrap_err();
        assert!(
            err.to_string().starts_with("d.jsonl:2: not valid JSON"),
            "{err}"
        );
        let d = parse(text, "d.jsonl", &FieldMap::default(), true).unwrap();
        assert_eq!(d.samples.len(), 1);
        assert_eq!(d.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 3]);
    }
}
