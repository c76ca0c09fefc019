//! Fundamental frequency by YIN (de Cheveigné and Kawahara 2002) with pYIN-style
//! candidate probabilities (Mauch and Dixon 2014) and Viterbi smoothing over the
//! candidates of successive frames: full Viterbi offline, fixed-lag Viterbi streaming.

use crate::{FeatureError, Framer, check_rate_and_hop};

/// Most pitch candidates kept per frame.
const MAX_CANDIDATES: usize = 8;
/// Viterbi cost of moving the pitch, in nats per semitone per frame.
const JUMP_COST_PER_SEMITONE: f32 = 4.0;
/// Probability of switching between voiced and unvoiced from one frame to the next.
const SWITCH_PROB: f32 = 0.01;

/// Settings of the pitch tracker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PitchConfig {
    pub sample_rate: u32,
    /// Frame hop in samples (128 at 16 kHz: the model's control rate).
    pub hop: usize,
    /// Lowest and highest f0 searched, in Hz.
    pub f_min: f32,
    pub f_max: f32,
    /// Frames the streaming Viterbi waits before deciding (latency `lag * hop`).
    pub lag_frames: usize,
    /// Integration window of YIN's difference function as a fraction of the longest
    /// period (1 = the classic choice; smaller answers sooner, for a real-time tracker).
    pub integration_periods: f32,
    /// Which samples of the analysis window YIN compares.
    pub window: YinWindow,
}

/// Where in its analysis window YIN's difference function looks. The window must hold a
/// longest period plus the integration width either way; what differs is which sound the
/// answer describes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum YinWindow {
    /// The classic alignment: the window's first `width` samples against those `tau`
    /// later. At period `tau` it describes the sound `(width + tau) / 2` samples into the
    /// window, before the frame's centre (offline, and in training).
    #[default]
    Start,
    /// The window's newest `width` samples against those `tau` earlier: it describes the
    /// sound `(width + tau) / 2` samples before the window's end, after the frame's
    /// centre. A live tracker hears the input sooner by up to a longest period.
    End,
}

impl Default for PitchConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            hop: 128,
            f_min: 55.0,
            f_max: 2_100.0,
            lag_frames: 2,
            integration_periods: 1.0,
            window: YinWindow::Start,
        }
    }
}

/// The tracker's answer for one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PitchEstimate {
    /// Fundamental frequency in Hz. In unvoiced frames: the most likely candidate, or the
    /// last voiced value when there is none (so a synth driven by it holds its pitch).
    pub f0_hz: f32,
    /// Probability that the frame is voiced, in [0, 1].
    pub confidence: f32,
    /// The smoothed voicing decision.
    pub voiced: bool,
}

/// One frame's candidates: (f0 in Hz, probability), plus the voicing probability.
#[derive(Clone, Copy, Debug, Default)]
struct Candidates {
    f0: [f32; MAX_CANDIDATES],
    prob: [f32; MAX_CANDIDATES],
    n: usize,
    voiced_prob: f32,
}

impl Candidates {
    /// Viterbi states: the candidates, then the unvoiced state at index `n`.
    fn emission(&self, state: usize) -> f32 {
        if state < self.n {
            (self.prob[state] + 1e-9).ln()
        } else {
            (1.0 - self.voiced_prob).max(1e-9).ln()
        }
    }

    fn best_f0(&self) -> Option<f32> {
        (0..self.n)
            .max_by(|&a, &b| self.prob[a].total_cmp(&self.prob[b]))
            .map(|i| self.f0[i])
    }
}

fn transition(from: &Candidates, i: usize, to: &Candidates, j: usize) -> f32 {
    let (fv, tv) = (i < from.n, j < to.n);
    match (fv, tv) {
        (true, true) => {
            let semis = 12.0 * (to.f0[j] / from.f0[i]).log2().abs();
            (1.0 - SWITCH_PROB).ln() - JUMP_COST_PER_SEMITONE * semis
        }
        (false, false) => (1.0 - SWITCH_PROB).ln(),
        _ => SWITCH_PROB.ln(),
    }
}

/// One Viterbi step from the scores over `prev`'s states to `cur`'s: writes the best
/// predecessor of each state into `back` and returns the new scores, shifted so that the
/// best is 0 (states beyond `cur`'s are -inf).
fn viterbi_step(
    prev: &Candidates,
    score: &[f32; MAX_CANDIDATES + 1],
    cur: &Candidates,
    back: &mut [u8; MAX_CANDIDATES + 1],
) -> [f32; MAX_CANDIDATES + 1] {
    let mut next = [f32::NEG_INFINITY; MAX_CANDIDATES + 1];
    for j in 0..=cur.n {
        let (mut best, mut arg) = (f32::NEG_INFINITY, 0u8);
        for i in 0..=prev.n {
            let v = score[i] + transition(prev, i, cur, j);
            if v > best {
                best = v;
                arg = i as u8;
            }
        }
        next[j] = best + cur.emission(j);
        back[j] = arg;
    }
    let top = next[..=cur.n]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for v in &mut next[..=cur.n] {
        *v -= top;
    }
    next
}

/// YIN analysis of one window with pYIN-style candidate probabilities.
#[derive(Clone, Debug)]
struct YinAnalyser {
    sample_rate: f32,
    tau_min: usize,
    tau_max: usize,
    /// Integration window of the difference function.
    width: usize,
    alignment: YinWindow,
    diff: Vec<f32>,
    cmnd: Vec<f32>,
    /// Prior of each threshold 0.01, 0.02, ..., 1.00: beta(2, 18), mean 0.1.
    threshold_prior: Vec<f32>,
}

impl YinAnalyser {
    fn new(c: &PitchConfig) -> Result<Self, FeatureError> {
        let sr = c.sample_rate as f32;
        let bad = FeatureError::PitchRange {
            lo: c.f_min,
            hi: c.f_max,
            sample_rate: c.sample_rate,
        };
        if !(c.f_min > 0.0 && c.f_max > c.f_min && c.f_max < sr / 4.0) {
            return Err(bad);
        }
        let tau_min = ((sr / c.f_max).floor() as usize).max(2);
        let tau_max = (sr / c.f_min).ceil() as usize;
        if tau_max > 8192 {
            return Err(bad);
        }
        let mut prior: Vec<f32> = (1..=100)
            .map(|i| {
                let s = i as f32 / 100.0;
                s * (1.0 - s).powi(17)
            })
            .collect();
        let total: f32 = prior.iter().sum();
        prior.iter_mut().for_each(|p| *p /= total);
        Ok(Self {
            sample_rate: sr,
            tau_min,
            tau_max,
            width: ((tau_max as f32 * c.integration_periods.clamp(0.25, 4.0)).round() as usize)
                .max(tau_min + 1),
            alignment: c.window,
            diff: vec![0.0; tau_max + 2],
            cmnd: vec![1.0; tau_max + 2],
            threshold_prior: prior,
        })
    }

    /// Window length the analysis needs.
    fn window(&self) -> usize {
        self.width + self.tau_max + 2
    }

    fn analyse(&mut self, x: &[f32]) -> Candidates {
        let w = self.width;
        // Difference function d(tau) = sum_j (x_j - x_{j+tau})^2, over the window's first
        // samples or its last (`YinWindow`); the window holds `width + tau_max + 2`.
        let n = x.len();
        for tau in 1..self.diff.len() {
            let (a, b) = match self.alignment {
                YinWindow::Start => (&x[..w], &x[tau..tau + w]),
                YinWindow::End => (&x[n - w - tau..n - tau], &x[n - w..]),
            };
            self.diff[tau] = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum();
        }
        // Cumulative mean normalised difference.
        let mut running = 0.0f32;
        self.cmnd[0] = 1.0;
        for tau in 1..self.diff.len() {
            running += self.diff[tau];
            self.cmnd[tau] = if running > 0.0 {
                self.diff[tau] * tau as f32 / running
            } else {
                1.0
            };
        }
        // Local minima in range, in order of period, each refined by a parabola.
        let mut minima = [(0.0f32, 0.0f32); 64];
        let mut count = 0;
        let mut global = (f32::INFINITY, 0.0f32);
        for tau in self.tau_min.max(1)..=self.tau_max {
            let (a, b, c) = (self.cmnd[tau - 1], self.cmnd[tau], self.cmnd[tau + 1]);
            if b < a && b <= c && count < minima.len() {
                let denom = a - 2.0 * b + c;
                let shift = if denom > 1e-12 {
                    (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
                } else {
                    0.0
                };
                let value = b - 0.25 * (a - c) * shift;
                minima[count] = (tau as f32 + shift, value.max(0.0));
                if value < global.0 {
                    global = (value, tau as f32 + shift);
                }
                count += 1;
            }
        }
        let mut out = Candidates::default();
        if count == 0 {
            return out;
        }
        // pYIN: each threshold gives its prior to the first minimum below it; with none
        // below, the global minimum gets 1% of it.
        let mut probs = [0.0f32; 64];
        for (i, &prior) in self.threshold_prior.iter().enumerate() {
            let s = (i + 1) as f32 / 100.0;
            match minima[..count].iter().position(|m| m.1 < s) {
                Some(k) => probs[k] += prior,
                None => {
                    let k = minima[..count]
                        .iter()
                        .position(|m| m.0 == global.1)
                        .unwrap_or(0);
                    probs[k] += 0.01 * prior;
                }
            }
        }
        // Keep the most probable candidates.
        for _ in 0..MAX_CANDIDATES {
            let Some(k) = (0..count)
                .filter(|&k| probs[k] > 0.0)
                .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            else {
                break;
            };
            out.f0[out.n] = self.sample_rate / minima[k].0;
            out.prob[out.n] = probs[k];
            out.voiced_prob += probs[k];
            out.n += 1;
            probs[k] = 0.0;
        }
        out.voiced_prob = out.voiced_prob.min(1.0);
        out
    }
}

/// Streaming pitch tracker: YIN per frame, fixed-lag Viterbi across frames. Allocation
/// free after construction.
#[derive(Clone, Debug)]
pub struct PitchTracker {
    config: PitchConfig,
    framer: Framer,
    yin: YinAnalyser,
    /// Ring of the last `lag + 1` frames: candidates, Viterbi backpointers.
    ring: Vec<Candidates>,
    back: Vec<[u8; MAX_CANDIDATES + 1]>,
    score: [f32; MAX_CANDIDATES + 1],
    frames: usize,
    last_voiced_f0: f32,
}

impl PitchTracker {
    pub fn new(config: PitchConfig) -> Result<Self, FeatureError> {
        check_rate_and_hop(config.sample_rate, config.hop)?;
        let yin = YinAnalyser::new(&config)?;
        let window = yin.window().max(config.hop);
        Ok(Self {
            framer: Framer::new(window, config.hop),
            ring: vec![Candidates::default(); config.lag_frames + 1],
            back: vec![[0; MAX_CANDIDATES + 1]; config.lag_frames + 1],
            score: [0.0; MAX_CANDIDATES + 1],
            frames: 0,
            last_voiced_f0: 0.0,
            config,
            yin,
        })
    }

    /// Samples from a frame's centre until its estimate comes out.
    pub fn latency(&self) -> usize {
        self.framer.latency() + self.config.lag_frames * self.config.hop
    }

    pub fn config(&self) -> &PitchConfig {
        &self.config
    }

    /// How far, in samples, the middle of what YIN compares at a period of `f0_hz` lies
    /// before the frame's centre (negative: after it). With [`YinWindow::Start`] the
    /// difference function pairs `x[j]` with `x[j + tau]` over the first `width + tau`
    /// samples of the window, so the pitch it reports is that of slightly older sound;
    /// with [`YinWindow::End`] over the last, newer sound. A real-time host adds it to
    /// the latency.
    pub fn analysis_lead(&self, f0_hz: f32) -> isize {
        let tau = (self.config.sample_rate as f32 / f0_hz.max(1.0)).round() as usize;
        let window = self.yin.window().max(self.config.hop) as isize;
        let span = ((self.yin.width + tau.min(self.yin.tau_max)) / 2) as isize;
        match self.config.window {
            YinWindow::Start => window / 2 - span,
            YinWindow::End => span - (window - window / 2),
        }
    }

    pub fn reset(&mut self) {
        self.framer.reset();
        self.frames = 0;
        self.last_voiced_f0 = 0.0;
    }

    /// Pushes samples; calls `on_frame` with each decided frame, in order, `lag_frames`
    /// frames after it was analysed.
    pub fn push(&mut self, input: &[f32], mut on_frame: impl FnMut(PitchEstimate)) {
        let Self {
            framer,
            yin,
            ring,
            back,
            score,
            frames,
            last_voiced_f0,
            config,
        } = self;
        let lag = config.lag_frames;
        let slots = lag + 1;
        framer.push(input, |window| {
            let cand = yin.analyse(window);
            let t = *frames;
            let slot = t % slots;
            if t == 0 {
                for s in 0..=cand.n {
                    score[s] = cand.emission(s);
                }
            } else {
                let prev = ring[(t - 1) % slots];
                *score = viterbi_step(&prev, score, &cand, &mut back[slot]);
            }
            ring[slot] = cand;
            *frames += 1;
            if t >= lag {
                // Backtrack `lag` steps from the best state now.
                let mut state = (0..=cand.n)
                    .max_by(|&a, &b| score[a].total_cmp(&score[b]))
                    .unwrap_or(cand.n);
                for k in 0..lag {
                    state = back[(t - k) % slots][state] as usize;
                }
                let decided = ring[(t - lag) % slots];
                on_frame(estimate(&decided, state, last_voiced_f0));
            }
        });
    }
}

fn estimate(c: &Candidates, state: usize, last_voiced_f0: &mut f32) -> PitchEstimate {
    let voiced = state < c.n;
    let f0 = if voiced {
        c.f0[state]
    } else {
        c.best_f0().unwrap_or(*last_voiced_f0)
    };
    if voiced {
        *last_voiced_f0 = f0;
    }
    PitchEstimate {
        f0_hz: f0,
        confidence: c.voiced_prob,
        voiced,
    }
}

/// Offline pitch of a whole signal: `ceil(len / hop)` frames, frame `f` centred on sample
/// `f * hop`, the same YIN analysis as the streaming tracker, smoothed by a full Viterbi
/// pass over all frames.
pub fn track_pitch(
    signal: &[f32],
    config: PitchConfig,
) -> Result<Vec<PitchEstimate>, FeatureError> {
    check_rate_and_hop(config.sample_rate, config.hop)?;
    let mut yin = YinAnalyser::new(&config)?;
    let mut framer = Framer::new(yin.window().max(config.hop), config.hop);
    let frames = signal.len().div_ceil(config.hop);
    let mut cands = Vec::with_capacity(frames);
    framer.push(signal, |w| cands.push(yin.analyse(w)));
    let zeros = vec![0.0; config.hop];
    while cands.len() < frames {
        framer.push(&zeros, |w| cands.push(yin.analyse(w)));
    }
    cands.truncate(frames);
    if cands.is_empty() {
        return Ok(Vec::new());
    }
    let mut back = vec![[0u8; MAX_CANDIDATES + 1]; frames];
    let mut score = [f32::NEG_INFINITY; MAX_CANDIDATES + 1];
    for s in 0..=cands[0].n {
        score[s] = cands[0].emission(s);
    }
    for t in 1..frames {
        score = viterbi_step(&cands[t - 1], &score, &cands[t], &mut back[t]);
    }
    let last = &cands[frames - 1];
    let mut states = vec![0usize; frames];
    states[frames - 1] = (0..=last.n)
        .max_by(|&a, &b| score[a].total_cmp(&score[b]))
        .unwrap_or(last.n);
    for t in (1..frames).rev() {
        states[t - 1] = back[t][states[t]] as usize;
    }
    let mut held = 0.0;
    Ok(cands
        .iter()
        .zip(&states)
        .map(|(c, &s)| estimate(c, s, &mut held))
        .collect())
}
