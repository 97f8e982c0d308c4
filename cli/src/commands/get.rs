//! `heroctl get REV:PATH [KEY]`: a value of a structured file (TOML, Markdown, HeroScript) at
//! any revision, parsed from the store without a checkout (docs/structured-files.md).

use anyhow::Result;
use clap::Args;
use hero_formats::{Document, Format, GetError, Value};
use hero_store::{ObjectId, Repo};

use crate::context::file_id;
use crate::error::{Kind, tagged, tagged_hint};
use crate::output::{outln, print_json};

/// The largest file parsed.
pub const MAX_STRUCTURED_BYTES: u64 = 64 << 20;

/// Arguments of `get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// `REV:PATH` (a path alone: the default branch).
    pub spec: String,
    /// The value: TOML `server.port`, `servers[0].port`; Markdown front-matter keys, `Status`,
    /// `#Section`; HeroScript `actor.action[N].param` or `actor.action[name=x].param`. None:
    /// the whole document.
    pub key: Option<String>,
}

/// The revision and path of a `REV:PATH` spec.
pub fn split_spec(spec: &str) -> (&str, &str) {
    match spec.split_once(':') {
        Some((rev, path)) => (rev, path),
        None => ("HEAD", spec),
    }
}

/// Parses the file `path` whose content is `id`; a file in no structured format, or one that
/// does not parse, is a usage error naming where.
pub fn parse_file(repo: &Repo, id: &ObjectId, shown: &str, path: &str) -> Result<Document> {
    let bytes = repo.view()?.read_file(id, MAX_STRUCTURED_BYTES)?;
    let Some(format) = Format::detect(path, &bytes) else {
        return Err(tagged_hint(
            Kind::Usage,
            format!("{shown}: not a structured file"),
            "get and query read TOML (.toml), Markdown (.md) and HeroScript (.hero, \
             .heroscript, or `!!actor.action` lines)",
        ));
    };
    hero_formats::parse(format, &bytes).map_err(|e| {
        let at = format!(":{}:{}", e.span().line, e.span().column);
        tagged(Kind::Usage, format!("{shown}{at}: {e}"))
    })
}

/// Prints a value: a string as its text, other scalars as JSON, arrays and objects as
/// indented JSON.
pub fn print_value(v: &Value) -> Result<()> {
    match v {
        Value::String(s) => outln!("{s}")?,
        Value::Array(_) | Value::Object(_) => outln!("{}", serde_json::to_string_pretty(v)?)?,
        other => outln!("{other}")?,
    }
    Ok(())
}

/// Runs `get`.
pub fn run(repo: &Repo, a: GetArgs, json: bool) -> Result<()> {
    let (rev, path) = split_spec(&a.spec);
    let view = repo.view()?;
    let commit = view.resolve(rev)?;
    let id = file_id(&view, &commit, path)?;
    drop(view);
    let shown = format!("{rev}:{path}");
    let doc = parse_file(repo, &id, &shown, path)?;
    let value = match &a.key {
        None => &doc.value,
        Some(key) => doc.get(key).map_err(|e| match e {
            // The message names the nearest keys.
            GetError::Missing { .. } => tagged(Kind::NotFound, format!("{shown}: {e}")),
            _ => tagged(Kind::Usage, format!("{shown}: {e}")),
        })?,
    };
    if json {
        return print_json(value);
    }
    print_value(value)
}
