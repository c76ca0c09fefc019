//! IDX files written here (plain and gzipped) read back; truncated files are clear errors.

use std::io::Write;

use image_data::{ImageDataError, LabelledImages, read_idx_images};

fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0803, n, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..n * rows * cols).map(|i| (i % 251) as u8));
    b
}

fn idx_labels(n: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0801, n] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..n).map(|i| (i % 10) as u8));
    b
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("image-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn plain_and_gzipped_idx_read_the_same() {
    let (imgs, labels) = (idx_images(5, 28, 28), idx_labels(5));
    let plain = LabelledImages::read(&temp("a.idx3", &imgs), &temp("a.idx1", &labels)).unwrap();
    let zipped = LabelledImages::read(
        &temp("b.idx3.gz", &gz(&imgs)),
        &temp("b.idx1.gz", &gz(&labels)),
    )
    .unwrap();
    assert_eq!(plain, zipped);
    assert_eq!((plain.len(), plain.rows, plain.cols), (5, 28, 28));
    assert_eq!(plain.labels, vec![0, 1, 2, 3, 4]);
    assert_eq!(plain.image_f32(1)[0], (784 % 251) as f32 / 255.0);
}

#[test]
fn a_truncated_file_is_a_clear_error() {
    let imgs = idx_images(3, 4, 4);
    let path = temp("short.idx3", &imgs[..imgs.len() - 5]);
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, ImageDataError::Format { .. }));
    let text = err.to_string();
    assert!(text.contains("the header describes 64"), "{text}");
}

#[test]
fn written_sets_read_back_plain_and_gzipped() {
    let set = LabelledImages {
        rows: 3,
        cols: 2,
        pixels: (0..24).map(|i| (i * 7) as u8).collect(),
        labels: vec![3, 1, 4, 1],
    };
    let dir = std::env::temp_dir().join(format!("image-data-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for ext in ["", ".gz"] {
        let (i, l) = (
            dir.join(format!("train-images-idx3-ubyte{ext}")),
            dir.join(format!("train-labels-idx1-ubyte{ext}")),
        );
        set.write(&i, &l).unwrap();
        assert_eq!(LabelledImages::read(&i, &l).unwrap(), set);
    }
    assert_eq!(LabelledImages::read_split(&dir, "train").unwrap(), set);
    assert_eq!(set.first(2).labels, vec![3, 1]);
    assert_eq!(set.first(2).pixels.len(), 12);
}

/// A slice of the real Fashion-MNIST, committed (`tests/fixtures/fashion-mnist`: its first
/// 16 training images): it reads on every run, with the labels and first image the real
/// set has; when the full set is at hand (`cargo xtask data images`, or
/// `$FASHION_MNIST_DIR`), its first 16 images are these and it has 60,000 of 28x28.
#[test]
fn fashion_mnist_reads_when_present() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fashion-mnist");
    let slice = LabelledImages::read_split(&fixture, "train").unwrap();
    assert_eq!((slice.len(), slice.rows, slice.cols), (16, 28, 28));
    assert_eq!(
        slice.labels,
        [9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9, 5, 5, 7, 9]
    );
    let first: u32 = slice.pixels[..784].iter().map(|&p| p as u32).sum();
    assert_eq!(first, 76_247, "the first image (an ankle boot) has changed");

    let dir = std::env::var("FASHION_MNIST_DIR").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../data/images/fashion-mnist"
        )
        .into()
    });
    let dir = std::path::Path::new(&dir);
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        println!(
            "full set not here ({}): the committed slice only",
            dir.display()
        );
        return;
    }
    let set = LabelledImages::read_split(dir, "train").unwrap();
    assert_eq!((set.len(), set.rows, set.cols), (60_000, 28, 28));
    assert!(set.labels.iter().all(|l| *l < 10));
    assert_eq!(set.first(16), slice);
}
