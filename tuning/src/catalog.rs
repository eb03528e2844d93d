//! What DescribeConfigs shows, and which configs can change at run time.
//!
//! A topic's effective value of a key comes from the first of these layers
//! that sets it (Kafka's precedence), each reported with its source:
//!
//! 1. the topic's own override — `DYNAMIC_TOPIC_CONFIG`;
//! 2. the broker synonym set dynamically for this node (IncrementalAlterConfigs
//!    on resource BROKER named by the node id) — `DYNAMIC_BROKER_CONFIG`;
//! 3. the broker synonym set dynamically for the whole cluster (resource
//!    BROKER with the empty name) — `DYNAMIC_DEFAULT_BROKER_CONFIG`;
//! 4. the broker synonym in the configuration file, environment or flags —
//!    `STATIC_BROKER_CONFIG`;
//! 5. the built-in default — `DEFAULT_CONFIG`.
//!
//! [`BrokerLayers`] holds layers 2-4 and computes the effective
//! [`BrokerConfig`] that topic defaults come from.

pub use crate::config::ConfigType;
use crate::config::{
    broker_key, broker_keys, topic_key, BrokerConfig, ConfigError, TopicConfig, EXTRA_TOPIC_KEYS,
    NOT_ENFORCED, TOPIC_KEYS,
};
use std::collections::BTreeMap;

/// Kafka's `ConfigSource` codes (DescribeConfigs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

impl ConfigSource {
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// One described config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub config_type: ConfigType,
    pub documentation: String,
    /// Where the value could come from, highest precedence first: (name,
    /// value, source).
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Whether a topic key is a list (IncrementalAlterConfigs APPEND/SUBTRACT).
pub fn is_list_topic_key(key: &str) -> bool {
    topic_key(key).is_some_and(|(k, _)| k.config_type == ConfigType::List)
}

/// Whether a broker key can be changed at run time (resource BROKER), as in
/// Kafka's dynamic log configs; everything else needs a restart.
pub fn is_dynamic_broker_key(key: &str) -> bool {
    broker_key(key).is_some_and(|k| k.dynamic)
}

/// Whether a broker key that can change at run time is a list
/// (APPEND/SUBTRACT allowed).
pub fn is_list_broker_key(key: &str) -> bool {
    broker_key(key).is_some_and(|k| k.dynamic && k.config_type == ConfigType::List)
}

/// The broker's static configuration plus its dynamic layers.
#[derive(Debug, Clone)]
pub struct BrokerLayers {
    pub static_config: BrokerConfig,
    /// Set on resource BROKER "" (every broker).
    pub cluster_default: BTreeMap<String, String>,
    /// Set on resource BROKER "<node id>" (this broker only).
    pub node: BTreeMap<String, String>,
}

impl BrokerLayers {
    /// The configuration in force: static, then cluster defaults, then this
    /// node's dynamic values. `explicit` stays the static one's.
    pub fn effective(&self) -> Result<BrokerConfig, ConfigError> {
        let mut config = self.static_config.clone();
        for layer in [&self.cluster_default, &self.node] {
            if !layer.is_empty() {
                check_dynamic_keys(layer.keys())?;
                config.apply_overrides(layer.iter().map(|(k, v)| (k.clone(), v.clone())))?;
            }
        }
        config.explicit = self.static_config.explicit.clone();
        Ok(config)
    }

    /// Where a broker key's value comes from, with its value there.
    fn broker_value(&self, key: &str) -> (Option<String>, ConfigSource) {
        if let Some(v) = self.node.get(key) {
            return (Some(v.clone()), ConfigSource::DynamicBroker);
        }
        if let Some(v) = self.cluster_default.get(key) {
            return (Some(v.clone()), ConfigSource::DynamicDefaultBroker);
        }
        let value = self.static_config.value_of(key);
        let default = BrokerConfig::default().value_of(key);
        if self.static_config.explicit.contains(key) || value != default {
            (value, ConfigSource::StaticBroker)
        } else {
            (value, ConfigSource::Default)
        }
    }

    /// The synonyms of a broker key that are set somewhere, highest first.
    fn broker_synonyms(&self, key: &str) -> Vec<(String, Option<String>, ConfigSource)> {
        let mut out = Vec::new();
        if let Some(v) = self.node.get(key) {
            out.push((
                key.to_string(),
                Some(v.clone()),
                ConfigSource::DynamicBroker,
            ));
        }
        if let Some(v) = self.cluster_default.get(key) {
            out.push((
                key.to_string(),
                Some(v.clone()),
                ConfigSource::DynamicDefaultBroker,
            ));
        }
        if self.static_config.explicit.contains(key) {
            out.push((
                key.to_string(),
                self.static_config.value_of(key),
                ConfigSource::StaticBroker,
            ));
        }
        out
    }

    /// Every config of a topic with these overrides, in Kafka's shape.
    /// `keys`: only these (unknown keys are skipped, as Kafka does); `None`:
    /// all.
    pub fn describe_topic(
        &self,
        overrides: &BTreeMap<String, String>,
        keys: Option<&[String]>,
    ) -> Vec<Described> {
        let effective = self
            .effective()
            .unwrap_or_else(|_| self.static_config.clone());
        let config = TopicConfig::from_overrides(&effective, overrides)
            .unwrap_or_else(|_| TopicConfig::defaults_from(&effective));
        let values = config.describe();
        let wanted = |name: &str| keys.is_none_or(|keys| keys.iter().any(|k| k == name));
        let mut out = Vec::new();
        for key in TOPIC_KEYS.iter().filter(|k| wanted(k.name)) {
            let value = values.get(key.name).cloned();
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(key.name) {
                synonyms.push((
                    key.name.to_string(),
                    Some(v.clone()),
                    ConfigSource::DynamicTopic,
                ));
            }
            for broker_key in key.synonyms {
                synonyms.extend(self.broker_synonyms(broker_key));
            }
            synonyms.push((
                key.synonyms[0].to_string(),
                BrokerConfig::default().value_of(key.synonyms[0]),
                ConfigSource::Default,
            ));
            let source = synonyms[0].2;
            out.push(Described {
                name: key.name.to_string(),
                value,
                source,
                read_only: false,
                config_type: key.config_type,
                documentation: key.doc.to_string(),
                synonyms,
            });
        }
        for key in EXTRA_TOPIC_KEYS.iter().filter(|k| wanted(k.name)) {
            let (name, config_type) = (&key.name, key.config_type);
            let Some(default) = key.default else {
                // Keys Kafka 4.0 dropped are listed only when a topic sets them.
                if let Some(v) = overrides.get(*name) {
                    out.push(Described {
                        name: name.to_string(),
                        value: Some(v.clone()),
                        source: ConfigSource::DynamicTopic,
                        read_only: false,
                        config_type,
                        documentation: NOT_ENFORCED.to_string(),
                        synonyms: vec![(
                            name.to_string(),
                            Some(v.clone()),
                            ConfigSource::DynamicTopic,
                        )],
                    });
                }
                continue;
            };
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(*name) {
                synonyms.push((
                    name.to_string(),
                    Some(v.clone()),
                    ConfigSource::DynamicTopic,
                ));
            }
            synonyms.push((
                name.to_string(),
                Some(default.to_string()),
                ConfigSource::Default,
            ));
            out.push(Described {
                name: name.to_string(),
                value: synonyms[0].1.clone(),
                source: synonyms[0].2,
                read_only: false,
                config_type,
                documentation: NOT_ENFORCED.to_string(),
                synonyms,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Every broker config of this node (resource BROKER "<node id>").
    pub fn describe_broker(&self, keys: Option<&[String]>) -> Vec<Described> {
        let wanted = |name: &str| keys.is_none_or(|keys| keys.iter().any(|k| k == name));
        let mut out = Vec::new();
        for key in broker_keys().map(|k| k.name).filter(|k| wanted(k)) {
            let (value, source) = self.broker_value(key);
            if value.is_none() && source == ConfigSource::Default {
                continue;
            }
            let mut synonyms = self.broker_synonyms(key);
            synonyms.push((
                key.to_string(),
                BrokerConfig::default().value_of(key),
                ConfigSource::Default,
            ));
            out.push(Described {
                name: key.to_string(),
                value,
                source,
                read_only: !is_dynamic_broker_key(key),
                config_type: broker_key(key).map_or(ConfigType::String, |k| k.config_type),
                documentation: broker_key(key).map_or(String::new(), |k| k.doc.to_string()),
                synonyms,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The cluster-wide dynamic defaults (resource BROKER ""): only the keys
    /// set there, as Kafka lists them.
    pub fn describe_cluster_default(&self, keys: Option<&[String]>) -> Vec<Described> {
        self.cluster_default
            .iter()
            .filter(|(k, _)| keys.is_none_or(|keys| keys.iter().any(|w| w == *k)))
            .map(|(k, v)| Described {
                name: k.clone(),
                value: Some(v.clone()),
                source: ConfigSource::DynamicDefaultBroker,
                read_only: false,
                config_type: broker_key(k).map_or(ConfigType::String, |k| k.config_type),
                documentation: broker_key(k).map_or(String::new(), |k| k.doc.to_string()),
                synonyms: vec![(
                    k.clone(),
                    Some(v.clone()),
                    ConfigSource::DynamicDefaultBroker,
                )],
            })
            .collect()
    }
}

/// Refuses keys that cannot change at run time, naming them.
pub fn check_dynamic_keys<'a>(keys: impl Iterator<Item = &'a String>) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    for key in keys {
        if is_dynamic_broker_key(key) {
            continue;
        }
        if broker_key(key).is_some() {
            problems.push(format!(
                "{key}: cannot be changed at run time; set it in the broker's config file and \
                 restart"
            ));
        } else {
            problems.push(format!("unknown broker config key '{key}'"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(toml: &str) -> BrokerLayers {
        BrokerLayers {
            static_config: BrokerConfig::from_toml_str(toml).unwrap(),
            cluster_default: BTreeMap::new(),
            node: BTreeMap::new(),
        }
    }

    fn find<'a>(list: &'a [Described], name: &str) -> &'a Described {
        list.iter().find(|d| d.name == name).unwrap()
    }

    #[test]
    fn topic_values_come_from_the_highest_layer_that_sets_them() {
        let mut l = layers("log.retention.ms = 1000\n");
        let none = BTreeMap::new();
        let d = l.describe_topic(&none, None);
        let retention = find(&d, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("1000"));
        assert_eq!(retention.source, ConfigSource::StaticBroker);
        assert_eq!(retention.synonyms[0].0, "log.retention.ms");
        assert_eq!(retention.synonyms.last().unwrap().2, ConfigSource::Default);
        assert_eq!(find(&d, "segment.bytes").source, ConfigSource::Default);
        assert_eq!(find(&d, "preallocate").value.as_deref(), Some("false"));

        l.cluster_default
            .insert("log.retention.ms".into(), "2000".into());
        let d = l.describe_topic(&none, None);
        assert_eq!(find(&d, "retention.ms").value.as_deref(), Some("2000"));
        assert_eq!(
            find(&d, "retention.ms").source,
            ConfigSource::DynamicDefaultBroker
        );

        l.node.insert("log.retention.ms".into(), "3000".into());
        let overrides = BTreeMap::from([("retention.ms".to_string(), "4000".to_string())]);
        let d = l.describe_topic(&overrides, None);
        let retention = find(&d, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("4000"));
        let sources: Vec<ConfigSource> = retention.synonyms.iter().map(|s| s.2).collect();
        assert_eq!(
            sources,
            [
                ConfigSource::DynamicTopic,
                ConfigSource::DynamicBroker,
                ConfigSource::DynamicDefaultBroker,
                ConfigSource::StaticBroker,
                ConfigSource::Default
            ]
        );
        let only = l.describe_topic(&overrides, Some(&["retention.ms".into(), "nope".into()]));
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn dynamic_broker_layers_change_the_effective_config() {
        let mut l = layers("");
        l.cluster_default
            .insert("message.max.bytes".into(), "5000".into());
        assert_eq!(l.effective().unwrap().message_max_bytes, 5000);
        l.node.insert("message.max.bytes".into(), "6000".into());
        assert_eq!(l.effective().unwrap().message_max_bytes, 6000);
        let b = l.describe_broker(Some(&["message.max.bytes".into()]));
        assert_eq!(b[0].source, ConfigSource::DynamicBroker);
        assert!(!b[0].read_only);
        let b = l.describe_broker(Some(&["log.dirs".into()]));
        assert!(b[0].read_only);
    }

    #[test]
    fn static_keys_cannot_change_at_run_time() {
        let err = check_dynamic_keys(["log.dirs".to_string(), "bogus".to_string()].iter())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("log.dirs: cannot be changed at run time"),
            "{err}"
        );
        assert!(err.contains("unknown broker config key 'bogus'"), "{err}");
        assert!(check_dynamic_keys(["log.retention.ms".to_string()].iter()).is_ok());
    }
}
