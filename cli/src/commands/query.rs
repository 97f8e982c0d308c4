//! `heroctl query REV [PATHSPEC] EXPR`: one expression over every structured file of a
//! revision (TOML, Markdown, HeroScript), parsed from the store without a checkout: one row
//! per value found, with the file it came from (docs/structured-files.md).

use anyhow::Result;
use clap::Args;
use hero_formats::{Format, Query, Value};
use hero_store::{EntryKind, Repo, RepoPath};
use serde_json::json;

use crate::commands::get::{MAX_STRUCTURED_BYTES, print_value};
use crate::context::{files_at, files_below};
use crate::error::{Kind, tagged};
use crate::output::{outln, write_stdout};

/// Arguments of `query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// `REV [PATHSPEC] EXPR`: the revision; optionally a directory, a file or a glob (`*`,
    /// `?`, `**`) to search; the expression — a `get` path plus `[*]` for every element and
    /// filters such as `[?status=='Accepted']` (a JMESPath subset).
    #[arg(num_args = 2..=3, required = true, value_names = ["REV", "PATHSPEC", "EXPR"])]
    pub args: Vec<String>,
}

/// Runs `query`.
pub fn run(repo: &Repo, a: QueryArgs, json: bool) -> Result<()> {
    let (rev, spec, expr) = match a.args.as_slice() {
        [rev, expr] => (rev.as_str(), None, expr.as_str()),
        [rev, spec, expr] => (rev.as_str(), Some(spec.as_str()), expr.as_str()),
        _ => return Err(tagged(Kind::Usage, "query takes REV [PATHSPEC] EXPR")),
    };
    let q = Query::parse(expr).map_err(|e| tagged(Kind::Usage, format!("{expr}: {e}")))?;
    let view = repo.view()?;
    let commit = view.resolve(rev)?;
    let files = match spec {
        Some(s) if s.contains(['*', '?']) => {
            let mut all = Vec::new();
            let tree = view.commit(&commit)?.tree;
            files_below(&view, &RepoPath::root(), &tree, &mut all)?;
            let glob = s.trim_matches('/');
            all.into_iter()
                .filter(|(p, _)| hero_sync::membership::scope_matches(glob, &p.to_string()))
                .collect()
        }
        Some(s) => files_at(&view, &commit, &RepoPath::parse(s.trim_matches('/'))?)?,
        None => files_at(&view, &commit, &RepoPath::root())?,
    };
    let mut rows = 0usize;
    let mut unparsed = 0usize;
    for (path, entry) in files {
        if !matches!(entry.kind, EntryKind::File | EntryKind::Executable) {
            continue;
        }
        let shown = path.to_string();
        if Format::from_path(&shown).is_none() {
            continue;
        }
        let bytes = view.read_file(&entry.id, MAX_STRUCTURED_BYTES)?;
        let Some(format) = Format::detect(&shown, &bytes) else {
            continue;
        };
        let doc = match hero_formats::parse(format, &bytes) {
            Ok(d) => d,
            Err(e) => {
                unparsed += 1;
                let at = e.span();
                let at = format!(":{}:{}", at.line, at.column);
                eprintln!("warning: {rev}:{shown}{at}: {e} (skipped)");
                continue;
            }
        };
        let found = q.eval(&doc.value);
        let values: Vec<Value> = match found {
            Value::Null => Vec::new(),
            Value::Array(v) => v.into_iter().filter(|x| !x.is_null()).collect(),
            other => vec![other],
        };
        for v in values {
            rows += 1;
            if json {
                write_stdout(format_args!("{}\n", json!({ "path": shown, "value": v })))?;
            } else {
                match &v {
                    Value::String(s) => outln!("{shown}\t{s}")?,
                    Value::Array(_) | Value::Object(_) => outln!("{shown}\t{v}")?,
                    _ => {
                        write_stdout(format_args!("{shown}\t"))?;
                        print_value(&v)?;
                    }
                }
            }
        }
    }
    if rows == 0 && !json {
        eprintln!(
            "nothing matched in {rev}{}",
            if unparsed > 0 {
                format!(" ({unparsed} file(s) did not parse)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
