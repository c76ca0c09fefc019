//! Cuts a stream into centred, overlapping analysis windows.

/// Streaming framer: frame `f` covers samples `[f hop - len/2, f hop + len/2)` (samples
/// before the stream's start are zeros) and is ready once sample `f hop + len/2 - 1` has
/// been pushed: a latency of `len / 2` samples.
#[derive(Clone, Debug)]
pub struct Framer {
    buf: Vec<f32>,
    fill: usize,
    hop: usize,
}

impl Framer {
    pub fn new(len: usize, hop: usize) -> Self {
        assert!(hop > 0 && hop <= len, "hop must be in 1..=len");
        Self {
            buf: vec![0.0; len],
            fill: len / 2,
            hop,
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Samples between a frame's centre and its readiness.
    pub fn latency(&self) -> usize {
        self.buf.len() - self.buf.len() / 2
    }

    pub fn reset(&mut self) {
        self.buf.fill(0.0);
        self.fill = self.buf.len() / 2;
    }

    /// Pushes `input`, calling `on_frame` with each window that becomes ready.
    pub fn push(&mut self, mut input: &[f32], mut on_frame: impl FnMut(&[f32])) {
        let len = self.buf.len();
        while !input.is_empty() {
            let take = (len - self.fill).min(input.len());
            self.buf[self.fill..self.fill + take].copy_from_slice(&input[..take]);
            self.fill += take;
            input = &input[take..];
            if self.fill == len {
                on_frame(&self.buf);
                self.buf.copy_within(self.hop.., 0);
                self.fill -= self.hop;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_centred_on_multiples_of_the_hop() {
        let mut f = Framer::new(8, 4);
        let x: Vec<f32> = (1..=20).map(|v| v as f32).collect();
        let mut frames = Vec::new();
        f.push(&x[..3], |w| frames.push(w.to_vec()));
        f.push(&x[3..], |w| frames.push(w.to_vec()));
        // Frame 0: samples -4..4 (zeros before 0); frame 1: 0..8; frame 2: 4..12 ...
        assert_eq!(frames[0], vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(frames[1], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(frames[2], vec![5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
        assert_eq!(frames.len(), 5);
        assert_eq!(f.latency(), 4);
    }
}
