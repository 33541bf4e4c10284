//! The `templates` SQL table reads the ingest miner: the adapter between
//! the two crates, which may not depend on each other.

use grayscope_ingest::LogMining;
use grayscope_queries::{TemplateRow, TemplateSource};

/// The server's template miner as the source of the `templates` table.
#[derive(Debug, Clone)]
pub struct MinerTemplates(pub LogMining);

impl TemplateSource for MinerTemplates {
    fn templates(&self) -> Vec<TemplateRow> {
        self.0
            .templates_resolved()
            .into_iter()
            .map(|(t, current)| TemplateRow {
                id: t.id.as_u64(),
                template: t.template,
                first_seen_unix_nano: t.first_seen,
                last_seen_unix_nano: t.last_seen,
                count: t.count,
                parent_id: t.parent_id.map(|p| p.as_u64()),
                current_id: current.map(|c| c.as_u64()),
            })
            .collect()
    }
}
