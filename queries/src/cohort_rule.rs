//! Cohort rules in SQL: `cohort_match('geo == "华南" AND isp == "移动"',
//! attributes, resource_attributes)` selects the rows a rule selects at
//! ingest.
//!
//! - `cohort_match(rule, map [, map …])` → `BOOLEAN`, never null. `rule` is
//!   rule text in the language of `grayscope_core::rule`; the maps are
//!   `Map<Utf8, Utf8>` attribute columns, the record's own first, then the
//!   fallbacks (its resource's). A name is read as ingest reads it
//!   ([`grayscope_core::cohort`]): the first map, then the others, and for
//!   `baggage.<key>`, the raw `baggage` / `http.request.header.baggage`
//!   header attributes and then the bare `<key>` of the first map.
//!
//!   When the rule is a literal (the usual case) the planner rewrites the
//!   call into an ordinary expression ([`compile`]): map lookups
//!   (`get_field`), `=` / `<>` / `IN` for string equality, and
//!   `cohort_compare` for the comparisons SQL has no operator for (version,
//!   numeric and boolean semantics), each leaf `IS TRUE` so that a missing
//!   attribute is false and `NOT` stays two-valued. Otherwise the rule is
//!   parsed per distinct text and evaluated row by row. A rule that does not
//!   parse is a planning error with the rule's line and column.
//! - `cohort_compare(value, op, literal)` → `BOOLEAN`: one comparison of the
//!   rule language (`op` is `'=='`, `'!='`, `'<'`, `'<='`, `'>'` or
//!   `'>='`; `literal` a string, number or boolean); false when `value` is
//!   null.
//! - `baggage_value(header, key)` → the percent-decoded value of member
//!   `key` of a W3C `baggage` header text, or null.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, BooleanArray, MapArray, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_map_array, as_string_array};
use datafusion::common::{Result, ScalarValue, exec_err, plan_datafusion_err, plan_err};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::conditional_expressions::CaseBuilder;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, lit,
};
use datafusion::prelude::SessionContext;
use grayscope_core::cohort::{BAGGAGE_HEADER_ATTRIBUTES, BAGGAGE_PREFIX, baggage_value, resolve};
use grayscope_core::rule::{self, Attributes, CompareOp, Literal, Rule};

/// Registers `cohort_match`, `cohort_compare` and `baggage_value` in a
/// session.
pub fn register(context: &SessionContext) {
    context.register_udf(cohort_match());
    context.register_udf(cohort_compare());
    context.register_udf(baggage_value_udf());
}

/// The `cohort_match` function.
pub fn cohort_match() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> =
        LazyLock::new(|| ScalarUDF::new_from_impl(CohortMatch::new()));
    UDF.clone()
}

/// The `cohort_compare` function.
pub fn cohort_compare() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> =
        LazyLock::new(|| ScalarUDF::new_from_impl(CohortCompare::new()));
    UDF.clone()
}

/// The `baggage_value` function.
pub fn baggage_value_udf() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> =
        LazyLock::new(|| ScalarUDF::new_from_impl(BaggageValue::new()));
    UDF.clone()
}

/// Compiles a rule into a DataFusion boolean expression over attribute map
/// expressions (`maps[0]` the record's own attributes, the rest fallbacks),
/// true exactly where [`Rule::evaluate`] is true on the attributes as
/// [`resolve`] reads them, and never null.
pub fn compile(rule: &rule::Expr, maps: &[Expr]) -> Expr {
    match rule {
        rule::Expr::Or(operands) => operands
            .iter()
            .map(|e| compile(e, maps))
            .reduce(Expr::or)
            .unwrap_or_else(|| lit(false)),
        rule::Expr::And(operands) => operands
            .iter()
            .map(|e| compile(e, maps))
            .reduce(Expr::and)
            .unwrap_or_else(|| lit(true)),
        rule::Expr::Not(operand) => !compile(operand, maps),
        rule::Expr::Compare { attr, op, value } => {
            let value_expr = lookup(attr, maps);
            let test = match (op, value) {
                (CompareOp::Eq, Literal::String(text)) => value_expr.eq(lit(text.as_str())),
                (CompareOp::Ne, Literal::String(text)) => value_expr.not_eq(lit(text.as_str())),
                _ => compare_call(value_expr, *op, value),
            };
            test.is_true()
        }
        rule::Expr::In { attr, values } => {
            let value_expr = lookup(attr, maps);
            let strings: Option<Vec<Expr>> = values
                .iter()
                .map(|v| match v {
                    Literal::String(text) => Some(lit(text.as_str())),
                    _ => None,
                })
                .collect();
            match strings {
                Some(list) => value_expr.in_list(list, false).is_true(),
                None => values
                    .iter()
                    .map(|v| compare_call(value_expr.clone(), CompareOp::Eq, v).is_true())
                    .reduce(Expr::or)
                    .unwrap_or_else(|| lit(false)),
            }
        }
    }
}

fn literal_expr(value: &Literal) -> Expr {
    match value {
        Literal::String(text) => lit(text.as_str()),
        Literal::Number(number) => lit(*number),
        Literal::Bool(b) => lit(*b),
    }
}

fn compare_call(value: Expr, op: CompareOp, literal: &Literal) -> Expr {
    cohort_compare().call(vec![value, lit(op.as_str()), literal_expr(literal)])
}

/// The value of attribute `name`, in the order of [`resolve`].
fn lookup(name: &str, maps: &[Expr]) -> Expr {
    let mut candidates: Vec<Expr> = maps.iter().map(|m| get_field(m.clone(), name)).collect();
    if let (Some(key), Some(record)) = (name.strip_prefix(BAGGAGE_PREFIX), maps.first()) {
        for header in BAGGAGE_HEADER_ATTRIBUTES {
            candidates
                .push(baggage_value_udf().call(vec![get_field(record.clone(), header), lit(key)]));
        }
        candidates.push(get_field(record.clone(), key));
    }
    // The first candidate that is not null; written as CASE (what the
    // planner turns `coalesce` into) so that the expression is complete
    // before simplification too.
    let Some(last) = candidates.pop() else {
        return lit(ScalarValue::Utf8(None));
    };
    if candidates.is_empty() {
        return last;
    }
    let whens: Vec<Expr> = candidates.iter().map(|c| c.clone().is_not_null()).collect();
    CaseBuilder::new(None, whens, candidates, Some(Box::new(last)))
        .end()
        .unwrap_or_else(|_| lit(ScalarValue::Utf8(None)))
}

/// The text of a string literal argument.
fn literal_text(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(text))
            | ScalarValue::LargeUtf8(Some(text))
            | ScalarValue::Utf8View(Some(text)),
            _,
        ) => Some(text),
        _ => None,
    }
}

fn scalar_text(value: &ColumnarValue) -> Option<&str> {
    match value {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(text) | ScalarValue::LargeUtf8(text) | ScalarValue::Utf8View(text),
        ) => text.as_deref(),
        _ => None,
    }
}

fn parse_rule(text: &str) -> Result<Rule> {
    Rule::parse(text).map_err(|e| plan_datafusion_err!("cohort_match: invalid rule: {e}"))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CohortMatch {
    signature: Signature,
}

impl CohortMatch {
    fn new() -> Self {
        CohortMatch {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for CohortMatch {
    fn name(&self) -> &str {
        "cohort_match"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 2 {
            return plan_err!(
                "cohort_match(rule, attributes [, more attribute maps]) takes at least 2 arguments"
            );
        }
        let mut types = vec![DataType::Utf8];
        for t in &arg_types[1..] {
            match t {
                DataType::Map(..) | DataType::Null => types.push(t.clone()),
                other => {
                    return plan_err!(
                        "cohort_match: attribute arguments must be Map<Utf8, Utf8> columns, got {other}"
                    );
                }
            }
        }
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(self.name(), DataType::Boolean, false)))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let Some(text) = args.first().and_then(literal_text) else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        let rule = parse_rule(text)?;
        Ok(ExprSimplifyResult::Simplified(compile(
            rule.expr(),
            &args[1..],
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let rules = args.args[0].to_array(rows)?;
        let rules = as_string_array(&rules)?;
        let maps: Vec<ArrayRef> = args.args[1..]
            .iter()
            .map(|m| m.to_array(rows))
            .collect::<Result<_>>()?;
        let maps: Vec<Option<&MapArray>> = maps
            .iter()
            .map(|m| {
                if m.data_type() == &DataType::Null {
                    Ok(None)
                } else {
                    as_map_array(m).map(Some)
                }
            })
            .collect::<Result<_>>()?;
        let mut parsed: HashMap<&str, Rule> = HashMap::new();
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            if rules.is_null(row) {
                out.push(false);
                continue;
            }
            let text = rules.value(row);
            if !parsed.contains_key(text) {
                parsed.insert(text, parse_rule(text)?);
            }
            let rule = &parsed[text];
            let sources: Vec<MapRow<'_>> = maps.iter().map(|m| MapRow::new(*m, row)).collect();
            out.push(evaluate_row(rule, &sources));
        }
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(out))))
    }
}

/// A rule on one row of attribute maps, reading names as [`resolve`] does:
/// the row evaluator `cohort_match` falls back to, and the reference the
/// compiled expression is tested against.
pub fn evaluate_row(rule: &Rule, maps: &[MapRow<'_>]) -> bool {
    let (record, rest) = match maps.split_first() {
        Some((record, rest)) => (*record, rest),
        None => return rule.evaluate(&[] as &[(&str, &str)]),
    };
    let fallback = Layered(rest);
    let values: Vec<(&str, Cow<'_, str>)> = rule
        .attributes()
        .iter()
        .filter_map(|name| resolve(name, &record, &fallback).map(|v| (name.as_str(), v)))
        .collect();
    rule.evaluate(&values[..])
}

/// Attribute maps searched in order.
struct Layered<'m, 'a>(&'m [MapRow<'a>]);

impl Attributes for Layered<'_, '_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find_map(|m| m.get(key))
    }
}

/// One row of a `Map<Utf8, Utf8>` column as rule attributes: the first
/// entry with a key gives its value; a null value is missing.
#[derive(Debug, Clone, Copy)]
pub struct MapRow<'a> {
    keys: Option<&'a StringArray>,
    values: Option<&'a StringArray>,
    start: usize,
    end: usize,
}

impl<'a> MapRow<'a> {
    /// Row `row` of `map` (`None`: a null column, no attributes).
    pub fn new(map: Option<&'a MapArray>, row: usize) -> MapRow<'a> {
        let empty = MapRow {
            keys: None,
            values: None,
            start: 0,
            end: 0,
        };
        let Some(map) = map.filter(|m| m.is_valid(row)) else {
            return empty;
        };
        let offsets = map.value_offsets();
        let keys = map.keys().as_any().downcast_ref::<StringArray>();
        let values = map.values().as_any().downcast_ref::<StringArray>();
        MapRow {
            keys,
            values,
            start: usize::try_from(offsets[row]).unwrap_or_default(),
            end: usize::try_from(offsets[row + 1]).unwrap_or_default(),
        }
    }
}

impl Attributes for MapRow<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let (keys, values) = (self.keys?, self.values?);
        let i = (self.start..self.end).find(|&i| keys.value(i) == key)?;
        values.is_valid(i).then(|| values.value(i))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CohortCompare {
    signature: Signature,
}

impl CohortCompare {
    fn new() -> Self {
        CohortCompare {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for CohortCompare {
    fn name(&self) -> &str {
        "cohort_compare"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [_, _, literal] = arg_types else {
            return plan_err!("cohort_compare(value, op, literal) takes 3 arguments");
        };
        let literal = match literal {
            DataType::Boolean => DataType::Boolean,
            t if t.is_numeric() => DataType::Float64,
            _ => DataType::Utf8,
        };
        Ok(vec![DataType::Utf8, DataType::Utf8, literal])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(self.name(), DataType::Boolean, false)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let op = scalar_text(&args.args[1])
            .and_then(|op| CompareOp::ALL.into_iter().find(|o| o.as_str() == op));
        let Some(op) = op else {
            return exec_err!("cohort_compare: op must be a literal ==, !=, <, <=, > or >=");
        };
        let literal = match &args.args[2] {
            ColumnarValue::Scalar(ScalarValue::Float64(Some(n))) => Literal::Number(*n),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(b))) => Literal::Bool(*b),
            other => match scalar_text(other) {
                Some(text) => Literal::String(text.to_owned()),
                None => return exec_err!("cohort_compare: literal must be a non-null constant"),
            },
        };
        // A one-comparison rule pre-reads the literal (version, number) once.
        let rule = Rule::from_expr(rule::Expr::compare("v", op, literal));
        let holds = |value: Option<&str>| value.is_some_and(|v| rule.evaluate(&[("v", v)]));
        match &args.args[0] {
            ColumnarValue::Scalar(value) => {
                let text = scalar_text(&ColumnarValue::Scalar(value.clone())).map(str::to_owned);
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(holds(
                    text.as_deref(),
                )))))
            }
            ColumnarValue::Array(array) => {
                let values = as_string_array(array)?;
                let out: BooleanArray = values.iter().map(|v| Some(holds(v))).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct BaggageValue {
    signature: Signature,
}

impl BaggageValue {
    fn new() -> Self {
        BaggageValue {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for BaggageValue {
    fn name(&self) -> &str {
        "baggage_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("baggage_value(header, key) takes 2 arguments");
        }
        Ok(vec![DataType::Utf8, DataType::Utf8])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let headers = args.args[0].to_array(rows)?;
        let headers = as_string_array(&headers)?;
        let keys = args.args[1].to_array(rows)?;
        let keys = as_string_array(&keys)?;
        let out: StringArray = headers
            .iter()
            .zip(keys.iter())
            .map(|(header, key)| baggage_value(header?, key?))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests;
