//! The FiLM parameters of one voice and their ramp across each frame. Per frame the FiLM
//! net gives four parameters per shaper (dimensionless): input gain and bias, output
//! gain and bias ([`FilmParam`]). Within a frame of `hop` samples, sample `i` sees
//! `p(i) = p_prev + (p_cur - p_prev) r_i`, a linear ramp from the previous frame's value,
//! with `r_i = (i + lead) / hop` (`lead` = 1 for our operators: the frame's value is
//! reached at its last sample; 0.5 for the authors'). The shaper kernels evaluate the
//! ramp per sample from each frame's start value, change and [`ramp`](FilmRamp::ramp).

use super::params::MAX_BATCH;

/// The four FiLM parameters of a shaper, in the order of the FiLM net's outputs (each a
/// block of `n_shapers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FilmParam {
    /// `alpha_in`: scales the shaper's input.
    InGain = 0,
    /// `beta_in`: added to the shaper's input.
    InBias = 1,
    /// `alpha_out`: scales the shaper's output.
    OutGain = 2,
    /// `beta_out`: added to the shaper's output.
    OutBias = 3,
}

/// The FiLM rows of a batch and the frame before it, and the ramp `r_i`.
pub(crate) struct FilmRamp {
    n_shapers: usize,
    /// `[1 + MAX_BATCH][4 n_shapers]`: row 0 holds the frame before the batch, rows
    /// `1..=n` the batch's frames.
    rows: Vec<f32>,
    /// `r_i = (i + lead) / hop`, `hop` values.
    ramp: Vec<f32>,
}

impl FilmRamp {
    pub(crate) fn new(n_shapers: usize, hop: usize, lead: f64) -> Self {
        Self {
            n_shapers,
            rows: vec![0.0; (MAX_BATCH + 1) * 4 * n_shapers],
            ramp: (0..hop)
                .map(|i| (i as f32 + lead as f32) / hop as f32)
                .collect(),
        }
    }

    fn width(&self) -> usize {
        4 * self.n_shapers
    }

    /// Where the FiLM net writes the batch's frames, frame-major (`MAX_BATCH` rows).
    pub(crate) fn batch_rows_mut(&mut self) -> &mut [f32] {
        let fw = self.width();
        &mut self.rows[fw..]
    }

    /// First frame after a reset: there is no frame before it, so its own values hold
    /// (no ramp into it).
    pub(crate) fn start(&mut self) {
        let fw = self.width();
        self.rows.copy_within(fw..2 * fw, 0);
    }

    /// The batch's `n` frames rendered: the last becomes the frame before the next batch.
    pub(crate) fn finish_batch(&mut self, n: usize) {
        let fw = self.width();
        self.rows.copy_within(n * fw..(n + 1) * fw, 0);
    }

    /// Frame `j` of the batch: its values and the previous frame's.
    pub(crate) fn frame(&self, j: usize) -> FilmFrame<'_> {
        let fw = self.width();
        FilmFrame {
            prev: &self.rows[j * fw..(j + 1) * fw],
            cur: &self.rows[(j + 1) * fw..(j + 2) * fw],
            n_shapers: self.n_shapers,
        }
    }

    /// `r_i = (i + lead) / hop` for the samples of a frame.
    pub(crate) fn ramp(&self) -> &[f32] {
        &self.ramp
    }
}

/// The FiLM parameters of one frame and of the frame before it.
pub(crate) struct FilmFrame<'a> {
    prev: &'a [f32],
    cur: &'a [f32],
    n_shapers: usize,
}

impl FilmFrame<'_> {
    /// Parameter `p` of shaper `c`: its value at the ramp's start (the previous frame's)
    /// and its change across the frame, `(p_prev, p_cur - p_prev)`.
    #[inline]
    pub(crate) fn start_and_change(&self, p: FilmParam, c: usize) -> (f32, f32) {
        let at = p as usize * self.n_shapers + c;
        let start = self.prev[at];
        (start, self.cur[at] - start)
    }
}
