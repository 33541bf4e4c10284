//! docs/sql.md cannot rot: its worked examples run through `psql` against
//! the data set of the PostgreSQL tests and must print what the page shows,
//! and its column lists must be those of `core/src/schema/`.

use std::path::Path;

use super::harness::Server;
use super::postgres::{conninfo, populate, psql, stdout};

fn repository(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Each ```sql block of docs/sql.md that is followed by a ```text block:
/// the query and what psql prints for it.
fn documented_examples() -> Vec<(String, String)> {
    let doc = repository("docs/sql.md");
    let mut examples = Vec::new();
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```sql\n") {
        let after = &rest[start + "```sql\n".len()..];
        let end = after.find("```").expect("a closed sql block");
        let sql = after[..end].trim().to_owned();
        rest = &after[end + 3..];
        if let Some(output) = rest.trim_start().strip_prefix("```text\n") {
            let end = output.find("```").expect("a closed text block");
            examples.push((sql, output[..end].to_owned()));
            rest = &output[end + 3..];
        }
    }
    examples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worked_example_prints_what_the_page_shows() {
    let server = Server::start();
    populate(&server).await;
    let conninfo = conninfo(&server);
    let examples = documented_examples();
    assert!(
        examples.len() >= 4,
        "docs/sql.md has {} examples",
        examples.len()
    );
    let mut wrong = Vec::new();
    for (sql, expected) in examples {
        let output = stdout(&psql(&conninfo, None, &[&sql]).await);
        if output != expected {
            wrong.push(format!(
                "```sql\n{sql}\n```\n\nprints\n\n```text\n{output}```\n"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/sql.md shows other answers:\n\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_column_lists_are_those_of_the_schemas() {
    let doc = repository("docs/sql.md");
    for source in [
        "core/src/schema/spans.rs",
        "core/src/schema/logs.rs",
        "core/src/schema/metrics.rs",
        "core/src/schema/verdicts.rs",
        "queries/src/templates_table.rs",
    ] {
        let text = repository(source);
        let table: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("//! "))
            .filter(|line| line.starts_with('|'))
            .collect();
        assert!(!table.is_empty(), "no column table in {source}");
        assert!(
            doc.contains(&table.join("\n")),
            "docs/sql.md does not list the columns of {source} as it does:\n{}",
            table.join("\n")
        );
    }
}
