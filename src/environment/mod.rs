//! Environments score an answer: `{correct, score, feedback}`. Exact, numeric, contains, regex, JSON
//! equality, and an external command; plus datasets ([`dataset`]).

pub mod dataset;
pub mod traces;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

pub use dataset::{Dataset, DatasetError, FieldMap, Sample};
pub use traces::Trace;

use crate::llm::BoxFuture;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub correct: bool,
    pub score: f64,
    pub feedback: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EnvError {
    #[error("sample {0} has no ground truth, which the {1} environment needs")]
    NoGroundTruth(String, &'static str),
    #[error("{0}")]
    Command(String),
    #[error("invalid environment '{spec}': {detail}")]
    Spec { spec: String, detail: String },
}

/// What scores answers. Written and read as its spec (`numeric`, `regex:PATTERN`, `cmd:COMMAND`, …),
/// so a stored run configuration names it the way a person typed it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Environment {
    #[default]
    Exact,
    Numeric {
        abs_tol: f64,
        rel_tol: f64,
    },
    Contains,
    /// Correct if the answer matches; `{ground_truth}` in the pattern stands for the escaped truth.
    Regex(String),
    Json,
    /// `sh -c COMMAND`, sample and answer as JSON on stdin, `{correct, score?, feedback?}` on stdout.
    Command {
        command: String,
        timeout: Duration,
    },
}

impl Environment {
    /// Parses `exact|numeric|contains|regex:PATTERN|json|cmd:COMMAND`.
    pub fn parse(spec: &str) -> Result<Environment, EnvError> {
        let bad = |detail: &str| EnvError::Spec {
            spec: spec.to_string(),
            detail: detail.to_string(),
        };
        Ok(match spec {
            "exact" => Environment::Exact,
            "numeric" => Environment::Numeric {
                abs_tol: 1e-9,
                rel_tol: 1e-6,
            },
            "contains" => Environment::Contains,
            "json" => Environment::Json,
            _ if spec.starts_with("regex:") => {
                let pattern = &spec["regex:".len()..];
                regex::Regex::new(&pattern.replace("{ground_truth}", "x"))
                    .map_err(|e| bad(&e.to_string()))?;
                Environment::Regex(pattern.to_string())
            }
            _ if spec.starts_with("cmd:") => {
                let command = spec["cmd:".len()..].trim();
                if command.is_empty() {
                    return Err(bad("cmd: needs a command"));
                }
                Environment::Command {
                    command: command.to_string(),
                    timeout: Duration::from_secs(30),
                }
            }
            _ => {
                return Err(bad(
                    "use exact, numeric, contains, regex:PATTERN, json or cmd:COMMAND",
                ));
            }
        })
    }

    /// The spec this environment was parsed from ([`Environment::parse`] reads it back).
    pub fn spec(&self) -> String {
        match self {
            Environment::Regex(pattern) => format!("regex:{pattern}"),
            Environment::Command { command, .. } => format!("cmd:{command}"),
            other => other.name().to_string(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Environment::Exact => "exact",
            Environment::Numeric { .. } => "numeric",
            Environment::Contains => "contains",
            Environment::Regex(_) => "regex",
            Environment::Json => "json",
            Environment::Command { .. } => "cmd",
        }
    }

    /// Whether this environment compares with the ground truth (all but `cmd`, which judges itself).
    pub fn needs_ground_truth(&self) -> bool {
        !matches!(self, Environment::Command { .. } | Environment::Regex(_))
    }

    pub fn evaluate<'a>(
        &'a self,
        sample: &'a Sample,
        answer: &'a str,
    ) -> BoxFuture<'a, Result<Verdict, EnvError>> {
        Box::pin(async move {
            if let Environment::Command { command, timeout } = self {
                return run_command(command, *timeout, sample, answer).await;
            }
            let truth = sample.ground_truth.as_deref();
            if self.needs_ground_truth() && truth.is_none() {
                return Err(EnvError::NoGroundTruth(sample.id.clone(), self.name()));
            }
            let truth = truth.unwrap_or_default();
            let correct = match self {
                Environment::Exact => normalize(answer) == normalize(truth),
                Environment::Numeric { abs_tol, rel_tol } => {
                    match (last_number(answer), last_number(truth)) {
                        (Some(a), Some(t)) => (a - t).abs() <= abs_tol.max(rel_tol * t.abs()),
                        _ => false,
                    }
                }
                Environment::Contains => normalize(answer).contains(&normalize(truth)),
                Environment::Regex(pattern) => {
                    let pattern = pattern.replace("{ground_truth}", &regex::escape(truth));
                    regex::Regex::new(&pattern)
                        .map(|re| re.is_match(answer.trim()))
                        .unwrap_or(false)
                }
                Environment::Json => match (
                    serde_json::from_str::<Value>(answer.trim()),
                    serde_json::from_str::<Value>(truth.trim()),
                ) {
                    (Ok(a), Ok(t)) => json_equal(&a, &t),
                    _ => false,
                },
                Environment::Command { .. } => unreachable!("handled above"),
            };
            let feedback = if correct {
                format!("correct ({} match)", self.name())
            } else if sample.ground_truth.is_some() {
                format!("wrong: expected {truth}, got {}", answer.trim())
            } else {
                "wrong".to_string()
            };
            Ok(Verdict {
                correct,
                score: if correct { 1.0 } else { 0.0 },
                feedback,
            })
        })
    }
}

/// Lowercase, whitespace collapsed, surrounding quotes and a final period removed.
pub fn normalize(s: &str) -> String {
    let collapsed = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    collapsed
        .trim_matches(|c| c == '"' || c == '\'')
        .trim_end_matches('.')
        .trim()
        .to_string()
}

/// The last number in the text: thousands separators, `$` and `%` ignored (`"$1,234.50"` → 1234.5).
pub fn last_number(s: &str) -> Option<f64> {
    let cleaned: String = s.chars().filter(|c| *c != ',' && *c != '$').collect();
    let mut best = None;
    let bytes: Vec<char> = cleaned.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if (bytes[i] == '-' || bytes[i] == '+')
            && i + 1 < bytes.len()
            && (bytes[i + 1].is_ascii_digit() || bytes[i + 1] == '.')
        {
            i += 1;
        }
        let digits_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == '.') {
            i += 1;
        }
        if i > digits_start {
            let text: String = bytes[start..i].iter().collect();
            if let Ok(v) = text.trim_end_matches('.').parse::<f64>() {
                best = Some(v);
            }
        } else {
            i = start + 1;
        }
    }
    best
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

async fn run_command(
    command: &str,
    timeout: Duration,
    sample: &Sample,
    answer: &str,
) -> Result<Verdict, EnvError> {
    let input = json!({"id": sample.id, "question": sample.question, "context": sample.context, "answer": answer,
                       "ground_truth": sample.ground_truth, "metadata": sample.metadata});
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| EnvError::Command(format!("cannot start `{command}`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.to_string().as_bytes()).await;
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            EnvError::Command(format!(
                "`{command}` gave no verdict within {} s",
                timeout.as_secs_f64()
            ))
        })?
        .map_err(|e| EnvError::Command(format!("`{command}` failed: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(EnvError::Command(format!(
            "`{command}` exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let reply: Value = serde_json::from_str(stdout.trim()).map_err(|_| {
        EnvError::Command(format!("`{command}` replied {:?}; expected JSON like {{\"correct\": true, \"score\": 1.0, \"feedback\": \"…\"}}", stdout.trim()))
    })?;
    let correct = reply
        .get("correct")
        .and_then(Value::as_bool)
        .ok_or_else(|| {
            EnvError::Command(format!(
                "`{command}` replied without a boolean \"correct\": {reply}"
            ))
        })?;
    Ok(Verdict {
        correct,
        score: reply
            .get("score")
            .and_then(Value::as_f64)
            .unwrap_or(if correct { 1.0 } else { 0.0 }),
        feedback: reply
            .get("feedback")
            .and_then(Value::as_str)
            .unwrap_or(if correct { "correct" } else { "wrong" })
            .to_string(),
    })
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.spec())
    }
}

impl std::str::FromStr for Environment {
    type Err = EnvError;
    fn from_str(s: &str) -> Result<Self, EnvError> {
        Environment::parse(s)
    }
}

impl Serialize for Environment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.spec())
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = String::deserialize(deserializer)?;
        Environment::parse(&spec).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(truth: &str) -> Sample {
        Sample {
            id: "s".into(),
            question: "q".into(),
            context: String::new(),
            ground_truth: Some(truth.into()),
            metadata: Value::Null,
            trace: None,
        }
    }

    async fn judge(env: &str, truth: &str, answer: &str) -> bool {
        Environment::parse(env)
            .unwrap()
            .evaluate(&sample(truth), answer)
            .await
            .unwrap()
            .correct
    }

    #[tokio::test]
    async fn each_environment() {
        assert!(judge("exact", "Paris", "  paris. ").await);
        assert!(!judge("exact", "Paris", "Lyon").await);
        assert!(judge("numeric", "2.0", "2.00").await);
        assert!(judge("numeric", "1,234.5", "The answer is $1234.50").await);
        assert!(judge("numeric", "-0.25", "-0.250").await);
        assert!(!judge("numeric", "2.0", "2.01").await);
        assert!(!judge("numeric", "2.0", "no number").await);
        assert!(judge("contains", "blue", "It is Blue, clearly").await);
        assert!(judge("regex:^\\d+\\.\\d{2}$", "x", "12.50").await);
        assert!(judge("regex:^{ground_truth}$", "a.b", "a.b").await);
        assert!(!judge("regex:^{ground_truth}$", "a.b", "axb").await);
        assert!(judge("json", "{\"a\": [1, 2.0]}", "{\"a\": [1.0, 2]}").await);
        assert!(!judge("json", "{\"a\": 1}", "{\"a\": 2}").await);
    }

    #[tokio::test]
    async fn external_commands() {
        let ok = Environment::parse("cmd:read l; case \"$l\" in *'\"answer\":\"42\"'*) echo '{\"correct\": true, \"feedback\": \"ran fine\"}';; *) echo '{\"correct\": false, \"score\": 0.2}';; esac").unwrap();
        let v = ok.evaluate(&sample("x"), "42").await.unwrap();
        assert_eq!((v.correct, v.feedback.as_str()), (true, "ran fine"));
        let v = ok.evaluate(&sample("x"), "41").await.unwrap();
        assert_eq!((v.correct, v.score), (false, 0.2));
        let bad = Environment::parse("cmd:echo not-json").unwrap();
        let err = bad
            .evaluate(&sample("x"), "1")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("replied \"not-json\"; expected JSON"), "{err}");
        let slow = Environment::Command {
            command: "sleep 5".into(),
            timeout: Duration::from_millis(100),
        };
        assert!(
            slow.evaluate(&sample("x"), "1")
                .await
                .unwrap_err()
                .to_string()
                .contains("no verdict within")
        );
        assert!(Environment::parse("bogus").is_err());
        assert!(Environment::parse("regex:(").is_err());
    }

    #[test]
    fn an_environment_is_stored_as_its_spec_and_read_back() {
        for spec in [
            "exact",
            "numeric",
            "contains",
            "json",
            "regex:^{ground_truth}$",
            "cmd:./judge --strict",
        ] {
            let env = Environment::parse(spec).unwrap();
            assert_eq!(env.spec(), spec);
            let json = serde_json::to_value(&env).unwrap();
            assert_eq!(json, serde_json::json!(spec));
            assert_eq!(serde_json::from_value::<Environment>(json).unwrap(), env);
        }
        let err = serde_json::from_value::<Environment>(serde_json::json!("bogus")).unwrap_err();
        assert!(
            err.to_string().contains("invalid environment 'bogus'"),
            "{err}"
        );
    }
}
