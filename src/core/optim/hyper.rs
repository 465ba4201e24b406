//! Unchecked hyperparameters, the range checks the optimizers share, and the
//! catalogue entry (name + default) each optimizer publishes.

use super::{OptimError, OptimizerKind};

/// Hyperparameters as a caller gives them; `None` means torch's default.
///
/// One struct serves every optimizer so a request can be parsed before the
/// optimizer is known; [`Hyperparameters::reject_unaccepted`] then refuses
/// the ones the chosen optimizer does not take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hyperparameters {
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub dampening: Option<f64>,
    pub nesterov: Option<bool>,
    pub weight_decay: Option<f64>,
    pub maximize: Option<bool>,
    pub lr_decay: Option<f64>,
    pub initial_accumulator_value: Option<f64>,
    pub eps: Option<f64>,
    pub alpha: Option<f64>,
    pub centered: Option<bool>,
    pub rho: Option<f64>,
    pub betas: Option<(f64, f64)>,
    pub amsgrad: Option<bool>,
}

impl Hyperparameters {
    /// Names of the hyperparameters that were given.
    pub fn given(&self) -> Vec<&'static str> {
        let present = [
            ("lr", self.lr.is_some()),
            ("momentum", self.momentum.is_some()),
            ("dampening", self.dampening.is_some()),
            ("nesterov", self.nesterov.is_some()),
            ("weight_decay", self.weight_decay.is_some()),
            ("maximize", self.maximize.is_some()),
            ("lr_decay", self.lr_decay.is_some()),
            (
                "initial_accumulator_value",
                self.initial_accumulator_value.is_some(),
            ),
            ("eps", self.eps.is_some()),
            ("alpha", self.alpha.is_some()),
            ("centered", self.centered.is_some()),
            ("rho", self.rho.is_some()),
            ("betas", self.betas.is_some()),
            ("amsgrad", self.amsgrad.is_some()),
        ];
        present
            .into_iter()
            .filter(|(_, given)| *given)
            .map(|(name, _)| name)
            .collect()
    }

    /// `UnknownHyperparameter` for the first given name `kind` does not take
    /// (e.g. `momentum` for Adam), so a misplaced setting never passes silently.
    pub fn reject_unaccepted(&self, kind: OptimizerKind) -> Result<(), OptimError> {
        let accepted: Vec<&'static str> = kind.hyperparameters().iter().map(|h| h.name).collect();
        match self.given().into_iter().find(|n| !accepted.contains(n)) {
            None => Ok(()),
            Some(name) => Err(OptimError::UnknownHyperparameter {
                name,
                optimizer: kind.name(),
                accepted: accepted.join(", "),
            }),
        }
    }
}

/// A default value in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HyperValue {
    Number(f64),
    Bool(bool),
    Pair(f64, f64),
}

/// One catalogue entry: a hyperparameter name, its default and what it does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyperparameter {
    pub name: &'static str,
    pub default: HyperValue,
    pub description: &'static str,
}

impl Hyperparameter {
    /// A numeric entry.
    pub fn number(name: &'static str, default: f64, description: &'static str) -> Self {
        Hyperparameter {
            name,
            default: HyperValue::Number(default),
            description,
        }
    }

    /// A boolean entry.
    pub fn flag(name: &'static str, default: bool, description: &'static str) -> Self {
        Hyperparameter {
            name,
            default: HyperValue::Bool(default),
            description,
        }
    }
}

fn invalid(name: &'static str, expected: &'static str, found: f64) -> OptimError {
    OptimError::InvalidHyperparameter {
        name,
        expected,
        found: found.to_string(),
    }
}

/// `value` if finite and > 0 (learning rates, eps: 0 would stall or divide 0 by 0).
pub(crate) fn positive(name: &'static str, value: f64) -> Result<f64, OptimError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(invalid(name, "a finite number > 0", value))
    }
}

/// `value` if finite and >= 0.
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<f64, OptimError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(invalid(name, "a finite number >= 0", value))
    }
}

/// `value` if finite (torch puts no range on SGD's dampening).
pub(crate) fn finite(name: &'static str, value: f64) -> Result<f64, OptimError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(invalid(name, "a finite number", value))
    }
}

/// `value` if in [0, 1] (decay rates of running averages).
pub(crate) fn unit_closed(name: &'static str, value: f64) -> Result<f64, OptimError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(name, "in [0, 1]", value))
    }
}

/// `value` if in [0, 1) (Adam's betas: 1 would make the bias correction 0/0).
pub(crate) fn unit_half_open(name: &'static str, value: f64) -> Result<f64, OptimError> {
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(name, "in [0, 1)", value))
    }
}
