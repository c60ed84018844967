//! Column lineage of a pipeline's SQL: for each output column, the input columns it is computed
//! from, read off DataFusion's logical plan (not from the SQL text, so aliases, subqueries,
//! joins and `GROUP BY 1` resolve as DataFusion resolves them).

use std::collections::BTreeSet;

use datafusion::logical_expr::LogicalPlan;

/// `(output column, {"<domain>.<stream>.<column>", ...})` for every column of `plan`'s result.
pub(crate) fn column_origins(plan: &LogicalPlan) -> Vec<(String, BTreeSet<String>)> {
    plan.schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().clone(), origins(plan, i)))
        .collect()
}

/// The scanned columns that output field `index` of `plan` is computed from.
fn origins(plan: &LogicalPlan, index: usize) -> BTreeSet<String> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let schema = plan.schema();
            if index >= schema.fields().len() {
                return BTreeSet::new();
            }
            let field = schema.field(index);
            BTreeSet::from([format!("{}.{}", scan.table_name, field.name())])
        }
        LogicalPlan::Projection(p) => p
            .expr
            .get(index)
            .map(|e| through(&p.input, e))
            .unwrap_or_default(),
        LogicalPlan::Aggregate(a) => a
            .group_expr
            .iter()
            .chain(&a.aggr_expr)
            .nth(index)
            .map(|e| through(&a.input, e))
            .unwrap_or_default(),
        LogicalPlan::Window(w) => {
            let passed = w.input.schema().fields().len();
            if index < passed {
                origins(&w.input, index)
            } else {
                w.window_expr
                    .get(index - passed)
                    .map(|e| through(&w.input, e))
                    .unwrap_or_default()
            }
        }
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            // Semi and anti joins keep one side's columns only; other joins put the left's first.
            if index < left {
                origins(&j.left, index)
            } else if j.schema.fields().len() == j.right.schema().fields().len() {
                origins(&j.right, index)
            } else {
                origins(&j.right, index - left)
            }
        }
        LogicalPlan::Union(u) => u.inputs.iter().flat_map(|i| origins(i, index)).collect(),
        other => {
            // Filters, sorts, limits, aliases, distinct: one input, the same columns.
            let inputs = other.inputs();
            match inputs.as_slice() {
                [only] if only.schema().fields().len() == other.schema().fields().len() => {
                    origins(only, index)
                }
                _ => by_name(other, index),
            }
        }
    }
}

/// The origins of the columns `expr` reads, in `input`.
fn through(input: &LogicalPlan, expr: &datafusion::logical_expr::Expr) -> BTreeSet<String> {
    expr.column_refs()
        .into_iter()
        .filter_map(|c| input.schema().index_of_column(c).ok())
        .flat_map(|i| origins(input, i))
        .collect()
}

/// For plan nodes not walked above: an input column of the same name.
fn by_name(plan: &LogicalPlan, index: usize) -> BTreeSet<String> {
    let schema = plan.schema();
    if index >= schema.fields().len() {
        return BTreeSet::new();
    }
    let name = schema.field(index).name().clone();
    plan.inputs()
        .into_iter()
        .filter_map(|i| {
            i.schema()
                .fields()
                .iter()
                .position(|f| *f.name() == name)
                .map(|p| origins(i, p))
        })
        .flatten()
        .collect()
}

/// The columns every scan of `plan` reads (subqueries included), as `<table>.<column>`.
pub(crate) fn columns_scanned(plan: &LogicalPlan) -> BTreeSet<String> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut out = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            for f in scan.projected_schema.fields() {
                out.insert(format!("{}.{}", scan.table_name, f.name()));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}
