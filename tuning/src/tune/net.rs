//! Network sysctls: accept and SYN queue lengths, socket buffer limits
//! ([`Net`]), and busy polling ([`BusyPoll`], optional: it spends CPU for
//! latency).

use super::sysctl;
use super::{Finding, Root, Status, Tuner, Write};

/// Accept queue, SYN backlog and socket buffer ceilings.
pub struct Net;

/// Queue lengths that absorb a burst of connects (a restart of many clients).
const QUEUE_MIN: u64 = 4096;
/// 16 MiB: keeps a 10 Gb/s link full at ~13 ms round trip.
const SOCKET_BUFFER_MAX_BYTES: u64 = 16 << 20;

impl Tuner for Net {
    fn name(&self) -> &'static str {
        "net"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        let name = self.name();
        vec![
            sysctl::at_least(
                name,
                root,
                "net.core.somaxconn",
                QUEUE_MIN,
                "cap on each listener's accept queue: when many clients connect at once \
                 (a restart, a rebalance), an overflow drops SYNs and clients retry after 1 s or more",
            ),
            sysctl::at_least(
                name,
                root,
                "net.ipv4.tcp_max_syn_backlog",
                QUEUE_MIN,
                "half-open connections kept per listener; a short queue drops connects in a burst",
            ),
            sysctl::at_least(
                name,
                root,
                "net.core.rmem_max",
                SOCKET_BUFFER_MAX_BYTES,
                "largest SO_RCVBUF a program may set (Kafka's socket.receive.buffer.bytes, \
                 clients' receive.buffer.bytes); too small caps throughput on long links",
            ),
            sysctl::at_least(
                name,
                root,
                "net.core.wmem_max",
                SOCKET_BUFFER_MAX_BYTES,
                "largest SO_SNDBUF a program may set (socket.send.buffer.bytes); fetch \
                 responses are sent from the page cache in SO_SNDBUF-sized steps",
            ),
            tcp_buffer_max(
                root,
                "net.ipv4.tcp_rmem",
                "receive buffer auto-tuning ceiling (third value) for sockets that set no size",
            ),
            tcp_buffer_max(
                root,
                "net.ipv4.tcp_wmem",
                "send buffer auto-tuning ceiling (third value) for sockets that set no size",
            ),
        ]
    }
}

/// `tcp_rmem` / `tcp_wmem`: "min default max"; only max is raised.
fn tcp_buffer_max(root: &Root, key: &str, why: &str) -> Finding {
    let path = sysctl::path(key);
    let Some(text) = root.read(&path) else {
        return Finding::not_available("net", key, format!("no /proc/sys entry for {key}"));
    };
    let values: Vec<u64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [min, default, max] = values[..] else {
        return Finding::not_available("net", key, format!("cannot parse '{text}'"));
    };
    let current = format!("{min} {default} {max}");
    let ok = max >= SOCKET_BUFFER_MAX_BYTES;
    let recommended = format!("{min} {default} {}", max.max(SOCKET_BUFFER_MAX_BYTES));
    Finding {
        tuner: "net",
        key: key.to_string(),
        current: Some(current),
        recommended: Some(recommended.clone()),
        status: if ok { Status::Ok } else { Status::Change },
        why: why.to_string(),
        writes: if ok {
            Vec::new()
        } else {
            vec![Write::kernel(root, &path, recommended)]
        },
    }
}

/// `net.core.busy_poll` and `net.core.busy_read`: microseconds a socket poll
/// or read spins on the NIC queue before sleeping.
///
/// Lower and steadier latency, paid in CPU: worth it when every shard has a
/// core to itself and the NIC queues are spread. Never changed unless named:
/// `strom tune apply --only busy-poll`.
pub struct BusyPoll;

const BUSY_POLL_MICROS: u64 = 50;

impl Tuner for BusyPoll {
    fn name(&self) -> &'static str {
        "busy-poll"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        ["net.core.busy_poll", "net.core.busy_read"]
            .iter()
            .map(|key| {
                let mut finding = sysctl::at_least(
                    self.name(),
                    root,
                    key,
                    BUSY_POLL_MICROS,
                    "microseconds a socket read or poll spins on the NIC queue before \
                     sleeping: lower latency, more CPU; pays off when shards have cores \
                     to themselves",
                );
                if finding.status == Status::Change {
                    finding.status = Status::Optional;
                }
                if let Some(recommended) = &mut finding.recommended {
                    *recommended = BUSY_POLL_MICROS.to_string();
                }
                finding
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    fn host() -> FakeHost {
        let host = FakeHost::new();
        host.file("proc/sys/net/core/somaxconn", "4096\n")
            .file("proc/sys/net/ipv4/tcp_max_syn_backlog", "512\n")
            .file("proc/sys/net/core/rmem_max", "212992\n")
            .file("proc/sys/net/core/wmem_max", "33554432\n")
            .file("proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n")
            .file("proc/sys/net/ipv4/tcp_wmem", "4096\t16384\t4194304\n")
            .file("proc/sys/net/core/busy_poll", "0\n")
            .file("proc/sys/net/core/busy_read", "0\n");
        host
    }

    #[test]
    fn short_queues_and_small_buffer_limits_are_raised() {
        let host = host();
        let root = host.root();
        let findings = Net.check(&root);
        let changes: Vec<&str> = findings
            .iter()
            .filter(|f| f.status == Status::Change)
            .map(|f| f.key.as_str())
            .collect();
        assert_eq!(
            changes,
            [
                "net.ipv4.tcp_max_syn_backlog",
                "net.core.rmem_max",
                "net.ipv4.tcp_rmem",
                "net.ipv4.tcp_wmem"
            ]
        );
        assert_eq!(
            findings[4].recommended.as_deref(),
            Some("4096 131072 16777216")
        );
        for result in crate::tune::apply(&Net.plan(&root)) {
            result.expect("write");
        }
        assert_eq!(host.read("proc/sys/net/ipv4/tcp_max_syn_backlog"), "4096\n");
        assert_eq!(host.read("proc/sys/net/core/rmem_max"), "16777216\n");
        assert_eq!(host.read("proc/sys/net/core/wmem_max"), "33554432\n");
        assert_eq!(
            host.read("proc/sys/net/ipv4/tcp_rmem"),
            "4096 131072 16777216\n"
        );
        assert!(Net.check(&root).iter().all(|f| f.status == Status::Ok));
    }

    #[test]
    fn busy_polling_is_optional() {
        let host = host();
        let root = host.root();
        let findings = BusyPoll.check(&root);
        assert!(
            findings.iter().all(|f| f.status == Status::Optional),
            "{findings:?}"
        );
        assert_eq!(findings[0].recommended.as_deref(), Some("50"));
        let only = crate::tune::Selection::only(&["busy-poll".to_string()]);
        let planned = crate::tune::plan(&crate::tune::check(&root, &only), &only);
        let writes: Vec<_> = planned.into_iter().flat_map(|f| f.writes).collect();
        for result in crate::tune::apply(&writes) {
            result.expect("write");
        }
        assert_eq!(host.read("proc/sys/net/core/busy_poll"), "50\n");
        assert_eq!(host.read("proc/sys/net/core/busy_read"), "50\n");
        assert!(BusyPoll.check(&root).iter().all(|f| f.status == Status::Ok));
    }

    #[test]
    fn missing_sysctls_are_not_available() {
        let host = FakeHost::new();
        assert!(Net
            .check(&host.root())
            .iter()
            .all(|f| f.status == Status::NotAvailable));
        host.file("proc/sys/net/ipv4/tcp_rmem", "garbage\n");
        assert_eq!(Net.check(&host.root())[4].status, Status::NotAvailable);
    }
}
