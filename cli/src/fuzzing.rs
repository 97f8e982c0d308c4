//! The check of the daemon-configuration fuzz target (`fuzz/`), shared with the test that
//! replays its checked-in corpus on stable Rust (`cli/tests/fuzz_corpus.rs`).

use crate::commands::daemon::config::{NodeNames, parse_bytes};

/// `.hero/daemon.toml` as committed by any writer: parsed or refused with a position inside
/// the text; parsing is deterministic; nothing panics.
pub fn daemon_config(data: &[u8]) {
    let me = NodeNames {
        id: "b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1".to_owned(),
        host: Some("host".to_owned()),
    };
    match parse_bytes(data, "daemon.toml", &me) {
        Ok(c) => assert_eq!(parse_bytes(data, "daemon.toml", &me).ok(), Some(c)),
        Err(e) => {
            let lines = data.split(|&b| b == b'\n').count();
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= lines.max(1), "line {line} of {lines}");
            }
        }
    }
}

/// Small valid inputs of the target: the seeds of its checked-in corpus (`fuzz/seeds/`).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let full = "peers = [\"b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1b5d1a0a1\"]\n\
                catch_up_secs = 30\n\
                listen = \"0.0.0.0:4919\"\n\
                lan_discovery = true\n\n\
                [mount]\nenabled = true\npath = \"/srv/hero/drive\"\nidle_commit_ms = 100\n\n\
                [dav]\nenabled = true\naddr = \"127.0.0.1:4918\"\n\n\
                [[watch]]\nglob = \"etc/**/*.conf\"\ncheck = [\"nginx\", \"-t\"]\n\
                run = [\"systemctl\", \"reload\", \"nginx\"]\n\n\
                [gc]\nenabled = true\n";
    vec![
        ("daemon_config", full.as_bytes().to_vec()),
        ("daemon_config", b"catch_up_secs = 0\n".to_vec()),
        ("daemon_config", Vec::new()),
    ]
}
