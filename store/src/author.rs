//! Who makes the commits of a process: one value, built once by the program from its
//! configuration and handed to every part that commits (the mount, the share, the daemon,
//! the command line).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::changes::CommitMeta;
use crate::object::{PEER_HEADER, Signature};

/// The author of the commits a program makes: name, e-mail, time zone and, when known, the
/// peer (node) that makes them.
///
/// Libraries take an `Author` from their caller and never read the environment for it; the
/// program builds it once (`heroctl` from `HERO_AUTHOR_NAME`, `HERO_AUTHOR_EMAIL` and `USER`).
/// [`Author::signature`] stamps the current time, [`Author::commit_meta`] also records the peer
/// in the [`PEER_HEADER`] header.
#[derive(Debug, Clone)]
pub struct Author {
    /// Name, as recorded in the signature.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Offset from UTC in minutes (east positive) recorded with each time, unless
    /// [`Author::zone`] is set.
    pub tz_offset_minutes: i32,
    /// The offset in minutes of the local time zone at a given time (seconds since the Unix
    /// epoch), asked at each signature: a long-running process keeps the right offset across
    /// a daylight-saving change. `None`: [`Author::tz_offset_minutes`] always.
    pub zone: Option<fn(i64) -> i32>,
    /// The peer that makes the commits: its endpoint id as text, recorded in each commit's
    /// [`PEER_HEADER`] header. `None` records no peer.
    pub peer: Option<String>,
}

impl Author {
    /// An author in UTC with no peer.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Author {
        Author {
            name: name.into(),
            email: email.into(),
            tz_offset_minutes: 0,
            zone: None,
            peer: None,
        }
    }

    /// The same author in the time zone `minutes` east of UTC.
    #[must_use]
    pub fn with_tz_offset(mut self, minutes: i32) -> Author {
        self.tz_offset_minutes = minutes;
        self
    }

    /// The same author in a time zone whose offset `zone` gives for each signature's time
    /// (the local zone, which moves with daylight saving).
    #[must_use]
    pub fn with_zone(mut self, zone: fn(i64) -> i32) -> Author {
        self.zone = Some(zone);
        self
    }

    /// The same author, its commits recording `peer` (an endpoint id as text).
    #[must_use]
    pub fn with_peer(mut self, peer: impl Into<String>) -> Author {
        self.peer = Some(peer.into());
        self
    }

    /// The signature at `time` (seconds since the Unix epoch).
    pub fn signature_at(&self, time: i64) -> Signature {
        Signature {
            name: self.name.as_bytes().to_vec(),
            email: self.email.as_bytes().to_vec(),
            time,
            tz_offset_minutes: self.zone.map_or(self.tz_offset_minutes, |z| z(time)),
        }
    }

    /// The signature now (a clock before 1970 reads as 0).
    pub fn signature(&self) -> Signature {
        self.signature_at(now_secs())
    }

    /// Metadata for a commit made now: author and committer this author, the message, and
    /// the peer header when a peer is set.
    pub fn commit_meta(&self, message: impl Into<Vec<u8>>) -> CommitMeta {
        self.commit_meta_at(now_secs(), message)
    }

    /// Metadata for a commit made at `time` (seconds since the Unix epoch).
    pub fn commit_meta_at(&self, time: i64, message: impl Into<Vec<u8>>) -> CommitMeta {
        let mut meta = CommitMeta::new(self.signature_at(time), message);
        if let Some(peer) = &self.peer {
            meta.extra
                .push((PEER_HEADER.to_vec(), peer.as_bytes().to_vec()));
        }
        meta
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_time_zone_and_peer() {
        let a = Author::new("Ann", "ann@example.com")
            .with_tz_offset(-300)
            .with_peer("abc");
        let meta = a.commit_meta_at(1_700_000_000, "m\n");
        assert_eq!(meta.author.name, b"Ann");
        assert_eq!(meta.author.email, b"ann@example.com");
        assert_eq!(meta.author.time, 1_700_000_000);
        assert_eq!(meta.author.tz_offset_minutes, -300);
        assert_eq!(meta.committer, meta.author);
        assert_eq!(meta.extra, vec![(PEER_HEADER.to_vec(), b"abc".to_vec())]);
        assert!(Author::new("x", "y").commit_meta("m").extra.is_empty());
        assert!(a.signature().time >= 1_700_000_000);
    }

    #[test]
    fn a_zone_is_asked_at_each_signature() {
        // A zone that is an hour ahead from 1_700_000_000 on (a daylight-saving change).
        fn zone(t: i64) -> i32 {
            if t < 1_700_000_000 { 60 } else { 120 }
        }
        let a = Author::new("Ann", "a@b").with_tz_offset(60).with_zone(zone);
        assert_eq!(a.signature_at(1_699_999_999).tz_offset_minutes, 60);
        assert_eq!(a.signature_at(1_700_000_000).tz_offset_minutes, 120);
        assert_eq!(
            a.commit_meta_at(1_700_000_001, "m")
                .author
                .tz_offset_minutes,
            120
        );
    }
}
