//! Link-preview thumbnails (`messages.md` §16.1 step 4): an image fetched
//! through a node is decoded locally (gif, x-icon, jpeg, png or webp, at
//! most [`MAX_IMAGE_BYTES`], with decoder limits so a hostile image cannot
//! exhaust memory), scaled down to fit [`MAX_SIDE`]×[`MAX_SIDE`] and
//! re-encoded as a JPEG, which carries none of the original's metadata
//! (EXIF, comments, colour profiles). Pure: no I/O.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The largest thumbnail side in pixels.
pub const MAX_SIDE: u32 = 600;
/// The most image bytes accepted (what `proxy_fetch` returns at most).
pub const MAX_IMAGE_BYTES: usize = 1024 * 1024;
/// The largest source side decoded.
pub const MAX_SOURCE_SIDE: u32 = 8192;
/// The most memory a decoder may allocate.
pub const MAX_DECODE_ALLOC: u64 = 96 * 1024 * 1024;
/// JPEG quality of the re-encoded thumbnail.
pub const JPEG_QUALITY: u8 = 80;

/// A re-encoded thumbnail.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// The JPEG bytes.
    pub jpeg: Vec<u8>,
    /// Width in pixels (≤ [`MAX_SIDE`]).
    pub width: u32,
    /// Height in pixels (≤ [`MAX_SIDE`]).
    pub height: u32,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnail")
            .field("bytes", &self.jpeg.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// Why an image cannot become a thumbnail.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThumbnailError {
    /// Larger than [`MAX_IMAGE_BYTES`].
    #[error("the image has {0} bytes (at most {MAX_IMAGE_BYTES})")]
    TooLarge(usize),
    /// Not one of the allowed formats.
    #[error("not a gif, x-icon, jpeg, png or webp image")]
    Format,
    /// The decoder refused it (damaged, or beyond the limits).
    #[error("cannot decode the image: {0}")]
    Decode(String),
    /// The JPEG encoder failed.
    #[error("cannot encode the thumbnail: {0}")]
    Encode(String),
}

/// Makes the thumbnail of `bytes`. Images within [`MAX_SIDE`] keep their
/// size; larger ones are scaled down, keeping their aspect ratio.
/// Transparent pixels are put on white.
pub fn make(bytes: &[u8]) -> Result<Thumbnail, ThumbnailError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ThumbnailError::TooLarge(bytes.len()));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    match reader.format() {
        Some(
            ImageFormat::Gif
            | ImageFormat::Ico
            | ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP,
        ) => {}
        _ => return Err(ThumbnailError::Format),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    let img = if img.width() > MAX_SIDE || img.height() > MAX_SIDE {
        img.thumbnail(MAX_SIDE, MAX_SIDE)
    } else {
        img
    };
    let rgb = on_white(&img);
    let (width, height) = rgb.dimensions();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .encode_image(&rgb)
        .map_err(|e| ThumbnailError::Encode(e.to_string()))?;
    Ok(Thumbnail {
        jpeg,
        width,
        height,
    })
}

/// The image as RGB, transparent pixels blended onto white.
fn on_white(img: &DynamicImage) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let blend =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, alpha: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let img = if alpha {
            DynamicImage::ImageRgba8(image::RgbaImage::from_fn(w, h, |x, _| {
                image::Rgba([200, 10, 10, if x % 2 == 0 { 0 } else { 255 }])
            }))
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
            }))
        };
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    fn decode(t: &Thumbnail) -> DynamicImage {
        let img = image::load_from_memory_with_format(&t.jpeg, ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (t.width, t.height));
        img
    }

    #[test]
    fn large_images_are_scaled_to_fit_keeping_the_aspect_ratio() {
        let t = make(&png(1200, 300, false)).unwrap();
        assert_eq!((t.width, t.height), (600, 150));
        decode(&t);
        let t = make(&png(500, 2000, false)).unwrap();
        assert_eq!((t.width, t.height), (150, 600));
    }

    #[test]
    fn small_images_keep_their_size() {
        let t = make(&png(40, 30, false)).unwrap();
        assert_eq!((t.width, t.height), (40, 30));
        assert_eq!(&t.jpeg[..3], &[0xFF, 0xD8, 0xFF]);
    }

    #[test]
    fn transparency_goes_on_white() {
        let t = make(&png(8, 8, true)).unwrap();
        let img = decode(&t).to_rgb8();
        let clear = img.get_pixel(0, 0).0;
        assert!(clear.iter().all(|&c| c > 235), "{clear:?}");
        let solid = img.get_pixel(1, 0).0;
        assert!(solid[0] > 150 && solid[1] < 80, "{solid:?}");
    }

    #[test]
    fn metadata_is_not_carried_over() {
        // A JPEG with an EXIF segment holding a marker string.
        let mut src = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut src)
            .encode_image(&image::RgbImage::from_pixel(16, 16, image::Rgb([1, 2, 3])))
            .unwrap();
        let secret = b"Exif\0\0GPS 48.8584 2.2945 secret";
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&((secret.len() + 2) as u16).to_be_bytes());
        app1.extend_from_slice(secret);
        src.splice(2..2, app1);
        assert!(src.windows(6).any(|w| w == b"secret"));
        let t = make(&src).unwrap();
        assert!(!t.jpeg.windows(6).any(|w| w == b"secret"));
        assert!(!t.jpeg.windows(4).any(|w| w == b"Exif"));
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(make(b"GIF89a"), Err(ThumbnailError::Decode(_))));
        assert_eq!(make(b"<svg></svg>").unwrap_err(), ThumbnailError::Format);
        assert_eq!(make(&[]).unwrap_err(), ThumbnailError::Format);
        assert_eq!(
            make(&vec![0u8; MAX_IMAGE_BYTES + 1]).unwrap_err(),
            ThumbnailError::TooLarge(MAX_IMAGE_BYTES + 1)
        );
        // A truncated PNG.
        let p = png(100, 100, false);
        assert!(matches!(
            make(&p[..p.len() / 2]),
            Err(ThumbnailError::Decode(_))
        ));
    }

    #[test]
    fn dimensions_beyond_the_limit_are_refused_not_allocated() {
        // A GIF whose screen and frame claim 60000×60000 pixels (14 GB as
        // RGBA): without the decoder limits this would try to allocate it.
        let mut g = Vec::new();
        DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            1,
            1,
            image::Rgba([1, 2, 3, 255]),
        ))
        .write_to(&mut Cursor::new(&mut g), ImageFormat::Gif)
        .unwrap();
        let big = 60_000u16.to_le_bytes();
        g[6..8].copy_from_slice(&big);
        g[8..10].copy_from_slice(&big);
        let desc = g.iter().position(|&b| b == 0x2C).unwrap();
        g[desc + 5..desc + 7].copy_from_slice(&big);
        g[desc + 7..desc + 9].copy_from_slice(&big);
        let err = make(&g).unwrap_err();
        assert!(matches!(err, ThumbnailError::Decode(_)), "{err:?}");
    }
}
