//! Settings carried by the cache URL, so a deployment changes them without
//! a rebuild: `redis://host:6379/?namespace=shop&operation_timeout=100ms`.
//!
//! ## Behavior
//!
//! * Any scheme takes them (`memory://?namespace=test` too). They win over
//!   what the code set on the builder: the URL is the deployment's word.
//! * A parameter this crate does not know, or a value it cannot read, is an
//!   [`Error::InvalidUrl`] naming it when the cache is built: never a silent
//!   default. redis-rs's own `protocol` and `db` pass through to it.
//! * Durations take a unit: `ms`, `s`, `m` (minutes) or `h` (`250ms`, `2s`).

use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::Error;

/// Parameters redis-rs reads itself.
const PASS_THROUGH: &[&str] = &["protocol", "db"];

/// The parameters this crate reads.
pub(super) const KNOWN: &[&str] = &[
    "namespace",
    "operation_timeout",
    "connect_timeout",
    "fill_lease",
    "lock_wait",
    "fail_safe_throttle",
    "memory_capacity",
    "invalidation_queue_capacity",
    "single_flight",
    "lock",
    "beta",
    "jitter",
    "local_capacity",
    "local_ttl",
];

/// One parameter this crate reads, its value decoded.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Namespace(String),
    OperationTimeout(Duration),
    ConnectTimeout(Duration),
    FillLease(Duration),
    LockWait(Duration),
    FailSafeThrottle(Duration),
    MemoryCapacity(u64),
    QueueCapacity(usize),
    SingleFlight(bool),
    Lock(bool),
    Beta(f64),
    Jitter(f64),
    LocalCapacity(u64),
    LocalTtl(Duration),
}

/// Splits `url` into the URL for the backend (this crate's parameters
/// removed) and the parameters, or says which one is wrong.
pub(super) fn split(
    url: &str,
    redacted: impl Fn() -> String,
) -> Result<(String, Vec<Param>), Error> {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let Some((base, query)) = before_fragment.split_once('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let invalid = |reason: String| Error::InvalidUrl {
        url: redacted(),
        reason,
    };
    let mut params = Vec::new();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| invalid(format!("`{key}` is not UTF-8 once decoded")))?
            .into_owned();
        if PASS_THROUGH.contains(&key) {
            kept.push(pair);
            continue;
        }
        params.push(param(key, &value).map_err(invalid)?);
    }
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    Ok((out, params))
}

fn param(key: &str, value: &str) -> Result<Param, String> {
    let duration = || duration(key, value);
    let number = |what: &str| format!("`{key}` takes {what}, not `{value}`");
    Ok(match key {
        "namespace" => Param::Namespace(value.to_owned()),
        "operation_timeout" => Param::OperationTimeout(duration()?),
        "connect_timeout" => Param::ConnectTimeout(duration()?),
        "fill_lease" => Param::FillLease(duration()?),
        "lock_wait" => Param::LockWait(duration()?),
        "fail_safe_throttle" => Param::FailSafeThrottle(duration()?),
        "memory_capacity" => {
            Param::MemoryCapacity(value.parse().map_err(|_| number("a number of bytes"))?)
        }
        "invalidation_queue_capacity" => {
            Param::QueueCapacity(value.parse().map_err(|_| number("a count"))?)
        }
        "single_flight" => Param::SingleFlight(boolean(key, value)?),
        "lock" => Param::Lock(boolean(key, value)?),
        "beta" => Param::Beta(value.parse().map_err(|_| number("a number"))?),
        "jitter" => Param::Jitter(
            value
                .parse()
                .map_err(|_| number("a fraction such as 0.1"))?,
        ),
        "local_capacity" => {
            Param::LocalCapacity(value.parse().map_err(|_| number("a number of entries"))?)
        }
        "local_ttl" => Param::LocalTtl(duration()?),
        _ => {
            return Err(format!(
                "unknown parameter `{key}` (accepted: {}; and redis-rs's {})",
                KNOWN.join(", "),
                PASS_THROUGH.join(", ")
            ));
        }
    })
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" | "on" => Ok(true),
        "false" | "0" | "off" => Ok(false),
        _ => Err(format!("`{key}` takes `true` or `false`, not `{value}`")),
    }
}

/// `250ms`, `2s`, `5m`, `1h`: a whole number and a unit.
fn duration(key: &str, value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let wrong = || format!("`{key}` takes a duration such as `250ms`, `2s` or `5m`, not `{value}`");
    let n: u64 = number.parse().map_err(|_| wrong())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    ms.map(Duration::from_millis).ok_or_else(wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> Result<(String, Vec<Param>), String> {
        split(url, || url.to_owned()).map_err(|e| e.to_string())
    }

    #[test]
    fn parameters_come_off_the_url() {
        let (base, params) =
            parts("redis://h:6379/0?namespace=shop%2Feu&operation_timeout=100ms&protocol=resp3")
                .unwrap();
        assert_eq!(base, "redis://h:6379/0?protocol=resp3");
        assert_eq!(
            params,
            [
                Param::Namespace("shop/eu".into()),
                Param::OperationTimeout(Duration::from_millis(100))
            ]
        );
        let (base, params) = parts("rediss://h:6380#insecure").unwrap();
        assert_eq!(
            (base.as_str(), params.len()),
            ("rediss://h:6380#insecure", 0)
        );
        let (base, params) = parts("memory://?lock=true&jitter=0.1&memory_capacity=4096").unwrap();
        assert_eq!(base, "memory://");
        assert_eq!(
            params,
            [
                Param::Lock(true),
                Param::Jitter(0.1),
                Param::MemoryCapacity(4096)
            ]
        );
    }

    #[test]
    fn a_wrong_parameter_is_an_error_that_names_it() {
        let typo = parts("redis://h?operation_timout=100ms").unwrap_err();
        assert!(
            typo.contains("unknown parameter `operation_timout`"),
            "{typo}"
        );
        assert!(typo.contains("operation_timeout"), "{typo}");
        let unit = parts("redis://h?operation_timeout=100").unwrap_err();
        assert!(unit.contains("takes a duration such as `250ms`"), "{unit}");
        let months = parts("redis://h?fill_lease=5M").unwrap_err();
        assert!(months.contains("`5M`"), "{months}");
        let flag = parts("memory://?single_flight=yes").unwrap_err();
        assert!(flag.contains("`true` or `false`"), "{flag}");
    }
}
