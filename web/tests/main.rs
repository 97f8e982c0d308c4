//! The web face's pages against a repository made here, over real HTTP: what each page
//! shows, that hostile names and messages are shown and never run, that every request needs
//! the token, and that garbage in the URL is a 404 or a 400, never a 500.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};

const TOKEN: &str = "test-token-0123456789";
const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>.txt";

struct Site {
    addr: SocketAddr,
    repo: Arc<Repo>,
    agent: ureq::Agent,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn commit(repo: &Repo, files: &[(&str, &[u8])], deletes: &[&str], message: &str, time: i64) {
    let mut cs = repo.change_set("main").expect("change set");
    for (path, bytes) in files {
        let p = RepoPath::parse(path).expect("path");
        cs.put_bytes(&p, EntryKind::File, bytes).expect("put");
    }
    for path in deletes {
        cs.delete(&RepoPath::parse(path).expect("path"))
            .expect("delete");
    }
    let sig = Signature {
        name: b"Ada <admin>".to_vec(),
        email: b"ada@example.org".to_vec(),
        time,
        tz_offset_minutes: 0,
    };
    cs.commit(CommitMeta::new(sig, message), Expect::Latest)
        .expect("commit");
}

const T0: i64 = 1_796_000_000;

/// A repository with three commits (hostile names and messages in them) and a web face on it.
fn site() -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Arc::new(Repo::init(dir.path().join("r.hero")).expect("init"));
    commit(
        &repo,
        &[
            (
                "etc/app.toml",
                b"port = 80\n[server]\nhost = \"<b>h</b>\"\n",
            ),
            (
                "docs/adr/0001-use-x.md",
                b"# Use <x>\n\nStatus: proposed\n\n<script>alert(1)</script>\n",
            ),
            (HOSTILE_NAME, b"hostile\n"),
            ("run.hero", b"!!node.define name:'<n1>' ip:10.0.0.1\n"),
            ("bin.dat", &[0, 1, 2, 255, 0]),
        ],
        &[],
        "<script>alert('m')</script> first",
        T0,
    );
    commit(
        &repo,
        &[
            (
                "etc/app.toml",
                b"port = 8080\n[server]\nhost = \"<b>h</b>\"\n",
            ),
            (
                "docs/adr/0001-use-x.md",
                b"# Use <x>\n\nStatus: accepted\n\n<script>alert(1)</script>\n",
            ),
        ],
        &[],
        "second",
        T0 + 86_400,
    );
    commit(
        &repo,
        &[
            (
                "docs/adr/0001-use-x.md",
                b"# Use <x>\n\nStatus: superseded by ADR-2\n",
            ),
            (
                "docs/adr/0002-use-y.md",
                b"# Use y\n\nStatus: accepted\n\nSupersedes ADR-1\n",
            ),
        ],
        &[],
        "third",
        T0 + 2 * 86_400,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut cfg = hero_web::WebConfig::new(hero_web::Auth::Token(TOKEN.into()));
    cfg.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.poll = Duration::from_millis(20);
    let server = rt
        .block_on(hero_web::bind_repo(repo.clone(), cfg))
        .expect("bind");
    let addr = server.local_addr();
    rt.spawn(server.run(std::future::pending()));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    Site {
        addr,
        repo,
        agent,
        _rt: rt,
        _dir: dir,
    }
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET with the bearer token: status and body.
    fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(self.url(path))
            .header("authorization", format!("Bearer {TOKEN}"))
            .call()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().expect("body"))
    }

    /// GET that must succeed.
    fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

/// Nothing in `html` is markup that came from the repository.
fn assert_no_injected_markup(html: &str) {
    for bad in ["<script>alert", "<img src=x", "<b>h</b>", "<n1>", "<x>"] {
        assert!(!html.contains(bad), "unescaped {bad:?} in page:\n{html}");
    }
}

#[test]
fn every_request_needs_the_token() {
    let s = site();
    let r = s.agent.get(s.url("/")).call().expect("request");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let r = s
        .agent
        .get(s.url("/tree/etc/app.toml"))
        .header("authorization", "Bearer wrong")
        .call()
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
    // Basic with any user and the token as the password.
    let basic = format!("Basic {}", base64(&format!("anyone:{TOKEN}")));
    let r = s
        .agent
        .get(s.url("/"))
        .header("authorization", &basic)
        .call()
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    // /login sets a cookie that then opens every page; a wrong token sets nothing.
    let r = s
        .agent
        .get(s.url("/login?token=wrong"))
        .call()
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = s
        .agent
        .get(s.url(&format!("/login?token={TOKEN}")))
        .call()
        .expect("request");
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value");
    let r = s
        .agent
        .get(s.url("/adr"))
        .header("cookie", pair)
        .call()
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    // Nothing writes: other methods are refused before anything else.
    let r = s
        .agent
        .post(s.url("/"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send("x")
        .expect("request");
    assert_eq!(r.status().as_u16(), 405);
}

fn base64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn pages_carry_a_strict_content_security_policy() {
    let s = site();
    let r = s
        .agent
        .get(s.url("/"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .call()
        .expect("request");
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a policy")
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(
        r.headers()
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
}

#[test]
fn the_timeline_shows_commits_newest_first_with_hostile_messages_escaped() {
    let s = site();
    let html = s.page("/");
    assert_no_injected_markup(&html);
    assert!(
        html.contains("&lt;script&gt;alert(&#39;m&#39;)&lt;/script&gt; first")
            || html.contains("&lt;script&gt;alert('m')&lt;/script&gt; first"),
        "{html}"
    );
    let third = html.find(">third<").expect("third");
    let second = html.find(">second<").expect("second");
    assert!(third < second, "newest first");
    assert!(html.contains("Ada &lt;admin&gt;"), "{html}");
    assert!(html.contains("<span class=\"ref\">main</span>"), "{html}");
    // Every section is reachable from the navigation bar.
    for link in [
        "href=\"/\"",
        "href=\"/tree/\"",
        "href=\"/adr\"",
        "href=\"/peers\"",
    ] {
        assert!(html.contains(link), "{link}");
    }
    // Filters: a path, an author, dates.
    let only_run = s.page("/?path=run.hero");
    assert!(
        only_run.contains("first") && !only_run.contains(">second<"),
        "{only_run}"
    );
    assert!(s.page("/?author=nobody").contains("No commits."));
    let day2 = s.page("/?since=2026-12-01&until=2026-12-01");
    assert!(
        day2.contains(">second<") && !day2.contains(">third<"),
        "{day2}"
    );
}

#[test]
fn the_timeline_is_paginated() {
    let s = site();
    for i in 0..60 {
        commit(
            &s.repo,
            &[("counter.txt", format!("{i}\n").as_bytes())],
            &[],
            &format!("count {i}"),
            T0 + 3 * 86_400 + i,
        );
    }
    let first = s.page("/");
    assert_eq!(first.matches("<tr class=\"commit\"").count(), 50);
    assert!(first.contains(">count 59<") && !first.contains(">count 9<"));
    assert!(first.contains("rel=\"next\" href=\"/?page=1\""), "{first}");
    let second = s.page("/?page=1");
    assert_eq!(second.matches("<tr class=\"commit\"").count(), 13);
    assert!(second.contains(">count 9<") && second.contains(">third<"));
    assert!(!second.contains("rel=\"next\""));
}

#[test]
fn browse_shows_any_revision_with_each_kind_of_file() {
    let s = site();
    let root = s.page("/tree/");
    assert_no_injected_markup(&root);
    assert!(
        root.contains("&lt;img src=x onerror=alert(1)&gt;.txt"),
        "{root}"
    );
    // The hostile name's own page, by its percent-encoded URL.
    let hostile = s.page("/tree/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt");
    assert_no_injected_markup(&hostile);
    assert!(hostile.contains("hostile"));
    // TOML highlighted, at the head and at an older revision, and by date.
    let now = s.page("/tree/etc/app.toml");
    assert!(now.contains("<span class=\"n\">8080</span>"), "{now}");
    assert_no_injected_markup(&now);
    let old = s.page("/tree/etc/app.toml?rev=main~2");
    assert!(old.contains("<span class=\"n\">80</span>"), "{old}");
    let dated = s.page("/tree/etc/app.toml?rev=main@2026-11-30T12:00");
    assert!(dated.contains("<span class=\"n\">80</span>"), "{dated}");
    // The same path at other revisions is linked.
    assert!(now.contains("/tree/etc/app.toml?rev=main~1"), "{now}");
    // Markdown rendered, its raw HTML shown as text.
    let md = s.page("/tree/docs/adr/0001-use-x.md?rev=main~1");
    assert!(md.contains("<h1>Use &lt;x&gt;</h1>"), "{md}");
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{md}");
    assert_no_injected_markup(&md);
    // HeroScript as its actions.
    let hs = s.page("/tree/run.hero");
    assert!(hs.contains("<td class=\"mono\">node.define</td>"), "{hs}");
    assert!(hs.contains("&lt;n1&gt;"), "{hs}");
    assert_no_injected_markup(&hs);
    // A binary: its size and BLAKE3 id, and a download.
    let view = s.repo.view().expect("view");
    let head = view.resolve("main").expect("head");
    let id = view
        .entry_in_commit(&head, &RepoPath::parse("bin.dat").expect("path"))
        .expect("entry")
        .expect("there")
        .id;
    let bin = s.page("/tree/bin.dat");
    assert!(bin.contains("binary file"), "{bin}");
    assert!(bin.contains(&id.to_hex()), "{bin}");
    assert!(bin.contains("5 B"), "{bin}");
    let mut r = s
        .agent
        .get(s.url("/raw/bin.dat"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .call()
        .expect("raw");
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(
        r.body_mut().read_to_vec().expect("bytes"),
        vec![0, 1, 2, 255, 0]
    );
}

#[test]
fn garbage_in_the_url_is_a_404_or_400_never_a_500() {
    let s = site();
    let not_found = [
        "/nope",
        "/tree/nope",
        "/tree/..%2Fetc",
        "/tree/etc/../etc/app.toml",
        "/tree/%00",
        "/tree/etc/app.toml/below",
        "/tree/etc?rev=zzz",
        "/tree/etc?rev=main~99",
        "/tree/etc?rev=main@1999-01-01",
        "/tree/etc?rev=%ff%fe",
        "/tree/etc?rev=../../x",
        "/commit/0000",
        "/commit/%ff%fe",
        "/commit/",
        "/raw/etc",
        "/raw/nope",
        "/history/nope",
        "/keys/nope?key=a",
    ];
    for path in not_found {
        let (status, body) = s.get(path);
        assert_eq!(status, 404, "{path}: {body}");
        assert_no_injected_markup(&body);
    }
    let long = format!("/tree/etc?rev={}", "a".repeat(5000));
    assert_eq!(s.get(&long).0, 404);
    for path in [
        "/?page=x",
        "/?since=yesterday",
        "/?path=..",
        "/keys/etc/app.toml",
        "/keys/etc/app.toml?key=%5B%5B",
        "/diff",
    ] {
        let (status, body) = s.get(path);
        assert_eq!(status, 400, "{path}: {body}");
    }
    // Still serving.
    assert_eq!(s.get("/").0, 200);
}

#[test]
fn a_commit_shows_its_diff_and_the_keys_that_changed() {
    let s = site();
    let html = s.page("/commit/main~1");
    assert!(
        html.contains("<div class=\"del\">-port = 80</div>"),
        "{html}"
    );
    assert!(
        html.contains("<div class=\"add\">+port = 8080</div>"),
        "{html}"
    );
    assert!(
        html.contains(
            "<td class=\"mono\">port</td><td class=\"mono\">80</td><td class=\"mono\">8080</td>"
        ),
        "{html}"
    );
    let split = s.page("/commit/main~1?view=split");
    assert!(split.contains("<table class=\"split mono\">"), "{split}");
    assert!(
        split.contains("<td class=\"del\">port = 80</td><td class=\"add\">port = 8080</td>"),
        "{split}"
    );
    // The first commit: everything added, hostile names escaped, the binary summarised.
    let first = s.page("/commit/main~2");
    assert_no_injected_markup(&first);
    assert!(first.contains("binary file"), "{first}");
    // Any two revisions.
    let diff = s.page("/diff?from=main~2&to=main");
    assert!(
        diff.contains("0002-use-y.md") && diff.contains("+port = 8080"),
        "{diff}"
    );
}

#[test]
fn file_and_key_histories_list_the_changes() {
    let s = site();
    let html = s.page("/history/etc/app.toml");
    assert_eq!(
        html.matches("<td class=\"mono\"><a href=\"/commit/")
            .count(),
        2,
        "{html}"
    );
    assert!(
        html.contains(">second<") && html.contains("added"),
        "{html}"
    );
    let keys = s.page("/keys/etc/app.toml?key=port");
    assert!(
        keys.contains("<td class=\"mono\">80</td><td class=\"mono\">8080</td>"),
        "{keys}"
    );
    assert!(
        keys.contains("<td class=\"mono\">(none)</td><td class=\"mono\">80</td>"),
        "{keys}"
    );
    let host = s.page("/keys/etc/app.toml?key=server.host");
    assert!(host.contains("&lt;b&gt;h&lt;/b&gt;"), "{host}");
    assert_no_injected_markup(&host);
}

#[test]
fn the_decision_records_page_shows_status_history_and_supersede_links() {
    let s = site();
    let html = s.page("/adr");
    assert_no_injected_markup(&html);
    assert!(html.contains("0001-use-x.md") && html.contains("0002-use-y.md"));
    assert!(html.contains("added as <b>proposed</b>"), "{html}");
    assert!(html.contains("proposed → <b>accepted</b>"), "{html}");
    assert!(
        html.contains("accepted → <b>superseded by ADR-2</b>"),
        "{html}"
    );
    assert!(
        html.contains("supersedes <a href=\"/tree/docs/adr/0001-use-x.md?rev=main\">0001</a>"),
        "{html}"
    );
    // As it was two commits ago.
    let old = s.page("/adr?rev=main~2");
    assert!(
        !old.contains("0002-use-y.md") && old.contains("proposed"),
        "{old}"
    );
}

#[test]
fn the_peers_page_shows_members_and_the_audit_log_with_refusals_marked() {
    let s = site();
    hero_sync::audit::record(
        &s.repo,
        hero_sync::audit::Entry::new(
            None,
            "push",
            hero_sync::audit::Decision::Refused,
            "<script>alert('audit')</script> outside its scope",
        ),
    );
    hero_sync::audit::record(
        &s.repo,
        hero_sync::audit::Entry::new(None, "pull", hero_sync::audit::Decision::Accepted, "fine"),
    );
    let html = s.page("/peers");
    assert_no_injected_markup(&html);
    assert!(html.contains("Members") && html.contains("Audit log"));
    assert!(html.contains("<tr class=\"refused\">"), "{html}");
    assert!(html.contains("&lt;script&gt;alert"), "{html}");
    let refused = s.page("/peers?refused=1");
    assert!(!refused.contains(">fine<") && refused.contains("outside its scope"));
    let pulls = s.page("/peers?action=pull");
    assert!(pulls.contains(">fine<") && !pulls.contains("outside its scope"));
}

#[test]
fn a_commit_is_announced_on_the_event_stream() {
    let s = site();
    let r = s
        .agent
        .get(s.url("/events"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .call()
        .expect("events");
    assert_eq!(r.status().as_u16(), 200);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(r.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The stream is open once its first frame arrives.
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10))
            .expect("first frame"),
        "retry: 1000"
    );
    commit(
        &s.repo,
        &[("new.txt", b"new\n")],
        &[],
        "fourth",
        T0 + 4 * 86_400,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).expect("an event within the deadline");
        if line == "event: commit" {
            break;
        }
    }
}
