//! Link previews (`messages.md` §16): finding the first `https://` URL of
//! an outgoing text, fetching it through an onion path with the node's
//! `proxy_fetch` (`storage-rpc.md` §9.14) so the site never sees this
//! device, taking the title from the HTML with a size-bounded scanner, and
//! keeping the titles of sent and received previews for display.
//!
//! Nothing here runs unless the `link-previews` setting is on (default
//! off); the caller ([`crate::client`]) checks it. Receivers never fetch.
//! The thumbnail (§16.1 steps 3–5, `og:image`) is not produced yet: a
//! preview carries the URL and the title only.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use umbra_proto::identity::AccountId;
use umbra_proto::message::protos::data_message;

use crate::net::{NetError, Network};
use crate::store::{LocalStore, Message, StoreError};

/// A preview attempt's whole deadline (§16.1 step 6).
pub const PREVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// The most HTML the title scanner reads (§16.1 step 3).
pub const MAX_HTML_BYTES: usize = 524_288;
/// Titles longer than this many characters are cut.
pub const MAX_TITLE_CHARS: usize = 256;
/// The most URL characters `proxy_fetch` accepts (§9.14).
pub const MAX_URL_CHARS: usize = 2048;

const PREVIEWS_BLOB: &str = "link_previews";

/// A link preview: the URL and the page's title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPreview {
    /// The URL as it appears in the message.
    pub url: String,
    /// The page title (`og:title`, else `<title>`).
    pub title: String,
}

impl LinkPreview {
    /// The wire form (`DataMessage.preview`, §6).
    pub fn to_proto(&self) -> data_message::Preview {
        data_message::Preview {
            url: self.url.clone(),
            title: Some(self.title.clone()),
            image: None,
        }
    }

    /// The first usable preview of a received message: an `https` URL and
    /// a non-empty title (cut to [`MAX_TITLE_CHARS`]).
    pub fn from_proto(previews: &[data_message::Preview]) -> Option<LinkPreview> {
        let p = previews.first()?;
        let title = clean_text(p.title.as_deref()?);
        (is_https(&p.url) && p.url.len() <= MAX_URL_CHARS && !title.is_empty()).then(|| {
            LinkPreview {
                url: p.url.clone(),
                title,
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
    let html = &html[..html.len().min(MAX_HTML_BYTES)];
    let text = String::from_utf8_lossy(html);
    let lower = text.to_ascii_lowercase();
    let mut title: Option<String> = None;
    let mut pos = 0;
    while let Some(i) = lower.get(pos..).and_then(|s| s.find('<')) {
        let start = pos + i;
        pos = start + 1;
        let tag_lower = &lower[start..];
        if tag_lower.starts_with("<meta") {
            let end = tag_lower.find('>').map_or(lower.len(), |e| start + e);
            let attrs = attributes(&text[start + 5..end]);
            let is_og_title = attrs.iter().any(|(k, v)| {
                (k == "property" || k == "name") && v.eq_ignore_ascii_case("og:title")
            });
            if is_og_title && let Some((_, content)) = attrs.iter().find(|(k, _)| k == "content") {
                let t = clean_text(content);
                if !t.is_empty() {
                    return Some(t);
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
            // og:title lives in the head; stop once it is over.
            break;
        }
    }
    title
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
    let mut decoded = String::with_capacity(s.len().min(4 * MAX_TITLE_CHARS));
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
        if decoded.len() > 8 * MAX_TITLE_CHARS {
            break;
        }
    }
    decoded.push_str(rest);
    decoded
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TITLE_CHARS)
        .collect()
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

/// Fetches `url` through an onion path with `proxy_fetch { accept: "html" }`
/// to a random node (§16.1 step 2) and returns its title. The whole
/// attempt is bounded by [`PREVIEW_TIMEOUT`].
pub async fn fetch_preview(net: &Network, url: &str) -> Result<LinkPreview, PreviewError> {
    match tokio::time::timeout(PREVIEW_TIMEOUT, fetch_inner(net, url)).await {
        Ok(r) => r,
        Err(_) => Err(PreviewError::Timeout),
    }
}

async fn fetch_inner(net: &Network, url: &str) -> Result<LinkPreview, PreviewError> {
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
            json!({"url": url, "accept": "html"}),
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
    let html = STANDARD
        .decode(data)
        .map_err(|e| PreviewError::BadReply(format!("data is not base64: {e}")))?;
    let title = extract_title(&html).ok_or(PreviewError::NoTitle)?;
    Ok(LinkPreview {
        url: url.to_string(),
        title,
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
                title: "A".into()
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
