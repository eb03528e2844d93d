//! systemd readiness (`Type=notify` units, see `tuning/systemd/strom.service`):
//! once every shard listens, `READY=1` is sent to the datagram socket named
//! by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). No
//! variable: nothing to do. A failure is logged, never fatal: the broker
//! serves either way.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use tracing::{info, warn};

/// Tells the service manager the broker is ready, if one asked.
pub fn ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    match send(&path, "READY=1\nSTATUS=listening for Kafka clients\n") {
        Ok(()) => info!("told the service manager that strom is ready (NOTIFY_SOCKET={path})"),
        Err(err) => warn!("cannot notify the service manager at NOTIFY_SOCKET={path}: {err}"),
    }
}

fn send(path: &str, message: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let addr = match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        }
        None => SocketAddr::from_pathname(path)?,
    };
    socket.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}
