//! The frame of every page (navigation bar, style sheet, live script) and small shared
//! pieces: times, ids, links.

use maud::{DOCTYPE, Markup, html};

use crate::error::PageError;
use crate::url;

/// The sections of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Timeline,
    Browse,
    Decisions,
    Peers,
    None,
}

/// A full page. `live`: its `<main>` is refreshed when a commit lands.
pub(crate) fn page(title: &str, section: Section, live: bool, body: Markup) -> String {
    let here = |s: Section| if s == section { Some("here") } else { None };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hero store" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/live.js" defer {}
            }
            body {
                nav {
                    a.brand href="/" { "hero store" }
                    a class=[here(Section::Timeline)] href="/" { "Timeline" }
                    a class=[here(Section::Browse)] href="/tree/" { "Browse" }
                    a class=[here(Section::Decisions)] href="/adr" { "Decisions" }
                    a class=[here(Section::Peers)] href="/peers" { "Peers & trust" }
                }
                main id="main" data-live=[live.then_some("1")] { (body) }
            }
        }
    }
    .into_string()
}

/// A page without navigation (sign-in).
pub(crate) fn bare(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hero store" }
                link rel="stylesheet" href="/static/app.css";
            }
            body { main { (body) } }
        }
    }
    .into_string()
}

/// The page of an error.
pub(crate) fn error_page(status: http::StatusCode, e: &PageError) -> String {
    let text = match e {
        PageError::Store(s) if status.is_server_error() => format!("the repository failed: {s}"),
        other => other.to_string(),
    };
    page(
        status.canonical_reason().unwrap_or("Error"),
        Section::None,
        false,
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p { (text) }
            p { a href="/" { "Back to the timeline" } }
        },
    )
}

/// `2026-12-07 15:04 UTC` of seconds since the epoch.
pub(crate) fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Bytes as text, invalid UTF-8 replaced.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The first line of a message.
pub(crate) fn subject(message: &[u8]) -> String {
    lossy(message).lines().next().unwrap_or_default().to_owned()
}

/// The link to a path in the tree at a revision.
pub(crate) fn tree_link(path: &[u8], rev: &str) -> String {
    format!(
        "/tree/{}{}",
        url::encode_path(path),
        url::query(&[("rev", rev)])
    )
}

/// The link to a commit.
pub(crate) fn commit_link(id: &hero_store::ObjectId) -> String {
    format!("/commit/{}", id.to_hex())
}

/// A size in bytes, readable.
pub(crate) fn size(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}
