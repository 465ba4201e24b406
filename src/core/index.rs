//! The `[i][j]` form in which every error names an element of an array.
//!
//! One formatter for the tensor parser, the losses, the activations and the
//! optimizers, so an error about `predictions` and one about `state.exp_avg`
//! point at their elements the same way.

/// `[i][j]...` for a multi-index; `[] (the scalar)` for the only element of
/// a 0-d array, whose index is empty.
pub fn format_index(index: &[usize]) -> String {
    if index.is_empty() {
        return "[] (the scalar)".to_owned();
    }
    index.iter().map(|i| format!("[{i}]")).collect()
}

/// The `[i][j]` position of the row-major flat index `flat` in an array of
/// `shape` (see [`format_index`]).
pub fn position(flat: usize, shape: &[usize]) -> String {
    let mut index = vec![0usize; shape.len()];
    let mut rest = flat;
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = rest % dim;
            rest /= dim;
        }
    }
    format_index(&index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_row_major_multi_indices() {
        assert_eq!(position(5, &[2, 3]), "[1][2]");
        assert_eq!(position(4, &[2, 3]), "[1][1]");
        assert_eq!(position(3, &[5]), "[3]");
        assert_eq!(position(0, &[4]), "[0]");
        assert_eq!(position(0, &[]), "[] (the scalar)");
        assert_eq!(format_index(&[1, 0]), "[1][0]");
    }
}
