//! Tolerant extraction of one JSON object from model text: reasoning blocks, code fences, prose around
//! the object and trailing commas are all seen in real answers.

use serde_json::Value;

/// Removes `<think>…</think>` blocks (reasoning models), including an unclosed one at the end.
fn strip_think(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// The text inside the first ``` fence that holds a `{`, if any.
fn fenced(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let body = &after[body_start..];
        let end = body.find("```")?;
        if body[..end].contains('{') {
            return Some(&body[..end]);
        }
        rest = &body[end + 3..];
    }
    None
}

/// The first balanced `{…}` in `text` (string-aware), or from the first `{` to the end if unbalanced.
fn first_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(&text[start..=i]);
                }
            }
            _ => {}
        }
    }
    Some(&text[start..])
}

/// Removes commas that directly precede `}` or `]` (outside strings).
fn strip_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let (mut in_string, mut escaped) = (false, false);
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Finds and parses the JSON object in a model's answer. The error says what was wrong, in words a
/// repair prompt can quote back to the model.
pub fn extract_object(text: &str) -> Result<Value, String> {
    let cleaned = strip_think(text);
    let candidate = fenced(&cleaned).unwrap_or(&cleaned);
    let Some(object) = first_object(candidate) else {
        return Err("the reply contains no JSON object".into());
    };
    let parsed = serde_json::from_str::<Value>(object).or_else(|first| {
        serde_json::from_str::<Value>(&strip_trailing_commas(object)).map_err(|_| first)
    });
    match parsed {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("the reply's JSON is not an object".into()),
        Err(e) if e.is_eof() => Err(format!("the JSON object is cut off ({e})")),
        Err(e) => Err(format!("the JSON is invalid: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_object() {
        assert_eq!(extract_object(r#"{"a": 1}"#).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn fences_prose_think_and_trailing_commas() {
        let text = "<think>let me see {not this}</think>Sure! Here it is:\n```json\n{\"a\": [1, 2,], \"b\": \"x,}\",}\n```\nDone.";
        assert_eq!(
            extract_object(text).unwrap(),
            json!({"a": [1, 2], "b": "x,}"})
        );
        assert_eq!(
            extract_object("The answer is {\"a\": {\"b\": 2}} as you see").unwrap(),
            json!({"a": {"b": 2}})
        );
    }

    #[test]
    fn failures_say_why() {
        assert_eq!(
            extract_object("no json here").unwrap_err(),
            "the reply contains no JSON object"
        );
        assert!(
            extract_object(r#"{"a": [1, 2"#)
                .unwrap_err()
                .starts_with("the JSON object is cut off")
        );
        assert!(
            extract_object(r#"{"a": nope}"#)
                .unwrap_err()
                .starts_with("the JSON is invalid")
        );
    }
}
