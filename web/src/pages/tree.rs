//! `/tree/PATH?rev=REV`: a directory's entries or a file at any revision — TOML highlighted,
//! Markdown rendered, HeroScript as its actions, images shown, binaries offered for download
//! with their size and BLAKE3 id; `/raw/PATH?rev=REV`: the file's bytes.

use hero_formats::Format;
use hero_store::{EntryKind, ObjectId, RepoPath, TreeEntry, View};
use maud::{Markup, PreEscaped, html};

use crate::Reply;
use crate::error::PageError;
use crate::layout::{self, Section, commit_link, lossy, size, tree_link};
use crate::request::{Query, revision};
use crate::{highlight, markdown, url};

/// Files larger than this are offered for download only.
const VIEW_MAX: u64 = 2 << 20;

/// The largest file `/raw/` serves (it is read whole).
const RAW_MAX: u64 = 256 << 20;

/// Branches and tags listed as other revisions of the same path.
const OTHER_REVS: usize = 30;

/// The image types shown inline, by extension.
fn image_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        _ => return None,
    })
}

fn breadcrumbs(path: &RepoPath, rev: &str) -> Markup {
    let names = path.names();
    html! {
        h1 {
            a href=(tree_link(b"", rev)) { "/" }
            @for (i, n) in names.iter().enumerate() {
                @let prefix: Vec<u8> = names[..=i].join(&b'/');
                @if i + 1 == names.len() { (lossy(n)) }
                @else { a href=(tree_link(&prefix, rev)) { (lossy(n)) } "/" }
            }
        }
    }
}

/// The revision bar: where we are, and the same path at the other branches and tags.
fn revs_bar(
    view: &View,
    here: &str,
    path: &RepoPath,
    rev: &str,
    id: &ObjectId,
) -> Result<Markup, PageError> {
    let mut others: Vec<String> = view
        .branches()?
        .into_iter()
        .map(|b| b.0)
        .filter(|b| !hero_store::is_reserved_branch(b))
        .collect();
    others.extend(view.tags()?.into_iter().map(|t| t.0));
    others.truncate(OTHER_REVS);
    let p = path.to_bytes();
    let older = if view.commit(id)?.parents.is_empty() {
        None
    } else if rev.contains('@') {
        // `~N` does not follow a date: count from the commit.
        Some(format!("{}~1", id.to_hex()))
    } else {
        Some(format!("{rev}~1"))
    };
    Ok(html! {
        div.revs {
            "at " b { (rev) } " (" a href=(commit_link(id)) { (id.short()) } ")"
            @if let Some(o) = &older {
                " · " a href=(format!("/{here}/{}{}", url::encode_path(&p), url::query(&[("rev", o)]))) { "one commit older" }
            }
            " · also at: "
            @for o in &others {
                @if o != rev { a href=(format!("/{here}/{}{}", url::encode_path(&p), url::query(&[("rev", o)]))) { (o) } " " }
            }
            form.filters method="get" action=(format!("/{here}/{}", url::encode_path(&p))) {
                input name="rev" placeholder="main~3, @2026-12-01, v1, id" aria-label="revision";
                button type="submit" { "Go" }
            }
        }
    })
}

pub(crate) fn page(view: &View, path: &RepoPath, q: &Query) -> Result<Reply, PageError> {
    let (rev, id) = revision(view, q.get("rev"))?;
    let entry = view
        .entry_in_commit(&id, path)?
        .ok_or_else(|| PageError::NotFound(format!("no {path} at {rev}")))?;
    let title = if path.is_root() {
        "/".to_owned()
    } else {
        path.to_string()
    };
    let body = match entry.kind {
        EntryKind::Dir => dir(view, path, &entry, &rev)?,
        _ => file(view, path, &entry, &rev, &id)?,
    };
    let body = html! {
        (breadcrumbs(path, &rev))
        (revs_bar(view, "tree", path, &rev, &id)?)
        (body)
    };
    Ok(Reply::Html(layout::page(
        &title,
        Section::Browse,
        true,
        body,
    )))
}

fn dir(view: &View, path: &RepoPath, entry: &TreeEntry, rev: &str) -> Result<Markup, PageError> {
    let tree = view.tree(&entry.id)?;
    let p = path.to_bytes();
    let child = |name: &[u8]| -> Vec<u8> {
        if p.is_empty() {
            name.to_vec()
        } else {
            [&p[..], b"/", name].concat()
        }
    };
    Ok(html! {
        @if !path.is_root() {
            p { a href=(format!("/history/{}{}", url::encode_path(&p), url::query(&[("rev", rev)]))) { "History of this directory" } }
        }
        table.tree {
            thead { tr { th { "Name" } th { "Size" } th.wide { "Id" } } }
            tbody {
                @for e in &tree.entries {
                    tr {
                        td { a href=(tree_link(&child(&e.name), rev)) {
                            (lossy(&e.name)) @if e.kind == EntryKind::Dir { "/" }
                            @if e.kind == EntryKind::Symlink { " →" }
                        } }
                        td.muted { @if e.kind == EntryKind::Dir { (e.size) " entries" } @else { (size(e.size)) } }
                        td.wide.id { (e.id.short()) }
                    }
                }
            }
        }
        p.muted { (tree.entries.len()) " entries" }
    })
}

fn file(
    view: &View,
    path: &RepoPath,
    entry: &TreeEntry,
    rev: &str,
    id: &ObjectId,
) -> Result<Markup, PageError> {
    let p = path.to_bytes();
    let name = path.to_string();
    let raw = format!(
        "/raw/{}{}",
        url::encode_path(&p),
        url::query(&[("rev", &id.to_hex())])
    );
    let history = format!(
        "/history/{}{}",
        url::encode_path(&p),
        url::query(&[("rev", rev)])
    );
    let info = html! {
        p.muted {
            (size(entry.size)) " · BLAKE3 " span.mono { (entry.id.to_hex()) }
            " · " a href=(raw) { "download" }
            " · " a href=(history) { "history" }
        }
    };
    let content = match entry.kind {
        EntryKind::Symlink => {
            let target = view.read_file(&entry.id, VIEW_MAX)?;
            html! { p { "A link to " code { (lossy(&target)) } } }
        }
        EntryKind::Gitlink => html! { p { "A submodule at " code { (entry.id.to_hex()) } } },
        k if k.is_special() => {
            html! { p { "A " (k.as_str()) ": a special file, with no content." } }
        }
        _ if entry.size > VIEW_MAX => html! { p { "A large file: download it to see it." } },
        _ if image_type(&name).is_some() => html! { div.view { img src=(raw) alt=(name); } },
        _ => {
            let bytes = view.read_file(&entry.id, VIEW_MAX)?;
            match std::str::from_utf8(&bytes) {
                Ok(text) if !bytes.contains(&0) => text_view(&name, &bytes, text, &p, id),
                _ => html! { p { "A binary file: download it to see it." } },
            }
        }
    };
    let keys = Format::from_path(&name).is_some().then(|| {
        html! {
            form.filters method="get" action=(format!("/keys/{}", url::encode_path(&p))) {
                input type="hidden" name="rev" value=(rev);
                input name="key" placeholder="key, e.g. server.port" aria-label="key";
                button type="submit" { "History of a key" }
            }
        }
    });
    Ok(html! { (info) @if let Some(k) = keys { (k) } (content) })
}

fn text_view(name: &str, bytes: &[u8], text: &str, path: &[u8], id: &ObjectId) -> Markup {
    match Format::detect(name, bytes) {
        Some(Format::Toml) => highlight::toml(text),
        Some(Format::Markdown) => {
            let dir = match path.iter().rposition(|&b| b == b'/') {
                Some(i) => format!("/raw/{}/", url::encode_path(&path[..i])),
                None => "/raw/".to_owned(),
            };
            let rendered = markdown::render(text, &dir, &url::query(&[("rev", &id.to_hex())]));
            html! { div.md { (PreEscaped(rendered)) } }
        }
        Some(Format::HeroScript) => {
            let actions = match hero_formats::parse_heroscript(bytes) {
                Ok(script) => html! {
                    table.actions {
                        thead { tr { th { "Line" } th { "Action" } th { "Arguments and parameters" } } }
                        tbody { @for a in &script.actions {
                            tr {
                                td.muted { (a.span.line) }
                                td.mono { (a.actor) "." (a.name) }
                                td.mono {
                                    @for arg in &a.args { (arg) " " }
                                    @for prm in &a.params {
                                        span.k { (prm.key) ":" } (value_text(&prm.value.to_value())) " "
                                    }
                                }
                            }
                        } }
                    }
                },
                Err(e) => html! { p.refused { "Does not parse: " (e.to_string()) } },
            };
            html! { (actions) h2 { "Source" } (highlight::heroscript(text)) }
        }
        _ => html! { pre { (text) } },
    }
}

fn value_text(v: &hero_formats::Value) -> String {
    match v {
        hero_formats::Value::String(s) => s.clone(),
        hero_formats::Value::Array(items) => {
            items.iter().map(value_text).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

pub(crate) fn raw(view: &View, path: &RepoPath, q: &Query) -> Result<Reply, PageError> {
    let (rev, id) = revision(view, q.get("rev"))?;
    let entry = view
        .entry_in_commit(&id, path)?
        .filter(|e| e.kind.is_blob())
        .ok_or_else(|| PageError::NotFound(format!("no file {path} at {rev}")))?;
    let bytes = view.read_file(&entry.id, RAW_MAX)?;
    let name = path
        .file_name()
        .map(lossy)
        .unwrap_or_else(|| "file".to_owned());
    let image = image_type(&name);
    Ok(Reply::Raw {
        bytes,
        content_type: image.unwrap_or("application/octet-stream"),
        inline: image.is_some(),
        name,
    })
}
