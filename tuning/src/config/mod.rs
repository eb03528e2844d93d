//! Broker and topic configuration.
//!
//! # Broker configuration file
//!
//! The broker reads a TOML file whose keys are Kafka's `server.properties`
//! names. All of these spellings mean the same thing:
//!
//! ```toml
//! log.segment.bytes = 1073741824        # dotted bare key (TOML nests it)
//! "log.segment.bytes" = 1073741824      # quoted key
//!
//! [log]
//! segment.bytes = 1073741824            # inside a table
//! ```
//!
//! (Giving the same key twice in different spellings is an error.) Values
//! may be TOML integers, strings or booleans; a string is accepted where a
//! number or boolean is expected if it parses (`"1073741824"`, `"true"`).
//! Lists (`log.dirs`) may be a TOML array or a comma-separated string.
//! Unknown keys are rejected. Every problem in a file is reported at once
//! ([`ConfigError::Invalid`]).
//!
//! Any key can also be set from the environment as `STROM_` followed by the
//! key upper-cased with dots turned into underscores: `STROM_LOG_DIRS`,
//! `STROM_LOG_SEGMENT_BYTES`, `STROM_STROM_SMP` (keys that already start with
//! `strom.` may drop the doubled prefix: `STROM_SMP`,
//! `STROM_FETCH_MAX_WAIT_MS_CAP`). Environment values are strings and are
//! parsed like strings in the file. Environment variables starting with
//! `STROM_` that name no key are ignored (other tools may use the prefix).
//! See [`BrokerConfig::apply_env`].
//!
//! ## Keys
//!
//! Every key (broker and topic) is declared once, in [`keys`]: name, type,
//! default, accepted values, whether it can change at run time, and what it
//! does. The README's tables are generated from there (`docs`; a test
//! fails when they differ). Topic settings are [`TopicConfig`]: broker
//! defaults ([`TopicConfig::defaults_from`]) overridden by a topic's own
//! `configs` ([`TopicConfig::apply`]). Other topic keys Kafka knows
//! ([`EXTRA_TOPIC_KEYS`]) are validated and kept in [`TopicConfig::extra`]
//! without effect, so clients that send them work. What DescribeConfigs
//! shows is in the `catalog` module.

mod docs;
mod keys;
mod layer;
mod listeners;
#[cfg(test)]
mod tests;
mod topic;
mod value;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use docs::{broker_keys_markdown, topic_keys_markdown};
pub use keys::{
    broker_key, broker_keys, topic_key, BrokerConfig, BrokerKey, ConfigType, TopicConfig, TopicKey,
    EXTRA_TOPIC_KEYS, NOT_ENFORCED, TOPIC_KEYS,
};
pub use listeners::CONTROLLER_LISTENER;
pub use topic::is_known_topic_key;
pub use value::{Check, COMPRESSION_TYPES};

use keys::{MS_PER_HOUR, MS_PER_MINUTE};
use layer::{Item, Layer};
use listeners::{parse_advertised, parse_listen, parse_listeners, parse_roles, parse_voters};
use value::{flatten, parse_dirs, parse_str, Raw};

/// Default port of the admin HTTP API (Redpanda's).
pub const ADMIN_PORT_DEFAULT: u16 = 9644;

/// The environment variable that sets a broker key: `STROM_` followed by the
/// key upper-cased with dots replaced by underscores (`log.dirs` →
/// `STROM_LOG_DIRS`).
pub fn env_var_name(key: &str) -> String {
    format!("STROM_{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// Which timestamp a record batch carries: the producer's (`CreateTime`) or
/// the broker's clock at append (`LogAppendTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Keep the timestamp set by the producer. Kafka's default.
    #[default]
    CreateTime,
    /// Overwrite the batch's max timestamp with the broker's time at append.
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name for the value: `CreateTime` or `LogAppendTime`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

impl fmt::Display for TimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimestampType {
    type Err = String;

    /// Parse Kafka's spelling exactly (`CreateTime`, `LogAppendTime`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "CreateTime" => Ok(TimestampType::CreateTime),
            "LogAppendTime" => Ok(TimestampType::LogAppendTime),
            other => Err(format!(
                "expected one of 'CreateTime', 'LogAppendTime', got '{other}'"
            )),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML. `origin` is the file path, or `<string>`.
    #[error("{origin}: invalid TOML: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// The values are wrong: one message per problem (unknown keys, wrong
    /// types, values out of range, keys given twice), each naming its key.
    #[error("{}", list_problems(.0))]
    Invalid(Vec<String>),
}

fn list_problems(problems: &[String]) -> String {
    let mut out = format!(
        "invalid configuration ({} problem{}):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(p);
    }
    out
}

/// One entry of `controller.quorum.voters`: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for QuorumVoter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.id, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.id, self.host, self.port)
        }
    }
}

/// Most voters in `controller.quorum.voters`.
pub const QUORUM_VOTERS_MAX: usize = 9;

impl BrokerConfig {
    /// Parse a TOML configuration (defaults for keys not given). Reports
    /// every problem at once in [`ConfigError::Invalid`].
    pub fn from_toml_str(text: &str) -> Result<BrokerConfig, ConfigError> {
        Self::parse_toml(text, "<string>", "")
    }

    /// Read and parse a TOML configuration file. Errors name the path.
    pub fn from_file(path: &Path) -> Result<BrokerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let shown = path.display().to_string();
        let prefix = format!("{shown}: ");
        Self::parse_toml(&text, &shown, &prefix)
    }

    fn parse_toml(text: &str, origin: &str, prefix: &str) -> Result<BrokerConfig, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut flat = Vec::new();
        flatten("", &table, &mut flat);
        let mut problems = Vec::new();
        let mut items = Vec::new();
        for (key, raw) in flat {
            match known_key(&key) {
                Some(k) => items.push(Item {
                    key: k,
                    label: k.to_string(),
                    raw,
                }),
                None => problems.push(format!("unknown key '{key}'")),
            }
        }
        match BrokerConfig::default().with_layer(items) {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(_) => {}
            Err(mut more) => problems.append(&mut more),
        }
        Err(ConfigError::Invalid(
            problems
                .into_iter()
                .map(|p| format!("{prefix}{p}"))
                .collect(),
        ))
    }

    /// Apply `STROM_*` environment overrides on top of this configuration.
    ///
    /// A variable named [`env_var_name`]`(key)` sets `key`; keys starting
    /// with `strom.` may also drop the doubled prefix (`STROM_SMP` for
    /// `strom.smp`). Values are parsed like TOML strings (lists
    /// comma-separated). Variables starting with `STROM_` that name no key
    /// are ignored. Precedence rules (e.g. `log.retention.ms` over
    /// `log.retention.hours`) apply among the variables; any value set here
    /// replaces the current one. On error nothing is changed and every
    /// problem is reported.
    ///
    /// Pass `std::env::vars()` in production; tests inject their own pairs.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut items = Vec::new();
        for (name, value) in vars {
            if !name.starts_with("STROM_") {
                continue;
            }
            let key = broker_keys().map(|k| k.name).find(|k| {
                env_var_name(k) == name
                    || k.strip_prefix("strom.")
                        .is_some_and(|rest| env_var_name(rest) == name)
            });
            if let Some(key) = key {
                items.push(Item {
                    key,
                    label: format!("{name} ({key})"),
                    raw: Raw::Str(value),
                });
            }
        }
        *self = self.with_layer(items).map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Set keys from `(key, value)` string pairs, e.g. command-line flags
    /// (`--listen 0.0.0.0:9092` → `("listeners", "0.0.0.0:9092")`,
    /// `--smp 4` → `("strom.smp", "4")`). Same rules as [`Self::apply_env`]
    /// except that unknown keys are errors.
    pub fn apply_overrides(
        &mut self,
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut items = Vec::new();
        for (key, value) in pairs {
            match known_key(&key) {
                Some(k) => items.push(Item {
                    key: k,
                    label: k.to_string(),
                    raw: Raw::Str(value),
                }),
                None => problems.push(format!("unknown key '{key}'")),
            }
        }
        match self.with_layer(items) {
            Ok(next) if problems.is_empty() => {
                *self = next;
                Ok(())
            }
            Ok(_) => Err(ConfigError::Invalid(problems)),
            Err(mut more) => {
                problems.append(&mut more);
                Err(ConfigError::Invalid(problems))
            }
        }
    }

    /// The current value of a broker key as Kafka would show it
    /// (DescribeConfigs), or `None` for a key that is not set and has no
    /// default (`strom.smp` without a value, `log.retention.minutes`).
    pub fn value_of(&self, key: &str) -> Option<String> {
        let text = |v: &dyn fmt::Display| Some(v.to_string());
        match key {
            "log.dirs" | "log.dir" => Some(
                self.log_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            "listeners" => Some(match self.controller_listen {
                Some(controller) => {
                    format!("PLAINTEXT://{},CONTROLLER://{controller}", self.listen)
                }
                None => format!("PLAINTEXT://{}", self.listen),
            }),
            "advertised.listeners" => {
                let (host, port) = self.advertised();
                if host.contains(':') {
                    Some(format!("PLAINTEXT://[{host}]:{port}"))
                } else {
                    Some(format!("PLAINTEXT://{host}:{port}"))
                }
            }
            "controller.quorum.voters" => Some(
                self.quorum_voters
                    .iter()
                    .map(QuorumVoter::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            "controller.listener.names" => Some(CONTROLLER_LISTENER.to_string()),
            "process.roles" => Some(
                self.process_roles
                    .clone()
                    .unwrap_or_else(|| "broker,controller".to_string()),
            ),
            "node.id" | "broker.id" => text(&self.node_id),
            "strom.smp" => self.smp.map(|n| n.to_string()),
            "log.roll.ms" => text(&self.log_roll_ms),
            "log.roll.hours" => text(&(self.log_roll_ms / MS_PER_HOUR)),
            "log.retention.ms" => text(&self.log_retention_ms),
            "log.retention.minutes" => None,
            "log.retention.hours" => {
                if self.log_retention_ms < 0 {
                    text(&-1)
                } else {
                    text(&(self.log_retention_ms / MS_PER_HOUR))
                }
            }
            "admin.listeners" => Some(format!("http://{}", self.admin_listen())),
            "strom.log.level" => text(&self.log_level),
            "strom.log.format" => text(&self.log_format.as_str()),
            _ => self.show_simple(key),
        }
    }

    /// Where the admin HTTP API listens: `admin.listeners`, or the Kafka
    /// listener's host with port 9644 (0 when the Kafka port is 0, so
    /// brokers started on free ports do not collide on 9644).
    pub fn admin_listen(&self) -> SocketAddr {
        self.admin_listen.unwrap_or_else(|| {
            let port = if self.listen.port() == 0 {
                0
            } else {
                ADMIN_PORT_DEFAULT
            };
            SocketAddr::new(self.listen.ip(), port)
        })
    }

    /// The data directory: the first of `log.dirs`.
    pub fn data_dir(&self) -> &Path {
        self.log_dirs
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new("./strom-data"))
    }

    /// Host and port to give clients: `advertised.listeners` if set, else the
    /// listen address. If listening on every interface (`0.0.0.0` / `::`)
    /// with no advertised host, `127.0.0.1` is advertised (only local clients
    /// can follow it; set `advertised.listeners` for remote ones).
    pub fn advertised(&self) -> (String, u16) {
        let host = match &self.advertised_host {
            Some(h) => h.clone(),
            None if self.listen.ip().is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            None => self.listen.ip().to_string(),
        };
        (host, self.advertised_port.unwrap_or(self.listen.port()))
    }

    /// Checks that the cluster keys agree with each other, once every layer
    /// (file, environment, flags) is applied: with `controller.quorum.voters`
    /// this node must be a voter and have a `CONTROLLER` listener on its
    /// voter port; without voters there must be no `CONTROLLER` listener.
    pub fn check_cluster(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.quorum_voters.is_empty() {
            if self.controller_listen.is_some() {
                problems.push(
                    "listeners has a CONTROLLER listener but controller.quorum.voters is empty; \
                     give the voters (e.g. '1@127.0.0.1:9093') or drop the CONTROLLER listener"
                        .to_string(),
                );
            }
        } else {
            match self.quorum_voters.iter().find(|v| v.id == self.node_id) {
                None => problems.push(format!(
                    "node.id {} is not one of controller.quorum.voters ({}); every node must be \
                     a voter (broker-only nodes are not supported yet)",
                    self.node_id,
                    self.value_of("controller.quorum.voters")
                        .unwrap_or_default()
                )),
                Some(me) => match self.controller_listen {
                    None => problems.push(format!(
                        "controller.quorum.voters is set but listeners has no CONTROLLER \
                         listener; add one, e.g. 'PLAINTEXT://{},CONTROLLER://{}:{}'",
                        self.listen, me.host, me.port
                    )),
                    Some(addr) if addr.port() != me.port => problems.push(format!(
                        "the CONTROLLER listener {addr} does not use this node's voter port \
                         {} ({me})",
                        me.port
                    )),
                    Some(_) => {}
                },
            }
        }
        if self.broker_session_timeout_ms <= self.broker_heartbeat_interval_ms {
            problems.push(format!(
                "broker.session.timeout.ms ({}) must be larger than broker.heartbeat.interval.ms ({})",
                self.broker_session_timeout_ms, self.broker_heartbeat_interval_ms
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// A copy of `self` with one layer of settings applied, or every problem.
    fn with_layer(&self, items: Vec<Item>) -> Result<BrokerConfig, Vec<String>> {
        let mut c = self.clone();
        c.explicit
            .extend(items.iter().map(|item| item.key.to_string()));
        let mut layer = Layer::new(items);
        c.apply_simple(&mut layer);
        c.apply_custom(&mut layer);
        if c.group_min_session_timeout_ms > c.group_max_session_timeout_ms {
            layer.problems.push(format!(
                "group.min.session.timeout.ms ({}) is above group.max.session.timeout.ms ({})",
                c.group_min_session_timeout_ms, c.group_max_session_timeout_ms
            ));
        }
        if layer.problems.is_empty() {
            Ok(c)
        } else {
            Err(layer.problems)
        }
    }

    /// Set the keys of [`keys::CUSTOM_KEYS`] that `layer` gives.
    fn apply_custom(&mut self, layer: &mut Layer) {
        let dirs = layer.get("log.dirs", parse_dirs);
        let dir = layer.get("log.dir", parse_dirs);
        if let Some(d) = dirs.or(dir) {
            self.log_dirs = d;
        }
        if let Some((kafka, controller)) = layer.get("listeners", |r| {
            parse_str(r).and_then(|s| parse_listeners(&s))
        }) {
            self.listen = kafka;
            self.controller_listen = controller;
        }
        if let Some((host, port)) = layer.get("advertised.listeners", |r| {
            parse_str(r).and_then(|s| parse_advertised(&s))
        }) {
            self.advertised_host = Some(host);
            self.advertised_port = Some(port);
        }
        if let Some(voters) = layer.get("controller.quorum.voters", parse_voters) {
            self.quorum_voters = voters;
        }
        // Only checked: the name is fixed.
        layer.get("controller.listener.names", |r| {
            let name = parse_str(r)?;
            if name.trim().eq_ignore_ascii_case(CONTROLLER_LISTENER) {
                Ok(())
            } else {
                Err(format!(
                    "only the listener name CONTROLLER is supported, got '{name}'"
                ))
            }
        });
        if let Some(roles) = layer.get("process.roles", parse_roles) {
            self.process_roles = Some(roles);
        }

        let node = int(layer, "node.id");
        let broker = int(layer, "broker.id");
        match (node, broker) {
            (Some(n), Some(b)) if n != b => layer.problems.push(format!(
                "node.id ({n}) and broker.id ({b}) disagree; give only one of them"
            )),
            _ => {
                if let Some(id) = node.or(broker) {
                    self.node_id = id as i32;
                }
            }
        }
        if let Some(n) = int(layer, "strom.smp") {
            self.smp = Some(n as usize);
        }

        let roll_ms = int(layer, "log.roll.ms");
        let roll_hours = int(layer, "log.roll.hours");
        if let Some(ms) = roll_ms.or(roll_hours.map(|h| h * MS_PER_HOUR)) {
            self.log_roll_ms = ms;
        }
        let ret_ms = int(layer, "log.retention.ms");
        let ret_min = int(layer, "log.retention.minutes");
        let ret_hours = int(layer, "log.retention.hours");
        let scaled = |v: i64, unit: i64| if v < 0 { -1 } else { v * unit };
        if let Some(ms) = ret_ms
            .or(ret_min.map(|m| scaled(m, MS_PER_MINUTE)))
            .or(ret_hours.map(|h| scaled(h, MS_PER_HOUR)))
        {
            self.log_retention_ms = ms;
        }

        if let Some(addr) = layer.get("admin.listeners", |r| {
            let text = parse_str(r)?;
            let address = text
                .strip_prefix("http://")
                .or_else(|| text.strip_prefix("HTTP://"))
                .unwrap_or(&text);
            parse_listen(address).map_err(|e| e.replace("PLAINTEXT://", "http://"))
        }) {
            self.admin_listen = Some(addr);
        }
        if let Some(level) = layer.get("strom.log.level", |r| {
            let text = parse_str(r)?;
            if text.is_empty() {
                return Err("expected filter directives like 'info' or \
                            'info,strom_engine::group=debug', got ''"
                    .into());
            }
            Ok(text)
        }) {
            self.log_level = level;
        }
        if let Some(format) = layer.get("strom.log.format", |r| {
            match parse_str(r)?.to_ascii_lowercase().as_str() {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(format!("expected 'text' or 'json', got {r}")),
            }
        }) {
            self.log_format = format;
        }
    }
}

/// A custom integer key's value from `layer`, checked by its declared range.
fn int(layer: &mut Layer, key: &'static str) -> Option<i64> {
    let check = broker_key(key).map_or(Check::Text, |k| k.check);
    layer.int(key, check)
}

fn known_key(key: &str) -> Option<&'static str> {
    broker_key(key).map(|k| k.name)
}

/// Format of the broker's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}
