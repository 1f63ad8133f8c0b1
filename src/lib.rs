//! `ace`: a workbench for ACE (Agentic Context Engineering) playbooks.
//!
//! The core names the paper's concepts: [`playbook`] (bullets in sections) and [`delta`] (the only
//! way a playbook changes). [`store`] keeps playbooks in SQLite with every change as a revertible
//! revision; [`cli`] is the command line on top.

pub mod adaptation;
pub mod approval;
pub mod cli;
pub mod config;
pub mod delta;
pub mod environment;
pub mod llm;
pub mod playbook;
pub mod prompts;
pub mod roles;
pub mod shared;
pub mod store;
pub mod tui;
