//! SQL here is read-only: the one place that says which statements run.
//!
//! Allowed: queries (`SELECT`, `WITH`, `VALUES`), `EXPLAIN` of a query, and
//! the `SHOW` and `DESCRIBE` statements that read the catalog. Refused, with
//! an error naming the statement: DDL (`CREATE TABLE`, `CREATE EXTERNAL
//! TABLE`, `CREATE VIEW`, `DROP`, `ALTER`, …), DML (`INSERT`, `UPDATE`,
//! `DELETE`, `MERGE`, `TRUNCATE`), `COPY`, `SET` and `RESET` (the session
//! is shared by every client), `PREPARE`/`EXECUTE` in SQL, and everything
//! else. The parsed statement is checked, and the logical plan again, so
//! a front end that plans by itself (the PostgreSQL wire protocol) is held
//! to the same rule.
//!
//! No function can touch files: DataFusion registers only `generate_series`
//! and `range` as table functions, the pg_catalog adds `pg_get_keywords`,
//! and reading a file by naming it (`SELECT * FROM 'x.parquet'`) is off.

use datafusion::common::tree_node::{TreeNode as _, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use crate::error::{Error, Result};

/// Whether a DataFusion statement may run.
pub(crate) fn check_statement(statement: &DfStatement) -> Result<()> {
    match statement {
        DfStatement::Statement(statement) => check(statement),
        DfStatement::Explain(explain) => check_statement(&explain.statement),
        DfStatement::CreateExternalTable(_) => refuse("CREATE EXTERNAL TABLE"),
        DfStatement::CopyTo(_) => refuse("COPY"),
        DfStatement::Reset(_) => refuse("RESET"),
    }
}

/// Whether a SQL statement may run.
pub fn check(statement: &Statement) -> Result<()> {
    match statement {
        Statement::Query(_)
        | Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowViews { .. } => Ok(()),
        Statement::Explain { statement, .. } => check(statement),
        other => refuse(&statement_name(&other.to_string())),
    }
}

/// Whether a logical plan only reads.
pub(crate) fn check_plan(plan: &LogicalPlan) -> Result<()> {
    let mut refused = None;
    plan.apply(|node| {
        let name = match node {
            LogicalPlan::Ddl(ddl) => Some(ddl.name().to_owned()),
            LogicalPlan::Dml(dml) => Some(dml.op.to_string()),
            LogicalPlan::Copy(_) => Some("COPY".to_owned()),
            LogicalPlan::Statement(statement) => Some(statement.name().to_owned()),
            _ => None,
        };
        match name {
            Some(name) => {
                refused = Some(name);
                Ok(TreeNodeRecursion::Stop)
            }
            None => Ok(TreeNodeRecursion::Continue),
        }
    })?;
    match refused {
        Some(name) => refuse(&name),
        None => Ok(()),
    }
}

fn refuse(what: &str) -> Result<()> {
    Err(Error::ReadOnly(what.to_owned()))
}

/// The statement's leading keywords (`CREATE TABLE`, `DROP VIEW`, `SET`):
/// what a user recognises as the statement's kind.
fn statement_name(sql: &str) -> String {
    const OBJECTS: &[&str] = &[
        "TABLE",
        "VIEW",
        "SCHEMA",
        "DATABASE",
        "FUNCTION",
        "INDEX",
        "ROLE",
        "USER",
        "TYPE",
        "EXTENSION",
        "SEQUENCE",
        "CATALOG",
        "MACRO",
        "TRIGGER",
        "POLICY",
        "SECRET",
    ];
    let mut words = Vec::new();
    for word in sql.split_whitespace().take(4) {
        let is_keyword = word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if !is_keyword || word.is_empty() {
            break;
        }
        words.push(word);
        if words.len() > 1 && OBJECTS.contains(&word) {
            break;
        }
        if words.len() == 1 && !matches!(word, "CREATE" | "DROP" | "ALTER" | "INSERT" | "DELETE") {
            break;
        }
    }
    if words.is_empty() {
        "this statement".to_owned()
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_named_by_their_keywords() {
        for (sql, name) in [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            (
                "CREATE OR REPLACE VIEW v AS SELECT 1",
                "CREATE OR REPLACE VIEW",
            ),
            ("DROP TABLE spans", "DROP TABLE"),
            ("INSERT INTO spans VALUES (1)", "INSERT INTO"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("TRUNCATE TABLE spans", "TRUNCATE"),
            ("UPDATE spans SET a = 1", "UPDATE"),
        ] {
            assert_eq!(statement_name(sql), name, "{sql}");
        }
    }
}
