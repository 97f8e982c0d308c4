//! `heroctl member | invite | join | audit`: the repository's membership (ADR 0017, 0018),
//! invitations, and the audit log.

use crate::context::{NetArgs, host_name, repo_path};
use crate::error::{Kind, tagged, tagged_hint};
use crate::output::{outln, print_json};
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use hero_store::Repo;
use hero_sync::audit::{self, Decision, Entry};
use hero_sync::membership::{self, Membership, MembershipError, Op, Role};
use hero_sync::{EndpointId, SecretKey, Ticket};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The membership commands.
#[derive(Subcommand, Debug)]
pub enum MembershipCommand {
    /// Who belongs to the repository: add, remove, role, list.
    Member(MemberArgs),
    /// Make a one-time invitation (owners): prints a ticket for `heroctl join`.
    Invite(InviteArgs),
    /// Join a repository with an invitation: clone it and be admitted by the inviting peer.
    Join(JoinArgs),
    /// Show the audit log: every accepted or refused connection, pull, push, membership
    /// change and invitation.
    Audit(AuditArgs),
}

/// A member's role.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleArg {
    /// Changes the membership, reads and writes everywhere.
    Owner,
    /// Pulls and pushes, within its scopes when it has any.
    Writer,
    /// Pulls only.
    Reader,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Owner => Role::Owner,
            RoleArg::Writer => Role::Writer,
            RoleArg::Reader => Role::Reader,
        }
    }
}

/// Arguments of `member`.
#[derive(Args, Debug)]
pub struct MemberArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: MemberCommand,
}

/// `member` subcommands.
#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Add a member (owners).
    Add {
        /// Its node id (`heroctl id` on that peer).
        id: String,
        /// Its role.
        #[arg(long, value_enum, default_value = "writer")]
        role: RoleArg,
        /// A path glob the writer may change (repeatable; none: everywhere).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Its display name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Remove a member (owners). It keeps what it already has; it gets nothing more.
    Remove {
        /// Its node id.
        id: String,
    },
    /// Change a member's role (owners); `--scope` also replaces a writer's scopes.
    Role {
        /// Its node id.
        id: String,
        /// The new role.
        #[arg(value_enum)]
        role: RoleArg,
        /// A path glob the writer may change (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List the members.
    List,
}

/// Arguments of `invite`.
#[derive(Args, Debug)]
pub struct InviteArgs {
    /// The role the invited peer gets.
    #[arg(long, value_enum, default_value = "reader")]
    pub role: RoleArg,
    /// A path glob the invited writer may change (repeatable; none: everywhere).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// How long the invitation stays valid: `30s`, `10m`, `2h`, `7d`.
    #[arg(long, default_value = "7d")]
    pub expires: String,
    /// The ticket the new peer dials (default: the one this repository's server last printed,
    /// else its bare node id).
    #[arg(long)]
    pub ticket: Option<String>,
}

/// Arguments of `join`.
#[derive(Args, Debug)]
pub struct JoinArgs {
    /// The invitation (what `heroctl invite` printed).
    pub invitation: String,
    /// The repository file to create (default: -R, $HERO_REPO, else the default store).
    pub path: Option<PathBuf>,
    /// The name to be known by (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Networking.
    #[command(flatten)]
    pub net: NetArgs,
}

/// Arguments of `audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only the lines about this peer (node id).
    #[arg(long)]
    pub peer: Option<String>,
    /// Only the lines since: a duration ago (`10m`, `2h`, `7d`), a date (`2026-12-01`) or an
    /// RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
}

fn open(path: &Path) -> Result<Repo> {
    crate::context::with_open_context(Repo::open(path), path)
}

/// Loads the key and the membership, upgrading a repository that has none yet.
pub fn load(repo: &Repo, path: &Path) -> Result<(SecretKey, Membership)> {
    let key = hero_sync::load_or_create_key(path)?;
    if let Some(up) = hero_sync::gate::ensure_membership(repo, &key, &host_name())? {
        audit::record(
            repo,
            Entry::new(
                Some(&key.public()),
                "membership",
                Decision::Accepted,
                format!(
                    "initial membership from the allow list: {} peers",
                    up.added.len()
                ),
            ),
        );
    }
    let (m, _) = membership::load(repo)?;
    Ok((key, m))
}

/// Signs and stores one membership change by this node; refused changes are audited and
/// reported as refused.
pub fn apply(repo: &Repo, path: &Path, op: Op) -> Result<()> {
    let (key, m) = load(repo, path)?;
    let what = describe(&op);
    let target = *op.target();
    if m.role_of(&key.public()) != Some(Role::Owner) {
        audit::record(
            repo,
            Entry::new(Some(&target), "membership", Decision::Refused, what.clone())
                .rule("only owners change the membership"),
        );
        return Err(tagged_hint(
            Kind::Refused,
            format!(
                "this node ({}) is not an owner: it cannot {what}",
                key.public()
            ),
            "ask an owner to run the command",
        ));
    }
    let env = m
        .change(&key, &op, audit::now_ms())
        .map_err(|e| tagged(Kind::Usage, e.to_string()))?;
    match membership::append(repo, &env) {
        Ok(_) => {
            audit::record(
                repo,
                Entry::new(Some(&target), "membership", Decision::Accepted, what),
            );
            Ok(())
        }
        Err(MembershipError::Refused(r)) => {
            audit::record(
                repo,
                Entry::new(Some(&target), "membership", Decision::Refused, what.clone())
                    .rule(r.rule.to_string()),
            );
            Err(tagged(Kind::Refused, format!("cannot {what}: {}", r.rule)))
        }
        Err(e) => Err(e.into()),
    }
}

fn describe(op: &Op) -> String {
    match op {
        Op::Add {
            target,
            role,
            scopes,
            ..
        } => {
            if scopes.is_empty() {
                format!("add {target} as {role}")
            } else {
                format!("add {target} as {role} within {}", scopes.join(", "))
            }
        }
        Op::Remove { target } => format!("remove {target}"),
        Op::SetRole { target, role } => format!("make {target} {role}"),
        Op::SetScopes { target, scopes } => {
            format!("limit {target} to {}", scopes.join(", "))
        }
        Op::Rename { target, name } => format!("rename {target} to {name:?}"),
    }
}

fn parse_id(id: &str) -> Result<EndpointId> {
    Ok(hero_sync::parse_endpoint_id(id)?)
}

fn check_scopes(role: Role, scopes: &[String]) -> Result<()> {
    if !scopes.is_empty() && role != Role::Writer {
        return Err(tagged(Kind::Usage, "only writers have scopes"));
    }
    for s in scopes {
        membership::check_scope(s)
            .map_err(|e| tagged(Kind::Usage, format!("invalid scope {s:?}: {e}")))?;
    }
    Ok(())
}

/// Runs a membership command.
pub fn run(cli_repo: &Option<PathBuf>, json: bool, cmd: MembershipCommand) -> Result<()> {
    let path = repo_path(cli_repo)?;
    match cmd {
        MembershipCommand::Member(a) => member(&open(&path)?, &path, a.what, json),
        MembershipCommand::Invite(a) => invite(&open(&path)?, &path, a, json),
        MembershipCommand::Join(a) => join(&path, a, json),
        MembershipCommand::Audit(a) => show_audit(&path, a, json),
    }
}

/// `member ...` (and the `allow` aliases).
pub fn member(repo: &Repo, path: &Path, what: MemberCommand, json: bool) -> Result<()> {
    match what {
        MemberCommand::Add {
            id,
            role,
            scopes,
            name,
        } => {
            let target = parse_id(&id)?;
            let role = Role::from(role);
            check_scopes(role, &scopes)?;
            let (_, m) = load(repo, path)?;
            if m.role_of(&target).is_some() {
                return Err(tagged_hint(
                    Kind::Refused,
                    format!("{target} is a member already"),
                    "change its role with `heroctl member role`",
                ));
            }
            apply(
                repo,
                path,
                Op::Add {
                    target,
                    name: name.clone(),
                    role,
                    scopes: scopes.clone(),
                },
            )?;
            if json {
                print_json(&json!({ "id": target.to_string(), "role": role.as_str(),
                    "scopes": scopes, "name": name }))?;
            } else {
                outln!("added {target} as {role}")?;
            }
        }
        MemberCommand::Remove { id } => {
            let target = parse_id(&id)?;
            let (_, m) = load(repo, path)?;
            if m.role_of(&target).is_none() {
                return Err(tagged(Kind::NotFound, format!("{target} is not a member")));
            }
            apply(repo, path, Op::Remove { target })?;
            if json {
                print_json(&json!({ "removed": target.to_string() }))?;
            } else {
                outln!("removed {target}")?;
            }
        }
        MemberCommand::Role { id, role, scopes } => {
            let target = parse_id(&id)?;
            let role = Role::from(role);
            check_scopes(role, &scopes)?;
            let (_, m) = load(repo, path)?;
            let Some(old) = m.role_of(&target) else {
                return Err(tagged(Kind::NotFound, format!("{target} is not a member")));
            };
            if old != role {
                apply(repo, path, Op::SetRole { target, role })?;
            }
            if !scopes.is_empty() {
                apply(
                    repo,
                    path,
                    Op::SetScopes {
                        target,
                        scopes: scopes.clone(),
                    },
                )?;
            }
            if json {
                print_json(
                    &json!({ "id": target.to_string(), "role": role.as_str(), "scopes": scopes }),
                )?;
            } else {
                outln!("{target} is now {role}")?;
            }
        }
        MemberCommand::List => {
            let (_, m) = load(repo, path)?;
            if json {
                let v: Vec<_> = m
                    .members()
                    .map(|(id, mm)| {
                        json!({
                            "id": id.to_string(),
                            "name": mm.name,
                            "role": mm.role.as_str(),
                            "scopes": mm.scopes,
                            "added_by": mm.added_by.to_string(),
                            "added_at_ms": mm.added_at_ms,
                        })
                    })
                    .collect();
                print_json(&serde_json::Value::Array(v))?;
            } else {
                for (id, mm) in m.members() {
                    let scopes = if mm.role == Role::Writer && !mm.scopes.is_empty() {
                        format!("\t{}", mm.scopes.join(","))
                    } else {
                        String::new()
                    };
                    outln!("{id}\t{}\t{}{scopes}", mm.role, mm.name)?;
                }
            }
        }
    }
    Ok(())
}

/// Parses `30s`, `10m`, `2h`, `7d` (a bare number is seconds) into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64> {
    let d = crate::context::parse_duration(s).map_err(|m| tagged(Kind::Usage, m))?;
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn invite(repo: &Repo, path: &Path, a: InviteArgs, json: bool) -> Result<()> {
    let role = Role::from(a.role);
    check_scopes(role, &a.scopes)?;
    let valid_for = parse_duration_ms(&a.expires)?;
    let (key, _) = load(repo, path)?;
    let ticket: Ticket = match a.ticket {
        Some(t) => t.parse()?,
        None => match repo.setting(hero_sync::invite::TICKET_KEY)? {
            Some(v) => String::from_utf8_lossy(&v).parse()?,
            None => key.public().to_string().parse()?,
        },
    };
    let (inv, offer) =
        hero_sync::invite::create(repo, &key, role, a.scopes.clone(), valid_for, ticket)?;
    audit::record(
        repo,
        Entry::new(
            None,
            "invite",
            Decision::Accepted,
            format!(
                "invitation made: role {role}, expires at {} ms",
                offer.expires_ms
            ),
        ),
    );
    if json {
        print_json(&json!({
            "invitation": inv.to_string(),
            "role": role.as_str(),
            "scopes": a.scopes,
            "expires_ms": offer.expires_ms,
        }))?;
    } else {
        outln!("{inv}")?;
    }
    Ok(())
}

fn join(cli_path: &Path, a: JoinArgs, json: bool) -> Result<()> {
    let inv: hero_sync::invite::Invitation = a.invitation.parse()?;
    let path = a.path.clone().unwrap_or_else(|| cli_path.to_path_buf());
    let repo = if path.exists() {
        let repo = open(&path)?;
        if repo
            .branches()?
            .iter()
            .any(|(n, _)| !membership::is_reserved(n))
        {
            return Err(tagged_hint(
                Kind::Refused,
                format!("{} already exists and is not empty", path.display()),
                "join into another path",
            ));
        }
        repo
    } else {
        crate::context::create_repo(&path)?
    };
    let key = hero_sync::load_or_create_key(&path)?;
    let name = a.name.unwrap_or_else(host_name);
    let cfg = a.net.config(None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let r = rt.block_on(hero_sync::net::join(&repo, key, &cfg, &inv, &name, None));
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            audit::record(
                &repo,
                Entry::new(
                    Some(&inv.ticket.id()),
                    "join",
                    Decision::Refused,
                    e.to_string(),
                ),
            );
            return Err(e.into());
        }
    };
    hero_sync::access::add_remote(&repo, "origin", &inv.ticket)?;
    audit::record(
        &repo,
        Entry::new(
            Some(&inv.ticket.id()),
            "join",
            Decision::Accepted,
            "admitted by the inviting peer",
        ),
    );
    if json {
        print_json(&json!({
            "repository": path,
            "objects": r.transfer.objects,
            "branches": r.branches.len(),
        }))?;
    } else {
        outln!(
            "joined {} into {}: {} objects, {} branches",
            inv.ticket.id().fmt_short(),
            path.display(),
            r.transfer.objects,
            r.branches.len()
        )?;
    }
    Ok(())
}

fn parse_since(s: &str) -> Result<i64> {
    if let Ok(d) = parse_duration_ms(s) {
        return Ok(audit::now_ms().saturating_sub(d));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(tagged(
        Kind::Usage,
        format!("invalid time {s:?} (a duration ago like 2h, a date, or an RFC 3339 time)"),
    ))
}

fn show_audit(path: &Path, a: AuditArgs, json: bool) -> Result<()> {
    // The repository must exist (its log may not yet).
    open(path)?;
    let peer = match &a.peer {
        Some(p) => Some(parse_id(p)?.to_string()),
        None => None,
    };
    let since = a.since.as_deref().map(parse_since).transpose()?;
    let lines = audit::read(path, peer.as_deref(), since)?;
    if json {
        print_json(&serde_json::to_value(&lines)?)?;
        return Ok(());
    }
    for e in lines {
        let when = chrono::DateTime::from_timestamp_millis(e.time_ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_else(|| e.time_ms.to_string());
        let decision = match e.decision {
            Decision::Accepted => "accepted",
            Decision::Refused => "REFUSED",
        };
        let mut extra = String::new();
        if let Some(c) = &e.commit {
            extra.push_str(&format!(" commit={c}"));
        }
        if let Some(p) = &e.path {
            extra.push_str(&format!(" path={p}"));
        }
        if let Some(r) = &e.rule {
            extra.push_str(&format!(" rule={r:?}"));
        }
        outln!(
            "{when} {:<10} {decision:<8} {} {}{extra}",
            e.action,
            e.peer.as_deref().unwrap_or("-"),
            e.reason
        )?;
    }
    Ok(())
}
