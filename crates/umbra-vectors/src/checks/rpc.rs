//! Categories of `rpc.json`.

use crate::Category;

/// The categories of this file.
pub(crate) const CATEGORIES: &[Category] = &[];
