//! A config value out of range ([`FieldError`]), and the one bound every duration
//! from a config obeys ([`check_seconds`]). A leaf: every module that checks a value
//! of its own section uses it.

/// A config value that cannot be used. `message` says what is wrong in words that
/// name the field; `field` is its dotted path (`guardrails.cooldown_s`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The field, as written in the config (`manual.ttl_s`).
    pub field: String,
    /// What is wrong, for people.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The longest time the adapter takes from a config (a decision interval, a
/// timeout, a proposal's time to live, a guard window): a week. A longer one is a
/// mistake, and past about 10^19 s it cannot even be held as a `Duration`.
pub const MAX_SECONDS: f64 = 7.0 * 86_400.0;

/// Checks a number of seconds from the config: finite, positive (or ≥ 0 with
/// `zero_ok`) and at most [`MAX_SECONDS`]; the error names `field`.
pub fn check_seconds(field: &str, v: f64, zero_ok: bool) -> Result<(), FieldError> {
    let low_ok = if zero_ok { v >= 0.0 } else { v > 0.0 };
    if !(v.is_finite() && low_ok) {
        let want = if zero_ok {
            "a non-negative"
        } else {
            "a positive"
        };
        return Err(FieldError::new(
            field,
            format!("{field} must be {want} number of seconds, got {v}"),
        ));
    }
    if v > MAX_SECONDS {
        return Err(FieldError::new(
            field,
            format!(
                "{field} = {v} s is longer than the longest the adapter waits, {MAX_SECONDS} s \
                 (a week)"
            ),
        ));
    }
    Ok(())
}
