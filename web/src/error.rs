//! The web face's errors: starting the server ([`WebError`]) and answering a page
//! ([`PageError`], which decides the HTTP status).

use std::net::SocketAddr;

use http::StatusCode;

/// Why the web face could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The address is beyond loopback and the network was not said to be trusted.
    #[error(
        "{addr} is not a loopback address: this server does not do TLS; bind to loopback, or \
         put a TLS proxy in front and say the network is trusted"
    )]
    Insecure {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The credentials are empty.
    #[error("the web face's credentials are empty")]
    EmptyCredentials,
    /// The address could not be bound.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The repository could not be opened.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No such page, revision or path.
    #[error("not found: {0}")]
    NotFound(String),
    /// A parameter that does not parse.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The repository failed.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
    /// Open conflicts could not be listed.
    #[error(transparent)]
    Merge(#[from] hero_store::merge::MergeError),
    /// The membership could not be read.
    #[error(transparent)]
    Membership(#[from] hero_sync::membership::MembershipError),
    /// The audit log could not be read.
    #[error(transparent)]
    Audit(#[from] hero_sync::audit::AuditError),
    /// Replication state could not be read.
    #[error(transparent)]
    Sync(#[from] hero_sync::SyncError),
}

impl From<hero_store::NameError> for PageError {
    fn from(e: hero_store::NameError) -> Self {
        PageError::NotFound(format!("no such path ({e})"))
    }
}

impl PageError {
    /// The HTTP status: what the URL names and does not exist is a 404, what cannot be
    /// parsed a 400, a failing repository a 500.
    pub fn status(&self) -> StatusCode {
        use hero_store::Error as E;
        match self {
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Store(e) => match e {
                E::UnknownRevision(_)
                | E::AmbiguousRevision(_)
                | E::NoSuchPath(_)
                | E::NotADirectory(_)
                | E::IsADirectory(_)
                | E::Name(_)
                | E::RefName { .. }
                | E::WrongType { .. } => StatusCode::NOT_FOUND,
                E::FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            PageError::Merge(_)
            | PageError::Membership(_)
            | PageError::Audit(_)
            | PageError::Sync(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
