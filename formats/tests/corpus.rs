//! Every corpus file parses; what it holds is checked value by value.

use std::path::{Path, PathBuf};

use hero_formats::{Document, Format, parse};
use serde_json::json;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

pub fn load(relative: &str) -> Document {
    let path = corpus_dir().join(relative);
    let bytes = std::fs::read(&path).unwrap();
    let format = if relative.starts_with("heroscript/") {
        Format::HeroScript
    } else {
        Format::detect(relative, &bytes).unwrap()
    };
    parse(format, &bytes).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[test]
fn every_corpus_file_parses_as_its_format() {
    let mut count = 0;
    for dir in ["heroscript", "toml", "markdown"] {
        for entry in std::fs::read_dir(corpus_dir().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let doc = load(&format!("{dir}/{name}"));
            assert!(doc.value.is_object(), "{dir}/{name}");
            count += 1;
        }
    }
    assert!(count >= 16, "{count} files");
}

#[test]
fn nodes_file_defines_three_nodes_in_file_order() {
    let doc = load("heroscript/nodes.hero");
    assert_eq!(
        hero_formats::query(&doc.value, "node.define[*].ipaddr").unwrap(),
        json!(["10.20.0.11", "10.20.0.12", "10.20.0.1"])
    );
    assert_eq!(
        doc.get("node.define[0].roles").unwrap(),
        &json!(["storage", "compute"])
    );
    assert_eq!(
        doc.get("node.define[name=gent-02].roles").unwrap(),
        "storage"
    );
    assert_eq!(
        doc.get("node.define[name=gent-02].disks").unwrap(),
        &json!(["nvme0n1", "nvme1n1", "sda (spare)"])
    );
    assert_eq!(
        doc.get("node.define[0].description").unwrap(),
        "First node of rack A.\nHolds the object store's hot tier."
    );
    assert_eq!(
        doc.get("node.define[1].description").unwrap(),
        "Second node of rack A.\nReplaces the one decommissioned in May."
    );
    assert_eq!(
        doc.get("node.define[-1].public_ip").unwrap(),
        "185.69.166.7"
    );
    assert_eq!(doc.get("node.define[2].powermanager_port").unwrap(), "2");
    // Positions: the third action's `!!` and the comment-followed ipaddr of the second.
    assert_eq!(
        doc.span("/node/define/2").map(|s| (s.line, s.column)),
        Some((22, 1))
    );
    assert_eq!(
        doc.span("/node/define/1/ipaddr")
            .map(|s| (s.line, s.column)),
        Some((15, 5))
    );
}

#[test]
fn users_networks_installers_and_actions_inside_markdown() {
    let users = load("heroscript/users.heroscript");
    assert_eq!(
        users.get("user.add[name=carla].groups").unwrap(),
        &json!([])
    );
    assert_eq!(
        users.get("user.add[name=carla].expires").unwrap(),
        "2026-12-31"
    );
    assert_eq!(users.get("group.define[1].members").unwrap(), "ann");
    assert!(
        users
            .get("user.add[1].sshkey")
            .unwrap()
            .as_str()
            .unwrap()
            .ends_with(" bo@laptop")
    );
    let net = load("heroscript/network.hero");
    assert_eq!(
        net.get("network.define[0].dns").unwrap(),
        &json!(["10.20.0.2", "10.20.0.3"])
    );
    assert_eq!(
        net.get("network.define[1].dns").unwrap(),
        &json!(["192.168.100.2"])
    );
    assert_eq!(
        net.get("network.define[name=mgmt].comment").unwrap(),
        "Out-of-band management; no route to \"backbone\" by design"
    );
    assert_eq!(net.get("wireguard.peer[0].endpoint").unwrap(), "");
    let site = load("heroscript/site.md");
    assert_eq!(
        hero_formats::query(&site.value, "site.menu_item[?position=='right'].href").unwrap(),
        json!(["https://status.example.org"])
    );
    let budget = load("heroscript/budget.hero");
    assert_eq!(
        hero_formats::query(&budget.value, "budget.cost_define[*].name").unwrap(),
        json!(["colocation", "spare_disks"])
    );
    assert_eq!(
        budget
            .get("budget.cost_define[name=colocation].indexation")
            .unwrap(),
        "3%"
    );
    assert_eq!(
        budget
            .get("budget.cost_define[name=colocation].cost")
            .unwrap(),
        "0:1800EUR,12:1900EUR"
    );
    assert_eq!(budget.get("budget.cost_define[1].once").unwrap(), "1");
    assert_eq!(
        budget.get("budget.staff_define[0].nrpeople").unwrap(),
        "0:2,6:3"
    );
    let installer = load("heroscript/installer.heroscript");
    assert_eq!(installer.get("garage_s3.start[0].reset").unwrap(), "false");
}

#[test]
fn toml_configs_keep_types_and_positions() {
    let cargo = load("toml/Cargo.toml");
    assert_eq!(cargo.get("package.rust-version").unwrap(), "1.85");
    assert_eq!(cargo.get("bin[1].required-features[0]").unwrap(), "metrics");
    assert_eq!(
        cargo.get("bin[name=gk-admin].path").unwrap(),
        "src/admin.rs"
    );
    assert_eq!(
        cargo.get("dependencies.hyper.default-features").unwrap(),
        false
    );
    assert_eq!(
        cargo
            .get("target.\"cfg(unix)\".dependencies.nix.version")
            .unwrap(),
        "0.29"
    );
    assert_eq!(cargo.get("profile.release.codegen-units").unwrap(), 1);
    let daemon = load("toml/daemon.toml");
    assert_eq!(daemon.get("mount.idle_commit_ms").unwrap(), 2000);
    assert_eq!(daemon.get("peers[1].pull_only").unwrap(), true);
    assert_eq!(daemon.get("limits.ratio").unwrap(), 0.75);
    assert_eq!(
        daemon.get("limits.started").unwrap(),
        "2026-03-01T09:00:00Z"
    );
    assert_eq!(daemon.get("limits.quiet_from").unwrap(), "22:00:00");
    assert_eq!(daemon.get("limits.hex_mask").unwrap(), 0xffff);
    assert_eq!(daemon.get("limits.perms").unwrap(), 0o750);
    assert_eq!(daemon.get("limits.flags").unwrap(), 10);
    assert_eq!(daemon.get("hooks.allowed_env").unwrap(), &json!([]));
    assert_eq!(
        daemon
            .span("/peers/1/pull_only")
            .map(|s| (s.line, s.column)),
        Some((23, 13))
    );
    let py = load("toml/pyproject.toml");
    assert_eq!(py.get("project.authors[1].name").unwrap(), "Bo Example");
    assert_eq!(py.get("tool.ruff.lint.ignore").unwrap(), &json!(["E501"]));
    assert_eq!(
        py.get("tool.pytest.ini_options.markers[0]").unwrap(),
        "slow: takes more than a second"
    );
    assert_eq!(py.get("project.license.text").unwrap(), "MIT");
}

#[test]
fn nygard_records_give_status_date_sections_and_links() {
    let first = load("markdown/0001-record-architecture-decisions.md");
    assert_eq!(first.get("Status").unwrap(), "Accepted");
    assert_eq!(first.get("Date").unwrap(), "2026-01-12");
    assert_eq!(
        first.get("title").unwrap(),
        "1. Record architecture decisions"
    );
    assert_eq!(
        first.get("#Decision").unwrap(),
        "We will use Architecture Decision Records, one Markdown file per decision, numbered."
    );
    let old = load("markdown/0002-use-redb.md");
    assert_eq!(
        old.get("Superseded by").unwrap(),
        &json!(["0005-one-file-per-repository.md"])
    );
    // The fenced `## Not a heading` and `Status: Rejected` are code.
    assert!(old.get("#Not a heading: this is inside a fence").is_err());
    assert!(
        old.get("#Decision")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("Status: Rejected")
    );
    let new = load("markdown/0005-one-file-per-repository.md");
    assert_eq!(new.get("supersedes").unwrap(), &json!(["0002-use-redb.md"]));
    // A section's text runs to the next heading of the same or a higher level.
    assert_eq!(
        new.get("#decision").unwrap(),
        "A repository is one redb file.\n\n### Layout\n\nTables carry versioned names."
    );
    assert_eq!(new.get("#layout").unwrap(), "Tables carry versioned names.");
    assert_eq!(new.span("/status").map(|s| s.line), Some(5));
}

#[test]
fn madr_records_read_front_matter_and_list_fields() {
    let madr = load("markdown/0007-madr-pieces.md");
    assert_eq!(madr.get("status").unwrap(), "accepted");
    assert_eq!(madr.get("Date").unwrap(), "2026-05-14");
    assert_eq!(madr.get("deciders").unwrap(), &json!(["ann", "bo"]));
    assert_eq!(madr.get("front_matter.consulted[0]").unwrap(), "carla");
    assert_eq!(madr.get("supersedes").unwrap(), &json!(["0004"]));
    assert_eq!(madr.get("title").unwrap(), "Store large records in pieces");
    assert!(
        madr.get("#decision-outcome")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("Chosen option")
    );
    assert_eq!(madr.span("/front_matter/deciders").map(|s| s.line), Some(4));
    assert_eq!(madr.span("/status").map(|s| s.line), Some(2));
    let madr2 = load("markdown/0008-madr2-list-fields.md");
    assert_eq!(madr2.get("Status").unwrap(), "proposed");
    assert_eq!(madr2.get("date").unwrap(), "2026-06-01");
    assert_eq!(madr2.get("superseded_by").unwrap(), &json!(["0012"]));
    let toml_front = load("markdown/0009-toml-front-matter.md");
    assert_eq!(toml_front.get("status").unwrap(), "Accepted");
    assert_eq!(
        toml_front.get("title").unwrap(),
        "Schedule garbage collection"
    );
    assert_eq!(toml_front.get("links.issue").unwrap(), 19);
    assert_eq!(toml_front.get("#Context").unwrap(), "GC ran only by hand.");
    assert_eq!(
        toml_front.span("/front_matter/links/issue").map(|s| s.line),
        Some(6)
    );
}

#[test]
fn setext_headings_bold_labels_and_indentation() {
    let doc = load("markdown/handbook.md");
    assert_eq!(doc.get("title").unwrap(), "Operating the store");
    assert_eq!(doc.get("status").unwrap(), "Draft");
    assert_eq!(doc.get("date").unwrap(), "2026-11-30");
    assert_eq!(
        doc.get("#Indented heading (three spaces is still a heading)")
            .unwrap(),
        "    ## Four spaces: indented code, not a heading"
    );
    // The first of two sections with one heading.
    assert_eq!(doc.get("#Backups").unwrap(), "Copy the repository file.");
    assert_eq!(
        hero_formats::query(&doc.value, "sections[?heading=='Backups'] | length(@)")
            .unwrap_err()
            .to_string(),
        "query, column 33: functions are not supported"
    );
    assert_eq!(
        hero_formats::query(&doc.value, "sections[?heading=='Backups'].text").unwrap(),
        json!([
            "Copy the repository file.",
            "A second section with the same heading."
        ])
    );
}
