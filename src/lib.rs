//! `ace`: a workbench for ACE (Agentic Context Engineering) playbooks.
//!
//! The core names the paper's concepts, one module each: [`playbook`] (bullets in sections),
//! [`delta`] (the only way a playbook changes, and the rules of every op), [`approval`] (the queue a
//! proposal waits in), [`prompts`], [`llm`] (OpenAI-compatible models), [`roles`] (Generator,
//! Reflector, Curator), [`environment`] (scoring answers) and [`adaptation`] (the loop). The core
//! never imports a layer: [`store`] keeps playbooks, revisions, the queue and runs in SQLite and
//! implements the core's traits; [`cli`] and [`tui`] (the workbench) sit on top. [`shared`] runs
//! store jobs off the async threads for the loop and the workbench alike; [`config`] reads model
//! settings. See `docs/ARCHITECTURE.md`.

pub mod adaptation;
pub mod agent;
pub mod approval;
pub mod cli;
pub mod config;
pub mod delta;
pub mod environment;
pub mod llm;
pub mod mcp;
pub mod playbook;
pub mod prompts;
pub mod refine;
pub mod roles;
pub mod serve;
pub mod shared;
pub mod store;
pub mod text;
pub mod tui;
