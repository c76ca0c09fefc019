//! Training data: windows of a byte corpus, grey images as pixel sequences, and a
//! synthetic long-range recall task.

use candle_core::{Device, Result, Tensor};
use rand::Rng;

/// One batch: inputs, next-token targets and per-position loss weights, all
/// `(batch, len)`.
#[derive(Debug)]
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
    pub weights: Tensor,
}

/// A byte corpus split into training and held-out parts.
#[derive(Debug, Clone)]
pub struct ByteCorpus {
    pub train: Vec<u8>,
    pub held_out: Vec<u8>,
}

impl ByteCorpus {
    /// The last `held_out` fraction of `bytes` is held out.
    pub fn split(bytes: Vec<u8>, held_out: f64) -> Self {
        let cut = ((bytes.len() as f64) * (1.0 - held_out)) as usize;
        let mut train = bytes;
        let held_out = train.split_off(cut);
        Self { train, held_out }
    }

    /// `batch` random training windows of `len` bytes, each predicting the next byte.
    pub fn train_batch(
        &self,
        rng: &mut impl Rng,
        batch: usize,
        len: usize,
        device: &Device,
    ) -> Result<Batch> {
        let starts: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.train.len() - len - 1))
            .collect();
        windows(&self.train, &starts, len, device)
    }

    /// Consecutive non-overlapping held-out windows, `batch` at a time, at most `max`.
    pub fn held_out_batches(
        &self,
        batch: usize,
        len: usize,
        max: usize,
        device: &Device,
    ) -> Result<Vec<Batch>> {
        let count = ((self.held_out.len() - 1) / len).min(max);
        let starts: Vec<usize> = (0..count).map(|w| w * len).collect();
        starts
            .chunks(batch)
            .map(|s| windows(&self.held_out, s, len, device))
            .collect()
    }
}

fn windows(bytes: &[u8], starts: &[usize], len: usize, device: &Device) -> Result<Batch> {
    let n = starts.len();
    let mut inputs = Vec::with_capacity(n * len);
    let mut targets = Vec::with_capacity(n * len);
    for &s in starts {
        inputs.extend(bytes[s..s + len].iter().map(|&b| b as u32));
        targets.extend(bytes[s + 1..s + len + 1].iter().map(|&b| b as u32));
    }
    Ok(Batch {
        inputs: Tensor::from_vec(inputs, (n, len), device)?,
        targets: Tensor::from_vec(targets, (n, len), device)?,
        weights: Tensor::ones((n, len), candle_core::DType::F32, device)?,
    })
}

/// 8-bit grey images as sequences in raster order, for autoregressive density modelling:
/// position i reads pixel i - 1 (a start token at position 0) and predicts pixel i, so a
/// `rows x cols` image is one sequence of `rows * cols` positions over a vocabulary of
/// 257 (the 256 pixel values and the start token).
#[derive(Debug, Clone)]
pub struct PixelSequences {
    /// Pixels of every image, image after image.
    pub pixels: Vec<u8>,
    /// Pixels per image.
    pub len: usize,
}

impl PixelSequences {
    /// The token that starts every sequence.
    pub const START: u32 = 256;
    pub const VOCAB: usize = 257;

    pub fn new(pixels: Vec<u8>, len: usize) -> Self {
        assert!(
            len > 0 && pixels.len().is_multiple_of(len),
            "whole images only"
        );
        Self { pixels, len }
    }

    pub fn images(&self) -> usize {
        self.pixels.len() / self.len
    }

    /// The batch of the given images; every position is scored.
    pub fn batch_of(&self, images: &[usize], device: &Device) -> Result<Batch> {
        let (n, len) = (images.len(), self.len);
        let mut inputs = Vec::with_capacity(n * len);
        let mut targets = Vec::with_capacity(n * len);
        for &i in images {
            let image = &self.pixels[i * len..(i + 1) * len];
            inputs.push(Self::START);
            inputs.extend(image[..len - 1].iter().map(|&p| u32::from(p)));
            targets.extend(image.iter().map(|&p| u32::from(p)));
        }
        Ok(Batch {
            inputs: Tensor::from_vec(inputs, (n, len), device)?,
            targets: Tensor::from_vec(targets, (n, len), device)?,
            weights: Tensor::ones((n, len), candle_core::DType::F32, device)?,
        })
    }

    /// `batch` random images.
    pub fn random_batch(&self, rng: &mut impl Rng, batch: usize, device: &Device) -> Result<Batch> {
        let images: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.images()))
            .collect();
        self.batch_of(&images, device)
    }

    /// The first `max` images in order, `batch` at a time.
    pub fn batches(&self, batch: usize, max: usize, device: &Device) -> Result<Vec<Batch>> {
        let images: Vec<usize> = (0..self.images().min(max)).collect();
        images
            .chunks(batch.max(1))
            .map(|chunk| self.batch_of(chunk, device))
            .collect()
    }
}

/// Long-range recall: random filler bytes, `copies` copies of one payload symbol at
/// random places in the first `len / early` positions, and query bytes at the ends of the
/// blocks in the last `len / early` positions, each of which must output the payload.
///
/// The payload never sits at a block end (position = block - 1 mod block), so no query
/// reaches it in one layer of the sparse patterns: Fixed and Axial see earlier blocks and
/// rows only through their last position or their own column (the block-end column), and
/// Logsparse sees the ends of dyadic chunks, none of which lies in the first eighth for a
/// query in the last. Combiner reaches every earlier position, so it can.
#[derive(Debug, Clone, Copy)]
pub struct RecallTask {
    pub len: usize,
    /// Fixed's block and Axial's row length.
    pub block: usize,
    /// Distinct payload symbols (chance accuracy is 1 / payloads).
    pub payloads: u32,
    /// Distinct filler symbols.
    pub filler: u32,
    /// Copies of the payload per sequence.
    pub copies: usize,
    /// The payload lies in the first `len / early` positions, the queries in the last.
    pub early: usize,
}

impl RecallTask {
    /// Payload symbols start here; the query byte is 255.
    pub const PAYLOAD_BASE: u32 = 128;
    pub const QUERY: u32 = 255;

    pub fn new(len: usize, block: usize) -> Self {
        Self {
            len,
            block,
            payloads: 16,
            filler: 64,
            copies: 16,
            early: 8,
        }
    }

    /// Positions that may hold the payload.
    pub fn payload_positions(&self) -> Vec<usize> {
        (0..self.len / self.early)
            .filter(|p| p % self.block != self.block - 1)
            .collect()
    }

    /// Scored positions.
    pub fn query_positions(&self) -> Vec<usize> {
        (self.len - self.len / self.early..self.len)
            .filter(|p| p % self.block == self.block - 1)
            .collect()
    }

    pub fn batch(&self, rng: &mut impl Rng, batch: usize, device: &Device) -> Result<Batch> {
        let len = self.len;
        let candidates = self.payload_positions();
        let queries = self.query_positions();
        let mut inputs = Vec::with_capacity(batch * len);
        let mut targets = vec![0u32; batch * len];
        let mut weights = vec![0f32; batch * len];
        for b in 0..batch {
            let mut row: Vec<u32> = (0..len).map(|_| rng.random_range(0..self.filler)).collect();
            let payload = Self::PAYLOAD_BASE + rng.random_range(0..self.payloads);
            let chosen =
                rand::seq::index::sample(rng, candidates.len(), self.copies.min(candidates.len()));
            for c in chosen {
                row[candidates[c]] = payload;
            }
            for &q in &queries {
                row[q] = Self::QUERY;
                targets[b * len + q] = payload;
                weights[b * len + q] = 1.0;
            }
            inputs.extend(row);
        }
        Ok(Batch {
            inputs: Tensor::from_vec(inputs, (batch, len), device)?,
            targets: Tensor::from_vec(targets, (batch, len), device)?,
            weights: Tensor::from_vec(weights, (batch, len), device)?,
        })
    }
}

/// Fraction of scored positions whose arg-max prediction is the target.
pub fn accuracy(logits: &Tensor, batch: &Batch) -> Result<f64> {
    let predicted = logits.argmax(candle_core::D::Minus1)?;
    let hit = predicted
        .eq(&batch.targets)?
        .to_dtype(candle_core::DType::F32)?;
    let hits = (hit * &batch.weights)?.sum_all()?.to_scalar::<f32>()?;
    let total = batch.weights.sum_all()?.to_scalar::<f32>()?;
    Ok((hits / total) as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pixel_sequence_reads_the_previous_pixel_and_predicts_the_next() {
        // Two 2x3 images.
        let pixels: Vec<u8> = vec![10, 20, 30, 40, 50, 60, 1, 2, 3, 4, 5, 255];
        let set = PixelSequences::new(pixels, 6);
        assert_eq!(set.images(), 2);
        let b = set.batch_of(&[1, 0], &Device::Cpu).unwrap();
        let inputs: Vec<Vec<u32>> = b.inputs.to_vec2().unwrap();
        let targets: Vec<Vec<u32>> = b.targets.to_vec2().unwrap();
        assert_eq!(inputs[0], [256, 1, 2, 3, 4, 5]);
        assert_eq!(targets[0], [1, 2, 3, 4, 5, 255]);
        assert_eq!(inputs[1], [256, 10, 20, 30, 40, 50]);
        assert_eq!(targets[1], [10, 20, 30, 40, 50, 60]);
        assert_eq!(
            b.weights.sum_all().unwrap().to_scalar::<f32>().unwrap(),
            12.0
        );
        // Batches cover the first images in order; random batches draw real images.
        let all = set.batches(1, 5, &Device::Cpu).unwrap();
        assert_eq!(all.len(), 2);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        let r = set.random_batch(&mut rng, 3, &Device::Cpu).unwrap();
        for row in r.targets.to_vec2::<u32>().unwrap() {
            assert!(row == [1, 2, 3, 4, 5, 255] || row == [10, 20, 30, 40, 50, 60]);
        }
    }

    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn recall_batches_hide_the_payload_early_and_score_only_the_queries() -> Result<()> {
        let task = RecallTask::new(256, 16);
        let b = task.batch(&mut StdRng::seed_from_u64(1), 4, &Device::Cpu)?;
        let inputs: Vec<Vec<u32>> = b.inputs.to_vec2()?;
        let targets: Vec<Vec<u32>> = b.targets.to_vec2()?;
        let weights: Vec<Vec<f32>> = b.weights.to_vec2()?;
        let queries = task.query_positions();
        assert_eq!(queries, vec![239, 255]);
        for ((x, t), w) in inputs.iter().zip(&targets).zip(&weights) {
            let payload = |v: u32| (RecallTask::PAYLOAD_BASE..RecallTask::QUERY).contains(&v);
            let at: Vec<usize> = (0..256).filter(|&p| payload(x[p])).collect();
            assert_eq!(at.len(), task.copies);
            assert!(at.iter().all(|&p| p < 32 && p % 16 != 15));
            assert!(at.iter().all(|&p| x[p] == x[at[0]]));
            for p in 0..256 {
                let query = queries.contains(&p);
                assert_eq!(x[p] == RecallTask::QUERY, query);
                assert_eq!(w[p], if query { 1.0 } else { 0.0 });
                if query {
                    assert_eq!(t[p], x[at[0]]);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn corpus_targets_are_the_next_bytes() -> Result<()> {
        let corpus = ByteCorpus::split((0..=255u8).cycle().take(2000).collect(), 0.1);
        assert_eq!(corpus.held_out.len(), 200);
        let b = corpus.train_batch(&mut StdRng::seed_from_u64(2), 3, 16, &Device::Cpu)?;
        let x: Vec<Vec<u32>> = b.inputs.to_vec2()?;
        let t: Vec<Vec<u32>> = b.targets.to_vec2()?;
        for (x, t) in x.iter().zip(&t) {
            for p in 0..16 {
                assert_eq!(t[p], (x[p] + 1) % 256);
            }
        }
        let held = corpus.held_out_batches(2, 16, 100, &Device::Cpu)?;
        let windows: usize = held.iter().map(|b| b.inputs.dims()[0]).sum();
        assert_eq!(windows, (200 - 1) / 16);
        Ok(())
    }
}
