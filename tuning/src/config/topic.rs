//! A topic's settings: parsing and describing them (the keys are declared
//! in `keys.rs`).

use std::collections::{BTreeMap, HashSet};

use super::keys::{topic_key, BrokerConfig, TopicConfig};
use super::value::check_value;
use super::ConfigError;

/// Whether `key` is a topic-level key Strom accepts.
pub fn is_known_topic_key(key: &str) -> bool {
    topic_key(key).is_some()
}

impl TopicConfig {
    /// Broker defaults plus previously persisted [`Self::overrides`].
    pub fn from_overrides(
        broker: &BrokerConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicConfig, ConfigError> {
        let mut config = TopicConfig::defaults_from(broker);
        let pairs: Vec<(String, Option<String>)> = overrides
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        config.apply(&pairs)?;
        Ok(config)
    }

    /// Apply topic overrides, e.g. the `configs` of a CreateTopics request.
    ///
    /// Keys are Kafka topic-level names. Implemented keys change the fields;
    /// keys in [`super::EXTRA_TOPIC_KEYS`] are checked and kept in [`Self::extra`];
    /// anything else is rejected. A `None` value (Kafka's null) is rejected,
    /// as Kafka does for CreateTopics, and so is a key given twice. Every
    /// problem is reported, each naming the key and the bad value, e.g.
    /// `segment.bytes: expected an integer in 14..=2147483647, got 'abc'`.
    /// On error nothing is changed.
    pub fn apply(&mut self, overrides: &[(String, Option<String>)]) -> Result<(), ConfigError> {
        let mut next = self.clone();
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for (key, value) in overrides {
            if !seen.insert(key.as_str()) {
                problems.push(format!("{key}: given more than once"));
                continue;
            }
            let Some((spec, implemented)) = topic_key(key) else {
                problems.push(format!("unknown topic config key '{key}'"));
                continue;
            };
            let Some(value) = value else {
                problems.push(format!("{key}: null value not supported for topic configs"));
                continue;
            };
            let norm = match check_value(spec.check, value) {
                Ok(norm) => norm,
                Err(e) => {
                    problems.push(format!("{key}: {e}"));
                    continue;
                }
            };
            if implemented {
                next.set_implemented(key, &norm);
            } else {
                next.extra.insert(key.clone(), norm.clone());
            }
            next.overrides.insert(key.clone(), norm);
        }
        if problems.is_empty() {
            *self = next;
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The overrides applied to this topic (and only those, whether or not
    /// they equal the broker default), key → normalized value, for
    /// persisting. Rebuild with [`Self::from_overrides`].
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Every setting's effective value, key → value (implemented keys plus
    /// [`Self::extra`]), e.g. for DescribeConfigs.
    pub fn describe(&self) -> BTreeMap<String, String> {
        let mut out = self.extra.clone();
        for (key, value) in self.implemented_values() {
            out.insert(key.to_string(), value);
        }
        out
    }
}
