//! Listener addresses, controller voters and process roles.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::value::{parse_list, Raw};
use super::{QuorumVoter, QUORUM_VOTERS_MAX};

/// Split `PLAINTEXT://host:port` (prefix optional; one listener only) into
/// host (brackets removed from IPv6) and port.
pub(super) fn split_listener(text: &str) -> Result<(String, u16), String> {
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let one = match parts.as_slice() {
        [one] => *one,
        [] => return Err("expected a listener like 'PLAINTEXT://127.0.0.1:9092', got ''".into()),
        _ => {
            return Err(format!(
                "only one PLAINTEXT listener is supported for now, got {} in '{text}'",
                parts.len()
            ))
        }
    };
    let address = match one.split_once("://") {
        Some((proto, rest)) if proto.eq_ignore_ascii_case("PLAINTEXT") => rest,
        Some((proto, _)) => {
            return Err(format!(
                "listener '{one}': only PLAINTEXT is supported for now, got '{proto}'"
            ))
        }
        None => one,
    };
    let bad = || format!("expected a listener like 'PLAINTEXT://127.0.0.1:9092', got '{one}'");
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':').ok_or_else(bad)?)
    } else {
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            // Unbracketed IPv6: ambiguous.
            return Err(bad());
        }
        (host, port)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((host.to_string(), port))
}

pub(super) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let (host, port) = split_listener(text)?;
    let ip = if host.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().map_err(|_| {
            format!(
                "host '{host}' must be an IP address, 'localhost' or empty (all interfaces); \
                 host names are not resolved"
            )
        })?
    };
    Ok(SocketAddr::new(ip, port))
}

/// The listener name of the controller quorum (`controller.listener.names`).
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";

/// `listeners`: one `PLAINTEXT` listener (prefix optional) and at most one
/// `CONTROLLER` listener, comma-separated, in any order.
pub(super) fn parse_listeners(text: &str) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    let mut kafka = None;
    let mut controller = None;
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let is_controller = part
            .split_once("://")
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case(CONTROLLER_LISTENER));
        if is_controller {
            if controller.is_some() {
                return Err(format!("more than one CONTROLLER listener in '{text}'"));
            }
            let rest = &part[part.find("://").map_or(0, |i| i + 3)..];
            controller = Some(parse_listen(&format!("PLAINTEXT://{rest}"))?);
        } else {
            if kafka.is_some() {
                return Err(format!(
                    "only one PLAINTEXT listener (and one CONTROLLER listener) is supported, got '{text}'"
                ));
            }
            kafka = Some(parse_listen(part)?);
        }
    }
    match kafka {
        Some(kafka) => Ok((kafka, controller)),
        None => Err(format!(
            "expected a listener like 'PLAINTEXT://127.0.0.1:9092' in '{text}'"
        )),
    }
}

/// `controller.quorum.voters`: `id@host:port` entries, comma-separated.
pub(super) fn parse_voters(raw: &Raw) -> Result<Vec<QuorumVoter>, String> {
    let mut voters: Vec<QuorumVoter> = Vec::new();
    for entry in parse_list(raw)? {
        let bad = || format!("expected voters like '1@127.0.0.1:9093', got '{entry}'");
        let (id, address) = entry.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.trim().parse().map_err(|_| bad())?;
        if id < 0 {
            return Err(bad());
        }
        let (host, port) = split_listener(address.trim()).map_err(|_| bad())?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(format!("voter id {id} appears twice"));
        }
        voters.push(QuorumVoter { id, host, port });
    }
    if voters.len() > QUORUM_VOTERS_MAX {
        return Err(format!(
            "at most {QUORUM_VOTERS_MAX} voters are supported, got {}",
            voters.len()
        ));
    }
    Ok(voters)
}

/// `process.roles`: only `broker,controller` (any order).
pub(super) fn parse_roles(raw: &Raw) -> Result<String, String> {
    let roles: BTreeSet<String> = parse_list(raw)?
        .into_iter()
        .map(|r| r.trim().to_ascii_lowercase())
        .collect();
    let both: BTreeSet<String> = ["broker".to_string(), "controller".to_string()].into();
    if roles == both {
        Ok("broker,controller".to_string())
    } else {
        Err(format!(
            "only 'broker,controller' is supported (every node is both), got {raw}"
        ))
    }
}

pub(super) fn parse_advertised(text: &str) -> Result<(String, u16), String> {
    // A CONTROLLER entry (Kafka 4.0 lets controllers advertise one) is
    // accepted and ignored: voters are found through controller.quorum.voters.
    let kept: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|part| {
            !part
                .split_once("://")
                .is_some_and(|(name, _)| name.eq_ignore_ascii_case(CONTROLLER_LISTENER))
        })
        .collect();
    let text = &kept.join(",");
    let (host, port) = split_listener(text)?;
    if host.is_empty() {
        return Err(format!(
            "'{text}' has no host; clients need one to connect to"
        ));
    }
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
        return Err(format!(
            "cannot advertise the unspecified address '{host}'; give a host clients can reach"
        ));
    }
    if host.parse::<IpAddr>().is_err()
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        return Err(format!("'{host}' is not a valid host name or IP address"));
    }
    if port == 0 {
        return Err(format!("'{text}': the advertised port cannot be 0"));
    }
    Ok((host, port))
}
