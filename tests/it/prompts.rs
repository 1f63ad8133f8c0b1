//! Assembled prompts: snapshots, a stable cacheable prefix, token counts and retrieval.

use crate::common::*;
use ace::llm::Role;
use ace::playbook::{Playbook, View};
use ace::prompts::{self, Index, ReflectorPrompt, Retrieval};

fn playbook() -> Playbook {
    finance_store().load_playbook("fin").unwrap()
}

fn whole(counters: bool) -> View {
    View {
        revision: None,
        bullets: None,
        counters,
    }
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
        &playbook(),
        whole(false),
        "Find the current ratio.",
        "Assets 1,000; liabilities 500.",
        None,
    );
    insta::assert_snapshot!(show(&p));
    let retry = prompts::generator(
        &playbook(),
        whole(false),
        "Find the current ratio.",
        "",
        Some("Error: multiplied instead of dividing."),
    );
    insta::assert_snapshot!("generator_retry", show(&retry));
    // the prompt knows which playbook text it carries, to be stored by reference
    let carried = p.playbook.unwrap();
    assert!(p.messages[0].content.contains(&carried.text));
    assert_eq!(carried.view, whole(false));
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
        &playbook(),
        whole(true),
        "bullets: 4",
        "[1] task: Find the current ratio.\nKey insight: divide, do not multiply.",
    );
    insta::assert_snapshot!(show(&p));
}

#[test]
fn consecutive_generator_prompts_share_the_system_message_even_as_counters_move() {
    let mut pb = playbook();
    let a = prompts::generator(&pb, whole(false), "Question one?", "", None);
    // a batch later: the reflector's tags moved the counters
    for b in &mut pb.bullets {
        b.helpful += 3;
        b.harmful += 1;
    }
    let b = prompts::generator(
        &pb,
        whole(false),
        "Question two?",
        "ctx",
        Some("reflection"),
    );
    assert_eq!(
        a.messages[0], b.messages[0],
        "instructions and playbook form a stable prefix"
    );
    assert_ne!(a.messages[1], b.messages[1]);
    assert_eq!(a.version, prompts::version(Role::Generator));
    // the curator does see the counters move
    let c = prompts::curator(&playbook(), whole(true), "s", "r");
    let d = prompts::curator(&pb, whole(true), "s", "r");
    assert_ne!(c.messages[0], d.messages[0]);
}

#[test]
fn the_playbook_renders_in_a_stable_order_counters_for_the_curator_only() {
    let pb = playbook();
    assert_eq!(
        prompts::render(&pb, &whole(true)),
        "## FORMULAS AND CALCULATIONS\n[calc-00001] helpful=3 harmful=1 :: Current ratio = current assets / current liabilities.\n\
         [calc-00002] helpful=0 harmful=0 :: ROI = (gain - cost) / cost.\n\n## COMMON MISTAKES TO AVOID\n\
         [err-00003] helpful=0 harmful=0 :: Strip thousands separators before dividing.\n\n## OTHERS\n\
         [misc-00004] helpful=0 harmful=0 :: Answer with exactly two decimals."
    );
    assert_eq!(
        prompts::render(&pb, &whole(false)),
        "## FORMULAS AND CALCULATIONS\n[calc-00001] Current ratio = current assets / current liabilities.\n\
         [calc-00002] ROI = (gain - cost) / cost.\n\n## COMMON MISTAKES TO AVOID\n\
         [err-00003] Strip thousands separators before dividing.\n\n## OTHERS\n\
         [misc-00004] Answer with exactly two decimals."
    );
    assert_eq!(
        prompts::render(&Playbook::default(), &whole(false)),
        "(the playbook is empty so far)"
    );
    // a selection keeps playbook order and only the sections it draws from
    let some = View {
        bullets: Some(vec!["misc-00004".into(), "calc-00001".into()]),
        ..whole(false)
    };
    assert_eq!(
        prompts::render(&pb, &some),
        "## FORMULAS AND CALCULATIONS\n[calc-00001] Current ratio = current assets / current liabilities.\n\n\
         ## OTHERS\n[misc-00004] Answer with exactly two decimals."
    );
}

#[test]
fn sizes_are_counted_in_bpe_tokens_and_the_index_agrees() {
    assert_eq!(prompts::tokens(""), 0);
    assert_eq!(prompts::tokens("hello world"), 2);
    let pb = playbook();
    let counted = prompts::playbook_tokens(&pb);
    let rendered = prompts::tokens(&prompts::render(&pb, &whole(false))) as u64;
    // the sum of the lines' tokens, within a few of the rendered text's
    assert!(counted.abs_diff(rendered) <= 10, "{counted} vs {rendered}");
    assert_eq!(Index::build(&pb).total_tokens(), counted);
}

#[test]
fn retrieval_ranks_by_relevance_and_fits_the_budget() {
    let pb = playbook();
    let index = Index::build(&pb);
    let ranked: Vec<String> = index
        .search("What is the current ratio of assets to liabilities?", 10)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ranked[0], "calc-00001", "{ranked:?}");
    // under the budget the whole playbook goes in; over it, what fits, best first
    assert_eq!(index.choose(Retrieval::Auto, 10_000, &ranked), None);
    let one = index.bullet_tokens("calc-00001").unwrap();
    let tight = index.total_tokens() - 1;
    let chosen = index.choose(Retrieval::Auto, tight, &ranked).unwrap();
    assert!(chosen.contains(&"calc-00001".to_string()));
    assert!(
        index
            .choose(Retrieval::Auto, one, &ranked)
            .unwrap()
            .is_empty(),
        "headers count too"
    );
    assert_eq!(
        index.choose(Retrieval::TopK(1), 10_000, &ranked).unwrap(),
        ["calc-00001"]
    );
    assert_eq!(index.choose(Retrieval::Whole, 1, &ranked), None);
    // words that look like query syntax are just words
    index.search("NEAR(\"x\" OR) AND * ^ -", 3);
}

#[test]
fn the_index_follows_the_playbook_without_rebuilding() {
    let mut store = finance_store();
    let mut index = Index::build(&store.load_playbook("fin").unwrap());
    apply(
        &mut store,
        "fin",
        batch(
            "b",
            vec![
                add(
                    "OTHERS",
                    "Quick ratio excludes inventory from current assets.",
                ),
                remove("calc-00001"),
                update_content("err-00003", "Remove currency symbols before dividing."),
            ],
        ),
    );
    let pb = store.load_playbook("fin").unwrap();
    index.sync(&pb);
    let top = |q: &str| index.search(q, 1).first().map(|(id, _)| id.clone());
    assert_eq!(top("quick ratio inventory").as_deref(), Some("misc-00005"));
    assert_eq!(top("liabilities"), None, "the removed bullet is gone");
    assert_eq!(top("currency symbols").as_deref(), Some("err-00003"));
    assert_eq!(index.total_tokens(), prompts::playbook_tokens(&pb));
}
