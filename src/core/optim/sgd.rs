//! Stochastic gradient descent with momentum, dampening, Nesterov and weight
//! decay: `torch.optim.SGD` (`_single_tensor_sgd`).

use super::hyper::{finite, hyperparameter_set, non_negative, positive};
use super::{check_len, effective_grad, next_step, Buffer, OptimError};

hyperparameter_set! {
    /// SGD's hyperparameters, torch's defaults.
    pub struct Sgd {
        /// learning rate, > 0
        lr: f64 = 1e-3,
        /// momentum factor, >= 0
        momentum: f64 = 0.0,
        /// dampening of the momentum update
        dampening: f64 = 0.0,
        /// L2 penalty added to the gradient, >= 0
        weight_decay: f64 = 0.0,
        /// Nesterov momentum (needs momentum > 0, dampening 0)
        nesterov: bool = false,
        /// ascend instead of descend
        maximize: bool = false,
    }
}

/// SGD state: the step count (torch keeps none; counted here for the caller)
/// and the momentum buffer, absent until the first step with momentum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SgdState {
    pub step: u64,
    pub momentum_buffer: Option<Vec<f64>>,
}

impl SgdState {
    /// Buffers present, by torch name.
    pub fn buffers(&self) -> Vec<(Buffer, &[f64])> {
        self.momentum_buffer
            .as_deref()
            .map(|b| vec![(Buffer::MomentumBuffer, b)])
            .unwrap_or_default()
    }
}

impl Sgd {
    /// Checks the values: `lr` > 0; `momentum`, `weight_decay` >= 0;
    /// `dampening` finite; `nesterov` only with `momentum` > 0 and
    /// `dampening` = 0, as torch refuses otherwise.
    pub fn checked(self) -> Result<Self, OptimError> {
        let sgd = Sgd {
            lr: positive("lr", self.lr)?,
            momentum: non_negative("momentum", self.momentum)?,
            dampening: finite("dampening", self.dampening)?,
            weight_decay: non_negative("weight_decay", self.weight_decay)?,
            ..self
        };
        if sgd.nesterov && (sgd.momentum <= 0.0 || sgd.dampening != 0.0) {
            return Err(OptimError::InvalidHyperparameter {
                name: "nesterov",
                expected:
                    "used with momentum > 0 and dampening = 0 (torch refuses Nesterov otherwise)",
                found: format!("momentum {} and dampening {}", sgd.momentum, sgd.dampening),
            });
        }
        Ok(sgd)
    }

    /// One step, in torch's order:
    ///
    /// ```text
    /// g = ±grad + weight_decay * p
    /// if momentum != 0:
    ///     b = g                                   (first step: no dampening)
    ///     b = momentum * b + (1 - dampening) * g  (later steps)
    ///     g = g + momentum * b  if nesterov  else  b
    /// p = p - lr * g
    /// ```
    pub(crate) fn step(
        &self,
        params: &mut [f64],
        grads: &[f64],
        state: &mut SgdState,
    ) -> Result<(), OptimError> {
        let step = next_step(state.step)?;
        let mut g: Vec<f64> = params
            .iter()
            .zip(grads)
            .map(|(p, g)| effective_grad(*g, *p, self.weight_decay, self.maximize))
            .collect();
        if self.momentum != 0.0 {
            let buffer = match state.momentum_buffer.take() {
                None => g.clone(),
                Some(mut b) => {
                    check_len("state.momentum_buffer", b.len(), params.len())?;
                    for (b, g) in b.iter_mut().zip(&g) {
                        *b = *b * self.momentum + (1.0 - self.dampening) * g;
                    }
                    b
                }
            };
            for (g, b) in g.iter_mut().zip(&buffer) {
                *g = if self.nesterov {
                    *g + self.momentum * b
                } else {
                    *b
                };
            }
            state.momentum_buffer = Some(buffer);
        }
        for (p, g) in params.iter_mut().zip(&g) {
            *p += -self.lr * g;
        }
        state.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::optim::{HyperparameterSet, Hyperparameters};

    #[test]
    fn first_momentum_step_copies_the_gradient_without_dampening() {
        let sgd = Sgd {
            lr: 0.5,
            momentum: 0.5,
            dampening: 0.5,
            ..Sgd::default()
        };
        let mut params = vec![1.0, 2.0];
        let mut state = SgdState::default();
        sgd.step(&mut params, &[1.0, -2.0], &mut state).unwrap();
        assert_eq!(state.momentum_buffer, Some(vec![1.0, -2.0]));
        assert_eq!(params, vec![0.5, 3.0]);
        // Second step: b = 0.5 * b + (1 - 0.5) * g (values exact in binary).
        sgd.step(&mut params, &[1.0, 0.0], &mut state).unwrap();
        assert_eq!(state.momentum_buffer, Some(vec![1.0, -1.0]));
        assert_eq!(state.step, 2);
    }

    #[test]
    fn nesterov_without_momentum_or_with_dampening_is_refused() {
        for (momentum, dampening) in [(0.0, 0.0), (0.9, 0.1)] {
            let h = Hyperparameters {
                nesterov: Some(true),
                momentum: Some(momentum),
                dampening: Some(dampening),
                ..Hyperparameters::default()
            };
            let err = Sgd::from_given(&h).checked().unwrap_err();
            assert!(
                matches!(
                    err,
                    OptimError::InvalidHyperparameter {
                        name: "nesterov",
                        ..
                    }
                ),
                "{momentum} {dampening}: {err}"
            );
        }
    }
}
