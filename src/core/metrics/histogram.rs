//! Score histograms by class: the data of a "score distribution" chart.

use super::table::ScoreTable;

/// Equal-width bins over `[lo, hi]` with the positive and negative weight
/// that falls in each (the last bin includes `hi`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreHistogram {
    /// `bins + 1` increasing edges.
    pub edges: Vec<f64>,
    pub pos: Vec<f64>,
    pub neg: Vec<f64>,
}

/// The histogram of `table`'s scores in `bins` equal-width bins (at least 1)
/// from the lowest to the highest score. All scores equal (or no score) get
/// the unit interval around the score (or `[0, 1]`). Edges and bin indices
/// are computed from halves of the scores, so a span as wide as
/// `[-f64::MAX, f64::MAX]` does not overflow. `O(distinct scores)`.
pub fn score_histogram(table: &ScoreTable, bins: usize) -> ScoreHistogram {
    let bins = bins.max(1);
    let scores = table.scores();
    let (lo, hi) = match (scores.last(), scores.first()) {
        (Some(&lo), Some(&hi)) if lo < hi => (lo, hi),
        (Some(&s), _) => (s - 0.5, s + 0.5),
        _ => (0.0, 1.0),
    };
    let (half_lo, half_span) = (lo / 2.0, hi / 2.0 - lo / 2.0);
    let edges = (0..=bins)
        .map(|i| {
            let t = i as f64 / bins as f64;
            lo * (1.0 - t) + hi * t
        })
        .collect();
    let mut histogram = ScoreHistogram {
        edges,
        pos: vec![0.0; bins],
        neg: vec![0.0; bins],
    };
    for (score, pos, neg) in table.iter() {
        let at = ((score / 2.0 - half_lo) / half_span * bins as f64).floor();
        // `as` saturates (NaN -> 0); the top score lands in the last bin.
        let bin = (at.max(0.0) as usize).min(bins - 1);
        histogram.pos[bin] += pos;
        histogram.neg[bin] += neg;
    }
    histogram
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_land_in_their_bins_and_sum_to_the_totals() {
        let table = ScoreTable::from_records(
            &[0.0, 0.1, 0.5, 0.55, 1.0, 1.0],
            &[false, false, true, false, true, true],
            None,
        )
        .unwrap();
        let h = score_histogram(&table, 4);
        assert_eq!(h.edges, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(h.neg, vec![2.0, 0.0, 1.0, 0.0]);
        assert_eq!(h.pos, vec![0.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn extreme_and_degenerate_spans_stay_finite() {
        let wide = ScoreTable::from_records(&[-f64::MAX, f64::MAX], &[false, true], None).unwrap();
        let h = score_histogram(&wide, 10);
        assert!(h.edges.iter().all(|e| e.is_finite()));
        assert_eq!((h.neg[0], h.pos[9]), (1.0, 1.0));
        let one = ScoreTable::from_records(&[3.0, 3.0], &[false, true], None).unwrap();
        let h = score_histogram(&one, 2);
        assert_eq!(h.edges, vec![2.5, 3.0, 3.5]);
        assert_eq!(h.pos.iter().sum::<f64>() + h.neg.iter().sum::<f64>(), 2.0);
        assert_eq!(score_histogram(&ScoreTable::default(), 3).edges.len(), 4);
    }
}
