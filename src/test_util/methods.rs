//! The methods every server has from the start: `sum` and `echo`.

use serde_json::{Number, Value};

/// What a method handler returns: a result, or an error code and message.
pub(crate) type MethodResult = Result<Value, (i64, String)>;

/// `-32602 Invalid params`, with a message saying why.
fn invalid_params(why: &str) -> (i64, String) {
    (-32602, format!("Invalid params: {why}"))
}

/// `sum`: the sum of the numbers of a positional array, or of the values of an object.
///
/// Integers add up as `i64`; as soon as a float appears or an `i64` sum would overflow, the
/// sum is an `f64`. Params that are not an array or object, or that hold a non-number,
/// get `-32602 Invalid params`.
pub(crate) fn sum(params: &Value) -> MethodResult {
    let numbers: Vec<&Value> = match params {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        _ => return Err(invalid_params("expected an array or an object of numbers")),
    };
    let mut int = Some(0_i64);
    let mut float = 0.0_f64;
    for value in numbers {
        let Value::Number(n) = value else {
            return Err(invalid_params("not a number"));
        };
        int = int.and_then(|acc| n.as_i64().and_then(|n| acc.checked_add(n)));
        float += n.as_f64().unwrap_or(f64::NAN);
    }
    match int {
        Some(int) => Ok(Value::from(int)),
        None => Number::from_f64(float)
            .map(Value::Number)
            .ok_or_else(|| invalid_params("the sum is not a finite number")),
    }
}

/// `echo`: the params, unchanged (`null` when the call has none).
pub(crate) fn echo(params: &Value) -> MethodResult {
    Ok(params.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sum_positional_named_and_floats() {
        assert_eq!(sum(&json!([1, 2, 3])), Ok(json!(6)));
        assert_eq!(sum(&json!({"a": 1, "b": -5})), Ok(json!(-4)));
        assert_eq!(sum(&json!([])), Ok(json!(0)));
        assert_eq!(sum(&json!([1, 0.5])), Ok(json!(1.5)));
        assert_eq!(
            sum(&json!([i64::MAX, 1])),
            Ok(json!(9_223_372_036_854_775_808.0))
        );
    }

    #[test]
    fn sum_rejects_non_numbers() {
        for params in [json!([1, "2"]), json!({"a": null}), json!(3), Value::Null] {
            assert_eq!(sum(&params).map_err(|e| e.0), Err(-32602), "{params}");
        }
        assert_eq!(sum(&json!([1e308, 1e308])).map_err(|e| e.0), Err(-32602));
    }

    #[test]
    fn echo_returns_params() {
        assert_eq!(echo(&json!({"x": [1]})), Ok(json!({"x": [1]})));
    }
}
