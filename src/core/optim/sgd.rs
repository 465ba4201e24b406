//! Stochastic gradient descent with momentum, dampening, Nesterov and weight
//! decay: `torch.optim.SGD` (`_single_tensor_sgd`).

use super::hyper::{finite, non_negative, positive, Hyperparameter};
use super::{check_len, effective_grad, next_step, Hyperparameters, OptimError};

/// Checked SGD hyperparameters (torch's defaults in [`Default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
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
    pub fn buffers(&self) -> Vec<(&'static str, &[f64])> {
        self.momentum_buffer
            .as_deref()
            .map(|b| vec![("momentum_buffer", b)])
            .unwrap_or_default()
    }
}

impl Sgd {
    /// Checks `h`: `lr` > 0; `momentum`, `weight_decay` >= 0; `dampening`
    /// finite; `nesterov` only with `momentum` > 0 and `dampening` = 0, as
    /// torch refuses otherwise.
    pub fn from_hyperparameters(h: &Hyperparameters) -> Result<Self, OptimError> {
        let d = Sgd::default();
        let sgd = Sgd {
            lr: positive("lr", h.lr.unwrap_or(d.lr))?,
            momentum: non_negative("momentum", h.momentum.unwrap_or(d.momentum))?,
            dampening: finite("dampening", h.dampening.unwrap_or(d.dampening))?,
            weight_decay: non_negative("weight_decay", h.weight_decay.unwrap_or(d.weight_decay))?,
            nesterov: h.nesterov.unwrap_or(d.nesterov),
            maximize: h.maximize.unwrap_or(d.maximize),
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

    /// Catalogue entries with these values as defaults.
    pub fn hyperparameters(&self) -> Vec<Hyperparameter> {
        vec![
            Hyperparameter::number("lr", self.lr, "learning rate, > 0"),
            Hyperparameter::number("momentum", self.momentum, "momentum factor, >= 0"),
            Hyperparameter::number(
                "dampening",
                self.dampening,
                "dampening of the momentum update",
            ),
            Hyperparameter::number(
                "weight_decay",
                self.weight_decay,
                "L2 penalty added to the gradient, >= 0",
            ),
            Hyperparameter::flag(
                "nesterov",
                self.nesterov,
                "Nesterov momentum (needs momentum > 0, dampening 0)",
            ),
            Hyperparameter::flag("maximize", self.maximize, "ascend instead of descend"),
        ]
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
            let err = Sgd::from_hyperparameters(&h).unwrap_err();
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
