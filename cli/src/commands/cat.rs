//! `heroctl cat REV:PATH`: a file of a revision, as its bytes.

use crate::context::file_id;
use anyhow::{Context, Result};
use clap::Args;
use hero_store::{ObjectId, Repo};

/// Arguments of `cat`.
#[derive(Args, Debug)]
pub struct CatArgs {
    /// `REV:PATH`, or a PATH in the default branch, or a content id.
    pub spec: String,
}

pub fn run(repo: &Repo, a: CatArgs) -> Result<()> {
    let view = repo.view()?;
    let id = match a.spec.split_once(':') {
        Some((rev, path)) => {
            let commit = view.resolve(rev)?;
            file_id(&view, &commit, path)?
        }
        None => match ObjectId::from_hex(&a.spec) {
            Some(id) => id,
            None => {
                let commit = view.resolve("HEAD")?;
                file_id(&view, &commit, &a.spec)?
            }
        },
    };
    let mut r = view.open_file(&id)?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut r, &mut out).context("writing to stdout")?;
    Ok(())
}
