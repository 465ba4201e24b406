//! Two-way merge of sorted slices, shared by the metrics sort (two sorted
//! halves read in order) and the stream aggregates (sorted cell and bin
//! lists merged batch by batch).

/// Iterator over the elements of two slices, each sorted by the caller's
/// order, in merged order. On a tie the left slice's element comes first
/// (the merge is stable).
pub struct MergeBy<'a, T, F> {
    left: &'a [T],
    right: &'a [T],
    /// True when the first argument must come strictly before the second.
    before: F,
}

/// Merges `left` and `right`, each sorted so that no element is `before`
/// an earlier one; `before(a, b)` is true when `a` must come strictly
/// before `b`.
pub fn merge_by<'a, T, F>(left: &'a [T], right: &'a [T], before: F) -> MergeBy<'a, T, F>
where
    F: Fn(&T, &T) -> bool,
{
    MergeBy {
        left,
        right,
        before,
    }
}

impl<'a, T, F: Fn(&T, &T) -> bool> Iterator for MergeBy<'a, T, F> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        let take_right = match (self.left.first(), self.right.first()) {
            (Some(a), Some(b)) => (self.before)(b, a),
            (None, Some(_)) => true,
            _ => false,
        };
        let run = if take_right {
            &mut self.right
        } else {
            &mut self.left
        };
        let (first, rest) = run.split_first()?;
        *run = rest;
        Some(first)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left.len() + self.right.len();
        (n, Some(n))
    }
}

impl<T, F: Fn(&T, &T) -> bool> ExactSizeIterator for MergeBy<'_, T, F> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_in_order_and_keeps_left_first_on_ties() {
        let left = [(1, 'a'), (3, 'a'), (3, 'b'), (7, 'a')];
        let right = [(0, 'r'), (3, 'r'), (8, 'r')];
        let merged: Vec<_> = merge_by(&left, &right, |x, y| x.0 < y.0).copied().collect();
        assert_eq!(
            merged,
            vec![
                (0, 'r'),
                (1, 'a'),
                (3, 'a'),
                (3, 'b'),
                (3, 'r'),
                (7, 'a'),
                (8, 'r')
            ]
        );
        assert_eq!(merge_by(&left, &[], |x, y| x.0 < y.0).len(), 4);
        assert_eq!(merge_by(&[], &right, |x, y| x.0 < y.0).count(), 3);
    }
}
