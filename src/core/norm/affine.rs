//! The optional learnable scale (`gamma`) and shift (`beta`) of a norm.

use ndarray::ArrayViewD;

use super::NormError;

/// Scale and shift applied after normalizing; absent means `gamma = 1`,
/// `beta = 0` (PyTorch's `affine=False`, or its initial values).
///
/// Batch, instance and group norm take one value per channel (shape `[C]`);
/// layer norm one per normalized element (shape = the normalized dims).
#[derive(Debug, Clone, Default)]
pub struct Affine<'a> {
    pub gamma: Option<ArrayViewD<'a, f64>>,
    pub beta: Option<ArrayViewD<'a, f64>>,
}

/// `gamma` and `beta` resolved to flat vectors of the expected length.
pub(super) struct Resolved {
    pub gamma: Vec<f64>,
    pub beta: Vec<f64>,
}

impl Affine<'_> {
    /// Checks both shapes against `expected` and flattens them (row-major),
    /// filling in 1 and 0 for an absent parameter.
    pub(super) fn resolve(&self, expected: &[usize]) -> Result<Resolved, NormError> {
        let len = expected.iter().product();
        Ok(Resolved {
            gamma: flatten("gamma", self.gamma.as_ref(), expected, len, 1.0)?,
            beta: flatten("beta", self.beta.as_ref(), expected, len, 0.0)?,
        })
    }
}

fn flatten(
    param: &'static str,
    value: Option<&ArrayViewD<'_, f64>>,
    expected: &[usize],
    len: usize,
    default: f64,
) -> Result<Vec<f64>, NormError> {
    match value {
        None => Ok(vec![default; len]),
        Some(a) if a.shape() == expected => Ok(a.iter().copied().collect()),
        Some(a) => Err(NormError::ParamShape {
            param,
            found: a.shape().to_vec(),
            expected: expected.to_vec(),
        }),
    }
}
