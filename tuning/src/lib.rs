//! Strom configuration: broker settings read from TOML under Kafka's
//! `server.properties` key names, `STROM_*` environment overrides, topic-level
//! configs, and named limits.
//!
//! See [`config`] for the table of supported keys and [`limits`] for the
//! fixed caps.

pub mod catalog;
pub mod config;
pub mod limits;

pub use config::{BrokerConfig, ConfigError, TimestampType, TopicConfig};
pub use limits::validate_topic_name;
