//! Sessions the command line asks the daemon to run: `heroctl pull`/`push` on this machine
//! send `pull TICKET` or `push TICKET [BRANCH]` over the control socket, and the daemon runs
//! the session on its pooled connection to that peer ([`hero_sync::Pool`]). A pull with
//! nothing new then costs one round trip on an open connection instead of a new QUIC
//! handshake of its own (10 KB and more of padding, path probes and connection ids).
//!
//! The answer is `{"report": REPORT}` (the report `heroctl pull --json` prints, with the
//! connection's use) or `{"error": {"kind", "message", "hint"}}`; a request the daemon does
//! not know is answered `{"error": "unknown request"}` as before, which tells the command line
//! to open a connection of its own.

use hero_sync::{SyncReport, Ticket};
use serde_json::{Value, json};

use super::ctx::Ctx;
use super::peers::note_known;

/// A session asked for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Asked {
    /// Pull every branch of the peer.
    Pull(Ticket),
    /// Push the branch named (every branch when `None`) to the peer.
    Push(Ticket, Option<String>),
}

/// Reads a request line: `None` when it asks for no session, else the session or why the
/// line is wrong.
pub(super) fn parse(line: &str) -> Option<Result<Asked, String>> {
    let mut words = line.split_ascii_whitespace();
    let verb = words.next()?;
    if verb != "pull" && verb != "push" {
        return None;
    }
    let Some(ticket) = words.next() else {
        return Some(Err(format!("`{verb}` needs a ticket")));
    };
    let ticket = match ticket.parse::<Ticket>() {
        Ok(t) => t,
        Err(e) => return Some(Err(format!("not a ticket: {e}"))),
    };
    let branch = words.next().map(str::to_owned);
    if words.next().is_some() || (verb == "pull" && branch.is_some()) {
        return Some(Err(format!("too many words for `{verb}`")));
    }
    Some(Ok(match verb {
        "pull" => Asked::Pull(ticket),
        _ => Asked::Push(ticket, branch),
    }))
}

/// The answer to a line [`parse`] refused.
pub(super) fn refused(why: &str) -> Value {
    json!({ "error": { "kind": "usage", "message": why, "hint": null } })
}

/// Runs the session on the pooled connection and answers with its report.
pub(super) async fn run(ctx: &Ctx, asked: Asked) -> Value {
    let (ticket, r) = match asked {
        Asked::Pull(ticket) => {
            let r = ctx.pool.pull(&ctx.repo, &ticket, None).await;
            (ticket, r)
        }
        Asked::Push(ticket, branch) => {
            let only = branch.map(|b| vec![b]);
            let r = ctx
                .pool
                .push(&ctx.repo, &ticket, only.as_deref(), None)
                .await;
            (ticket, r)
        }
    };
    match r {
        Ok(report) => {
            note_known(ctx, &ticket.id(), &report.peer_heads);
            answer(&report)
        }
        Err(e) => {
            let (kind, hint) = crate::error::classify_dyn(&e);
            json!({ "error": {
                "kind": kind.as_str(),
                "message": crate::error::messages_of(&e).join(": "),
                "hint": hint,
            } })
        }
    }
}

fn answer(report: &SyncReport) -> Value {
    json!({ "report": crate::commands::sync::report_json(report) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6";

    #[test]
    fn a_request_line_names_the_session_or_says_what_is_wrong() {
        let t: Ticket = ID.parse().unwrap();
        assert_eq!(
            parse(&format!("pull {ID}")),
            Some(Ok(Asked::Pull(t.clone())))
        );
        assert_eq!(
            parse(&format!("push {ID} main")),
            Some(Ok(Asked::Push(t.clone(), Some("main".into()))))
        );
        assert_eq!(parse(&format!("push {ID}")), Some(Ok(Asked::Push(t, None))));
        assert_eq!(parse("status"), None);
        assert_eq!(parse("script \"x\""), None);
        assert!(matches!(parse("pull"), Some(Err(_))));
        assert!(matches!(parse("pull nonsense"), Some(Err(_))));
        assert!(matches!(parse(&format!("pull {ID} main")), Some(Err(_))));
        assert!(matches!(parse(&format!("push {ID} a b")), Some(Err(_))));
    }
}
