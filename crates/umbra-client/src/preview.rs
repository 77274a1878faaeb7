//! Link previews (`messages.md` §16): finding the first `https://` URL of
//! an outgoing text, fetching it through an onion path with the node's
//! `proxy_fetch` (`storage-rpc.md` §9.14) so the site never sees this
//! device, taking the title from the HTML with a size-bounded scanner, and
//! keeping the titles of sent and received previews for display.
//!
//! Nothing here runs unless the `link-previews` setting is on (default
//! off); the caller ([`crate::client`]) checks it. Receivers never fetch
//! the page. The page's `og:image` is fetched the same way and re-encoded
//! as a thumbnail ([`crate::thumbnail`]); the caller uploads it as an
//! ordinary attachment and the preview carries its pointer.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use umbra_proto::identity::AccountId;
use umbra_proto::message::protos::{AttachmentPointer, data_message};

use crate::net::{NetError, Network};
use crate::store::{LocalStore, Message, StoreError};
use crate::thumbnail::{self, Thumbnail};

/// A preview attempt's whole deadline (§16.1 step 6).
pub const PREVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// The most HTML the title scanner reads (§16.1 step 3).
pub const MAX_HTML_BYTES: usize = 524_288;
/// Titles longer than this many characters are cut.
pub const MAX_TITLE_CHARS: usize = 256;
/// The most URL characters `proxy_fetch` accepts (§9.14).
pub const MAX_URL_CHARS: usize = 2048;

const PREVIEWS_BLOB: &str = "link_previews";

/// A link preview: the URL, the page's title and, when the page named an
/// image, its thumbnail as an uploaded attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPreview {
    /// The URL as it appears in the message.
    pub url: String,
    /// The page title (`og:title`, else `<title>`).
    pub title: String,
    /// The thumbnail (§16.1 steps 4–5).
    #[serde(default)]
    pub image: Option<PreviewImage>,
}

/// A preview's thumbnail: an ordinary attachment pointer (§16.1 step 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewImage {
    /// The file URL.
    pub url: String,
    /// The attachment key, hex.
    pub key: String,
    /// The encrypted blob's digest, hex.
    pub digest: Option<String>,
    /// Plaintext size in bytes.
    pub size: u32,
    /// MIME type.
    pub content_type: String,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
}

impl PreviewImage {
    /// The wire form.
    pub fn to_pointer(&self) -> AttachmentPointer {
        AttachmentPointer {
            content_type: Some(self.content_type.clone()),
            key: hex::decode(&self.key).ok(),
            size: Some(self.size),
            digest: self.digest.as_deref().and_then(|d| hex::decode(d).ok()),
            width: self.width,
            height: self.height,
            url: Some(self.url.clone()),
            ..AttachmentPointer::default()
        }
    }

    /// A received pointer, if usable as a thumbnail: an image type, a key,
    /// a URL and at most [`thumbnail::MAX_IMAGE_BYTES`].
    pub fn from_pointer(p: &AttachmentPointer) -> Option<PreviewImage> {
        let content_type = p.content_type.clone()?;
        let size = p.size?;
        (content_type.starts_with("image/")
            && content_type.len() <= 64
            && (size as usize) <= thumbnail::MAX_IMAGE_BYTES)
            .then_some(())?;
        Some(PreviewImage {
            url: p.url.clone().filter(|u| u.len() <= MAX_URL_CHARS)?,
            key: hex::encode(p.key.as_ref().filter(|k| !k.is_empty())?),
            digest: p.digest.as_ref().map(hex::encode),
            size,
            content_type,
            width: p.width.filter(|w| *w <= thumbnail::MAX_SOURCE_SIDE),
            height: p.height.filter(|h| *h <= thumbnail::MAX_SOURCE_SIDE),
        })
    }
}

impl LinkPreview {
    /// The wire form (`DataMessage.preview`, §6).
    pub fn to_proto(&self) -> data_message::Preview {
        data_message::Preview {
            url: self.url.clone(),
            title: Some(self.title.clone()),
            image: self.image.as_ref().map(PreviewImage::to_pointer),
        }
    }

    /// The first usable preview of a received message: an `https` URL and
    /// a non-empty title (cut to [`MAX_TITLE_CHARS`]), and its thumbnail
    /// pointer when usable.
    pub fn from_proto(previews: &[data_message::Preview]) -> Option<LinkPreview> {
        let p = previews.first()?;
        let title = clean_text(p.title.as_deref()?);
        (is_https(&p.url) && p.url.len() <= MAX_URL_CHARS && !title.is_empty()).then(|| {
            LinkPreview {
                url: p.url.clone(),
                title,
                image: p.image.as_ref().and_then(PreviewImage::from_pointer),
            }
        })
    }
}

/// Why a preview could not be made (the message then goes without one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreviewError {
    /// The onion request failed.
    #[error("proxy_fetch through the onion network failed: {0}")]
    Net(#[from] NetError),
    /// The node refused or the site failed (`proxy_fetch` status and text).
    #[error("proxy_fetch answered {status}: {text}")]
    Refused {
        /// The RPC status (400, 413, 415, 429, 502, 504…).
        status: u16,
        /// The node's text.
        text: String,
    },
    /// The node's reply is not a §9.14 result.
    #[error("bad proxy_fetch reply: {0}")]
    BadReply(String),
    /// No registry yet: no node to ask.
    #[error("no node is known yet")]
    NoNode,
    /// The page has no title.
    #[error("the page has no title")]
    NoTitle,
    /// The deadline (§16.1 step 6) passed.
    #[error("no preview within {} s", PREVIEW_TIMEOUT.as_secs())]
    Timeout,
}

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        && url.len() > 8
}

/// The first `https://` URL in `text` (§16.1 step 2), without trailing
/// punctuation that usually ends a sentence rather than a URL.
pub fn first_https_url(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower.get(from..).and_then(|s| s.find("https://")) {
        let start = from + i;
        from = start + 8;
        // Must start a word ("xhttps://" is not a URL).
        if text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric())
        {
            continue;
        }
        let rest = &text[start..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(rest.len());
        let url = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '\'']);
        if url.len() > 8 && url.len() <= MAX_URL_CHARS {
            return Some(url);
        }
    }
    None
}

/// The title of an HTML page: `og:title` if present, else `<title>`.
/// Reads at most [`MAX_HTML_BYTES`]; entities `&amp; &lt; &gt; &quot;
/// &#39; &#NN; &#xNN;` are decoded; whitespace is collapsed; the result is
/// cut to [`MAX_TITLE_CHARS`].
pub fn extract_title(html: &[u8]) -> Option<String> {
    scan_head(html).title
}

/// What the head of a page says about itself (§16.1 step 3).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageMeta {
    /// `og:title`, else `<title>` (as [`extract_title`]).
    pub title: Option<String>,
    /// `og:image` when it is an absolute `https` URL (`//host/…` is taken
    /// as `https:`); other image URLs are not used.
    pub image: Option<String>,
}

/// Scans the head of an HTML page (at most [`MAX_HTML_BYTES`]) for its
/// title and `og:image`.
pub fn scan_head(html: &[u8]) -> PageMeta {
    let html = &html[..html.len().min(MAX_HTML_BYTES)];
    let text = String::from_utf8_lossy(html);
    let lower = text.to_ascii_lowercase();
    let (mut og_title, mut title, mut image) = (None::<String>, None::<String>, None::<String>);
    let mut pos = 0;
    while let Some(i) = lower.get(pos..).and_then(|s| s.find('<')) {
        let start = pos + i;
        pos = start + 1;
        let tag_lower = &lower[start..];
        if tag_lower.starts_with("<meta") {
            let end = tag_lower.find('>').map_or(lower.len(), |e| start + e);
            let attrs = attributes(&text[start + 5..end]);
            let is = |name: &str| {
                attrs
                    .iter()
                    .any(|(k, v)| (k == "property" || k == "name") && v.eq_ignore_ascii_case(name))
            };
            let content = attrs.iter().find(|(k, _)| k == "content").map(|(_, v)| v);
            if let Some(content) = content {
                if og_title.is_none() && is("og:title") {
                    og_title = Some(clean_text(content)).filter(|t| !t.is_empty());
                } else if image.is_none() && (is("og:image") || is("og:image:secure_url")) {
                    image = https_image_url(content);
                }
            }
            pos = end;
        } else if title.is_none()
            && tag_lower.starts_with("<title")
            && tag_lower[6..].starts_with(['>', ' ', '\t', '\n', '\r'])
        {
            let Some(open_end) = tag_lower.find('>') else {
                break;
            };
            let body_start = start + open_end + 1;
            let body_end = lower[body_start..]
                .find("</title")
                .map_or(lower.len(), |e| body_start + e);
            let t = clean_text(&text[body_start..body_end]);
            if !t.is_empty() {
                title = Some(t);
            }
            pos = body_end;
        } else if tag_lower.starts_with("</head") || tag_lower.starts_with("<body") {
            // The metadata lives in the head; stop once it is over.
            break;
        }
    }
    PageMeta {
        title: og_title.or(title),
        image,
    }
}

/// An `og:image` value as a usable URL: absolute `https` only.
fn https_image_url(content: &str) -> Option<String> {
    let u = decode_entities(content.trim());
    let u = match u.strip_prefix("//") {
        Some(rest) => format!("https://{rest}"),
        None => u,
    };
    (is_https(&u) && u.len() <= MAX_URL_CHARS && !u.contains(char::is_whitespace)).then_some(u)
}

/// `key=value` attributes of a tag's inside (keys lowercased).
fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let k0 = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let key = s[k0..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                i += 1;
                let v0 = i;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                // An unterminated value (a cut-off page) is not used.
                if i < b.len() {
                    value = s[v0..i].to_string();
                }
                i += 1;
            } else {
                let v0 = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[v0..i].to_string();
            }
        }
        if key.is_empty() && i == k0 {
            i += 1;
            continue;
        }
        out.push((key, value));
    }
    out
}

/// Decodes the common entities, collapses whitespace, drops control
/// characters and cuts to [`MAX_TITLE_CHARS`].
fn clean_text(s: &str) -> String {
    decode_entities_upto(s, 8 * MAX_TITLE_CHARS)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TITLE_CHARS)
        .collect()
}

/// `s` with its entities decoded (see [`extract_title`]).
fn decode_entities(s: &str) -> String {
    decode_entities_upto(s, MAX_URL_CHARS + 1)
}

/// Decodes entities until the output passes `limit` bytes (bounded work
/// on hostile pages); the rest of `s` follows undecoded.
fn decode_entities_upto(s: &str, limit: usize) -> String {
    let mut decoded = String::with_capacity(s.len().min(limit));
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        decoded.push_str(&rest[..i]);
        rest = &rest[i..];
        let entity_end = rest.bytes().take(12).position(|b| b == b';');
        let replacement = entity_end.and_then(|e| decode_entity(&rest[1..e]));
        match (replacement, entity_end) {
            (Some(c), Some(e)) => {
                decoded.push(c);
                rest = &rest[e + 1..];
            }
            _ => {
                decoded.push('&');
                rest = &rest[1..];
            }
        }
        if decoded.len() > limit {
            break;
        }
    }
    decoded.push_str(rest);
    decoded
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let n = name.strip_prefix('#')?;
            let code = match n.strip_prefix(['x', 'X']) {
                Some(h) => u32::from_str_radix(h, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// What [`fetch_preview`] found: the preview (without its image yet) and
/// the thumbnail to upload, if the page named a usable image.
#[derive(Debug)]
pub struct Fetched {
    /// URL and title.
    pub preview: LinkPreview,
    /// The re-encoded `og:image`.
    pub thumbnail: Option<Thumbnail>,
}

/// Fetches `url` through an onion path with `proxy_fetch { accept: "html" }`
/// to a random node (§16.1 step 2), takes its title and, if the page names
/// an `https` `og:image`, fetches that too (`accept: "image"`) and makes
/// its thumbnail (steps 3–4). An image that cannot be fetched or decoded
/// only means no thumbnail. The whole attempt is bounded by
/// [`PREVIEW_TIMEOUT`].
pub async fn fetch_preview(net: &Network, url: &str) -> Result<Fetched, PreviewError> {
    match tokio::time::timeout(PREVIEW_TIMEOUT, fetch_inner(net, url)).await {
        Ok(r) => r,
        Err(_) => Err(PreviewError::Timeout),
    }
}

/// One `proxy_fetch` through an onion path: the fetched bytes.
async fn proxy_fetch(net: &Network, url: &str, accept: &str) -> Result<Vec<u8>, PreviewError> {
    net.ensure_ready(PREVIEW_TIMEOUT).await?;
    let nodes = match net.registry().await {
        Some(doc) => doc.nodes().to_vec(),
        None => Vec::new(),
    };
    if nodes.is_empty() {
        return Err(PreviewError::NoNode);
    }
    let reply = net
        .request_via(
            nodes,
            "proxy_fetch",
            json!({"url": url, "accept": accept}),
            None,
        )
        .await?;
    if reply.status != 200 {
        return Err(PreviewError::Refused {
            status: reply.status,
            text: reply.error_text(),
        });
    }
    let data = reply
        .body
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| PreviewError::BadReply("no data".into()))?;
    STANDARD
        .decode(data)
        .map_err(|e| PreviewError::BadReply(format!("data is not base64: {e}")))
}

async fn fetch_inner(net: &Network, url: &str) -> Result<Fetched, PreviewError> {
    let html = proxy_fetch(net, url, "html").await?;
    let meta = scan_head(&html);
    let title = meta.title.ok_or(PreviewError::NoTitle)?;
    let thumbnail = match meta.image {
        Some(image_url) => match proxy_fetch(net, &image_url, "image").await {
            Ok(bytes) => thumbnail::make(&bytes)
                .map_err(|e| tracing::debug!(error = %e, "no preview thumbnail"))
                .ok(),
            Err(e) => {
                tracing::debug!(error = %e, "no preview image");
                None
            }
        },
        None => None,
    };
    Ok(Fetched {
        preview: LinkPreview {
            url: url.to_string(),
            title,
            image: None,
        },
        thumbnail,
    })
}

// ----- keeping previews for display -----
//
// The titles live in one encrypted blob of the store, keyed by the message
// identity (peer, author, sent timestamp): `Message` has no preview field.
// Entries whose message is gone (expired, declined) are pruned whenever a
// preview is added, and a deleted (unsent) message shows none.

type PreviewMap = BTreeMap<String, LinkPreview>;

fn key(peer: &AccountId, author: &AccountId, timestamp_ms: u64) -> String {
    format!("{peer}/{author}/{timestamp_ms}")
}

fn load(store: &LocalStore) -> Result<PreviewMap, StoreError> {
    Ok(store
        .blob(PREVIEWS_BLOB)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

fn save(store: &LocalStore, map: &PreviewMap) -> Result<(), StoreError> {
    match serde_json::to_vec(map) {
        Ok(bytes) => store.put_blob(PREVIEWS_BLOB, &bytes),
        Err(_) => Ok(()),
    }
}

/// Remembers the preview of the message (peer, author, timestamp), and
/// forgets those whose message no longer exists.
pub fn remember(
    store: &LocalStore,
    peer: &AccountId,
    author: &AccountId,
    timestamp_ms: u64,
    preview: &LinkPreview,
) -> Result<(), StoreError> {
    let mut map = PreviewMap::new();
    for (k, v) in load(store)? {
        let mut parts = k.splitn(3, '/');
        let alive = match (
            parts.next().and_then(|p| p.parse::<AccountId>().ok()),
            parts.next().and_then(|a| a.parse::<AccountId>().ok()),
            parts.next().and_then(|t| t.parse::<u64>().ok()),
        ) {
            (Some(p), Some(a), Some(t)) => store
                .message_by_author_ts(&p, &a, t)?
                .is_some_and(|m| !m.deleted),
            _ => false,
        };
        if alive {
            map.insert(k, v);
        }
    }
    map.insert(key(peer, author, timestamp_ms), preview.clone());
    save(store, &map)
}

/// The preview of `message`, if it carried one (none once unsent).
pub fn lookup(store: &LocalStore, message: &Message) -> Result<Option<LinkPreview>, StoreError> {
    if message.deleted {
        return Ok(None);
    }
    Ok(load(store)?.remove(&key(&message.peer, &message.author, message.timestamp_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_https_url() {
        assert_eq!(
            first_https_url("see https://example.org/a?b=1, and https://x.org"),
            Some("https://example.org/a?b=1")
        );
        assert_eq!(
            first_https_url("(HTTPS://Example.org/x)."),
            Some("HTTPS://Example.org/x")
        );
        assert_eq!(first_https_url("http://example.org only"), None);
        assert_eq!(first_https_url("xhttps://a.org"), None);
        assert_eq!(first_https_url("https:// nothing"), None);
        assert_eq!(first_https_url("no links"), None);
        assert_eq!(
            first_https_url("é https://a.org/é"),
            Some("https://a.org/é")
        );
    }

    #[test]
    fn takes_og_title_then_title() {
        let page = br#"<html><head><TITLE>Plain &amp; simple</TITLE>
            <meta property="og:title" content="The &quot;real&quot; one"></head><body>x</body>"#;
        assert_eq!(extract_title(page).as_deref(), Some("The \"real\" one"));
        let page = b"<html><head><title>\n  Only   a\ttitle &#x263A; </title></head>";
        assert_eq!(
            extract_title(page).as_deref(),
            Some("Only a title \u{263A}")
        );
        let page = b"<meta name=og:title content=bare><title>t</title>";
        assert_eq!(extract_title(page).as_deref(), Some("bare"));
        assert_eq!(extract_title(b"<html><body><p>no title</p>"), None);
        assert_eq!(extract_title(b"<title></title>"), None);
        assert_eq!(extract_title(b"<titles>x</titles>"), None);
        // Unterminated and hostile input.
        assert_eq!(extract_title(b"<title>cut").as_deref(), Some("cut"));
        assert_eq!(
            extract_title(b"<meta property=\"og:title\" content=\"x"),
            None
        );
        assert_eq!(extract_title(b"<<<<&&&&;;;</title"), None);
        assert_eq!(extract_title(&[0xff, b'<', 0xfe]), None);
    }

    #[test]
    fn titles_are_bounded() {
        let long = format!("<title>{}</title>", "é".repeat(10_000));
        assert_eq!(
            extract_title(long.as_bytes()).unwrap().chars().count(),
            MAX_TITLE_CHARS
        );
        // A title past the scanned prefix is not seen.
        let mut page = vec![b' '; MAX_HTML_BYTES];
        page.extend_from_slice(b"<title>late</title>");
        assert_eq!(extract_title(&page), None);
    }

    proptest::proptest! {
        /// Arbitrary bytes (network input) never panic the scanners.
        #[test]
        fn scanners_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                text in "[<>&;#xa-z\\\"'=/: é]{0,200}") {
            let _ = extract_title(&bytes);
            let _ = extract_title(text.as_bytes());
            let _ = extract_title(format!("<meta {text}><title>{text}").as_bytes());
            let _ = first_https_url(&text);
            let _ = first_https_url(&format!("https://{text}"));
        }
    }

    #[test]
    fn og_image_is_taken_only_as_an_absolute_https_url() {
        let page =
            |meta: &str| format!("<html><head><title>T</title>{meta}</head><body></body></html>");
        let image = |meta: &str| scan_head(page(meta).as_bytes()).image;
        assert_eq!(
            image(r#"<meta property="og:image" content="https://a.org/i.png?x=1&amp;y=2">"#),
            Some("https://a.org/i.png?x=1&y=2".into())
        );
        assert_eq!(
            image(r#"<meta name="og:image" content="//cdn.a.org/i.jpg">"#),
            Some("https://cdn.a.org/i.jpg".into())
        );
        assert_eq!(
            image(r#"<meta property="og:image" content="/i.png">"#),
            None
        );
        assert_eq!(
            image(r#"<meta property="og:image" content="http://a.org/i.png">"#),
            None
        );
        assert_eq!(
            image(r#"<meta property="og:image" content="https://a.org/a b.png">"#),
            None
        );
        // The first usable one; og:title still wins over <title>.
        let m = scan_head(
            page(
                r#"<meta property="og:image" content="https://a.org/1.png"><meta property="og:title" content="OG"><meta property="og:image" content="https://a.org/2.png">"#,
            )
            .as_bytes(),
        );
        assert_eq!(
            m,
            PageMeta {
                title: Some("OG".into()),
                image: Some("https://a.org/1.png".into())
            }
        );
        // Not read from the body.
        assert_eq!(
            scan_head(b"<html><head><title>T</title></head><body><meta property=\"og:image\" content=\"https://a.org/i.png\"></body>").image,
            None
        );
    }

    #[test]
    fn received_thumbnail_pointers_are_checked() {
        let ptr = |ct: &str, size: u32| AttachmentPointer {
            content_type: Some(ct.into()),
            key: Some(vec![7; 64]),
            size: Some(size),
            digest: Some(vec![9; 32]),
            url: Some("http://files.example/file/abc".into()),
            width: Some(600),
            height: Some(315),
            ..AttachmentPointer::default()
        };
        let ok = PreviewImage::from_pointer(&ptr("image/jpeg", 40_000)).unwrap();
        assert_eq!(
            (ok.width, ok.height, ok.size),
            (Some(600), Some(315), 40_000)
        );
        assert_eq!(PreviewImage::from_pointer(&ok.to_pointer()), Some(ok));
        assert_eq!(
            PreviewImage::from_pointer(&ptr("application/pdf", 10)),
            None
        );
        assert_eq!(
            PreviewImage::from_pointer(&ptr("image/png", thumbnail::MAX_IMAGE_BYTES as u32 + 1)),
            None
        );
        let mut no_key = ptr("image/png", 10);
        no_key.key = None;
        assert_eq!(PreviewImage::from_pointer(&no_key), None);
    }

    #[test]
    fn received_previews_need_https_and_a_title() {
        let p = |url: &str, title: Option<&str>| data_message::Preview {
            url: url.into(),
            title: title.map(Into::into),
            image: None,
        };
        assert_eq!(
            LinkPreview::from_proto(&[p("https://a.org", Some("  A \n"))]),
            Some(LinkPreview {
                url: "https://a.org".into(),
                title: "A".into(),
                image: None,
            })
        );
        assert_eq!(
            LinkPreview::from_proto(&[p("http://a.org", Some("A"))]),
            None
        );
        assert_eq!(LinkPreview::from_proto(&[p("https://a.org", None)]), None);
        assert_eq!(LinkPreview::from_proto(&[]), None);
    }
}
