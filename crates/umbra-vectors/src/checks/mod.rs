//! The categories, one module per vector file of the spec.

use crate::Category;

mod attachments;
mod identity;
mod message;
mod mnemonic;
mod onion;
mod rpc;
mod swarm;

/// Every category table.
pub(crate) const ALL: &[&[Category]] = &[
    identity::CATEGORIES,
    mnemonic::CATEGORIES,
    message::CATEGORIES,
    swarm::CATEGORIES,
    rpc::CATEGORIES,
    onion::CATEGORIES,
    attachments::CATEGORIES,
];
