//! One layer of settings (file, environment or flags) and the problems
//! found while reading it.

use std::collections::HashMap;

use super::value::{Check, Raw};

pub(super) struct Item {
    pub(super) key: &'static str,
    /// How to name the setting in errors: the key, or `VAR (key)`.
    pub(super) label: String,
    pub(super) raw: Raw,
}

/// The settings of one layer (file, environment, flags) by key, and the
/// problems found so far.
pub(super) struct Layer {
    given: HashMap<&'static str, (String, Raw)>,
    pub(super) problems: Vec<String>,
}

impl Layer {
    pub(super) fn new(items: Vec<Item>) -> Layer {
        let mut given: HashMap<&'static str, (String, Raw)> = HashMap::new();
        let mut problems = Vec::new();
        for item in items {
            if let Some((first, _)) = given.get(item.key) {
                if *first == item.label {
                    problems.push(format!(
                        "{}: given more than once (the same key written in two spellings, \
                         e.g. dotted and quoted, or in a [table] too)",
                        item.label
                    ));
                } else {
                    problems.push(format!(
                        "{}: given more than once (also as {first})",
                        item.label
                    ));
                }
            } else {
                given.insert(item.key, (item.label, item.raw));
            }
        }
        Layer { given, problems }
    }

    /// The key's value checked by `parse`, or `None` if absent or invalid
    /// (the problem is recorded).
    pub(super) fn get<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&Raw) -> Result<T, String>,
    ) -> Option<T> {
        let (label, raw) = self.given.get(key)?;
        match parse(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{label}: {e}"));
                None
            }
        }
    }

    /// An integer key's value, checked by `check` (its [`Check::Int`]
    /// range).
    pub(super) fn int(&mut self, key: &'static str, check: Check) -> Option<i64> {
        debug_assert!(
            matches!(check, Check::Int(..)),
            "{key} is not an integer key"
        );
        self.get(key, |raw| check.raw(raw))
            .map(|text| text.parse().unwrap_or_default())
    }
}
