//! Tickets: how to reach a peer, as one shell-safe string.
//!
//! `ENDPOINT_ID[@ADDR,ADDR,...]` where each ADDR is `ip:port` or `relay:URL`. A bare endpoint
//! id is a ticket too: with discovery on, iroh finds the peer's addresses.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use iroh::{EndpointAddr, EndpointId, RelayUrl, TransportAddr};

use crate::error::SyncError;

/// How to reach a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The peer's endpoint id and the addresses known for it.
    pub addr: EndpointAddr,
}

impl Ticket {
    /// The peer's endpoint id.
    pub fn id(&self) -> EndpointId {
        self.addr.id
    }

    /// This ticket with the direct addresses `now` in place of its own (relays kept), when
    /// `now` names an address the ticket does not; `None` when the ticket already has them.
    pub fn moved_to(&self, now: &[SocketAddr]) -> Option<Ticket> {
        if now.is_empty() || now.iter().all(|a| self.addr.ip_addrs().any(|k| k == a)) {
            return None;
        }
        let relays = self
            .addr
            .addrs
            .iter()
            .filter(|a| !matches!(a, TransportAddr::Ip(_)))
            .cloned();
        let addrs = now.iter().map(|a| TransportAddr::Ip(*a)).chain(relays);
        Some(Ticket {
            addr: EndpointAddr::from_parts(self.addr.id, addrs),
        })
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr.id)?;
        let mut sep = '@';
        for a in self.addr.ip_addrs() {
            write!(f, "{sep}{a}")?;
            sep = ',';
        }
        for r in self.addr.relay_urls() {
            write!(f, "{sep}relay:{r}")?;
            sep = ',';
        }
        Ok(())
    }
}

impl FromStr for Ticket {
    type Err = SyncError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| SyncError::BadTicket {
            ticket: s.to_owned(),
            reason: reason.to_owned(),
        };
        let s = s.trim();
        let (id, rest) = match s.split_once('@') {
            Some((id, rest)) => (id, Some(rest)),
            None => (s, None),
        };
        let id: EndpointId = id
            .parse()
            .map_err(|_| bad("it does not start with an endpoint id"))?;
        let mut addrs = Vec::new();
        for part in rest.into_iter().flat_map(|r| r.split(',')) {
            if part.is_empty() {
                continue;
            }
            if let Some(url) = part.strip_prefix("relay:") {
                let url = RelayUrl::from_str(url).map_err(|_| bad("bad relay URL"))?;
                addrs.push(TransportAddr::Relay(url));
            } else {
                let sa: SocketAddr = part.parse().map_err(|_| bad("bad address"))?;
                addrs.push(TransportAddr::Ip(sa));
            }
        }
        Ok(Ticket {
            addr: EndpointAddr::from_parts(id, addrs),
        })
    }
}
