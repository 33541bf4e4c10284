//! Log template mining and user log rules for grayscope.
//!
//! Every log body that grayscope ingests is reduced to a *template*: the line
//! with its variable parts (numbers, ids, addresses, paths, …) written `<*>`,
//! so that `Failed password for root from 5.36.59.76 port 42393 ssh2` and the
//! same event for another user and address share
//! `Failed password for <*> from <*> port <*> ssh2`. Level 2 of the rollout
//! judge compares canary and baseline on those templates.
//!
//! - [`Miner`] is the online, Drain-style miner: tokenize and mask (one
//!   multi-pattern `regex-automata` DFA for addresses, paths, URLs and the
//!   like, plus rules for numbers, ids and other values), descend a
//!   fixed-depth prefix tree, merge by position-wise similarity with evidence
//!   that a position holds values. Ids ([`TemplateId`]) are hashes of the template
//!   text, so they survive restarts ([`Miner::save`] / [`Miner::load`]) and
//!   agree across instances; a generalised template stays resolvable to its
//!   replacement ([`Miner::resolve`]). Memory is bounded ([`MinerConfig`]).
//! - JSON and logfmt bodies are mined on their keys and value shapes.
//! - [`RuleSet`] compiles named user regexes into one multi-pattern automaton
//!   and reports every rule a line matches.
//!
//! The crate does no I/O except reading and writing its state file.
//!
//! # At ingest
//!
//! Keep one [`Miner`] per process behind a mutex and call [`Miner::mine`] for
//! each log body (`mine_bytes` when the body may not be UTF-8); store the
//! returned id and text with the record. Load the state with
//! [`Miner::load_or_new`] at start and
//! [`Miner::save`] it periodically and at shutdown; ids do not depend on it
//! (they are hashes of the text), but lineage and learned templates do.
//! [`Miner::templates`] is the `templates` table; a stored id that is no
//! longer current maps to its replacement with [`Miner::resolve`]. The first
//! miner of a process compiles the masking DFA (tens of milliseconds, once).
//!
//! # Example
//!
//! ```
//! use grayscope_patterns::{Miner, MinerConfig, RuleSet};
//!
//! let mut miner = Miner::new(MinerConfig::default());
//! let a = miner.mine("Connection closed by 173.234.31.186 [preauth]", 1);
//! let b = miner.mine("Connection closed by 5.188.10.180 [preauth]", 2);
//! assert_eq!(a.template_id, b.template_id);
//! assert_eq!(&*b.template, "Connection closed by <*> [preauth]");
//!
//! let rules = RuleSet::new(&[
//!     ("redis_timeout".to_string(), "timeout.*redis".to_string()),
//!     ("oom".to_string(), "OOMKilled".to_string()),
//! ])?;
//! assert_eq!(rules.matches("timeout while calling redis"), ["redis_timeout"]);
//! # Ok::<(), grayscope_patterns::Error>(())
//! ```

mod config;
mod error;
mod hashing;
mod lru;
mod mask;
mod miner;
mod rules;
mod slab;
mod state;
mod structured;
mod template;
mod tokenize;
mod tree;

pub use config::MinerConfig;
pub use error::{Error, Result};
pub use miner::{Mined, Miner, MinerStats};
pub use rules::{RuleHits, RuleSet};
pub use template::{ParseTemplateIdError, TemplateId, TemplateInfo};
