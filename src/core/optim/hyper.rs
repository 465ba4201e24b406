//! Hyperparameters: the declaration every optimizer's struct is made from,
//! the union a caller gives before the optimizer is chosen, and the range
//! checks the optimizers share.
//!
//! Each optimizer's hyperparameters are one struct declared with
//! [`hyperparameter_set!`]: per field its doc comment (the description
//! `GET /optimizer` serves), its type and its torch default. From that one
//! declaration come the struct, its `Default`, its catalogue (names,
//! defaults, descriptions) and its filling from [`Hyperparameters`], which
//! also decides which names the optimizer takes; the optimizer's `checked`
//! method holds its range checks. Adding a hyperparameter to an optimizer is one field in its
//! struct (plus one line in [`with_every_hyperparameter!`] when no other
//! optimizer takes that name yet; the compiler points there).

use super::{OptimError, OptimizerKind};

/// A hyperparameter struct declared with [`hyperparameter_set!`].
pub trait HyperparameterSet: Default + Sized {
    /// The given values of `h`, torch's defaults for the rest (unchecked).
    fn from_given(h: &Hyperparameters) -> Self;

    /// Catalogue entries with this struct's values as defaults.
    fn entries(&self) -> Vec<Hyperparameter>;

    /// The catalogue: every hyperparameter with its torch default.
    fn catalogue() -> Vec<Hyperparameter> {
        Self::default().entries()
    }
}

/// Declares an optimizer's hyperparameter struct: per field its doc comment
/// (served as the description), its type and `= default`. See the module docs.
macro_rules! hyperparameter_set {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident: $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $crate::core::optim::hyper::HyperparameterSet for $name {
            fn from_given(h: &$crate::core::optim::hyper::Hyperparameters) -> Self {
                let default = <$name as Default>::default();
                $name { $( $field: h.$field.map(Into::into).unwrap_or(default.$field), )* }
            }

            fn entries(&self) -> Vec<$crate::core::optim::hyper::Hyperparameter> {
                vec![ $( $crate::core::optim::hyper::Hyperparameter {
                    name: stringify!($field),
                    default: self.$field.into(),
                    description: concat!($($doc),+).trim_ascii(),
                }, )* ]
            }
        }
    };
}

pub(crate) use hyperparameter_set;

/// Calls `$callback! { $args ; name: Wire => Held, ... }` with every
/// hyperparameter name any optimizer takes: the type a request gives it in
/// (`Wire`) and the type [`Hyperparameters`] holds (`Held`, `Wire: Into<Held>`).
/// The order is the order a request's "unknown field" error lists them.
/// This is the one list of names across optimizers; each optimizer's own
/// list is its struct.
macro_rules! with_every_hyperparameter {
    ($callback:ident ! { $($args:tt)* }) => {
        $callback! {
            $($args)* ;
            lr: f64 => f64,
            momentum: f64 => f64,
            dampening: f64 => f64,
            nesterov: bool => bool,
            weight_decay: f64 => f64,
            maximize: bool => bool,
            lr_decay: f64 => f64,
            initial_accumulator_value: f64 => f64,
            eps: f64 => f64,
            alpha: f64 => f64,
            centered: bool => bool,
            rho: f64 => f64,
            betas: [f64; 2] => (f64, f64),
            amsgrad: bool => bool,
        }
    };
}

pub(crate) use with_every_hyperparameter;

/// Declares [`Hyperparameters`] from [`with_every_hyperparameter!`]'s list.
macro_rules! declare_hyperparameters {
    ($(#[$meta:meta])* pub struct $name:ident ; $($field:ident: $wire:ty => $held:ty,)*) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( pub $field: Option<$held>, )*
        }

        impl $name {
            /// Every name, in the order of the declaration.
            pub const NAMES: &'static [&'static str] = &[ $( stringify!($field), )* ];

            /// Names of the hyperparameters that were given.
            pub fn given(&self) -> Vec<&'static str> {
                let mut given = Vec::new();
                $( if self.$field.is_some() { given.push(stringify!($field)); } )*
                given
            }
        }
    };
}

with_every_hyperparameter! {
    declare_hyperparameters! {
        /// Hyperparameters as a caller gives them; `None` means torch's default.
        ///
        /// One struct serves every optimizer so a request can be parsed before
        /// the optimizer's own checks run; [`Hyperparameters::reject_unaccepted`]
        /// then refuses the ones the chosen optimizer does not take.
        pub struct Hyperparameters
    }
}

impl Hyperparameters {
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

impl From<f64> for HyperValue {
    fn from(v: f64) -> Self {
        HyperValue::Number(v)
    }
}

impl From<bool> for HyperValue {
    fn from(v: bool) -> Self {
        HyperValue::Bool(v)
    }
}

impl From<[f64; 2]> for HyperValue {
    fn from([a, b]: [f64; 2]) -> Self {
        HyperValue::Pair(a, b)
    }
}

/// One catalogue entry: a hyperparameter name, its default and what it does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyperparameter {
    pub name: &'static str,
    pub default: HyperValue,
    pub description: &'static str,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_union_holds_exactly_the_names_some_optimizer_takes() {
        let mut taken: Vec<&str> = OptimizerKind::ALL
            .iter()
            .flat_map(|kind| kind.hyperparameters())
            .map(|h| h.name)
            .collect();
        taken.sort_unstable();
        taken.dedup();
        let mut union = Hyperparameters::NAMES.to_vec();
        union.sort_unstable();
        assert_eq!(union, taken);
    }

    #[test]
    fn the_catalogue_comes_from_the_declaration() {
        let adamw = OptimizerKind::AdamW.hyperparameters();
        let names: Vec<&str> = adamw.iter().map(|h| h.name).collect();
        assert_eq!(
            names,
            ["lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"]
        );
        assert_eq!(adamw[1].default, HyperValue::Pair(0.9, 0.999));
        assert_eq!(adamw[3].default, HyperValue::Number(0.01));
        assert_eq!(adamw[0].description, "learning rate, > 0");
    }

    #[test]
    fn given_values_replace_defaults_and_the_rest_stay() {
        let h = Hyperparameters {
            lr: Some(0.5),
            betas: Some((0.1, 0.2)),
            ..Hyperparameters::default()
        };
        let adam = super::super::Adam::from_given(&h);
        assert_eq!((adam.lr, adam.betas, adam.eps), (0.5, [0.1, 0.2], 1e-8));
        assert_eq!(h.given(), ["lr", "betas"]);
    }
}
