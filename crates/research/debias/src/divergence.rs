//! Distances between two next-token distributions over the same vocabulary, the local
//! bias of a counterfactual context pair.

/// KL(p || q) in nats. Terms with p = 0 contribute nothing; q is floored at 1e-12 so a
/// zero where p is positive gives a large finite value rather than infinity.
pub fn kl(p: &[f64], q: &[f64]) -> f64 {
    assert_eq!(
        p.len(),
        q.len(),
        "distributions over different vocabularies"
    );
    p.iter()
        .zip(q)
        .filter(|(p, _)| **p > 0.0)
        .map(|(p, q)| p * (p / q.max(1e-12)).ln())
        .sum()
}

/// Hellinger distance sqrt(1 - sum sqrt(p q)), in [0, 1].
pub fn hellinger(p: &[f64], q: &[f64]) -> f64 {
    assert_eq!(
        p.len(),
        q.len(),
        "distributions over different vocabularies"
    );
    let bc: f64 = p.iter().zip(q).map(|(p, q)| (p * q).sqrt()).sum();
    (1.0 - bc).max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_hand_computed_values() {
        let p = [0.5, 0.5, 0.0];
        let q = [0.25, 0.25, 0.5];
        // KL = 0.5 ln 2 + 0.5 ln 2 = ln 2.
        assert!((kl(&p, &q) - 2f64.ln()).abs() < 1e-12);
        // sum sqrt(pq) = 2 sqrt(0.125) = 0.7071...; H = sqrt(1 - 1/sqrt 2).
        let h = (1.0 - 1.0 / 2f64.sqrt()).sqrt();
        assert!((hellinger(&p, &q) - h).abs() < 1e-12);
        assert_eq!(kl(&p, &p), 0.0);
        assert_eq!(hellinger(&q, &q), 0.0);
        // Disjoint supports: Hellinger is 1.
        assert!((hellinger(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    }
}
