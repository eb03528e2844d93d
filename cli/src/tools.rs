//! What `strom topic`, `strom produce`, `strom consume` and `strom cluster`
//! share: the connection flags, writing the output, full Metadata answers,
//! DescribeConfigs and IncrementalAlterConfigs, `key=value` arguments, and
//! the messages of topic errors.

use super::client::{self, Session};
use super::{codes, CliError, KafkaError, EXIT_ERROR};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// Environment variable naming the brokers (rpk's `RPK_BROKERS` counterpart);
/// `$STROM_BOOTSTRAP` (what `strom group` reads) is used when it is not set.
pub const BROKERS_ENV: &str = "STROM_BROKERS";

/// `$STROM_BROKERS`, else `$STROM_BOOTSTRAP`.
pub fn brokers_from_env() -> Option<String> {
    std::env::var(BROKERS_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| std::env::var(client::BOOTSTRAP_ENV).ok())
}

/// Config resource types of DescribeConfigs / IncrementalAlterConfigs.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Connection flags of the topic, produce, consume and cluster commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnArgs {
    /// Brokers to bootstrap from [default: $STROM_BROKERS, else $STROM_BOOTSTRAP,
    /// else 127.0.0.1:9092].
    #[arg(
        long,
        global = true,
        visible_alias = "bootstrap",
        value_name = "HOST:PORT[,HOST:PORT...]"
    )]
    pub brokers: Option<String>,
    /// Seconds to wait for a connection and for each answer (and the broker's
    /// time limit for produce and topic changes).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

impl ConnArgs {
    /// A session on the bootstrap list of the flag or the environment.
    pub fn session(&self) -> Session {
        let env = brokers_from_env();
        let bootstrap = client::bootstrap_from(self.brokers.as_deref(), env.as_deref());
        Session::new(&bootstrap, self.timeout())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The timeout in milliseconds, for `timeout_ms` request fields.
    pub fn timeout_ms(&self) -> i32 {
        i32::try_from(self.timeout.saturating_mul(1000)).unwrap_or(i32::MAX)
    }
}

/// Writes to stdout. A closed pipe (`| head`) ends the command quietly, like
/// SIGPIPE would; any other failure (a full disk behind `> file`) is reported
/// and the command fails, so a truncated output is never taken for a whole one.
pub fn emit_bytes(command: &str, bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(bytes).and_then(|()| out.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("strom {command}: cannot write the output: {err}");
        std::process::exit(EXIT_ERROR);
    }
}

pub fn emit(command: &str, text: &str) {
    emit_bytes(command, text.as_bytes());
}

/// One JSON document on one line.
pub fn emit_json<T: Serialize>(command: &str, value: &T) {
    let text = serde_json::to_string(value).expect("serializable output");
    emit(command, &format!("{text}\n"));
}

pub fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

pub fn topic_name(text: &str) -> TopicName {
    TopicName(str_bytes(text))
}

/// A broker message on one line: line breaks and the indentation after them
/// become single spaces (a table row or a stderr line stays one line).
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A topic-level error as a message naming the topic.
pub fn topic_error(code: i16, topic: &str, what: &str, message: Option<&str>) -> KafkaError {
    let context = match code {
        codes::UNKNOWN_TOPIC_OR_PARTITION => format!("topic '{topic}' does not exist"),
        36 => format!("topic '{topic}' already exists"),
        17 => format!("'{topic}' is not a valid topic name"),
        29 => format!("not authorized to access topic '{topic}'"),
        codes::LEADER_NOT_AVAILABLE => format!("topic '{topic}' has partitions without a leader"),
        _ => format!("{what} of topic '{topic}' failed"),
    };
    KafkaError::new(code, context).with_message(message.map(one_line).as_deref())
}

/// Metadata at the highest common version: every topic (`None`) or some, with
/// auto-creation allowed or not. The whole answer (ids, replicas, ISR, epochs).
pub fn metadata(
    session: &mut Session,
    topics: Option<&[String]>,
    allow_auto_create: bool,
) -> Result<MetadataResponse, CliError> {
    let addr = session.any()?.addr().to_string();
    let (_, response) = session.call(&addr, |c| {
        c.send(|version| {
            let mut request = MetadataRequest::default();
            request.allow_auto_topic_creation = allow_auto_create;
            request.topics = match topics {
                Some(names) => Some(
                    names
                        .iter()
                        .map(|n| {
                            let mut t = MetadataRequestTopic::default();
                            t.name = Some(topic_name(n));
                            t
                        })
                        .collect(),
                ),
                None if version == 0 => Some(Vec::new()),
                None => None,
            };
            request
        })
    })?;
    Ok(response)
}

/// The Metadata of one topic that must exist: its error, if any, named.
pub fn existing_topic<'a>(
    response: &'a MetadataResponse,
    topic: &str,
) -> Result<&'a kafka_protocol::messages::metadata_response::MetadataResponseTopic, CliError> {
    let t = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .ok_or_else(|| topic_error(codes::UNKNOWN_TOPIC_OR_PARTITION, topic, "Metadata", None))?;
    if t.error_code != codes::NONE {
        return Err(topic_error(t.error_code, topic, "Metadata", None).into());
    }
    Ok(t)
}

/// Where a topic's partitions live, for produce and consume.
#[derive(Clone, Debug)]
pub struct TopicRoute {
    pub topic: String,
    pub topic_id: uuid::Uuid,
    /// Partition → the `host:port` of its leader.
    pub leaders: BTreeMap<i32, String>,
}

impl TopicRoute {
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.leaders.len()).unwrap_or(i32::MAX)
    }
}

/// Metadata of a topic (created first if `allow_auto_create` and the broker
/// auto-creates topics), waiting up to the session timeout while partitions
/// have no leader yet (a topic just created).
pub fn topic_route(
    session: &mut Session,
    topic: &str,
    allow_auto_create: bool,
) -> Result<TopicRoute, CliError> {
    let deadline = Instant::now() + session.timeout();
    loop {
        let response = metadata(session, Some(&[topic.to_string()]), allow_auto_create)?;
        let t = match existing_topic(&response, topic) {
            Ok(t) => t,
            Err(CliError::Kafka(e))
                if e.code == codes::LEADER_NOT_AVAILABLE && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => return Err(e),
        };
        let brokers: BTreeMap<i32, String> = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, client::host_port(&b.host, b.port)))
            .collect();
        let leaders: BTreeMap<i32, String> = t
            .partitions
            .iter()
            .filter_map(|p| Some((p.partition_index, brokers.get(&p.leader_id.0)?.clone())))
            .collect();
        let complete = !t.partitions.is_empty() && leaders.len() == t.partitions.len();
        if !complete && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if !complete {
            return Err(topic_error(codes::LEADER_NOT_AVAILABLE, topic, "Metadata", None).into());
        }
        return Ok(TopicRoute {
            topic: topic.to_string(),
            topic_id: t.topic_id,
            leaders,
        });
    }
}

/// Kafka's name of a config source (DescribeConfigs `config_source`), as
/// `kafka-configs` and rpk print it.
pub fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One config entry of a DescribeConfigs answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigEntry {
    pub key: String,
    /// None when the broker hides it (sensitive) or it has no value.
    pub value: Option<String>,
    pub source: String,
    pub read_only: bool,
    pub sensitive: bool,
}

/// DescribeConfigs of one resource (every key), sent to `addr` (a BROKER
/// resource must be asked of that broker); entries sorted by key.
pub fn describe_configs(
    session: &mut Session,
    addr: &str,
    resource_type: i8,
    resource_name: &str,
    what: &str,
) -> Result<Vec<ConfigEntry>, CliError> {
    let (_, response) = session.call(addr, |c| {
        c.send(|_version| {
            let mut resource = DescribeConfigsResource::default();
            resource.resource_type = resource_type;
            resource.resource_name = str_bytes(resource_name);
            resource.configuration_keys = None;
            let mut request = DescribeConfigsRequest::default();
            request.resources = vec![resource];
            request.include_synonyms = false;
            request.include_documentation = false;
            request
        })
    })?;
    let result = response
        .results
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Protocol {
            addr: addr.to_string(),
            reason: "DescribeConfigs answer has no result".to_string(),
        })?;
    if result.error_code != codes::NONE {
        let err = if resource_type == RESOURCE_TOPIC {
            topic_error(
                result.error_code,
                resource_name,
                "DescribeConfigs",
                result.error_message.as_deref(),
            )
        } else {
            KafkaError::new(
                result.error_code,
                format!("DescribeConfigs of {what} failed"),
            )
            .with_message(result.error_message.as_deref())
        };
        return Err(err.into());
    }
    let mut entries: Vec<ConfigEntry> = result
        .configs
        .into_iter()
        .map(|c| ConfigEntry {
            key: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: config_source_name(c.config_source).to_string(),
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        })
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(entries)
}

/// Rows KEY VALUE SOURCE of config entries.
pub fn config_rows(entries: &[ConfigEntry]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|e| {
            let value = match (&e.value, e.sensitive) {
                (_, true) => "(sensitive)".to_string(),
                (Some(v), false) => v.clone(),
                (None, false) => "-".to_string(),
            };
            vec![e.key.clone(), value, e.source.clone()]
        })
        .collect()
}

/// An IncrementalAlterConfigs operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigOp {
    Set = 0,
    Delete = 1,
    Append = 2,
    Subtract = 3,
}

/// One change of a config resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    pub op: ConfigOp,
    pub key: String,
    /// None for Delete.
    pub value: Option<String>,
}

/// IncrementalAlterConfigs of one resource; the broker's error, if any, with
/// its message (which names the key for INVALID_CONFIG).
pub fn incremental_alter_configs(
    session: &mut Session,
    resource_type: i8,
    resource_name: &str,
    changes: &[ConfigChange],
    validate_only: bool,
) -> Result<Result<(), KafkaError>, CliError> {
    let addr = session.any()?.addr().to_string();
    let (_, response) = session.call(&addr, |c| {
        c.send(|_version| {
            let mut resource = AlterConfigsResource::default();
            resource.resource_type = resource_type;
            resource.resource_name = str_bytes(resource_name);
            resource.configs = changes
                .iter()
                .map(|change| {
                    let mut config = AlterableConfig::default();
                    config.name = str_bytes(&change.key);
                    config.config_operation = change.op as i8;
                    config.value = change.value.as_deref().map(str_bytes);
                    config
                })
                .collect();
            let mut request = IncrementalAlterConfigsRequest::default();
            request.resources = vec![resource];
            request.validate_only = validate_only;
            request
        })
    })?;
    let result = response
        .responses
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Protocol {
            addr: addr.clone(),
            reason: "IncrementalAlterConfigs answer has no result".to_string(),
        })?;
    if result.error_code == codes::NONE {
        return Ok(Ok(()));
    }
    let err = if resource_type == RESOURCE_TOPIC {
        topic_error(
            result.error_code,
            resource_name,
            "IncrementalAlterConfigs",
            result.error_message.as_deref(),
        )
    } else {
        let what = if resource_name.is_empty() {
            "changing the cluster-wide broker config failed".to_string()
        } else {
            format!("changing the config of broker {resource_name} failed")
        };
        KafkaError::new(result.error_code, what)
            .with_message(result.error_message.as_deref().map(one_line).as_deref())
    };
    Ok(Err(err))
}

/// Whether the broker we are connected to serves an API.
pub fn supports(session: &mut Session, api_key: ApiKey) -> Result<bool, CliError> {
    Ok(session.any()?.supports(api_key))
}

/// `key=value` (the value may contain `=` and be empty); the key must not be empty.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

/// A config key alone (for `--delete`).
pub fn parse_key(text: &str) -> Result<String, String> {
    let key = text.trim();
    if key.is_empty() || key.contains('=') {
        return Err(format!("'{text}' is not a config key"));
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("retention.ms=1000"),
            Ok(("retention.ms".to_string(), "1000".to_string()))
        );
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_string(), String::new())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
        assert_eq!(parse_key("segment.ms"), Ok("segment.ms".to_string()));
        assert!(parse_key("a=b").is_err());
        assert!(parse_key(" ").is_err());
    }

    #[test]
    fn broker_messages_become_one_line() {
        assert_eq!(
            one_line("invalid configuration (1 problem):\n  unknown topic config key 'x'"),
            "invalid configuration (1 problem): unknown topic config key 'x'"
        );
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn config_sources_are_named_like_kafka() {
        assert_eq!(config_source_name(1), "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(config_source_name(3), "DYNAMIC_DEFAULT_BROKER_CONFIG");
        assert_eq!(config_source_name(4), "STATIC_BROKER_CONFIG");
        assert_eq!(config_source_name(5), "DEFAULT_CONFIG");
        assert_eq!(config_source_name(0), "UNKNOWN");
    }

    #[test]
    fn topic_errors_name_the_topic() {
        assert_eq!(
            topic_error(3, "orders", "Metadata", None).to_string(),
            "UNKNOWN_TOPIC_OR_PARTITION: topic 'orders' does not exist"
        );
        assert_eq!(
            topic_error(
                40,
                "t",
                "IncrementalAlterConfigs",
                Some("Unknown topic config 'x'")
            )
            .to_string(),
            "INVALID_CONFIG: IncrementalAlterConfigs of topic 't' failed \
             (broker says: Unknown topic config 'x')"
        );
    }
}
