//! Strom configuration: broker settings read from TOML under Kafka's
//! `server.properties` key names, `STROM_*` environment overrides, topic-level
//! configs, and named limits.
//!
//! See [`config`] for the table of supported keys and [`limits`] for the
//! fixed caps. [`host`] holds the start-up checks of the host (io_uring,
//! limits, log dir file systems, cores) and [`tune`] the `strom tune` tuners.

pub mod catalog;
pub mod config;
pub mod host;
pub mod limits;
pub mod root;
pub mod tune;

pub use config::{BrokerConfig, ConfigError, TimestampType, TopicConfig};
pub use limits::validate_topic_name;
