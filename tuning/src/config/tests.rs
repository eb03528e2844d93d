//! Tests of broker and topic configuration.

use std::path::Path;

use super::*;

fn invalid(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid(problems) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_file_gives_defaults() {
    let c = BrokerConfig::from_toml_str("").unwrap();
    assert_eq!(c, BrokerConfig::default());
    assert_eq!(c.data_dir(), Path::new("./strom-data"));
    assert_eq!(c.advertised(), ("127.0.0.1".to_string(), 9092));
    assert_eq!(c.log_roll_ms, 604_800_000);
    assert_eq!(c.log_retention_ms, 604_800_000);
}

#[test]
fn three_spellings_are_equal() {
    let dotted = "log.segment.bytes = 1048576\nlog.retention.ms = 5000\nnum.partitions = 3\n";
    let quoted =
        "\"log.segment.bytes\" = 1048576\n\"log.retention.ms\" = 5000\n\"num.partitions\" = 3\n";
    let table = "num.partitions = 3\n[log]\nsegment.bytes = 1048576\nretention.ms = 5000\n";
    let mixed = "[log]\n\"segment.bytes\" = \"1048576\"\nretention = { ms = 5000 }\n\
                 [num]\npartitions = \"3\"\n";
    let a = BrokerConfig::from_toml_str(dotted).unwrap();
    assert_eq!(a.log_segment_bytes, 1_048_576);
    assert_eq!(a.log_retention_ms, 5000);
    assert_eq!(a.num_partitions, 3);
    assert_eq!(a, BrokerConfig::from_toml_str(quoted).unwrap());
    assert_eq!(a, BrokerConfig::from_toml_str(table).unwrap());
    assert_eq!(a, BrokerConfig::from_toml_str(mixed).unwrap());
}

#[test]
fn all_keys_parse() {
    let text = r#"
        log.dirs = ["/a", "/b"]
        listeners = "PLAINTEXT://0.0.0.0:19092"
        advertised.listeners = "PLAINTEXT://broker1.example.com:29092"
        node.id = 7
        strom.smp = 4
        num.partitions = 6
        default.replication.factor = 1
        auto.create.topics.enable = false
        log.segment.bytes = 14
        log.roll.hours = 2
        log.index.interval.bytes = 0
        message.max.bytes = 2000000
        socket.request.max.bytes = "1000"
        log.retention.bytes = 123
        log.message.timestamp.type = "LogAppendTime"
        strom.fetch.max.wait.ms.cap = 500
    "#;
    let c = BrokerConfig::from_toml_str(text).unwrap();
    assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(c.data_dir(), Path::new("/a"));
    assert_eq!(c.listen, "0.0.0.0:19092".parse().unwrap());
    assert_eq!(c.advertised(), ("broker1.example.com".to_string(), 29092));
    assert_eq!(c.node_id, 7);
    assert_eq!(c.smp, Some(4));
    assert_eq!(c.num_partitions, 6);
    assert!(!c.auto_create_topics_enable);
    assert_eq!(c.log_segment_bytes, 14);
    assert_eq!(c.log_roll_ms, 7_200_000);
    assert_eq!(c.log_index_interval_bytes, 0);
    assert_eq!(c.message_max_bytes, 2_000_000);
    assert_eq!(c.socket_request_max_bytes, 1000);
    assert_eq!(c.log_retention_bytes, 123);
    assert_eq!(c.log_message_timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(c.fetch_max_wait_ms_cap, 500);
}

#[test]
fn every_documented_key_is_accepted_via_overrides() {
    for key in broker_keys().map(|k| k.name) {
        let mut c = BrokerConfig::default();
        let value = match key {
            "log.dirs" | "log.dir" => "/x",
            "listeners" => "PLAINTEXT://127.0.0.1:1",
            "advertised.listeners" => "PLAINTEXT://h:1",
            "auto.create.topics.enable" | "strom.write.caching.default" => "true",
            "group.max.session.timeout.ms" => "10000",
            "log.message.timestamp.type" => "CreateTime",
            "log.cleanup.policy" => "compact",
            "compression.type" => "zstd",
            "admin.listeners" => "http://127.0.0.1:9645",
            "strom.log.level" => "debug",
            "strom.log.format" => "json",
            "controller.quorum.voters" => "1@127.0.0.1:9093,2@127.0.0.2:9093",
            "controller.listener.names" => "CONTROLLER",
            "process.roles" => "broker,controller",
            "unclean.leader.election.enable"
            | "auto.leader.rebalance.enable"
            | "controlled.shutdown.enable" => "true",
            "controller.quorum.election.timeout.ms" => "1000",
            _ => "100",
        };
        let result = c.apply_overrides([(key.to_string(), value.to_string())]);
        result.unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

#[test]
fn cluster_keys_parse_and_agree() {
    let text = r#"
        node.id = 2
        listeners = "PLAINTEXT://127.0.0.12:9092,CONTROLLER://127.0.0.12:9093"
        advertised.listeners = "PLAINTEXT://127.0.0.12:9092,CONTROLLER://127.0.0.12:9093"
        controller.quorum.voters = "1@127.0.0.11:9093,2@127.0.0.12:9093,3@localhost:9093"
        process.roles = "controller,broker"
        default.replication.factor = 3
    "#;
    let c = BrokerConfig::from_toml_str(text).unwrap();
    c.check_cluster().unwrap();
    assert_eq!(c.listen, "127.0.0.12:9092".parse().unwrap());
    assert_eq!(
        c.controller_listen,
        Some("127.0.0.12:9093".parse().unwrap())
    );
    assert_eq!(c.advertised(), ("127.0.0.12".to_string(), 9092));
    assert_eq!(c.quorum_voters.len(), 3);
    assert_eq!(c.quorum_voters[2].host, "localhost");
    assert_eq!(c.default_replication_factor, 3);
    assert_eq!(
        c.value_of("controller.quorum.voters").unwrap(),
        "1@127.0.0.11:9093,2@127.0.0.12:9093,3@localhost:9093"
    );
    assert_eq!(
        c.value_of("listeners").unwrap(),
        "PLAINTEXT://127.0.0.12:9092,CONTROLLER://127.0.0.12:9093"
    );
    // The single-node default needs no controller listener.
    BrokerConfig::default().check_cluster().unwrap();
}

#[test]
fn cluster_keys_that_disagree_are_refused_by_name() {
    let problems = |text: &str| {
        let c = BrokerConfig::from_toml_str(text).unwrap();
        invalid(c.check_cluster().unwrap_err())
    };
    let p = problems(
        r#"node.id = 4
           listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
           controller.quorum.voters = "1@127.0.0.1:9093""#,
    );
    assert!(
        p[0].contains("node.id 4 is not one of controller.quorum.voters"),
        "{p:?}"
    );
    let p = problems(r#"controller.quorum.voters = "1@127.0.0.1:9093""#);
    assert!(p[0].contains("no CONTROLLER listener"), "{p:?}");
    let p = problems(
        r#"listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9094"
           controller.quorum.voters = "1@127.0.0.1:9093""#,
    );
    assert!(
        p[0].contains("does not use this node's voter port 9093"),
        "{p:?}"
    );
    let p = problems(r#"listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093""#);
    assert!(p[0].contains("controller.quorum.voters is empty"), "{p:?}");
    let p = problems("broker.heartbeat.interval.ms = 3000");
    assert!(
        p[0].contains("must be larger than broker.heartbeat.interval.ms"),
        "{p:?}"
    );

    let bad = |text: &str| invalid(BrokerConfig::from_toml_str(text).unwrap_err());
    assert!(
        bad(r#"controller.quorum.voters = "1@127.0.0.1:9093,1@127.0.0.2:9093""#)[0]
            .contains("voter id 1 appears twice")
    );
    assert!(bad(r#"controller.quorum.voters = "one@127.0.0.1:9093""#)[0]
        .contains("expected voters like '1@127.0.0.1:9093'"));
    assert!(bad(r#"process.roles = "broker""#)[0].contains("only 'broker,controller'"));
    assert!(bad(r#"controller.listener.names = "CTRL""#)[0]
        .contains("only the listener name CONTROLLER"));
    assert!(bad(
        r#"listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:1,CONTROLLER://127.0.0.1:2""#
    )[0]
    .contains("more than one CONTROLLER listener"));
}

#[test]
fn log_dirs_forms_and_alias() {
    let c = BrokerConfig::from_toml_str("log.dirs = \"/a, /b ,\"").unwrap();
    assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    let c = BrokerConfig::from_toml_str("log.dir = \"/only\"").unwrap();
    assert_eq!(c.data_dir(), Path::new("/only"));
    let c = BrokerConfig::from_toml_str("log.dir = \"/x\"\nlog.dirs = \"/y\"").unwrap();
    assert_eq!(c.data_dir(), Path::new("/y"));
    let problems = invalid(BrokerConfig::from_toml_str("log.dirs = []").unwrap_err());
    assert!(
        problems[0].starts_with("log.dirs: expected a non-empty list"),
        "{problems:?}"
    );
    let problems = invalid(BrokerConfig::from_toml_str("log.dirs = [1]").unwrap_err());
    assert!(problems[0].starts_with("log.dirs:"), "{problems:?}");
}

#[test]
fn unknown_key_is_named() {
    let problems = invalid(BrokerConfig::from_toml_str("num.network.threads = 3").unwrap_err());
    assert_eq!(
        problems,
        vec!["unknown key 'num.network.threads'".to_string()]
    );
    let problems = invalid(BrokerConfig::from_toml_str("[log]\nsegmnt.bytes = 3").unwrap_err());
    assert_eq!(problems, vec!["unknown key 'log.segmnt.bytes'".to_string()]);
}

#[test]
fn all_problems_reported_together() {
    let text = r#"
        "log.segment.bytes" = 5
        log.segment.bytes = 1000
        bogus = 1
        num.partitions = "many"
        auto.create.topics.enable = "yes"
        message.max.bytes = 1.5
        default.replication.factor = 0
        listeners = "SSL://127.0.0.1:9093"
        log.message.timestamp.type = "createtime"
        node.id = -1
    "#;
    let err = BrokerConfig::from_toml_str(text).unwrap_err();
    let shown = err.to_string();
    let problems = invalid(err);
    assert_eq!(problems.len(), 9, "{problems:#?}");
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(has("unknown key 'bogus'"));
    assert!(has("log.segment.bytes: given more than once"));
    assert!(has(
        "num.partitions: expected an integer in 1..=10000, got 'many'"
    ));
    assert!(has(
        "auto.create.topics.enable: expected true or false, got 'yes'"
    ));
    assert!(has(
        "message.max.bytes: expected an integer in 0..=2147483647, got the float 1.5"
    ));
    assert!(has(
        "default.replication.factor: expected an integer in 1..=32767, got 0"
    ));
    assert!(has(
        "listeners: listener 'SSL://127.0.0.1:9093': only PLAINTEXT"
    ));
    assert!(has("log.message.timestamp.type: expected one of"));
    assert!(has(
        "node.id: expected an integer in 0..=2147483647, got -1"
    ));
    assert!(shown.starts_with("invalid configuration (9 problems):\n  "));
    assert_eq!(shown.lines().count(), 10);
}

#[test]
fn out_of_range_values() {
    let problems = invalid(
        BrokerConfig::from_toml_str(
            "log.segment.bytes = 13\nsocket.request.max.bytes = 0\nstrom.smp = 0\n\
             log.roll.ms = 0\nlog.retention.bytes = -2",
        )
        .unwrap_err(),
    );
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems
        .iter()
        .any(|p| p == "log.segment.bytes: expected an integer in 14..=2147483647, got 13"));
    assert!(problems
        .iter()
        .any(|p| p == "log.retention.bytes: expected an integer >= -1, got -2"));
    let problems =
        invalid(BrokerConfig::from_toml_str("log.segment.bytes = \"2147483648\"").unwrap_err());
    assert_eq!(problems.len(), 1);
}

#[test]
fn toml_syntax_error() {
    match BrokerConfig::from_toml_str("log.segment.bytes = ").unwrap_err() {
        ConfigError::Parse { origin, .. } => assert_eq!(origin, "<string>"),
        other => panic!("{other:?}"),
    }
    // A dotted key and a [table] of the same name collide in TOML itself.
    assert!(matches!(
        BrokerConfig::from_toml_str("log.segment.bytes = 1\n[log]\nroll.ms = 5"),
        Err(ConfigError::Parse { .. })
    ));
}

#[test]
fn from_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strom.toml");
    std::fs::write(&path, "[log]\nsegment.bytes = 4096\ndirs = \"/data\"\n").unwrap();
    let c = BrokerConfig::from_file(&path).unwrap();
    assert_eq!(c.log_segment_bytes, 4096);
    assert_eq!(c.data_dir(), Path::new("/data"));

    std::fs::write(&path, "wat = 1\n").unwrap();
    let problems = invalid(BrokerConfig::from_file(&path).unwrap_err());
    assert_eq!(
        problems,
        vec![format!("{}: unknown key 'wat'", path.display())]
    );

    std::fs::write(&path, "wat = \n").unwrap();
    let err = BrokerConfig::from_file(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    let missing = dir.path().join("missing.toml");
    let err = BrokerConfig::from_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("missing.toml"), "{err}");
}

#[test]
fn env_overrides() {
    let mut c = BrokerConfig::from_toml_str("log.segment.bytes = 4096\nnode.id = 3").unwrap();
    c.apply_env(env(&[
        ("STROM_LOG_DIRS", "/env/a,/env/b"),
        ("STROM_LOG_SEGMENT_BYTES", "8192"),
        ("STROM_SMP", "2"),
        ("STROM_AUTO_CREATE_TOPICS_ENABLE", "FALSE"),
        ("STROM_LISTENERS", "PLAINTEXT://:9999"),
        ("STROM_UNRELATED_THING", "ignored"),
        ("PATH", "/usr/bin"),
    ]))
    .unwrap();
    assert_eq!(c.data_dir(), Path::new("/env/a"));
    assert_eq!(c.log_segment_bytes, 8192);
    assert_eq!(c.smp, Some(2));
    assert!(!c.auto_create_topics_enable);
    assert_eq!(c.listen, "0.0.0.0:9999".parse().unwrap());
    assert_eq!(c.advertised(), ("127.0.0.1".to_string(), 9999));
    assert_eq!(c.node_id, 3);

    c.apply_env(env(&[("STROM_STROM_FETCH_MAX_WAIT_MS_CAP", "7")]))
        .unwrap();
    assert_eq!(c.fetch_max_wait_ms_cap, 7);
}

#[test]
fn env_errors_leave_config_unchanged() {
    let mut c = BrokerConfig::default();
    let err = c
        .apply_env(env(&[
            ("STROM_LOG_SEGMENT_BYTES", "big"),
            ("STROM_NODE_ID", "5"),
            ("STROM_SMP", "2"),
            ("STROM_STROM_SMP", "3"),
        ]))
        .unwrap_err();
    let problems = invalid(err);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p
                .starts_with("STROM_LOG_SEGMENT_BYTES (log.segment.bytes): expected an integer"))
    );
    assert!(problems.iter().any(|p| p.contains("given more than once")));
    assert_eq!(c, BrokerConfig::default());
}

#[test]
fn retention_precedence() {
    let ms = |text: &str| BrokerConfig::from_toml_str(text).unwrap().log_retention_ms;
    assert_eq!(ms("log.retention.hours = 1"), 3_600_000);
    assert_eq!(
        ms("log.retention.minutes = 2\nlog.retention.hours = 1"),
        120_000
    );
    assert_eq!(
        ms("log.retention.ms = 5\nlog.retention.minutes = 2\nlog.retention.hours = 1"),
        5
    );
    assert_eq!(ms("log.retention.ms = -1"), -1);
    assert_eq!(ms("log.retention.hours = -1"), -1);
    // A bad lower-precedence value is still reported.
    assert!(
        BrokerConfig::from_toml_str("log.retention.ms = 5\nlog.retention.hours = \"x\"").is_err()
    );
    // Roll: ms wins over hours.
    let c = BrokerConfig::from_toml_str("log.roll.ms = 10\nlog.roll.hours = 1").unwrap();
    assert_eq!(c.log_roll_ms, 10);
    // The environment layer replaces the file's value.
    let mut c = BrokerConfig::from_toml_str("log.retention.ms = 5").unwrap();
    c.apply_env(env(&[("STROM_LOG_RETENTION_HOURS", "2")]))
        .unwrap();
    assert_eq!(c.log_retention_ms, 7_200_000);
}

#[test]
fn node_id_alias() {
    assert_eq!(
        BrokerConfig::from_toml_str("broker.id = 4")
            .unwrap()
            .node_id,
        4
    );
    assert_eq!(
        BrokerConfig::from_toml_str("broker.id = 4\nnode.id = 4")
            .unwrap()
            .node_id,
        4
    );
    let problems = invalid(BrokerConfig::from_toml_str("broker.id = 4\nnode.id = 5").unwrap_err());
    assert!(problems[0].contains("disagree"), "{problems:?}");
}

#[test]
fn listeners_parsing() {
    let listen = |s: &str| parse_listen(s);
    assert_eq!(
        listen("PLAINTEXT://127.0.0.1:9092").unwrap(),
        "127.0.0.1:9092".parse().unwrap()
    );
    assert_eq!(
        listen("plaintext://:9092").unwrap(),
        "0.0.0.0:9092".parse().unwrap()
    );
    assert_eq!(
        listen("PLAINTEXT://localhost:0").unwrap(),
        "127.0.0.1:0".parse().unwrap()
    );
    assert_eq!(
        listen("PLAINTEXT://[::1]:9092").unwrap(),
        "[::1]:9092".parse().unwrap()
    );
    assert_eq!(
        listen("10.0.0.1:9092").unwrap(),
        "10.0.0.1:9092".parse().unwrap()
    );
    assert_eq!(
        listen(" PLAINTEXT://127.0.0.1:9092 ,").unwrap().port(),
        9092
    );
    assert!(
        listen("PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093")
            .unwrap_err()
            .contains("only one")
    );
    assert!(listen("SASL_PLAINTEXT://127.0.0.1:9092")
        .unwrap_err()
        .contains("PLAINTEXT"));
    assert!(listen("PLAINTEXT://broker.example.com:9092")
        .unwrap_err()
        .contains("IP address"));
    assert!(listen("PLAINTEXT://127.0.0.1").is_err());
    assert!(listen("PLAINTEXT://127.0.0.1:70000").is_err());
    assert!(listen("PLAINTEXT://::1:9092").is_err());
    assert!(listen("").is_err());

    assert_eq!(
        parse_advertised("PLAINTEXT://[::1]:9092").unwrap(),
        ("::1".to_string(), 9092)
    );
    assert!(parse_advertised("PLAINTEXT://0.0.0.0:9092").is_err());
    assert!(parse_advertised("PLAINTEXT://:9092").is_err());
    assert!(parse_advertised("PLAINTEXT://h:0").is_err());
    assert!(parse_advertised("PLAINTEXT://bad host:1").is_err());

    let problems =
        invalid(BrokerConfig::from_toml_str("listeners = \"SSL://1.2.3.4:1\"").unwrap_err());
    assert!(problems[0].starts_with("listeners: "), "{problems:?}");
    let problems = invalid(BrokerConfig::from_toml_str("advertised.listeners = 9092").unwrap_err());
    assert!(
        problems[0].starts_with("advertised.listeners: expected a string"),
        "{problems:?}"
    );

    let c = BrokerConfig::from_toml_str(
        "listeners = \"PLAINTEXT://10.1.2.3:9092\"\n\
         advertised.listeners = \"PLAINTEXT://public.example:443\"",
    )
    .unwrap();
    assert_eq!(c.listen, "10.1.2.3:9092".parse().unwrap());
    assert_eq!(c.advertised(), ("public.example".to_string(), 443));
    let c = BrokerConfig::from_toml_str("listeners = \"PLAINTEXT://10.1.2.3:9093\"").unwrap();
    assert_eq!(c.advertised(), ("10.1.2.3".to_string(), 9093));
}

#[test]
fn flag_style_overrides() {
    let mut c = BrokerConfig::default();
    c.apply_overrides([
        ("listeners".to_string(), "0.0.0.0:9000".to_string()),
        ("strom.smp".to_string(), "3".to_string()),
    ])
    .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.smp, Some(3));
    let problems = invalid(
        c.apply_overrides([("nope".to_string(), "1".to_string())])
            .unwrap_err(),
    );
    assert_eq!(problems, vec!["unknown key 'nope'".to_string()]);
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect()
}

#[test]
fn topic_defaults_follow_broker() {
    let broker = BrokerConfig::from_toml_str(
        "log.segment.bytes = 1000\nlog.roll.ms = 20\nmessage.max.bytes = 30\n\
         log.retention.ms = 40\nlog.retention.bytes = 50\n\
         log.message.timestamp.type = \"LogAppendTime\"\nlog.index.interval.bytes = 60",
    )
    .unwrap();
    let t = TopicConfig::defaults_from(&broker);
    assert_eq!(t.segment_bytes, 1000);
    assert_eq!(t.segment_ms, 20);
    assert_eq!(t.max_message_bytes, 30);
    assert_eq!(t.retention_ms, 40);
    assert_eq!(t.retention_bytes, 50);
    assert_eq!(t.cleanup_policy, "delete");
    assert_eq!(t.message_timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(t.index_interval_bytes, 60);
    assert!(t.overrides().is_empty());
    assert!(t.extra.is_empty());
}

#[test]
fn topic_overrides_valid() {
    let broker = BrokerConfig::default();
    let mut t = TopicConfig::defaults_from(&broker);
    t.apply(&pairs(&[
        ("segment.bytes", " 1048576 "),
        ("segment.ms", "60000"),
        ("max.message.bytes", "2000000"),
        ("retention.ms", "-1"),
        ("retention.bytes", "1000000000"),
        ("cleanup.policy", "delete, compact"),
        ("message.timestamp.type", "LogAppendTime"),
        ("index.interval.bytes", "1024"),
        ("min.insync.replicas", "2"),
        ("compression.type", "zstd"),
        ("unclean.leader.election.enable", "False"),
        ("min.cleanable.dirty.ratio", "0.5"),
        ("segment.index.bytes", "10485760"),
    ]))
    .unwrap();
    assert_eq!(t.segment_bytes, 1_048_576);
    assert_eq!(t.segment_ms, 60_000);
    assert_eq!(t.max_message_bytes, 2_000_000);
    assert_eq!(t.retention_ms, -1);
    assert_eq!(t.retention_bytes, 1_000_000_000);
    assert_eq!(t.cleanup_policy, "delete,compact");
    assert_eq!(t.message_timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(t.index_interval_bytes, 1024);
    assert_eq!(t.min_insync_replicas, 2);
    assert_eq!(t.compression_type, "zstd");
    assert!(!t.unclean_leader_election_enable);
    assert_eq!(t.extra.len(), 2);
    assert_eq!(t.overrides().len(), 13);
    assert_eq!(t.overrides()["segment.bytes"], "1048576");
    assert_eq!(t.overrides()["cleanup.policy"], "delete,compact");
    assert_eq!(t.describe()["segment.ms"], "60000");
    assert_eq!(t.describe()["compression.type"], "zstd");

    // Persisted overrides rebuild the same config.
    let again = TopicConfig::from_overrides(&broker, t.overrides()).unwrap();
    assert_eq!(again, t);
}

#[test]
fn topic_overrides_invalid() {
    let mut t = TopicConfig::defaults_from(&BrokerConfig::default());
    let before = t.clone();
    let mut overrides = pairs(&[
        ("segment.bytes", "abc"),
        ("segment.ms", "0"),
        ("cleanup.policy", "delete,shred"),
        ("message.timestamp.type", "Now"),
        ("segment.bytes", "1000"),
        ("no.such.key", "1"),
        ("min.insync.replicas", "0"),
        ("compression.type", "brotli"),
        ("preallocate", "maybe"),
        ("min.cleanable.dirty.ratio", "1.5"),
    ]);
    overrides.push(("retention.ms".to_string(), None));
    let problems = invalid(t.apply(&overrides).unwrap_err());
    assert_eq!(problems.len(), 11, "{problems:#?}");
    let has = |s: &str| problems.iter().any(|p| p == s);
    assert!(has(
        "segment.bytes: expected an integer in 14..=2147483647, got 'abc'"
    ));
    assert!(has("segment.ms: expected an integer >= 1, got '0'"));
    assert!(has(
        "cleanup.policy: expected 'delete', 'compact' or both comma-separated, got 'delete,shred'"
    ));
    assert!(has(
        "message.timestamp.type: expected one of 'CreateTime', 'LogAppendTime', got 'Now'"
    ));
    assert!(has("segment.bytes: given more than once"));
    assert!(has("unknown topic config key 'no.such.key'"));
    assert!(has(
        "min.insync.replicas: expected an integer in 1..=2147483647, got '0'"
    ));
    assert!(has(
        "retention.ms: null value not supported for topic configs"
    ));
    assert!(problems
        .iter()
        .any(|p| p.starts_with("compression.type: expected one of")));
    assert!(problems
        .iter()
        .any(|p| p.starts_with("preallocate: expected true or false")));
    assert!(problems
        .iter()
        .any(|p| p.starts_with("min.cleanable.dirty.ratio: expected a number")));
    assert_eq!(t, before, "a failed apply changes nothing");
    assert!(t.apply(&pairs(&[("cleanup.policy", "")])).is_err());
    assert!(t.apply(&pairs(&[("cleanup.policy", "compact")])).is_ok());
    assert_eq!(t.cleanup_policy, "compact");
}

#[test]
fn every_simple_key_takes_its_bounds_and_shows_them_back() {
    for key in keys::SIMPLE_KEYS {
        let values: Vec<String> = match key.check {
            Check::Int(lo, hi) => vec![lo.to_string(), hi.to_string()],
            Check::Bool => vec!["true".into(), "false".into()],
            Check::OneOf(values) => values.iter().map(|v| v.to_string()).collect(),
            Check::CleanupPolicy => vec!["compact,delete".into(), "delete".into()],
            other => panic!("{}: no sample values for {other:?}", key.name),
        };
        for value in values {
            let mut c = BrokerConfig::default();
            if key.name == "group.min.session.timeout.ms" {
                c.group_max_session_timeout_ms = i32::MAX;
            }
            if key.name == "group.max.session.timeout.ms" {
                c.group_min_session_timeout_ms = 1;
            }
            c.apply_overrides([(key.name.to_string(), value.clone())])
                .unwrap_or_else(|e| panic!("{} = {value}: {e}", key.name));
            assert_eq!(c.value_of(key.name), Some(value.clone()), "{}", key.name);
        }
    }
}

#[test]
fn every_topic_key_takes_its_bounds_and_describes_them_back() {
    for key in TOPIC_KEYS {
        let value = match key.check {
            Check::Int(_, hi) => hi.to_string(),
            Check::Bool => "true".into(),
            Check::OneOf(values) => values[0].to_string(),
            Check::CleanupPolicy => "compact".into(),
            other => panic!("{}: no sample value for {other:?}", key.name),
        };
        let mut t = TopicConfig::defaults_from(&BrokerConfig::default());
        t.apply(&[(key.name.to_string(), Some(value.clone()))])
            .unwrap_or_else(|e| panic!("{} = {value}: {e}", key.name));
        assert_eq!(t.describe().get(key.name), Some(&value), "{}", key.name);
        assert!(broker_key(key.synonyms[0]).is_some(), "{}", key.name);
    }
}

#[test]
fn a_topic_describes_every_key_it_acts_on() {
    // unclean.leader.election.enable was missing from describe(), so
    // DescribeConfigs showed it with a null value.
    let described = TopicConfig::defaults_from(&BrokerConfig::default()).describe();
    for key in TOPIC_KEYS {
        assert!(described.contains_key(key.name), "{}", key.name);
    }
    assert_eq!(
        described
            .get("unclean.leader.election.enable")
            .map(String::as_str),
        Some("false")
    );
}
