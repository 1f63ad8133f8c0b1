//! A scripted model world for loop tests: the generator answers right only when the playbook in its
//! prompt holds the lesson for that kind of task; the curator proposes the lesson after a wrong answer
//! unless the playbook already has it. Only a loop that truly feeds approved bullets back can learn here.

use std::path::Path;

use ace::llm::mock::{Rule, Script};
use serde_json::json;

pub const ZORB: &str = "The zorb of a number is twice the number.";
pub const FLIP: &str = "To flip a number, reverse its digits.";

pub fn dataset(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("world.jsonl");
    let lines = [
        json!({"question": "ZORB task: what is the zorb of 6?", "ground_truth": "12"}),
        json!({"question": "FLIP task: flip 12.", "ground_truth": "21"}),
        json!({"question": "ZORB task: what is the zorb of 10?", "ground_truth": "20"}),
        json!({"question": "FLIP task: flip 34.", "ground_truth": "43"}),
    ];
    std::fs::write(
        &path,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    path
}

fn generator(when: &[&str], answer: &str, delay_ms: Option<u64>) -> Rule {
    Rule {
        role: Some("generator".into()),
        when_contains: when.iter().map(|s| s.to_string()).collect(),
        reply: Some(
            json!({"reasoning": "per [calc-00001] [calc-00002] [psw-00001] [psw-00002]", "bullet_ids": [], "final_answer": answer}),
        ),
        delay_ms,
        ..Rule::default()
    }
}

pub fn script(delay_ms: Option<u64>) -> Script {
    let tags = json!([{"id": "calc-00001", "tag": "helpful"}, {"id": "calc-00002", "tag": "helpful"}, {"id": "psw-00001", "tag": "helpful"}, {"id": "psw-00002", "tag": "helpful"}]);
    let reflection = |insight: &str| json!({"reasoning": "r", "error_identification": "e", "root_cause_analysis": "c", "correct_approach": "a", "key_insight": insight, "bullet_tags": tags});
    let add = |section: &str, content: &str| json!({"reasoning": "new lesson", "operations": [{"type": "ADD", "section": section, "content": content}]});
    Script {
        model: "world".into(),
        reject_formats: vec![],
        embeddings: vec![],
        rules: vec![
            generator(&["zorb of 6", ZORB], "12", delay_ms),
            generator(&["zorb of 10", ZORB], "20", delay_ms),
            generator(&["flip 12", FLIP], "21", delay_ms),
            generator(&["flip 34", FLIP], "43", delay_ms),
            generator(&[], "0", delay_ms),
            Rule {
                role: Some("reflector".into()),
                when_contains: vec!["ZORB".into()],
                reply: Some(reflection("zorb means doubling")),
                ..Rule::default()
            },
            Rule {
                role: Some("reflector".into()),
                reply: Some(reflection("flipping means reversing")),
                ..Rule::default()
            },
            Rule {
                role: Some("curator".into()),
                when_contains: vec![
                    "zorb means doubling".into(),
                    "flipping means reversing".into(),
                ],
                unless_contains: vec![ZORB.into(), FLIP.into()],
                reply: Some(json!({"reasoning": "two lessons", "operations": [
                    {"type": "ADD", "section": "FORMULAS AND CALCULATIONS", "content": ZORB},
                    {"type": "ADD", "section": "PROBLEM-SOLVING HEURISTICS AND WORKFLOWS", "content": FLIP}]})),
                ..Rule::default()
            },
            Rule {
                role: Some("curator".into()),
                when_contains: vec!["zorb means doubling".into()],
                unless_contains: vec![ZORB.into()],
                reply: Some(add("FORMULAS AND CALCULATIONS", ZORB)),
                ..Rule::default()
            },
            Rule {
                role: Some("curator".into()),
                when_contains: vec!["flipping means reversing".into()],
                unless_contains: vec![FLIP.into()],
                reply: Some(add("PROBLEM-SOLVING HEURISTICS AND WORKFLOWS", FLIP)),
                ..Rule::default()
            },
            Rule {
                role: Some("curator".into()),
                reply: Some(json!({"reasoning": "nothing new", "operations": []})),
                ..Rule::default()
            },
        ],
    }
}
