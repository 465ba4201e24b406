//! The catalogue of losses: canonical names, aliases, parameters with their
//! defaults, and a one-line formula. The HTTP layer serves it at `GET /loss`
//! and uses it to resolve names and reject parameters a loss does not take.

use super::cross_entropy::DEFAULT_IGNORE_INDEX;
use super::focal::{DEFAULT_ALPHA, DEFAULT_GAMMA};
use super::overlap::DEFAULT_SMOOTH;
use super::regression::{DEFAULT_BETA, DEFAULT_DELTA};

/// Which loss a name resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    Bce,
    CrossEntropy,
    L1,
    SmoothL1,
    Huber,
    Mse,
    Focal,
    Dice,
    Iou,
}

/// A parameter's default value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamDefault {
    /// Absent unless given (e.g. weights).
    Absent,
    Number(f64),
    Integer(i64),
    Bool(bool),
}

/// One parameter of a loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    /// JSON type: "number", "integer", "boolean" or "nested array".
    pub kind: &'static str,
    pub default: ParamDefault,
    pub description: &'static str,
}

/// One loss in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSpec {
    pub kind: LossKind,
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub params: &'static [ParamSpec],
    pub formula: &'static str,
}

impl LossSpec {
    /// The parameter called `name`, if this loss takes one.
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

const fn param(
    name: &'static str,
    kind: &'static str,
    default: ParamDefault,
    description: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        default,
        description,
    }
}

const FROM_LOGITS_FALSE: ParamSpec = param(
    "from_logits",
    "boolean",
    ParamDefault::Bool(false),
    "predictions are logits; the sigmoid is applied first",
);

/// Every loss, in catalogue order.
pub const LOSSES: [LossSpec; 9] = [
    LossSpec {
        kind: LossKind::Bce,
        name: "bce",
        aliases: &[],
        params: &[
            param("weights", "nested array", ParamDefault::Absent, "per-element weights >= 0, broadcast to the predictions"),
            FROM_LOGITS_FALSE,
            param("pos_weight", "nested array", ParamDefault::Absent, "weight >= 0 of the positive term, broadcast to the predictions (needs from_logits)"),
        ],
        formula: "l = -w (y max(ln p, -100) + (1 - y) max(ln(1 - p), -100)); from_logits: l = w ((1 - y) x + (1 + (pos_weight - 1) y) softplus(-x))",
    },
    LossSpec {
        kind: LossKind::CrossEntropy,
        name: "cross_entropy",
        aliases: &["ce"],
        params: &[
            param("class_weights", "nested array", ParamDefault::Absent, "one weight >= 0 per class; mean divides by the summed weight of the targets"),
            param("label_smoothing", "number", ParamDefault::Number(0.0), "in [0, 1]: targets become (1 - e) target + e / C"),
            param("ignore_index", "integer", ParamDefault::Integer(DEFAULT_IGNORE_INDEX), "class-index targets equal to it contribute nothing (class indices only)"),
            param("from_probabilities", "boolean", ParamDefault::Bool(false), "predictions are probabilities; max(ln p, -100) replaces log_softmax"),
        ],
        formula: "l = -sum_c w_c q_c log_softmax(x)_c, q = one-hot(y) or the target row, smoothed: (1 - e) q + e / C",
    },
    LossSpec {
        kind: LossKind::L1,
        name: "l1",
        aliases: &["mae"],
        params: &[],
        formula: "l = |p - y|",
    },
    LossSpec {
        kind: LossKind::SmoothL1,
        name: "smooth_l1",
        aliases: &[],
        params: &[param("beta", "number", ParamDefault::Number(DEFAULT_BETA), "threshold >= 0 (0 = l1)")],
        formula: "d = p - y; l = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta",
    },
    LossSpec {
        kind: LossKind::Huber,
        name: "huber",
        aliases: &[],
        params: &[param("delta", "number", ParamDefault::Number(DEFAULT_DELTA), "threshold > 0")],
        formula: "d = p - y; l = 0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta)",
    },
    LossSpec {
        kind: LossKind::Mse,
        name: "mse",
        aliases: &["l2"],
        params: &[],
        formula: "l = (p - y)^2",
    },
    LossSpec {
        kind: LossKind::Focal,
        name: "focal",
        aliases: &[],
        params: &[
            param("alpha", "number", ParamDefault::Number(DEFAULT_ALPHA), "weight of the positive class, <= 1; negative = off"),
            param("gamma", "number", ParamDefault::Number(DEFAULT_GAMMA), "focusing exponent >= 0"),
            param("from_logits", "boolean", ParamDefault::Bool(true), "predictions are logits (torchvision); false = probabilities"),
        ],
        formula: "p_t = p y + (1 - p)(1 - y); l = a_t bce(p, y) (1 - p_t)^gamma, a_t = alpha y + (1 - alpha)(1 - y)",
    },
    LossSpec {
        kind: LossKind::Dice,
        name: "dice",
        aliases: &[],
        params: &[
            param("smooth", "number", ParamDefault::Number(DEFAULT_SMOOTH), "added to numerator and denominator, >= 0"),
            param("squared", "boolean", ParamDefault::Bool(false), "denominator sums p^2 and y^2"),
            FROM_LOGITS_FALSE,
        ],
        formula: "per sample: l = 1 - (2 sum(p y) + smooth) / (sum p + sum y + smooth)",
    },
    LossSpec {
        kind: LossKind::Iou,
        name: "iou",
        aliases: &["jaccard"],
        params: &[
            param("smooth", "number", ParamDefault::Number(DEFAULT_SMOOTH), "added to numerator and denominator, >= 0"),
            FROM_LOGITS_FALSE,
        ],
        formula: "per sample: l = 1 - (sum(p y) + smooth) / (sum p + sum y - sum(p y) + smooth)",
    },
];

/// The loss called `name` (canonical name or alias).
pub fn lookup(name: &str) -> Option<&'static LossSpec> {
    LOSSES
        .iter()
        .find(|spec| spec.name == name || spec.aliases.contains(&name))
}

/// Every accepted name: canonical names and aliases, in catalogue order.
pub fn all_names() -> Vec<&'static str> {
    LOSSES
        .iter()
        .flat_map(|spec| std::iter::once(spec.name).chain(spec.aliases.iter().copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_their_loss() {
        assert_eq!(lookup("ce").map(|s| s.kind), Some(LossKind::CrossEntropy));
        assert_eq!(lookup("jaccard").map(|s| s.kind), Some(LossKind::Iou));
        assert_eq!(lookup("l2").map(|s| s.kind), Some(LossKind::Mse));
        assert_eq!(lookup("mae").map(|s| s.kind), Some(LossKind::L1));
        assert!(lookup("hinge").is_none());
    }

    #[test]
    fn names_are_unique() {
        let names = all_names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(names.len(), 13);
    }
}
