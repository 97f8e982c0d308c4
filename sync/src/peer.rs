//! The commit header that names the peer that made a commit; depends on no other module of
//! this crate.

use iroh::EndpointId;

/// The extra commit header that records the peer that made a commit:
/// `(hero_store::PEER_HEADER, endpoint id in hex)`.
pub fn peer_header(id: &EndpointId) -> (Vec<u8>, Vec<u8>) {
    (
        hero_store::PEER_HEADER.to_vec(),
        id.to_string().into_bytes(),
    )
}
