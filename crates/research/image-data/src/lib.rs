//! Grey image data sets in the IDX format of MNIST and Fashion-MNIST (gzipped or not),
//! as the companion crates `subspace` and `ood` use them. Debian's
//! `dataset-fashion-mnist` ships `/usr/share/datasets/fashion-mnist/{train,t10k}-
//! {images-idx3,labels-idx1}-ubyte.gz`.

pub mod download;

use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImageDataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an IDX file of {wanted}: {reason}")]
    Format {
        path: PathBuf,
        wanted: &'static str,
        reason: String,
    },
    #[error("{images} images but {labels} labels")]
    Mismatch { images: usize, labels: usize },
}

/// Images with their labels: `n` images of `rows x cols` bytes, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledImages {
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl LabelledImages {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` scaled to [0, 1].
    pub fn image_f32(&self, i: usize) -> Vec<f32> {
        let n = self.rows * self.cols;
        self.pixels[i * n..(i + 1) * n]
            .iter()
            .map(|p| *p as f32 / 255.0)
            .collect()
    }

    /// The first `n` examples (all of them when there are fewer).
    pub fn first(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            rows: self.rows,
            cols: self.cols,
            pixels: self.pixels[..n * self.rows * self.cols].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Writes the images and labels as IDX files, gzipped when a path ends in `.gz`.
    pub fn write(&self, images: &Path, labels: &Path) -> Result<(), ImageDataError> {
        let mut head = Vec::with_capacity(16);
        for v in [0x0803, self.len(), self.rows, self.cols] {
            head.extend_from_slice(&(v as u32).to_be_bytes());
        }
        write_maybe_gz(images, &[&head, &self.pixels])?;
        let mut head = Vec::with_capacity(8);
        for v in [0x0801, self.len()] {
            head.extend_from_slice(&(v as u32).to_be_bytes());
        }
        write_maybe_gz(labels, &[&head, &self.labels])
    }

    /// The `split` ("train" or "t10k") of a folder holding
    /// `{split}-images-idx3-ubyte.gz` and `{split}-labels-idx1-ubyte.gz`, as
    /// `cargo xtask data images` writes them and Debian ships Fashion-MNIST.
    pub fn read_split(dir: &Path, split: &str) -> Result<Self, ImageDataError> {
        Self::read(
            &dir.join(format!("{split}-images-idx3-ubyte.gz")),
            &dir.join(format!("{split}-labels-idx1-ubyte.gz")),
        )
    }

    /// Reads an images file and its labels file.
    pub fn read(images: &Path, labels: &Path) -> Result<Self, ImageDataError> {
        let (rows, cols, pixels) = read_idx_images(images)?;
        let labels = read_idx_labels(labels)?;
        let n = pixels.len() / (rows * cols).max(1);
        if n != labels.len() {
            return Err(ImageDataError::Mismatch {
                images: n,
                labels: labels.len(),
            });
        }
        Ok(Self {
            rows,
            cols,
            pixels,
            labels,
        })
    }
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, ImageDataError> {
    let io = |source| ImageDataError::Io {
        path: path.to_owned(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn write_maybe_gz(path: &Path, parts: &[&[u8]]) -> Result<(), ImageDataError> {
    use std::io::Write;
    let io = |source| ImageDataError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    if path.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        for part in parts {
            gz.write_all(part).map_err(io)?;
        }
        gz.finish().map_err(io)?.flush().map_err(io)
    } else {
        let mut file = file;
        for part in parts {
            file.write_all(part).map_err(io)?;
        }
        file.flush().map_err(io)
    }
}

fn be_u32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// `(rows, cols, pixels)` of an `idx3-ubyte` file.
pub fn read_idx_images(path: &Path) -> Result<(usize, usize, Vec<u8>), ImageDataError> {
    let b = read_maybe_gz(path)?;
    let bad = |reason: String| ImageDataError::Format {
        path: path.to_owned(),
        wanted: "images (magic 0x803)",
        reason,
    };
    if b.len() < 16 {
        return Err(bad(format!("{} bytes, shorter than the header", b.len())));
    }
    if be_u32(&b, 0) != 0x0803 {
        return Err(bad(format!("magic {:#x}", be_u32(&b, 0))));
    }
    let (n, rows, cols) = (be_u32(&b, 4), be_u32(&b, 8), be_u32(&b, 12));
    let want = 16 + n * rows * cols;
    if b.len() != want {
        return Err(bad(format!(
            "{} bytes; the header describes {want} ({n} images of {rows}x{cols})",
            b.len()
        )));
    }
    Ok((rows, cols, b[16..].to_vec()))
}

/// The labels of an `idx1-ubyte` file.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, ImageDataError> {
    let b = read_maybe_gz(path)?;
    let bad = |reason: String| ImageDataError::Format {
        path: path.to_owned(),
        wanted: "labels (magic 0x801)",
        reason,
    };
    if b.len() < 8 {
        return Err(bad(format!("{} bytes, shorter than the header", b.len())));
    }
    if be_u32(&b, 0) != 0x0801 {
        return Err(bad(format!("magic {:#x}", be_u32(&b, 0))));
    }
    let n = be_u32(&b, 4);
    if b.len() != 8 + n {
        return Err(bad(format!(
            "{} bytes; the header describes {}",
            b.len(),
            8 + n
        )));
    }
    Ok(b[8..].to_vec())
}
