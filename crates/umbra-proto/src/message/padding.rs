//! Message padding (`shared/spec/messages.md` §4).
//!
//! Format: `content ‖ 0x80 ‖ 0x00 × k`. Umbra senders pad to
//! `160 · (⌊(len + 1) / 160⌋ + 1)` bytes (the smallest multiple of 160
//! strictly greater than `len + 1`). Older Session senders padded to
//! `160·⌈(len + 2)/160⌉ − 1` bytes; [`pad_legacy`] reproduces that for the
//! `message_padding` vectors. The receiver's [`unpad`] is tolerant and
//! decodes both, and treats a buffer without the `0x80` marker as unpadded.
//!
//! The serialized `Content` is limited to [`MAX_CONTENT_LEN`] bytes so the
//! stored message fits the storage limit.

/// Padding block size in bytes.
pub const BLOCK: usize = 160;

/// The padding marker byte that ends the content.
pub const MARKER: u8 = 0x80;

/// The largest serialized `Content` a sender may pad and send (§4): it pads
/// to 76,480 bytes, which with 144 bytes of encryption and the Envelope and
/// WebSocketMessage framing stays under the 76,800-byte storage limit.
pub const MAX_CONTENT_LEN: usize = 76_478;

/// The padded length an Umbra sender produces for `len` bytes of content:
/// `160 · (⌊(len + 1) / 160⌋ + 1)`.
///
/// `len` is bounded by the size of a real buffer, so the arithmetic cannot
/// overflow for any input that exists in memory.
pub const fn padded_len(len: usize) -> usize {
    BLOCK * ((len + 1) / BLOCK + 1)
}

/// The padded length older Session senders produced:
/// `160 · ⌈(len + 2) / 160⌉ − 1`.
pub const fn legacy_padded_len(len: usize) -> usize {
    BLOCK * (len + 2).div_ceil(BLOCK) - 1
}

fn pad_to(content: &[u8], total: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(content);
    out.push(MARKER);
    out.resize(total, 0);
    out
}

/// Pads `content` as Umbra senders do: `content ‖ 0x80 ‖ 0x00…` to
/// [`padded_len`]`(content.len())` bytes.
pub fn pad(content: &[u8]) -> Vec<u8> {
    pad_to(content, padded_len(content.len()))
}

/// Pads `content` as older Session senders did, to
/// [`legacy_padded_len`]`(content.len())` bytes. Umbra never sends this form;
/// it exists for the `message_padding` vectors and receiver tests.
pub fn pad_legacy(content: &[u8]) -> Vec<u8> {
    pad_to(content, legacy_padded_len(content.len()))
}

/// Removes padding tolerantly (§4, receivers).
///
/// Scans backwards over trailing `0x00` bytes. If the first non-zero byte is
/// `0x80`, the content is everything before it. Otherwise (another byte, or
/// an all-zero buffer) the whole buffer is returned as unpadded content.
/// Never fails.
pub fn unpad(padded: &[u8]) -> &[u8] {
    match padded.iter().rposition(|&b| b != 0) {
        Some(i) if padded[i] == MARKER => &padded[..i],
        _ => padded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_table() {
        for (len, want) in [(0, 160), (158, 160), (159, 320), (160, 320), (319, 480)] {
            assert_eq!(padded_len(len), want, "len {len}");
            assert_eq!(pad(&vec![1u8; len]).len(), want);
        }
        assert_eq!(padded_len(MAX_CONTENT_LEN), 76_480);
        assert_eq!(padded_len(MAX_CONTENT_LEN + 1), 76_640);
    }

    #[test]
    fn legacy_lengths() {
        for (len, want) in [
            (0, 159),
            (157, 159),
            (158, 159),
            (159, 319),
            (318, 319),
            (319, 479),
        ] {
            assert_eq!(legacy_padded_len(len), want, "len {len}");
        }
    }

    #[test]
    fn layout() {
        let p = pad(b"hi");
        assert_eq!(&p[..3], b"hi\x80");
        assert!(p[3..].iter().all(|&b| b == 0));
    }

    #[test]
    fn tolerant_unpad() {
        // No marker: the whole buffer is content.
        assert_eq!(unpad(b"abc"), b"abc");
        assert_eq!(unpad(b"ab\x01\0\0"), b"ab\x01\0\0");
        // All zeros, and empty.
        assert_eq!(unpad(&[0u8; 5]), &[0u8; 5]);
        assert_eq!(unpad(b""), b"");
        // Marker with no trailing zeros, and odd padding lengths.
        assert_eq!(unpad(b"abc\x80"), b"abc");
        assert_eq!(unpad(b"a\x80\0\0\0\0\0\0\0"), b"a");
        // Content may itself end in 0x80 bytes: only the last is the marker.
        assert_eq!(unpad(b"a\x80\x80\0"), b"a\x80");
    }

    proptest! {
        #[test]
        fn round_trip(content in proptest::collection::vec(any::<u8>(), 0..700)) {
            let p = pad(&content);
            prop_assert_eq!(p.len() % BLOCK, 0);
            prop_assert!(p.len() > content.len() + 1);
            prop_assert!(p.len() <= content.len() + 1 + BLOCK);
            prop_assert_eq!(unpad(&p), &content[..]);

            let l = pad_legacy(&content);
            prop_assert_eq!((l.len() + 1) % BLOCK, 0);
            prop_assert!(l.len() > content.len());
            prop_assert_eq!(unpad(&l), &content[..]);
        }

        #[test]
        fn unpad_is_a_prefix(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
            let u = unpad(&buf);
            prop_assert!(buf.starts_with(u));
        }
    }
}
