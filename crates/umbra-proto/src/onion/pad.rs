//! Size buckets (spec `onion.md` §9, an Umbra addition): every onion
//! request a client sends and every reply a destination sends is padded to
//! one of seven fixed sizes.
//!
//! The padding itself is a JSON string of ASCII `0`s under the key `"pad"`,
//! placed where only the final recipient reads it (see
//! [`build_padded_onion`](super::build_padded_onion),
//! [`seal_node_reply`](super::seal_node_reply) and
//! [`seal_server_reply`](super::seal_server_reply)). Unpadding is simply
//! ignoring that key, which every reader here does.

/// The bucket sizes in bytes: 2 KiB, 8 KiB, 32 KiB, 128 KiB, 512 KiB,
/// 2 MiB and 10 MiB.
pub const BUCKETS: [usize; 7] = [
    2_048, 8_192, 32_768, 131_072, 524_288, 2_097_152, 10_485_760,
];

/// The largest body a node accepts and the largest bucket (10 MiB).
pub const MAX_BODY_SIZE: usize = BUCKETS[6];

/// The smallest bucket `≥ size`, or `None` when `size` exceeds 10 MiB.
pub fn bucket_for(size: usize) -> Option<usize> {
    BUCKETS.iter().copied().find(|&b| b >= size)
}

/// The buckets `≥ size`, smallest first.
pub(crate) fn buckets_from(size: usize) -> impl Iterator<Item = usize> {
    BUCKETS.into_iter().filter(move |&b| b >= size)
}

/// `len` ASCII `0` characters, the content of a `"pad"` string.
pub fn pad_string(len: usize) -> String {
    "0".repeat(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets() {
        assert_eq!(bucket_for(0), Some(2048));
        assert_eq!(bucket_for(2048), Some(2048));
        assert_eq!(bucket_for(2049), Some(8192));
        assert_eq!(bucket_for(10_485_760), Some(10_485_760));
        assert_eq!(bucket_for(10_485_761), None);
        assert_eq!(
            buckets_from(600_000).collect::<Vec<_>>(),
            vec![2_097_152, 10_485_760]
        );
        assert_eq!(pad_string(3), "000");
    }

    proptest! {
        #[test]
        fn smallest_fitting(size in 0usize..=MAX_BODY_SIZE) {
            let b = bucket_for(size).ok_or_else(|| TestCaseError::fail("no bucket"))?;
            prop_assert!(b >= size);
            prop_assert!(BUCKETS.contains(&b));
            prop_assert!(BUCKETS.iter().all(|&x| x >= b || x < size));
        }
    }
}
