//! `heroctl script FILE|-`: HeroScript as a control language. Each `!!hero.ACTION` maps to
//! one command with the same parameter names (`!!hero.tag name:v1 rev:main message:'…'` is
//! `heroctl tag v1 main --message '…'`); every action of the script is checked — actor,
//! action, parameters, values — before the first runs; then they run in order, each printing
//! one JSON line with its result, and the first failure stops the script with its exit code
//! (docs/structured-files.md, "Scripts").

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use hero_formats::heroscript::{Action, ParamValue};
use hero_formats::{Span, Value};
use serde_json::json;

use crate::error::{CommandError, Kind, tagged};
use crate::output::{capture, write_stdout};

/// Arguments of `script`.
#[derive(Args, Debug)]
pub struct ScriptArgs {
    /// The HeroScript file, or `-` for standard input.
    pub file: String,
    /// Send the script to the running daemon of the repository (its control socket), which
    /// runs it and answers the same JSON lines.
    #[arg(long)]
    pub daemon: bool,
}

/// How long `--daemon` waits for the daemon's answer.
const DAEMON_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// How a parameter becomes part of a command line.
#[derive(Clone, Copy)]
enum Arg {
    /// A positional argument, required or not.
    Positional(bool),
    /// `--NAME VALUE`.
    Option,
    /// `--NAME VALUE` once per item of a list.
    Repeated,
    /// `--NAME` when the value is `true` (or empty), nothing when `false`.
    Flag,
}

/// One action: its name, the command words, and its parameters in command-line order.
struct Spec {
    action: &'static str,
    words: &'static [&'static str],
    params: &'static [(&'static str, Arg)],
}

use Arg::{Flag, Option as Opt, Positional, Repeated};

/// The actions of actor `hero`. Parameter names are the commands' own (with `_` for `-`).
const ACTIONS: &[Spec] = &[
    Spec {
        action: "get",
        words: &["get"],
        params: &[("path", Positional(true)), ("key", Positional(false))],
    },
    Spec {
        action: "query",
        words: &["query"],
        params: &[
            ("rev", Positional(true)),
            ("pathspec", Positional(false)),
            ("expr", Positional(true)),
        ],
    },
    Spec {
        action: "check",
        words: &["check"],
        params: &[("rev", Positional(false))],
    },
    Spec {
        action: "ls",
        words: &["ls"],
        params: &[
            ("rev", Positional(false)),
            ("path", Positional(false)),
            ("recursive", Flag),
        ],
    },
    Spec {
        action: "commit",
        words: &["commit"],
        params: &[
            ("dir", Positional(false)),
            ("branch", Opt),
            ("message", Opt),
            ("allow_empty", Flag),
            ("replace", Flag),
            ("prefix", Opt),
        ],
    },
    Spec {
        action: "tag",
        words: &["tag"],
        params: &[
            ("name", Positional(true)),
            ("rev", Positional(false)),
            ("message", Opt),
            ("delete", Flag),
        ],
    },
    Spec {
        action: "branch",
        words: &["branch"],
        params: &[
            ("name", Positional(true)),
            ("start", Positional(false)),
            ("delete", Flag),
        ],
    },
    Spec {
        action: "member_add",
        words: &["member", "add"],
        params: &[
            ("id", Positional(true)),
            ("role", Opt),
            ("scope", Repeated),
            ("name", Opt),
        ],
    },
];

/// The actor of the actions `heroctl script` runs.
pub const ACTOR: &str = "hero";

/// A command parsed and ready to run.
pub type Runnable = Box<dyn FnOnce() -> Result<std::process::ExitCode>>;

/// Parses a command line (`heroctl --json …`) into a command that runs against the
/// repository given: heroctl's command-line definition and its dispatcher, passed in by the
/// caller so that this module imports no other command.
pub type ParseFn = fn(Vec<String>, &Option<PathBuf>) -> std::result::Result<Runnable, clap::Error>;

/// An action checked and ready: where it is, its name, and its command line.
pub struct Step {
    /// Where its `!!` is.
    pub span: Span,
    /// `hero.NAME`.
    pub action: String,
    /// The parsed command line.
    command: Runnable,
    /// The command prints JSON lines, one per row: its result is always a list.
    rows: bool,
}

fn problem(source: &str, at: Span, message: impl std::fmt::Display) -> String {
    format!("{source}:{}:{}: {message}", at.line, at.column)
}

/// The command line of one action, or what is wrong with it.
fn command_line(a: &Action, source: &str) -> Result<Vec<String>, String> {
    let here = |message: String| problem(source, a.span, message);
    if a.actor != ACTOR {
        return Err(here(format!(
            "unknown actor `{}`: scripts run `!!{ACTOR}.ACTION`",
            a.actor
        )));
    }
    let names: Vec<&str> = ACTIONS.iter().map(|s| s.action).collect();
    let Some(spec) = ACTIONS.iter().find(|s| s.action == a.name) else {
        return Err(here(format!(
            "unknown action `{ACTOR}.{}` (known: {})",
            a.name,
            names.join(", ")
        )));
    };
    if let Some(arg) = a.args.first() {
        return Err(here(format!(
            "`{arg}`: give every value by name (`key:value`)"
        )));
    }
    for p in &a.params {
        if !spec.params.iter().any(|(n, _)| *n == p.key) {
            let known: Vec<&str> = spec.params.iter().map(|(n, _)| *n).collect();
            return Err(problem(
                source,
                p.span,
                format!(
                    "unknown parameter `{}` of `{ACTOR}.{}` (known: {})",
                    p.key,
                    spec.action,
                    known.join(", ")
                ),
            ));
        }
    }
    let mut line: Vec<String> = spec.words.iter().map(|w| w.to_string()).collect();
    let mut positionals = Vec::new();
    for (name, kind) in spec.params {
        let given = a.params.iter().find(|p| p.key == *name);
        let at = given.map_or(a.span, |p| p.span);
        let flag = format!("--{}", name.replace('_', "-"));
        let text = |v: &ParamValue| match v {
            ParamValue::Text(t) => Ok(t.clone()),
            ParamValue::List(_) => Err(problem(source, at, format!("`{name}` takes one value"))),
        };
        match (kind, given) {
            (Positional(true), None) => {
                return Err(here(format!("`{ACTOR}.{}` needs `{name}:`", spec.action)));
            }
            (_, None) => {}
            (Positional(_), Some(p)) => positionals.push(text(&p.value)?),
            (Opt, Some(p)) => {
                line.push(flag);
                line.push(text(&p.value)?);
            }
            (Repeated, Some(p)) => {
                let items = match &p.value {
                    ParamValue::Text(t) => vec![t.clone()],
                    ParamValue::List(items) => items.clone(),
                };
                for item in items {
                    line.push(flag.clone());
                    line.push(item);
                }
            }
            (Flag, Some(p)) => match text(&p.value)?.as_str() {
                "" | "true" | "yes" => line.push(flag),
                "false" | "no" => {}
                other => {
                    return Err(problem(
                        source,
                        at,
                        format!("`{name}` is true or false, not `{other}`"),
                    ));
                }
            },
        }
    }
    // Positional arguments after `--`: a value that starts with `-` stays a value.
    line.push("--".into());
    line.extend(positionals);
    Ok(line)
}

/// Parses and checks a whole script: every action's actor, name, parameters and values.
/// Nothing runs; all problems are reported at once, each with its line and column.
pub fn plan(
    text: &[u8],
    source: &str,
    repo: &Option<PathBuf>,
    parse: ParseFn,
) -> Result<Vec<Step>> {
    let script = hero_formats::parse_heroscript(text)
        .map_err(|e| tagged(Kind::Usage, problem(source, e.span(), e)))?;
    let mut steps = Vec::new();
    let mut problems = Vec::new();
    for a in &script.actions {
        let line = match command_line(a, source) {
            Ok(l) => l,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let argv = std::iter::once("heroctl".to_string())
            .chain(std::iter::once("--json".to_string()))
            .chain(line);
        match parse(argv.collect(), repo) {
            Ok(command) => {
                steps.push(Step {
                    span: a.span,
                    action: format!("{}.{}", a.actor, a.name),
                    command,
                    rows: a.name == "query",
                });
            }
            Err(e) => {
                let text = e.render().to_string();
                let first = text
                    .lines()
                    .next()
                    .unwrap_or("invalid value")
                    .trim_start_matches("error: ")
                    .to_string();
                problems.push(problem(source, a.span, first));
            }
        }
    }
    if !problems.is_empty() {
        return Err(tagged(
            Kind::Usage,
            format!(
                "{}\n{} problem(s) in the script: nothing ran",
                problems.join("\n"),
                problems.len()
            ),
        ));
    }
    Ok(steps)
}

/// A command's captured JSON report as one value: the document it printed, a list for JSON
/// lines, `null` for nothing.
fn report(text: &str, rows: bool) -> Value {
    let text = text.trim();
    if text.is_empty() {
        return if rows { json!([]) } else { Value::Null };
    }
    if !rows && let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let lines: Option<Vec<Value>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).ok())
        .collect();
    lines.map_or_else(|| Value::String(text.to_string()), Value::Array)
}

/// Runs checked steps in order, giving each result line to `emit`; stops at the first
/// failure, after emitting it, and returns its error.
pub fn run_steps(steps: Vec<Step>, mut emit: impl FnMut(Value) -> Result<()>) -> Result<()> {
    for step in steps {
        let (at, action, rows) = (step.span, step.action, step.rows);
        let (done, out) = capture(step.command);
        match done {
            Ok(_) => emit(json!({
                "line": at.line,
                "action": action,
                "ok": true,
                "result": report(&out, rows),
            }))?,
            Err(e) => {
                let e = e.context(format!("line {} (!!{action})", at.line));
                let c = CommandError::from(e);
                let mut line = json!({
                    "line": at.line,
                    "action": action,
                    "ok": false,
                    "error": {
                        "kind": c.kind.as_str(),
                        "message": c.messages().join(": "),
                        "hint": c.hint,
                        "exit_code": c.kind.exit_code(),
                    },
                });
                // What the command reported before failing (`check`'s problems).
                let partial = report(&out, rows);
                if !partial.is_null()
                    && let Some(o) = line.as_object_mut()
                {
                    o.insert("result".into(), partial);
                }
                emit(line)?;
                return Err(c.err);
            }
        }
    }
    Ok(())
}

/// Runs `script`.
pub fn run(repo: &Option<PathBuf>, a: ScriptArgs, parse: ParseFn) -> Result<()> {
    let (source, text) = if a.file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the script from standard input")?;
        ("-".to_string(), buf)
    } else {
        let text = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file))?;
        (a.file.clone(), text)
    };
    if a.daemon {
        return ask_daemon(&crate::context::repo_path(repo)?, &text);
    }
    let steps = plan(&text, &source, repo, parse)?;
    run_steps(steps, |v| Ok(write_stdout(format_args!("{v}\n"))?))
}

/// `script --daemon`: the daemon's answer printed as `script` prints, and its exit code.
fn ask_daemon(repo: &std::path::Path, text: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(text).context("the script is not UTF-8")?;
    let request = format!("script {}", serde_json::to_string(text)?);
    let v = crate::control::ask_within(repo, &request, DAEMON_WAIT)?;
    for line in v["results"].as_array().into_iter().flatten() {
        write_stdout(format_args!("{line}\n"))?;
    }
    let code = v["exit_code"].as_u64().unwrap_or(1);
    if code == 0 {
        return Ok(());
    }
    let kind = [
        Kind::Usage,
        Kind::NotFound,
        Kind::Refused,
        Kind::Corrupt,
        Kind::Network,
    ]
    .into_iter()
    .find(|k| u64::from(k.exit_code()) == code)
    .unwrap_or(Kind::Internal);
    let message = v["error"]
        .as_str()
        .unwrap_or("the daemon's script failed")
        .trim_start_matches("error: ")
        .to_string();
    Err(tagged(kind, message))
}

/// The daemon's side of `script "TEXT"`: runs `heroctl -R REPO script -` with the text on its
/// standard input and answers `{results: [line, …], exit_code, error}` (`error`: what the
/// script printed on stderr, when it failed).
pub fn run_for_daemon(repo: &std::path::Path, request: &str) -> Value {
    use std::io::Write;
    let fail = |e: String| json!({ "results": [], "exit_code": 1, "error": e });
    let text: String = match request.strip_prefix("script ").map(serde_json::from_str) {
        Some(Ok(t)) => t,
        _ => {
            return fail("a script request is `script \"TEXT\"`, the text as a JSON string".into());
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("finding heroctl: {e}")),
    };
    let child = std::process::Command::new(exe)
        .arg("-R")
        .arg(repo)
        .args(["script", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("starting heroctl script: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A script that is refused may not read all its input: a closed pipe is no error here.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return fail(format!("running heroctl script: {e}")),
    };
    let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    json!({
        "results": results,
        "exit_code": out.status.code().unwrap_or(1),
        "error": if out.status.success() || stderr.is_empty() { Value::Null } else { Value::String(stderr) },
    })
}
