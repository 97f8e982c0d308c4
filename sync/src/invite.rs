//! Invitations (ADR 0018): an owner makes a one-time secret with a role, scopes and an expiry;
//! the new peer presents it when it first connects, and the inviting peer, seeing a valid,
//! unused, unexpired secret, adds it to the membership itself.
//!
//! The invitation as printed: `invite:<secret, 64 hex digits>:<ticket of the inviting peer>`.
//! The inviting repository keeps only the BLAKE3 hash of the secret, in the setting
//! `invite/<hash hex>` (JSON: role, scopes, creation and expiry times, who made it, and once
//! used, by whom and when). Nothing about invitations replicates: only the inviting peer can
//! redeem its invitations.

use std::fmt;
use std::str::FromStr;

use hero_store::Repo;
use iroh::{EndpointId, SecretKey};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SyncError};
use crate::membership::{self, Op, Role};
use crate::ticket::Ticket;

/// The settings prefix of invitations.
pub const PREFIX: &str = "invite/";
/// The setting in which a running server records its ticket (what `heroctl invite` puts in
/// an invitation).
pub const TICKET_KEY: &str = "sync/ticket";
/// The longest name a joining peer may give.
pub const MAX_NAME: usize = membership::MAX_NAME;

/// An invitation as handed to the new peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The one-time secret.
    pub secret: [u8; 32],
    /// How to reach the inviting peer.
    pub ticket: Ticket,
}

impl fmt::Display for Invitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invite:{}:{}",
            crate::identity::hex(&self.secret),
            self.ticket
        )
    }
}

impl FromStr for Invitation {
    type Err = SyncError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| SyncError::BadTicket {
            ticket: s.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = s
            .trim()
            .strip_prefix("invite:")
            .ok_or_else(|| bad("an invitation starts with invite:"))?;
        let (secret, ticket) = rest
            .split_once(':')
            .ok_or_else(|| bad("an invitation is invite:SECRET:TICKET"))?;
        let secret = parse_secret(secret).ok_or_else(|| bad("the secret is not 64 hex digits"))?;
        Ok(Invitation {
            secret,
            ticket: ticket.parse()?,
        })
    }
}

fn parse_secret(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What the inviting repository keeps about an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The role it grants.
    pub role: String,
    /// The scopes it grants (writers).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When it was made (ms since the Unix epoch).
    pub created_ms: i64,
    /// Until when it may be used.
    pub expires_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// Who used it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_ms: Option<i64>,
}

/// Why an invitation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    /// No such invitation here: forged, mistyped, or made by another peer.
    #[error("unknown invitation (forged, mistyped, or made on another peer)")]
    Unknown,
    /// Already used.
    #[error("the invitation was already used (by {0})")]
    Used(String),
    /// Expired.
    #[error("the invitation expired")]
    Expired,
    /// The inviting peer may no longer add members.
    #[error("the inviting peer may no longer add members: {0}")]
    NotOwner(String),
}

fn secret_key(secret: &[u8; 32]) -> String {
    format!("{PREFIX}{}", blake3::hash(secret).to_hex())
}

fn role_of(s: &str) -> Option<Role> {
    match s {
        "owner" => Some(Role::Owner),
        "writer" => Some(Role::Writer),
        "reader" => Some(Role::Reader),
        _ => None,
    }
}

/// Makes an invitation: `key`'s node must be an owner of the repository's membership; the
/// scopes must be valid globs (and only for writers). `ticket` is how the new peer reaches
/// this one.
pub fn create(
    repo: &Repo,
    key: &SecretKey,
    role: Role,
    scopes: Vec<String>,
    valid_for_ms: i64,
    ticket: Ticket,
) -> Result<(Invitation, Offer)> {
    let (m, _) = membership::load(repo)?;
    if m.role_of(&key.public()) != Some(Role::Owner) {
        return Err(SyncError::NotOwner(key.public().to_string()));
    }
    if role != Role::Writer && !scopes.is_empty() {
        return Err(SyncError::Membership(Box::new(
            membership::MembershipError::Refused(Box::new(membership::Refusal {
                file: String::new(),
                change: None,
                author: Some(key.public()),
                rule: membership::Rule::ScopesOnlyForWriters,
            })),
        )));
    }
    for s in &scopes {
        membership::check_scope(s).map_err(|e| SyncError::BadScope(e.to_string()))?;
    }
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&SecretKey::generate().to_bytes());
    let now = crate::audit::now_ms();
    let offer = Offer {
        role: role.as_str().to_owned(),
        scopes,
        created_ms: now,
        expires_ms: now.saturating_add(valid_for_ms),
        created_by: key.public().to_string(),
        used_by: None,
        used_ms: None,
    };
    let json = serde_json::to_vec(&offer).map_err(|e| SyncError::Io(std::io::Error::other(e)))?;
    repo.set_setting(&secret_key(&secret), Some(&json))?;
    Ok((Invitation { secret, ticket }, offer))
}

/// The invitations this repository made: (key, offer).
pub fn list(repo: &Repo) -> Result<Vec<(String, Offer)>> {
    Ok(repo
        .settings_with_prefix(PREFIX)?
        .into_iter()
        .filter_map(|(k, v)| serde_json::from_slice(&v).ok().map(|o| (k, o)))
        .collect())
}

/// Redeems an invitation presented by `peer` (named `name`): checks it is known, unused and
/// unexpired, marks it used, and adds `peer` to the membership with the offered role and
/// scopes, signed by `key`. The role granted.
pub fn redeem(
    repo: &Repo,
    key: &SecretKey,
    secret: &[u8; 32],
    peer: &EndpointId,
    name: &str,
) -> Result<std::result::Result<Role, InviteRefusal>> {
    let k = secret_key(secret);
    let Some(v) = repo.setting(&k)? else {
        return Ok(Err(InviteRefusal::Unknown));
    };
    let Ok(mut offer) = serde_json::from_slice::<Offer>(&v) else {
        return Ok(Err(InviteRefusal::Unknown));
    };
    if let Some(by) = &offer.used_by {
        return Ok(Err(InviteRefusal::Used(by.clone())));
    }
    let now = crate::audit::now_ms();
    if now >= offer.expires_ms {
        return Ok(Err(InviteRefusal::Expired));
    }
    let Some(role) = role_of(&offer.role) else {
        return Ok(Err(InviteRefusal::Unknown));
    };
    // Used from now on, whatever follows: a secret is good for one attempt.
    offer.used_by = Some(peer.to_string());
    offer.used_ms = Some(now);
    let json = serde_json::to_vec(&offer).map_err(|e| SyncError::Io(std::io::Error::other(e)))?;
    repo.set_setting(&k, Some(&json))?;
    let (m, _) = membership::load(repo)?;
    if m.role_of(&key.public()) != Some(Role::Owner) {
        return Ok(Err(InviteRefusal::NotOwner(
            "it is not an owner any more".to_owned(),
        )));
    }
    if m.role_of(peer).is_some() {
        // A member already (invited twice): nothing to add.
        return Ok(Ok(m.role_of(peer).unwrap_or(role)));
    }
    let op = Op::Add {
        target: *peer,
        name: name.chars().take(MAX_NAME / 4).collect(),
        role,
        scopes: offer.scopes.clone(),
    };
    let env = match m.change(key, &op, now) {
        Ok(e) => e,
        Err(e) => return Ok(Err(InviteRefusal::NotOwner(e.to_string()))),
    };
    match membership::append(repo, &env) {
        Ok(_) => Ok(Ok(role)),
        Err(membership::MembershipError::Refused(r)) => {
            Ok(Err(InviteRefusal::NotOwner(r.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}
