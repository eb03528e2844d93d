//! Values as written and the checks a key's value passes.

use std::fmt;
use std::path::PathBuf;

use super::TimestampType;

/// A value as written, before it is checked against its key's type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Raw {
    Int(i64),
    Str(String),
    Bool(bool),
    List(Vec<Raw>),
    /// A TOML value of a type no key takes (float, date, table in an
    /// array); the string describes it for error messages.
    Other(String),
}

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Int(n) => write!(f, "{n}"),
            Raw::Str(s) => write!(f, "'{s}'"),
            Raw::Bool(b) => write!(f, "{b}"),
            Raw::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Raw::Other(what) => f.write_str(what),
        }
    }
}

pub(super) fn to_raw(value: &toml::Value) -> Raw {
    match value {
        toml::Value::Integer(n) => Raw::Int(*n),
        toml::Value::String(s) => Raw::Str(s.clone()),
        toml::Value::Boolean(b) => Raw::Bool(*b),
        toml::Value::Array(items) => Raw::List(items.iter().map(to_raw).collect()),
        toml::Value::Float(x) => Raw::Other(format!("the float {x}")),
        toml::Value::Datetime(d) => Raw::Other(format!("the date-time {d}")),
        toml::Value::Table(_) => Raw::Other("a table".to_string()),
    }
}

/// Turn nested tables into dotted keys: `log = { segment = { bytes = 1 } }`
/// and `"log.segment.bytes" = 1` both become `("log.segment.bytes", 1)`.
pub(super) fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, Raw)>) {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&full, inner, out),
            other => out.push((full, to_raw(other))),
        }
    }
}

pub(super) fn describe_range(lo: i64, hi: i64) -> String {
    if hi == i64::MAX {
        format!("an integer >= {lo}")
    } else {
        format!("an integer in {lo}..={hi}")
    }
}

/// An integer in `lo..=hi`, from a TOML integer or a string that parses.
pub(super) fn parse_int(raw: &Raw, lo: i64, hi: i64) -> Result<i64, String> {
    let n = match raw {
        Raw::Int(n) => Some(*n),
        Raw::Str(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!("expected {}, got {raw}", describe_range(lo, hi))),
    }
}

/// A boolean, from a TOML boolean or `true`/`false` in any case.
pub(super) fn parse_bool(raw: &Raw) -> Result<bool, String> {
    match raw {
        Raw::Bool(b) => Ok(*b),
        Raw::Str(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Raw::Str(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!("expected true or false, got {raw}")),
    }
}

pub(super) fn parse_str(raw: &Raw) -> Result<String, String> {
    match raw {
        Raw::Str(s) => Ok(s.trim().to_string()),
        _ => Err(format!("expected a string, got {raw}")),
    }
}

/// A non-empty list of non-empty strings: a TOML array of strings or a
/// comma-separated string.
pub(super) fn parse_list(raw: &Raw) -> Result<Vec<String>, String> {
    let items: Vec<String> = match raw {
        Raw::Str(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        Raw::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Raw::Str(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                    _ => return Err(format!("expected a list of non-empty strings, got {raw}")),
                }
            }
            out
        }
        _ => {
            return Err(format!(
                "expected a list (array or comma-separated string), got {raw}"
            ))
        }
    };
    if items.is_empty() {
        return Err(format!("expected a non-empty list, got {raw}"));
    }
    Ok(items)
}

pub(super) fn parse_dirs(raw: &Raw) -> Result<Vec<PathBuf>, String> {
    Ok(parse_list(raw)?.into_iter().map(PathBuf::from).collect())
}

/// How a key's value is checked: declared once per key in the key tables
/// (`config/keys.rs`), used by parsing, by the documentation and by the
/// catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Integer in `lo..=hi`.
    Int(i64, i64),
    Bool,
    /// One of these strings, exactly.
    OneOf(&'static [&'static str]),
    /// A number in 0.0..=1.0.
    Ratio,
    /// Any string.
    Text,
    /// `delete`, `compact` or both, comma-separated.
    CleanupPolicy,
    /// Checked by the key's own parser (listeners, voters, paths ...); the
    /// text says what is accepted.
    Custom(&'static str),
}

impl Check {
    /// What the check accepts, for the documentation table.
    pub fn accepted(self) -> String {
        match self {
            Check::Int(lo, hi) => format!("{lo}..={hi}"),
            Check::Bool => "`true` / `false`".to_string(),
            Check::OneOf(values) => values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Check::Ratio => "0.0..=1.0".to_string(),
            Check::Text => "any string".to_string(),
            Check::CleanupPolicy => "`delete`, `compact`, `compact,delete`".to_string(),
            Check::Custom(text) => text.to_string(),
        }
    }

    /// A value as written (file, environment, flag) checked and normalized:
    /// integers and booleans from TOML values or strings, anything else
    /// from a string.
    pub(super) fn raw(self, raw: &Raw) -> Result<String, String> {
        match self {
            Check::Int(lo, hi) => parse_int(raw, lo, hi).map(|n| n.to_string()),
            Check::Bool => parse_bool(raw).map(|b| b.to_string()),
            _ => check_value(self, &parse_str(raw)?),
        }
    }
}

/// A field's type as the key tables use it: built from a value its key's
/// [`Check`] accepted, and shown as DescribeConfigs shows it.
pub(super) trait Setting: Sized {
    /// The value from text its key's check accepted (so it always parses;
    /// `every_simple_key_takes_its_bounds` proves the ranges fit the types).
    fn from_checked(text: &str) -> Self;
    fn show(&self) -> String;
}

macro_rules! setting_from_str {
    ($($ty:ty),*) => {$(
        impl Setting for $ty {
            fn from_checked(text: &str) -> Self {
                text.parse()
                    .unwrap_or_else(|_| panic!("checked value '{text}' does not fit its field"))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

setting_from_str!(i16, i32, i64, u32, u64, bool, String, TimestampType);

/// Values of `compression.type` (topic and broker).
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Check `value` against `check`; return it normalized (trimmed, numbers in
/// canonical form, booleans lower-case, cleanup policy ordered).
pub(super) fn check_value(check: Check, value: &str) -> Result<String, String> {
    let raw = Raw::Str(value.to_string());
    match check {
        Check::Int(lo, hi) => parse_int(&raw, lo, hi).map(|n| n.to_string()),
        Check::Bool => parse_bool(&raw).map(|b| b.to_string()),
        Check::OneOf(allowed) => {
            let v = value.trim();
            if allowed.contains(&v) {
                Ok(v.to_string())
            } else {
                let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
                Err(format!("expected one of {}, got {raw}", list.join(", ")))
            }
        }
        Check::Ratio => match value.trim().parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(value.trim().to_string()),
            _ => Err(format!("expected a number in 0.0..=1.0, got {raw}")),
        },
        Check::Text => Ok(value.trim().to_string()),
        Check::Custom(_) => Ok(value.trim().to_string()),
        Check::CleanupPolicy => {
            let parts: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            if parts.is_empty() || parts.iter().any(|p| *p != "compact" && *p != "delete") {
                return Err(format!(
                    "expected 'delete', 'compact' or both comma-separated, got {raw}"
                ));
            }
            // Kept in the order given (as Kafka stores it), repeats dropped,
            // so the value described is the value set.
            let mut list: Vec<&str> = Vec::with_capacity(2);
            for part in parts {
                if !list.contains(&part) {
                    list.push(part);
                }
            }
            Ok(list.join(","))
        }
    }
}
