//! Keeps or drops records by a predicate on one JSON field of the value.
//!
//! Configuration:
//! - `field` (required): a dotted path such as `order.status`, or a JSON
//!   pointer such as `/order/status`. In a dotted path a numeric segment also
//!   indexes arrays (`items.0.sku`).
//! - `op` (required): `equals`, `not_equals`, `prefix`, `exists`, `missing`,
//!   `gt`, `ge`, `lt` or `le`.
//! - `value`: what to compare with; required by every op except `exists` and
//!   `missing`, which refuse it. For `gt`/`ge`/`lt`/`le` it must be a number.
//! - `on_invalid` (default `fail`): `drop`, `keep` or `fail`, for records
//!   whose value is null, not UTF-8 or not JSON. `fail` sends them to the
//!   dead-letter topic with the reason.
//!
//! Records that match are kept; the others are dropped. The ops read as:
//! - `equals`: the field is a JSON string equal to `value`, or a number, bool
//!   or null whose JSON text (as written in the record) is `value`. Objects and
//!   arrays never match.
//! - `not_equals`: exactly `!equals`, so a record without the field is kept.
//! - `prefix`: the field is a JSON string starting with `value`.
//! - `exists` / `missing`: the field is present (even as `null`) / absent.
//! - `gt`, `ge`, `lt`, `le`: the field is a JSON number and compares so with
//!   `value`. A string such as `"12"` is not a number and does not match.

use fcsink_guest::{Config, Outcome, Record, Transform};
use json_value::OnInvalid;
use serde_json::Value;

/// Config keys this plugin accepts.
const KEYS: &[&str] = &["field", "op", "value", "on_invalid"];

/// The plugin: where to look, what to test, and what to do with bad values.
pub struct JsonFilter {
    /// The field as a JSON pointer.
    pointer: String,
    predicate: Predicate,
    on_invalid: OnInvalid,
}

/// The test applied to the field.
#[derive(Debug, Clone, PartialEq)]
enum Predicate {
    Equals(String),
    NotEquals(String),
    Prefix(String),
    Exists,
    Missing,
    Compare(Cmp, f64),
}

/// A numeric comparison: field `cmp` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Transform for JsonFilter {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(KEYS)?;
        let field = config.require("field")?;
        let pointer = json_value::pointer(field).ok_or_else(|| {
            format!(
                "config key `field` must be a dotted path like `order.status` or a JSON pointer \
                 like `/order/status`, with no empty segment; got {field:?}"
            )
        })?;
        let predicate = predicate(config.require("op")?, config.get("value"))?;
        let on_invalid = OnInvalid::from_config(&config)?;
        Ok(JsonFilter {
            pointer,
            predicate,
            on_invalid,
        })
    }

    fn transform(&mut self, record: &Record) -> Outcome {
        let document = match json_value::read(record, self.on_invalid) {
            Ok(document) => document,
            Err(outcome) => return outcome,
        };
        if self.predicate.matches(document.pointer(&self.pointer)) {
            Outcome::Keep
        } else {
            Outcome::Drop
        }
    }
}

fcsink_guest::export!(JsonFilter);

impl Predicate {
    /// Whether the field (`None` when absent) passes.
    fn matches(&self, field: Option<&Value>) -> bool {
        match self {
            Predicate::Equals(text) => field.is_some_and(|v| json_equals(v, text)),
            Predicate::NotEquals(text) => !field.is_some_and(|v| json_equals(v, text)),
            Predicate::Prefix(prefix) => {
                matches!(field, Some(Value::String(s)) if s.starts_with(prefix.as_str()))
            }
            Predicate::Exists => field.is_some(),
            Predicate::Missing => field.is_none(),
            Predicate::Compare(cmp, limit) => {
                let Some(n) = field.and_then(Value::as_f64) else {
                    return false;
                };
                match cmp {
                    Cmp::Gt => n > *limit,
                    Cmp::Ge => n >= *limit,
                    Cmp::Lt => n < *limit,
                    Cmp::Le => n <= *limit,
                }
            }
        }
    }
}

/// `equals` on one JSON value: strings by content, scalars by their JSON text.
fn json_equals(field: &Value, text: &str) -> bool {
    match field {
        Value::String(s) => s == text,
        // Not `*field == text`: serde_json's `Value == str` only ever matches strings.
        Value::Number(_) | Value::Bool(_) | Value::Null => {
            let json = field.to_string();
            json == text
        }
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Builds the predicate from `op` and `value`, refusing combinations that make no sense.
fn predicate(op: &str, value: Option<&str>) -> Result<Predicate, String> {
    let needs_value = |make: fn(String) -> Predicate| match value {
        Some(v) => Ok(make(v.to_string())),
        None => Err(format!("config key `value` is required for op `{op}`")),
    };
    let number = |cmp: Cmp| {
        let raw = value.ok_or_else(|| format!("config key `value` is required for op `{op}`"))?;
        match raw.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Predicate::Compare(cmp, n)),
            _ => Err(format!(
                "config key `value` must be a number for op `{op}`, got {raw:?}"
            )),
        }
    };
    let no_value = |p: Predicate| match value {
        None => Ok(p),
        Some(_) => Err(format!(
            "config key `value` is not used by op `{op}`; remove it"
        )),
    };
    match op {
        "equals" => needs_value(Predicate::Equals),
        "not_equals" => needs_value(Predicate::NotEquals),
        "prefix" => needs_value(Predicate::Prefix),
        "exists" => no_value(Predicate::Exists),
        "missing" => no_value(Predicate::Missing),
        "gt" => number(Cmp::Gt),
        "ge" => number(Cmp::Ge),
        "lt" => number(Cmp::Lt),
        "le" => number(Cmp::Le),
        other => Err(format!(
            "config key `op` must be one of equals, not_equals, prefix, exists, missing, \
             gt, ge, lt, le; got {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> JsonFilter {
        JsonFilter::new(Config::from_pairs(pairs.iter().copied())).unwrap()
    }

    fn refusal(pairs: &[(&str, &str)]) -> String {
        JsonFilter::new(Config::from_pairs(pairs.iter().copied()))
            .err()
            .expect("config should be refused")
    }

    fn run(plugin: &mut JsonFilter, value: &str) -> Outcome {
        plugin.transform(&Record::new(None, Some(value.as_bytes())))
    }

    #[test]
    fn equals_matches_strings_and_scalar_json_text() {
        let mut status = filter(&[
            ("field", "order.status"),
            ("op", "equals"),
            ("value", "paid"),
        ]);
        assert_eq!(
            run(&mut status, r#"{"order":{"status":"paid"}}"#),
            Outcome::Keep
        );
        assert_eq!(
            run(&mut status, r#"{"order":{"status":"open"}}"#),
            Outcome::Drop
        );
        assert_eq!(run(&mut status, r#"{"order":{}}"#), Outcome::Drop);

        let mut count = filter(&[("field", "n"), ("op", "equals"), ("value", "3")]);
        assert_eq!(run(&mut count, r#"{"n":3}"#), Outcome::Keep);
        assert_eq!(run(&mut count, r#"{"n":"3"}"#), Outcome::Keep);
        assert_eq!(run(&mut count, r#"{"n":[3]}"#), Outcome::Drop);

        let mut flag = filter(&[("field", "ok"), ("op", "equals"), ("value", "true")]);
        assert_eq!(run(&mut flag, r#"{"ok":true}"#), Outcome::Keep);
        let mut null = filter(&[("field", "x"), ("op", "equals"), ("value", "null")]);
        assert_eq!(run(&mut null, r#"{"x":null}"#), Outcome::Keep);
        assert_eq!(run(&mut null, r#"{}"#), Outcome::Drop);
    }

    #[test]
    fn numbers_compare_as_written() {
        let mut plugin = filter(&[("field", "price"), ("op", "equals"), ("value", "1.50")]);
        assert_eq!(run(&mut plugin, r#"{"price":1.50}"#), Outcome::Keep);
        assert_eq!(run(&mut plugin, r#"{"price":1.5}"#), Outcome::Drop);
    }

    #[test]
    fn not_equals_keeps_records_without_the_field() {
        let mut plugin = filter(&[("field", "kind"), ("op", "not_equals"), ("value", "test")]);
        assert_eq!(run(&mut plugin, r#"{"kind":"test"}"#), Outcome::Drop);
        assert_eq!(run(&mut plugin, r#"{"kind":"real"}"#), Outcome::Keep);
        assert_eq!(run(&mut plugin, r#"{}"#), Outcome::Keep);
    }

    #[test]
    fn prefix_needs_a_string() {
        let mut plugin = filter(&[("field", "sku"), ("op", "prefix"), ("value", "EU-")]);
        assert_eq!(run(&mut plugin, r#"{"sku":"EU-123"}"#), Outcome::Keep);
        assert_eq!(run(&mut plugin, r#"{"sku":"US-123"}"#), Outcome::Drop);
        assert_eq!(run(&mut plugin, r#"{"sku":["EU-123"]}"#), Outcome::Drop);
    }

    #[test]
    fn exists_and_missing_count_null_as_present() {
        let mut exists = filter(&[("field", "a.b"), ("op", "exists")]);
        let mut missing = filter(&[("field", "a.b"), ("op", "missing")]);
        for (doc, present) in [
            (r#"{"a":{"b":null}}"#, true),
            (r#"{"a":{"c":1}}"#, false),
            (r#"{"a":5}"#, false),
        ] {
            let (keep, drop) = (Outcome::Keep, Outcome::Drop);
            let (want_exists, want_missing) = if present { (keep, drop) } else { (drop, keep) };
            assert_eq!(run(&mut exists, doc), want_exists, "{doc}");
            assert_eq!(run(&mut missing, doc), want_missing, "{doc}");
        }
    }

    #[test]
    fn comparisons_need_a_json_number() {
        let cases = [("gt", [false, false, true]), ("ge", [false, true, true])];
        let more = [("lt", [true, false, false]), ("le", [true, true, false])];
        for (op, want) in cases.into_iter().chain(more) {
            let mut plugin = filter(&[("field", "/total"), ("op", op), ("value", "10")]);
            for (total, want) in ["9.5", "10", "1e2"].into_iter().zip(want) {
                let doc = format!(r#"{{"total":{total}}}"#);
                let expected = if want { Outcome::Keep } else { Outcome::Drop };
                assert_eq!(run(&mut plugin, &doc), expected, "{op} {total}");
            }
            assert_eq!(run(&mut plugin, r#"{"total":"50"}"#), Outcome::Drop, "{op}");
        }
    }

    #[test]
    fn paths_reach_into_arrays_and_escape_pointer_characters() {
        let mut plugin = filter(&[("field", "items.1.sku"), ("op", "equals"), ("value", "B")]);
        assert_eq!(
            run(&mut plugin, r#"{"items":[{"sku":"A"},{"sku":"B"}]}"#),
            Outcome::Keep
        );
        let mut slash = filter(&[("field", "a/b"), ("op", "exists")]);
        assert_eq!(run(&mut slash, r#"{"a/b":1}"#), Outcome::Keep);
        assert_eq!(run(&mut slash, r#"{"a":{"b":1}}"#), Outcome::Drop);
    }

    #[test]
    fn invalid_values_fail_by_default_with_a_reason() {
        let mut plugin = filter(&[("field", "a"), ("op", "exists")]);
        let reason = |outcome| match outcome {
            Outcome::Fail(reason) => reason,
            other => panic!("expected Fail, got {other:?}"),
        };
        let not_json = reason(run(&mut plugin, "{oops"));
        assert!(not_json.starts_with("value is not JSON: "), "{not_json}");
        let not_utf8 = reason(plugin.transform(&Record::new(None, Some(&[0xff, 0xfe]))));
        assert!(not_utf8.starts_with("value is not UTF-8: "), "{not_utf8}");
        let null = reason(plugin.transform(&Record::new(Some(b"k"), None)));
        assert_eq!(null, "value is null");
    }

    #[test]
    fn invalid_values_can_be_dropped_or_kept() {
        for (mode, want) in [("drop", Outcome::Drop), ("keep", Outcome::Keep)] {
            let mut plugin = filter(&[("field", "a"), ("op", "exists"), ("on_invalid", mode)]);
            assert_eq!(run(&mut plugin, "not json"), want, "{mode}");
            assert_eq!(plugin.transform(&Record::new(None, None)), want, "{mode}");
        }
    }

    #[test]
    fn bad_config_is_refused_naming_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("op", "exists")], "`field`"),
            (&[("field", "a")], "`op`"),
            (&[("field", "a"), ("op", "eq"), ("value", "1")], "`op`"),
            (&[("field", "a"), ("op", "equals")], "`value` is required"),
            (
                &[("field", "a"), ("op", "gt"), ("value", "ten")],
                "`value` must be a number",
            ),
            (
                &[("field", "a"), ("op", "le"), ("value", "NaN")],
                "`value` must be a number",
            ),
            (
                &[("field", "a"), ("op", "exists"), ("value", "1")],
                "`value` is not used",
            ),
            (&[("field", "a..b"), ("op", "exists")], "`field`"),
            (&[("field", ""), ("op", "exists")], "`field`"),
            (
                &[("field", "a"), ("op", "exists"), ("on_invalid", "skip")],
                "`on_invalid`",
            ),
            (
                &[("field", "a"), ("op", "exists"), ("feild", "b")],
                "`feild`",
            ),
        ];
        for (pairs, needle) in cases {
            let err = refusal(pairs);
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }
}
