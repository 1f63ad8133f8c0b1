//! The integration tests, one crate (one link) with a module per subject.

mod common;
mod world;

mod adaptation;
mod agents;
mod cli;
mod concurrency;
mod delta_apply;
mod delta_rules;
mod formula;
mod import_export;
mod laws;
mod llm_client;
mod migrations;
mod prompts;
mod real_server;
mod refine;
mod revisions;
mod roles;
mod sections;
mod trust;
mod tui;
mod tui_flow;
mod workbench_tmux;
