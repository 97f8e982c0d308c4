//! Why a UDP address cannot be bound, in words a person can act on: which address is taken,
//! by which process when this machine says (`/proc/net/udp*` and `/proc/<pid>/fd`), and how
//! to choose another.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

use crate::error::{Kind, tagged_hint};

/// When `addr` is taken, an error saying so, by whom if known, and `how_else` (how to choose
/// another address). `None` when it can be bound (the failure was something else).
pub fn taken(addr: SocketAddr, how_else: &str) -> Option<anyhow::Error> {
    let e = UdpSocket::bind(addr).err()?;
    if e.kind() != std::io::ErrorKind::AddrInUse {
        return None;
    }
    let who = owner_of_udp_port(addr.port())
        .map(|(pid, cmd)| format!(" by process {pid} ({cmd})"))
        .unwrap_or_default();
    Some(tagged_hint(
        Kind::Refused,
        format!("UDP address {addr} is taken{who}"),
        format!("another daemon or `heroctl serve` of this machine may be running; {how_else}"),
    ))
}

/// The process holding a UDP socket on `port` (any address), with its command line.
fn owner_of_udp_port(port: u16) -> Option<(u32, String)> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (cols.get(1), cols.get(9)) else {
                continue;
            };
            let p = local
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if p == Some(port) && *inode != "0" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if inodes.iter().any(|i| Path::new(i) == link) {
                let cmd = std::fs::read(p.path().join("cmdline"))
                    .map(|b| {
                        b.split(|c| *c == 0)
                            .filter(|a| !a.is_empty())
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                return Some((pid, cmd));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_address_names_its_holder() {
        let held = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = held.local_addr().expect("addr");
        let e = taken(addr, "choose another").expect("taken");
        let text = format!("{e:#}");
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        drop(held);
        assert!(taken(addr, "x").is_none(), "free again");
    }
}
