//! Admission of new connections before any handshake work (ADR 0038).
//!
//! Every new connection costs the server a TLS handshake and a hello before it knows who
//! connected; a stranger refused as busy can reconnect at once, so a flood of reconnections is
//! paid in handshakes. Two cheap checks come first:
//!
//! - **Per address, before the handshake.** Each remote address (an IPv4 address, or the /64
//!   an IPv6 address belongs to) has a token bucket of new connections: [`Limits::burst`] at
//!   once, refilled one every [`Limits::refill`]. A connection with no token left is refused
//!   from the first packet, before any key exchange. An address a member connected from
//!   within [`Limits::member_mark`] has a second bucket of its own, drawn only once the first
//!   is empty: strangers sharing a member's address (a NAT) cannot spend the member's
//!   allowance before they have spent theirs.
//! - **Per node id, right after the handshake.** A node id refused as a stranger (not a member,
//!   or over the strangers' budget, or disconnected for silence or for breaking the protocol),
//!   or any peer disconnected for asking past a limit no honest peer reaches, is remembered
//!   for [`Limits::refused_memory`]; its next connections are closed as soon as the handshake
//!   names it, before the membership is read or a session starts. The memory is forgotten
//!   whenever the membership changes, so a peer just added is not kept out.
//!
//! Memory is bounded: at most [`Limits::max_addresses`] addresses and
//! [`Limits::max_refused`] node ids. An address whose bucket has refilled and whose member
//! mark has lapsed is indistinguishable from a new one and is dropped first; when the table is
//! full of live entries, every address not in it shares one overflow bucket. Refusals are
//! counted; at most one report per address per [`Limits::report_every`] is returned for the
//! audit log, never one per packet. An address over its allowance is answered (a QUIC refusal)
//! at most once per [`Limits::answer_every`]; further attempts in between are dropped
//! without an answer, so a flood earns no packets back.
//!
//! Everything here takes the time as an argument and does no I/O: the decisions are a pure
//! function of what happened before, which the tests drive with a clock of their own.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hero_store::ObjectId;
use iroh::EndpointId;

/// New connections one address may open at once.
pub const BURST: u32 = 32;
/// One more new connection per address every this long.
pub const REFILL: Duration = Duration::from_millis(500);

/// The QUIC close code with which a node remembered as refused is sent away, before anything
/// else is done for it; clients report it as [`crate::SyncError::RefusedRecently`].
pub const REFUSED_RECENTLY: u32 = 5;
/// The extra allowance of an address a member connected from recently.
pub const MEMBER_BURST: u32 = 32;
/// How long an address counts as a member's after a member's connection from it.
pub const MEMBER_MARK: Duration = Duration::from_secs(600);
/// Most addresses tracked.
pub const MAX_ADDRESSES: usize = 4096;
/// How long a refused node id is remembered.
pub const REFUSED_MEMORY: Duration = Duration::from_secs(60);
/// Most refused node ids remembered.
pub const MAX_REFUSED: usize = 4096;
/// At most one audit report per address this often.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);
/// At most one answered refusal per address this often.
pub const ANSWER_EVERY: Duration = Duration::from_secs(1);

/// The limits ([`Default`]: the constants of this module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// New connections one address may open at once.
    pub burst: u32,
    /// One more every this long (for the member bucket too).
    pub refill: Duration,
    /// The second bucket of an address a member connected from.
    pub member_burst: u32,
    /// How long an address stays a member's.
    pub member_mark: Duration,
    /// Most addresses tracked.
    pub max_addresses: usize,
    /// How long a refused node id is remembered.
    pub refused_memory: Duration,
    /// Most refused node ids remembered.
    pub max_refused: usize,
    /// At most one report per address this often.
    pub report_every: Duration,
    /// At most one answered refusal per address this often.
    pub answer_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            burst: BURST,
            refill: REFILL,
            member_burst: MEMBER_BURST,
            member_mark: MEMBER_MARK,
            max_addresses: MAX_ADDRESSES,
            refused_memory: REFUSED_MEMORY,
            max_refused: MAX_REFUSED,
            report_every: REPORT_EVERY,
            answer_every: ANSWER_EVERY,
        }
    }
}

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the handshake.
    Admit,
    /// Refuse it, telling the peer (a QUIC refusal).
    Refuse,
    /// Drop it without an answer.
    Drop,
}

/// Refusals of one address to write down (at most one per [`Limits::report_every`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The address (an IPv6 one as its /64).
    pub addr: IpAddr,
    /// Connections refused since the previous report of this address.
    pub refused: u64,
}

/// A token bucket, in whole tokens: `tokens` at `at`, one more per refill period.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    at: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    /// Adds the tokens earned since `at` (keeping the part of a period not yet earned).
    fn refill(&mut self, burst: u32, refill: Duration, now: Instant) {
        if self.tokens >= burst {
            self.tokens = burst;
            self.at = now;
            return;
        }
        let period = refill.as_nanos().max(1);
        let earned = now.saturating_duration_since(self.at).as_nanos() / period;
        if earned == 0 {
            return;
        }
        let missing = u128::from(burst - self.tokens);
        if earned >= missing {
            self.tokens = burst;
            self.at = now;
        } else {
            // earned < missing <= u32::MAX, so both conversions hold.
            self.tokens += u32::try_from(earned).unwrap_or(0);
            let spent = period.saturating_mul(earned);
            self.at += Duration::from_nanos(u64::try_from(spent).unwrap_or(u64::MAX));
        }
    }

    fn take(&mut self, burst: u32, refill: Duration, now: Instant) -> bool {
        self.refill(burst, refill, now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn is_full(&mut self, burst: u32, refill: Duration, now: Instant) -> bool {
        self.refill(burst, refill, now);
        self.tokens >= burst
    }
}

/// What is known of one address.
#[derive(Debug, Clone)]
struct Seat {
    any: Bucket,
    /// The member bucket and until when the address counts as a member's.
    member: Option<(Bucket, Instant)>,
    /// Refusals not reported yet.
    unreported: u64,
    reported_at: Option<Instant>,
    answered_at: Option<Instant>,
}

impl Seat {
    fn new(l: &Limits, now: Instant) -> Seat {
        Seat {
            any: Bucket::full(l.burst, now),
            member: None,
            unreported: 0,
            reported_at: None,
            answered_at: None,
        }
    }

    /// Whether forgetting it changes nothing: the same as a seat made now.
    fn is_idle(&mut self, l: &Limits, now: Instant) -> bool {
        if let Some((_, until)) = self.member
            && until > now
        {
            return false;
        }
        // Refusals not reported yet are dropped with it (the totals keep them).
        self.any.is_full(l.burst, l.refill, now)
    }

    fn decide(&mut self, l: &Limits, addr: IpAddr, now: Instant) -> (Verdict, Option<Report>) {
        if self.any.take(l.burst, l.refill, now) {
            return (Verdict::Admit, None);
        }
        if let Some((bucket, until)) = &mut self.member {
            if *until > now {
                if bucket.take(l.member_burst, l.refill, now) {
                    return (Verdict::Admit, None);
                }
            } else {
                self.member = None;
            }
        }
        self.unreported = self.unreported.saturating_add(1);
        let report = match self.reported_at {
            Some(t) if now.saturating_duration_since(t) < l.report_every => None,
            _ => {
                self.reported_at = Some(now);
                Some(Report {
                    addr,
                    refused: std::mem::take(&mut self.unreported),
                })
            }
        };
        let verdict = match self.answered_at {
            Some(t) if now.saturating_duration_since(t) < l.answer_every => Verdict::Drop,
            _ => {
                self.answered_at = Some(now);
                Verdict::Refuse
            }
        };
        (verdict, report)
    }
}

#[derive(Debug)]
struct State {
    seats: HashMap<IpAddr, Seat>,
    /// Shared by the addresses that find the table full.
    overflow: Seat,
    refused: HashMap<EndpointId, Instant>,
    /// The membership head the refusals were decided under.
    epoch: Option<ObjectId>,
}

/// The admission state of one server: per-address buckets and refused node ids.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    state: Mutex<State>,
    refused_connections: AtomicU64,
    refused_ids: AtomicU64,
}

/// `now + d`, or `now` for a span past what the clock can hold.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

/// The key an address is counted under: an IPv4 address itself, an IPv6 address as its /64
/// (one host commonly holds a whole /64), an IPv4-mapped IPv6 address as the IPv4 one.
pub fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Admission {
    /// Fresh state under `limits`.
    pub fn new(limits: Limits, now: Instant) -> Admission {
        Admission {
            limits,
            state: Mutex::new(State {
                seats: HashMap::new(),
                overflow: Seat::new(&limits, now),
                refused: HashMap::new(),
                epoch: None,
            }),
            refused_connections: AtomicU64::new(0),
            refused_ids: AtomicU64::new(0),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent across a panic (every update is one assignment).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides on a new connection from `ip` at `now`, before any handshake work; and, at
    /// most once per [`Limits::report_every`] for an address, the refusals to report.
    pub fn incoming(&self, ip: IpAddr, now: Instant) -> (Verdict, Option<Report>) {
        let l = self.limits;
        let addr = key_of(ip);
        let mut st = self.state();
        if !st.seats.contains_key(&addr) && st.seats.len() >= l.max_addresses {
            st.seats.retain(|_, s| !s.is_idle(&l, now));
        }
        let (verdict, report) = if st.seats.len() < l.max_addresses || st.seats.contains_key(&addr)
        {
            st.seats
                .entry(addr)
                .or_insert_with(|| Seat::new(&l, now))
                .decide(&l, addr, now)
        } else {
            st.overflow.decide(&l, addr, now)
        };
        drop(st);
        if verdict != Verdict::Admit {
            self.refused_connections.fetch_add(1, Ordering::Relaxed);
        }
        (verdict, report)
    }

    /// Marks `ip` as an address a member connected from at `now`: it gets the member
    /// allowance for [`Limits::member_mark`].
    pub fn member_seen(&self, ip: IpAddr, now: Instant) {
        let l = self.limits;
        let addr = key_of(ip);
        let mut st = self.state();
        if !st.seats.contains_key(&addr) && st.seats.len() >= l.max_addresses {
            st.seats.retain(|_, s| !s.is_idle(&l, now));
        }
        if st.seats.len() >= l.max_addresses && !st.seats.contains_key(&addr) {
            return;
        }
        let seat = st.seats.entry(addr).or_insert_with(|| Seat::new(&l, now));
        let until = later(now, l.member_mark);
        match &mut seat.member {
            Some((_, u)) => *u = until,
            None => seat.member = Some((Bucket::full(l.member_burst, now), until)),
        }
    }

    /// Remembers `peer` as refused at `now`, for [`Limits::refused_memory`], under the
    /// membership whose head is `membership` (a refusal under another membership is forgotten
    /// at once).
    pub fn refuse_id(&self, peer: EndpointId, membership: Option<ObjectId>, now: Instant) {
        let l = self.limits;
        let mut st = self.state();
        if st.epoch != membership {
            st.refused.clear();
            st.epoch = membership;
        }
        if !st.refused.contains_key(&peer) && st.refused.len() >= l.max_refused {
            st.refused.retain(|_, until| *until > now);
            if st.refused.len() >= l.max_refused {
                // All live: the one that expires first goes.
                let first = st
                    .refused
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(id, _)| *id);
                if let Some(id) = first {
                    st.refused.remove(&id);
                }
            }
        }
        st.refused.insert(peer, later(now, l.refused_memory));
    }

    /// Whether `peer` was refused within [`Limits::refused_memory`] of `now` under the
    /// membership in force: `membership` gives its head, and is asked only for a peer
    /// remembered (another head forgets every refusal). A peer refused is counted.
    pub fn is_refused(
        &self,
        peer: &EndpointId,
        now: Instant,
        membership: impl FnOnce() -> Option<ObjectId>,
    ) -> bool {
        let remembered = match self.state().refused.get(peer) {
            Some(until) => *until > now,
            None => return false,
        };
        let mut st = if remembered {
            // Read outside the lock: it may be a lookup in the repository.
            let head = membership();
            let mut st = self.state();
            if st.epoch != head {
                st.refused.clear();
                st.epoch = head;
            }
            st
        } else {
            self.state()
        };
        let refused = match st.refused.get(peer) {
            Some(until) if *until > now => true,
            Some(_) => {
                st.refused.remove(peer);
                false
            }
            None => false,
        };
        drop(st);
        if refused {
            self.refused_ids.fetch_add(1, Ordering::Relaxed);
        }
        refused
    }

    /// Forgets every refused node id (the membership changed: one of them may be a member
    /// now).
    pub fn forget_refused(&self) {
        self.state().refused.clear();
    }

    /// Connections refused before the handshake so far.
    pub fn refused_connections(&self) -> u64 {
        self.refused_connections.load(Ordering::Relaxed)
    }

    /// Connections closed right after the handshake because their node id was remembered.
    pub fn refused_ids(&self) -> u64 {
        self.refused_ids.load(Ordering::Relaxed)
    }

    /// Addresses and node ids held now (for the memory bound).
    pub fn held(&self) -> (usize, usize) {
        let st = self.state();
        (st.seats.len(), st.refused.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    fn small() -> Limits {
        Limits {
            burst: 4,
            refill: Duration::from_secs(1),
            member_burst: 3,
            member_mark: Duration::from_secs(60),
            max_addresses: 8,
            refused_memory: Duration::from_secs(10),
            max_refused: 4,
            report_every: Duration::from_secs(60),
            answer_every: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_address() {
        let t0 = Instant::now();
        let a = Admission::new(small(), t0);
        for _ in 0..4 {
            assert_eq!(a.incoming(ip(3), t0).0, Verdict::Admit);
        }
        assert_ne!(a.incoming(ip(3), t0).0, Verdict::Admit);
        // Another address is untouched.
        assert_eq!(a.incoming(ip(2), t0).0, Verdict::Admit);
        // One token a second: 2.5 s later, two more.
        let t = t0 + Duration::from_millis(2500);
        assert_eq!(a.incoming(ip(3), t).0, Verdict::Admit);
        assert_eq!(a.incoming(ip(3), t).0, Verdict::Admit);
        assert_ne!(a.incoming(ip(3), t).0, Verdict::Admit);
        // The half period is kept: at 3 s the next token is there.
        assert_eq!(
            a.incoming(ip(3), t0 + Duration::from_secs(3)).0,
            Verdict::Admit
        );
        assert_eq!(a.refused_connections(), 2);
    }

    #[test]
    fn refusals_are_answered_once_a_second_and_reported_once_a_minute() {
        let t0 = Instant::now();
        let a = Admission::new(small(), t0);
        for _ in 0..4 {
            a.incoming(ip(3), t0);
        }
        let (v, r) = a.incoming(ip(3), t0);
        assert_eq!(v, Verdict::Refuse);
        assert_eq!(
            r,
            Some(Report {
                addr: ip(3),
                refused: 1
            })
        );
        let mut reports = 0;
        for i in 0..100u64 {
            let t = t0 + Duration::from_millis(i);
            let (v, r) = a.incoming(ip(3), t);
            assert_eq!(v, Verdict::Drop);
            reports += u64::from(r.is_some());
        }
        assert_eq!(reports, 0);
        // After a minute the count since the last report comes (the tokens earned meanwhile
        // spent first).
        let t = t0 + Duration::from_secs(61);
        for _ in 0..4 {
            assert_eq!(a.incoming(ip(3), t).0, Verdict::Admit);
        }
        let (v, r) = a.incoming(ip(3), t);
        assert_eq!(v, Verdict::Refuse);
        assert_eq!(
            r,
            Some(Report {
                addr: ip(3),
                refused: 101
            })
        );
        assert_eq!(a.refused_connections(), 102);
    }

    #[test]
    fn a_members_address_has_an_allowance_of_its_own() {
        let t0 = Instant::now();
        let a = Admission::new(small(), t0);
        a.member_seen(ip(5), t0);
        // Strangers from the member's address spend the common bucket first...
        for _ in 0..4 {
            assert_eq!(a.incoming(ip(5), t0).0, Verdict::Admit);
        }
        // ...and the member's reserve is there after it.
        for _ in 0..3 {
            assert_eq!(a.incoming(ip(5), t0).0, Verdict::Admit);
        }
        assert_ne!(a.incoming(ip(5), t0).0, Verdict::Admit);
        // The mark lapses: no reserve any more.
        let later = t0 + Duration::from_secs(61);
        for _ in 0..4 {
            assert_eq!(a.incoming(ip(5), later).0, Verdict::Admit);
        }
        assert_ne!(a.incoming(ip(5), later).0, Verdict::Admit);
    }

    #[test]
    fn the_address_table_is_bounded_and_idle_entries_go_first() {
        let t0 = Instant::now();
        let l = small();
        let a = Admission::new(l, t0);
        // Eight addresses, each over its allowance: the table is full of live entries.
        for last in 10..18 {
            for _ in 0..5 {
                a.incoming(ip(last), t0);
            }
        }
        assert_eq!(a.held().0, 8);
        // A ninth shares the overflow bucket: four at once, then refused.
        for _ in 0..4 {
            assert_eq!(a.incoming(ip(40), t0).0, Verdict::Admit);
        }
        assert_ne!(a.incoming(ip(41), t0).0, Verdict::Admit);
        assert_eq!(a.held().0, 8);
        // Once the buckets refilled, entries are idle and make room.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(a.incoming(ip(42), later).0, Verdict::Admit);
        assert!(a.held().0 <= 8);
        assert_eq!(a.held().0, 1);
    }

    #[test]
    fn refused_ids_are_remembered_for_a_while_and_bounded() {
        let t0 = Instant::now();
        let a = Admission::new(small(), t0);
        let keys: Vec<EndpointId> = (0..6u8)
            .map(|i| iroh::SecretKey::from_bytes(&[i + 1; 32]).public())
            .collect();
        let m1 = Some(ObjectId::of(b"membership 1"));
        let m2 = Some(ObjectId::of(b"membership 2"));
        let same = || m1;
        a.refuse_id(keys[0], m1, t0);
        assert!(a.is_refused(&keys[0], t0 + Duration::from_secs(9), same));
        assert!(!a.is_refused(&keys[0], t0 + Duration::from_secs(10), same));
        assert!(!a.is_refused(&keys[1], t0, same));
        for (i, k) in keys.iter().enumerate() {
            a.refuse_id(*k, m1, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(a.held().1, 4);
        // The ones that expire first made room.
        assert!(!a.is_refused(&keys[0], t0, same));
        assert!(a.is_refused(&keys[5], t0, same));
        // The membership moved: every refusal is forgotten.
        assert!(!a.is_refused(&keys[5], t0, || m2));
        assert_eq!(a.held().1, 0);
        a.refuse_id(keys[4], m2, t0);
        a.forget_refused();
        assert!(!a.is_refused(&keys[4], t0, || m2));
        assert_eq!(a.refused_ids(), 2);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key_of(a), key_of(b));
        assert_ne!(key_of(a), key_of(c));
        let mapped: IpAddr = "::ffff:127.0.0.3".parse().unwrap();
        assert_eq!(key_of(mapped), ip(3));
    }
}
