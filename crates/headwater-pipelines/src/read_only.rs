//! The one kind of SQL the node runs: statements that only read. Ad-hoc SQL from users
//! (`/v1/sql`) and pipeline SQL from manifests both come from people who may not write files
//! on the node, create or drop tables, or change the session's settings, so every statement
//! is checked where it is first parsed (a clear refusal naming the kind of statement), and
//! planned with DataFusion's DDL, DML and statements switched off besides.

use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast;

use crate::PipelineError;

/// What planning allows: no DDL (`CREATE`, `DROP`), no DML (`INSERT`, `COPY ... TO`), no
/// statements (`SET`, transactions).
pub(crate) fn options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Refuses a statement other than a query, `SHOW` or an `EXPLAIN` of one of those.
pub(crate) fn check(statement: &Statement) -> Result<(), PipelineError> {
    let refused = |kind: &str| PipelineError::NotAQuery {
        kind: kind.to_string(),
    };
    match statement {
        Statement::Statement(s) => match s.as_ref() {
            ast::Statement::Query(_)
            | ast::Statement::ShowTables { .. }
            | ast::Statement::ShowColumns { .. }
            | ast::Statement::ShowVariable { .. } => Ok(()),
            ast::Statement::Explain { statement, .. } => match statement.as_ref() {
                ast::Statement::Query(_) => Ok(()),
                other => Err(refused(&first_words(&other.to_string()))),
            },
            other => Err(refused(&first_words(&other.to_string()))),
        },
        Statement::Explain(e) => check(&e.statement),
        Statement::CreateExternalTable(_) => Err(refused("CREATE EXTERNAL TABLE")),
        Statement::CopyTo(_) => Err(refused("COPY")),
        Statement::Reset(_) => Err(refused("RESET")),
    }
}

/// The statement's leading keywords (`CREATE TABLE`, `INSERT INTO`), for the refusal.
fn first_words(text: &str) -> String {
    text.split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase()))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Plans `sql` on `ctx`, which the caller checked with [`check`] where it parsed the statement
/// (`Engine::inputs_of`, or planning at `plan` time); DataFusion's own options refuse the same
/// again without parsing it a second time here (this runs for every micro-batch).
pub(crate) async fn sql(ctx: &SessionContext, sql: &str) -> Result<DataFrame, PipelineError> {
    Ok(ctx.sql_with_options(sql, options()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(sql: &str) -> Result<(), PipelineError> {
        let ctx = SessionContext::new();
        let statement = ctx
            .state()
            .sql_to_statement(sql, &Default::default())
            .expect("parses");
        check(&statement)
    }

    #[test]
    fn only_reading_statements_pass() {
        for ok in [
            "SELECT 1",
            "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
            "VALUES (1)",
            "SHOW TABLES",
            "EXPLAIN SELECT 1",
        ] {
            assert!(checked(ok).is_ok(), "{ok}");
        }
        for (refused, kind) in [
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            (
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/'",
                "CREATE EXTERNAL TABLE",
            ),
            ("INSERT INTO t VALUES (1)", "INSERT INTO"),
            ("DROP TABLE t", "DROP TABLE"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
        ] {
            let err = checked(refused).expect_err(refused).to_string();
            assert!(err.contains(kind), "{refused}: {err}");
            assert!(err.contains("only read"), "{refused}: {err}");
        }
    }
}
