//! Input complexity: the code length of an image under a lossless compressor (PNG, as in
//! Serra et al.), bits.

/// PNG code length, bits, of a grey 8-bit image `rows x cols` (best compression, adaptive
/// filtering). The fixed header is included; it shifts every score alike.
pub fn png_bits(pixels: &[u8], rows: usize, cols: usize) -> Result<f64, png::EncodingError> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, cols as u32, rows as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(pixels)?;
    }
    Ok(8.0 * bytes.len() as f64)
}
