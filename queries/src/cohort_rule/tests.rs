//! `cohort_match` against the row evaluator: the compiled expression, the
//! row-by-row fallback and SQL give the same answer on every row.

use std::collections::HashMap;

use arrow::array::{AsArray, MapBuilder, MapFieldNames, StringBuilder};
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::datasource::MemTable;
use datafusion::prelude::col;
use grayscope_core::cohort::resolve;
use proptest::prelude::*;
use proptest::sample::select;

use super::*;

type Pairs = Vec<(String, Option<String>)>;

/// One row: the record's attributes and its resource's (`None` values are
/// null map values).
#[derive(Debug, Clone)]
struct Row {
    record: Pairs,
    resource: Pairs,
}

fn map_column(rows: &[Pairs]) -> ArrayRef {
    let names = MapFieldNames {
        entry: "entries".to_owned(),
        key: "keys".to_owned(),
        value: "values".to_owned(),
    };
    let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for row in rows {
        for (k, v) in row {
            builder.keys().append_value(k);
            builder.values().append_option(v.as_deref());
        }
        builder.append(true).unwrap();
    }
    Arc::new(builder.finish())
}

fn batch(rows: &[Row]) -> RecordBatch {
    let record = map_column(&rows.iter().map(|r| r.record.clone()).collect::<Vec<_>>());
    let resource = map_column(&rows.iter().map(|r| r.resource.clone()).collect::<Vec<_>>());
    let schema = Schema::new(vec![
        Field::new("attributes", record.data_type().clone(), false),
        Field::new("resource_attributes", resource.data_type().clone(), false),
    ]);
    RecordBatch::try_new(Arc::new(schema), vec![record, resource]).unwrap()
}

/// The reference: plain maps (first key wins, null values missing), read by
/// `cohort::resolve`, evaluated by `Rule::evaluate`.
fn reference(rule: &Rule, row: &Row) -> bool {
    let map = |pairs: &Pairs| -> HashMap<String, String> {
        let mut map = HashMap::new();
        for (k, v) in pairs.iter().rev() {
            match v {
                Some(v) => map.insert(k.clone(), v.clone()),
                None => map.remove(k),
            };
        }
        map
    };
    let (record, resource) = (map(&row.record), map(&row.resource));
    let values: HashMap<&str, String> = rule
        .attributes()
        .iter()
        .filter_map(|n| resolve(n, &record, &resource).map(|v| (n.as_str(), v.into_owned())))
        .collect();
    rule.evaluate(&values)
}

fn compiled(context: &SessionContext, rule: &Rule, batch: &RecordBatch) -> Vec<bool> {
    let expr = compile(
        rule.expr(),
        &[col("attributes"), col("resource_attributes")],
    );
    let schema = DFSchema::try_from(batch.schema().as_ref().clone()).unwrap();
    let physical = context.create_physical_expr(expr, &schema).unwrap();
    let result = physical
        .evaluate(batch)
        .unwrap()
        .to_array(batch.num_rows())
        .unwrap();
    assert!(
        !result.is_nullable() || result.null_count() == 0,
        "never null"
    );
    result.as_boolean().iter().map(|b| b.unwrap()).collect()
}

fn row_by_row(rule: &Rule, batch: &RecordBatch) -> Vec<bool> {
    let maps: Vec<&MapArray> = (0..2).map(|i| batch.column(i).as_map()).collect();
    (0..batch.num_rows())
        .map(|row| {
            let sources: Vec<MapRow<'_>> =
                maps.iter().map(|m| MapRow::new(Some(*m), row)).collect();
            evaluate_row(rule, &sources)
        })
        .collect()
}

mod properties {
    use super::*;

    /// Names: the core generator's, plus the baggage family.
    const NAMES: &[&str] = &[
        "geo",
        "isp",
        "device.type",
        "tls.version",
        "http.status_code",
        "baggage.group",
        "group",
        "baggage",
        "http.request.header.baggage",
        "baggage.geo",
        "x-canary",
        "地区",
        "in",
        "a b",
    ];

    const TEXTS: &[&str] = &[
        "华南",
        "移动",
        "iOS",
        "ios",
        "",
        "a",
        "b",
        "1",
        "2",
        "10",
        "9",
        "1.3",
        "1.3.0",
        "1.10",
        "1.9",
        "v1.3",
        "1.3.0-rc1",
        "1.3+b",
        "200",
        "200.0",
        "2e2",
        "-1.5",
        "-2",
        "0.25",
        "0.5",
        "3e-1",
        "true",
        "TRUE",
        "false",
        "TLSv1.3",
        "-0",
        "beta",
        "group=beta",
        "a=1, group=beta;p=1",
        "geo=%E5%8D%8E%E5%8D%97",
        r#"["group=beta"]"#,
        r#"["x=1","geo=华南"]"#,
        "say \"hi\"\n",
        "\\",
        "'",
    ];

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => select(TEXTS).prop_map(str::to_owned),
            1 => any::<String>(),
        ]
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            3 => select(&[0.0, -0.0, 1.0, 2.0, 9.0, 10.0, 200.0, 1.5, -1.5, 0.25, 0.5, 1.3][..]),
            1 => any::<i32>().prop_map(f64::from),
            1 => proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
        ]
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            3 => text().prop_map(Literal::String),
            2 => number().prop_map(Literal::Number),
            1 => any::<bool>().prop_map(Literal::Bool),
        ]
    }

    fn expr() -> impl Strategy<Value = rule::Expr> {
        let name = || select(NAMES).prop_map(str::to_owned);
        let leaf = prop_oneof![
            (name(), select(&CompareOp::ALL[..]), literal()).prop_map(|(attr, op, value)| {
                let op = if op.is_ordering() && matches!(value, Literal::Bool(_)) {
                    CompareOp::Eq
                } else {
                    op
                };
                rule::Expr::Compare { attr, op, value }
            }),
            (name(), prop::collection::vec(literal(), 1..4))
                .prop_map(|(attr, values)| rule::Expr::In { attr, values }),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(rule::Expr::Or),
                prop::collection::vec(inner.clone(), 2..4).prop_map(rule::Expr::And),
                inner.prop_map(|e| rule::Expr::Not(Box::new(e))),
            ]
        })
    }

    fn pairs() -> impl Strategy<Value = Pairs> {
        prop::collection::vec(
            (
                select(NAMES).prop_map(str::to_owned),
                prop_oneof![6 => text().prop_map(Some), 1 => Just(None)],
            ),
            0..6,
        )
    }

    fn rows() -> impl Strategy<Value = Vec<Row>> {
        prop::collection::vec(
            (pairs(), pairs()).prop_map(|(record, resource)| Row { record, resource }),
            1..12,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn compiled_and_row_evaluation_match_the_row_evaluator(e in expr(), rows in rows()) {
            let context = SessionContext::new();
            let rule = Rule::from_expr(e);
            let batch = batch(&rows);
            let want: Vec<bool> = rows.iter().map(|r| reference(&rule, r)).collect();
            prop_assert_eq!(&compiled(&context, &rule, &batch), &want, "{}", rule);
            prop_assert_eq!(&row_by_row(&rule, &batch), &want, "{}", rule);
        }

        /// Without baggage names the layered lookup is the plain one.
        #[test]
        fn plain_names_read_record_then_resource(e in expr(), rows in rows()) {
            let rule = Rule::from_expr(e);
            if rule.attributes().iter().any(|n| n.starts_with("baggage.")) {
                return Ok(());
            }
            for row in &rows {
                let first = |pairs: &Pairs| -> Vec<(String, String)> {
                    let mut seen = std::collections::HashSet::new();
                    pairs
                        .iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                        .collect()
                };
                let layered = (first(&row.record), first(&row.resource));
                prop_assert_eq!(rule.evaluate(&layered), reference(&rule, row));
            }
        }
    }
}

async fn sql_context(rows: &[Row]) -> SessionContext {
    let context = SessionContext::new();
    register(&context);
    let batch = batch(rows);
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
    context.register_table("t", Arc::new(table)).unwrap();
    context
}

fn row(record: &[(&str, &str)], resource: &[(&str, &str)]) -> Row {
    let pairs = |p: &[(&str, &str)]| -> Pairs {
        p.iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    };
    Row {
        record: pairs(record),
        resource: pairs(resource),
    }
}

async fn booleans(context: &SessionContext, sql: &str) -> Vec<bool> {
    let batches = context.sql(sql).await.unwrap().collect().await.unwrap();
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_boolean()
                .iter()
                .map(|v| v.unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn cohort_match_in_sql() {
    let rows = [
        row(&[("geo", "华南"), ("isp", "移动")], &[]),
        row(&[("geo", "华南")], &[("isp", "移动")]),
        row(&[("tls.version", "1.10"), ("device.type", "iOS")], &[]),
        row(&[("group", "beta")], &[]),
        row(&[("baggage", "group=beta")], &[]),
        row(&[], &[]),
    ];
    let context = sql_context(&rows).await;
    let rule =
        r#"(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3")"#;
    assert_eq!(
        booleans(
            &context,
            &format!("SELECT cohort_match('{rule}', attributes, resource_attributes) FROM t")
        )
        .await,
        [true, true, true, false, false, false]
    );
    assert_eq!(
        booleans(
            &context,
            &format!("SELECT cohort_match('{rule}', attributes) FROM t")
        )
        .await,
        [true, false, true, false, false, false],
        "without the resource map, isp is missing on row 2"
    );
    assert_eq!(
        booleans(
            &context,
            "SELECT cohort_match('baggage.group == \"beta\"', attributes) FROM t"
        )
        .await,
        [false, false, false, true, true, false]
    );
    // The compiled form is what the plan runs.
    let plan = context
        .sql(&format!(
            "EXPLAIN SELECT cohort_match('{rule}', attributes) FROM t"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    let physical = text
        .lines()
        .skip_while(|l| !l.contains("physical_plan"))
        .collect::<String>();
    assert!(physical.contains("cohort_compare"), "{text}");
    assert!(physical.contains("get_field"), "{text}");
}

#[tokio::test]
async fn rule_texts_from_a_column_are_evaluated_row_by_row() {
    let rows = [row(&[("a", "1")], &[]), row(&[("a", "2")], &[])];
    let context = sql_context(&rows).await;
    let got = booleans(
        &context,
        "SELECT cohort_match(CASE WHEN attributes['a'] = '1' THEN 'a == 1' ELSE 'a > 5' END, attributes) FROM t",
    )
    .await;
    assert_eq!(got, [true, false]);
}

/// The error a statement fails with, whether planning or running it.
async fn error_of(context: &SessionContext, sql: &str) -> String {
    match context.sql(sql).await {
        Err(error) => error.to_string(),
        Ok(frame) => frame.collect().await.unwrap_err().to_string(),
    }
}

#[tokio::test]
async fn a_bad_rule_is_a_planning_error_with_its_position() {
    let context = sql_context(&[row(&[], &[])]).await;
    let error = error_of(
        &context,
        "SELECT cohort_match('geo = \"华南\"', attributes) FROM t",
    )
    .await;
    assert!(
        error.contains("invalid rule: line 1, column 5: expected a comparison operator"),
        "{error}"
    );
    let error = error_of(&context, "SELECT cohort_match('a == 1', 'x') FROM t").await;
    assert!(error.contains("Map<Utf8, Utf8>"), "{error}");
}

#[tokio::test]
async fn baggage_value_and_cohort_compare_in_sql() {
    let context = sql_context(&[row(&[("baggage", "geo=%E5%8D%8E%E5%8D%97")], &[])]).await;
    let batches = context
        .sql("SELECT baggage_value(attributes['baggage'], 'geo') AS geo, cohort_compare('1.10', '>', '1.9') AS v, cohort_compare(NULL, '==', 1) AS n FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("| 华南 | true | false |"), "{text}");
}
