//! Assembled prompts: snapshots, a stable cacheable prefix, and top-k retrieval.

use crate::common::*;
use ace::llm::Role;
use ace::playbook::Playbook;
use ace::prompts::{self, ReflectorPrompt};

fn playbook() -> Playbook {
    finance_store().load_playbook("fin").unwrap()
}

fn show(p: &prompts::Prompt) -> String {
    p.messages
        .iter()
        .map(|m| format!("--- {} ---\n{}", m.role, m.content))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn generator_prompt() {
    let p = prompts::generator(
        &prompts::render_playbook(&playbook()),
        "Find the current ratio.",
        "Assets 1,000; liabilities 500.",
        None,
    );
    insta::assert_snapshot!(show(&p));
    let retry = prompts::generator(
        &prompts::render_playbook(&playbook()),
        "Find the current ratio.",
        "",
        Some("Error: multiplied instead of dividing."),
    );
    insta::assert_snapshot!("generator_retry", show(&retry));
}

#[test]
fn reflector_prompt() {
    let pb = playbook();
    let used = vec![pb.bullet("calc-00001").unwrap().clone()];
    let p = prompts::reflector(&ReflectorPrompt {
        question: "Find the current ratio.",
        context: "",
        reasoning: "Per [calc-00001], 1000 * 500.",
        answer: "500000",
        ground_truth: Some("2.00"),
        feedback: "wrong: expected 2.00, got 500000",
        used: &used,
        previous: None,
    });
    insta::assert_snapshot!(show(&p));
}

#[test]
fn curator_prompt() {
    let p = prompts::curator(
        &prompts::render_playbook(&playbook()),
        "bullets: 4",
        "[1] task: Find the current ratio.\nKey insight: divide, do not multiply.",
    );
    insta::assert_snapshot!(show(&p));
}

#[test]
fn consecutive_prompts_share_the_whole_system_message() {
    let pb = prompts::render_playbook(&playbook());
    let a = prompts::generator(&pb, "Question one?", "", None);
    let b = prompts::generator(&pb, "Question two?", "ctx", Some("reflection"));
    assert_eq!(
        a.messages[0], b.messages[0],
        "the playbook and instructions form a stable prefix"
    );
    assert_ne!(a.messages[1], b.messages[1]);
    assert_eq!(a.version, prompts::version(Role::Generator));
}

#[test]
fn the_playbook_renders_in_a_stable_order_with_counters() {
    let text = prompts::render_playbook(&playbook());
    assert_eq!(
        text,
        "## FORMULAS AND CALCULATIONS\n[calc-00001] helpful=3 harmful=1 :: Current ratio = current assets / current liabilities.\n\
         [calc-00002] helpful=0 harmful=0 :: ROI = (gain - cost) / cost.\n\n## COMMON MISTAKES TO AVOID\n\
         [err-00003] helpful=0 harmful=0 :: Strip thousands separators before dividing.\n\n## OTHERS\n\
         [misc-00004] helpful=0 harmful=0 :: Answer with exactly two decimals."
    );
    assert_eq!(
        prompts::render_playbook(&Playbook::default()),
        "(the playbook is empty so far)"
    );
}

#[test]
fn retrieval_keeps_the_most_relevant_bullets_in_order_with_all_headers() {
    let pb = playbook();
    let subset = prompts::retrieve(
        &pb,
        "What is the current ratio of assets to liabilities?",
        2,
        1000,
    )
    .unwrap();
    let ids: Vec<&str> = subset.bullets.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids[0], "calc-00001", "{ids:?}");
    assert!(ids.len() <= 2);
    assert_eq!(subset.sections.len(), 3, "section headers are kept");
    let text = prompts::render_playbook(&subset);
    assert!(text.contains("## OTHERS"));
    // the token budget caps what is shown
    let tiny = prompts::retrieve(
        &pb,
        "current ratio assets liabilities dividing separators",
        10,
        5,
    )
    .unwrap();
    assert!(tiny.bullets.is_empty());
    // words that look like FTS5 syntax are just words
    prompts::retrieve(&pb, "NEAR(\"x\" OR) AND * ^ -", 3, 1000).unwrap();
}
