//! The values bound to a prepared statement's `$1`, `$2`, … decoded with
//! the types the plan gives them (as datafusion-postgres does for its own
//! execution path, which grayscope replaces to apply its limits).

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::common::tree_node::{TreeNode as _, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters;
use datafusion_postgres::pgwire::api::portal::Portal;
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};

/// The portal's parameters, typed by `plan`.
pub(crate) fn values<S: Clone>(
    portal: &Portal<S>,
    plan: &LogicalPlan,
) -> PgWireResult<ParamValues> {
    let types = ordered_types(plan).map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let types: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
    deserialize_parameters(portal, &types)
}

/// The placeholders' types in `$n` order: what the planner inferred, else
/// the type of a cast around the placeholder (`$1::int`).
fn ordered_types(plan: &LogicalPlan) -> datafusion::error::Result<Vec<Option<DataType>>> {
    let mut types: HashMap<String, Option<DataType>> = plan.get_parameter_types()?;
    if types.values().any(Option::is_none) {
        plan.apply(|node| {
            for expr in node.expressions() {
                expr.apply(|e| {
                    if let Expr::Cast(cast) = e
                        && let Expr::Placeholder(placeholder) = cast.expr.as_ref()
                        && let Some(slot @ None) = types.get_mut(&placeholder.id)
                    {
                        *slot = Some(cast.field.data_type().clone());
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
    }
    let mut entries: Vec<_> = types.into_iter().collect();
    entries.sort_by_key(|(id, _)| {
        id.trim_start_matches('$')
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    Ok(entries.into_iter().map(|(_, t)| t).collect())
}
