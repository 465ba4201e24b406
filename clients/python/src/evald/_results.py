"""Typed views of the server's answers.

Each result keeps the JSON object it was made from: declared properties give typed access to the
fields this client knows, any other field (one a newer server added) is still an attribute, and
``to_dict()`` returns the object as sent. Curves and nested arrays come back as NumPy arrays when
NumPy is installed, else as lists.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, cast

from ._optional import optional, required

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

FloatArray = Union["npt.NDArray[np.float64]", list[float]]
"""A 1-d array of floats: a NumPy array when NumPy is installed, else a list."""


def float_array(values: list[Any], none: float = math.nan) -> FloatArray:
    """A float array of a JSON list; ``null`` becomes ``none`` (``+inf`` for a ROC threshold)."""
    plain = [none if v is None else float(v) for v in values]
    np = optional("numpy")
    return np.asarray(plain, dtype=np.float64) if np is not None else plain


def nd_array(value: Any) -> Any:
    """A nested JSON array as a float NumPy array when NumPy is installed; numbers stay numbers."""
    np = optional("numpy")
    if np is None or not isinstance(value, list):
        return value
    return np.asarray(value, dtype=np.float64)


class Result:
    """A JSON object from the server with attribute access."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_data", dict(data))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never look up internals (copy and pickle probe them)
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._data})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and type(other) is type(self) and self._data == other._data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        scalars = ", ".join(
            f"{k}={v!r}" for k, v in self._data.items() if isinstance(v, (int, float, str))
        )
        return f"{type(self).__name__}({scalars})"

    def keys(self) -> list[str]:
        """The names of the fields the server sent."""
        return list(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """A field, or ``default`` when the server did not send it."""
        return self._data.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the JSON object as the server sent it."""
        return copy.deepcopy(self._data)

    def _optional_float(self, key: str) -> float | None:
        value = self._data.get(key)
        return None if value is None else float(value)


@dataclass(frozen=True)
class Confusion:
    """Confusion counts at the decision threshold (summed weights when weighted)."""

    tp: float
    fp: float
    tn: float
    fn: float


class Interval(Result):
    """A value with its standard error and interval (``gauc``, ``auc_ci``, ``auc_diff``, ...)."""

    @property
    def value(self) -> float | None:
        return self._optional_float("value")

    @property
    def std_error(self) -> float | None:
        return self._optional_float("std_error")

    @property
    def lower(self) -> float | None:
        return self._optional_float("lower")

    @property
    def upper(self) -> float | None:
        return self._optional_float("upper")

    @property
    def p_value(self) -> float | None:
        return self._optional_float("p_value")

    @property
    def z(self) -> float | None:
        """The test statistic of a difference (Student's t for ``delong-unpaired``)."""
        return self._optional_float("z")

    @property
    def df(self) -> float | None:
        """Welch-Satterthwaite degrees of freedom (``delong-unpaired`` only)."""
        return self._optional_float("df")

    @property
    def level(self) -> float | None:
        """The interval's confidence level (``auc_ci``)."""
        return self._optional_float("level")

    @property
    def method(self) -> str | None:
        """How it was computed: ``delong`` (``auc_ci``), ``delong-paired``, ``user-paired``, ..."""
        method = self._data.get("method")
        return None if method is None else str(method)


@dataclass(frozen=True)
class RocCurve:
    """The ROC curve laid out as ``sklearn.metrics.roc_curve``: unpacks to fpr, tpr, thresholds.

    The first threshold, ``null`` on the wire, is ``+inf`` here (scikit-learn's value).
    """

    fpr: FloatArray
    tpr: FloatArray
    thresholds: FloatArray
    points_dropped: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RocCurve:
        return cls(
            fpr=float_array(data["fpr"]),
            tpr=float_array(data["tpr"]),
            thresholds=float_array(data["thresholds"], none=math.inf),
            points_dropped=int(data.get("points_dropped", 0)),
        )

    def __iter__(self) -> Iterator[FloatArray]:
        return iter((self.fpr, self.tpr, self.thresholds))

    def to_frame(self) -> pd.DataFrame:
        """Columns ``fpr``, ``tpr``, ``threshold``, one row per point."""
        pandas = required("pandas", "to_frame", "pandas")
        frame = pandas.DataFrame({"fpr": self.fpr, "tpr": self.tpr, "threshold": self.thresholds})
        return cast("pd.DataFrame", frame)


@dataclass(frozen=True)
class PrCurve:
    """The precision-recall curve as ``precision_recall_curve``; unpacks to
    (precision, recall, thresholds), thresholds one shorter."""

    precision: FloatArray
    recall: FloatArray
    thresholds: FloatArray
    points_dropped: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PrCurve:
        return cls(
            precision=float_array(data["precision"]),
            recall=float_array(data["recall"]),
            thresholds=float_array(data["thresholds"]),
            points_dropped=int(data.get("points_dropped", 0)),
        )

    def __iter__(self) -> Iterator[FloatArray]:
        return iter((self.precision, self.recall, self.thresholds))

    def to_frame(self) -> pd.DataFrame:
        """Columns ``precision``, ``recall``, ``threshold`` (NaN on the last row, as the
        curve's end point (recall 0, precision 1) has no threshold)."""
        pandas = required("pandas", "to_frame", "pandas")
        thresholds = [*list(self.thresholds), math.nan]
        frame = pandas.DataFrame(
            {"precision": self.precision, "recall": self.recall, "threshold": thresholds}
        )
        return cast("pd.DataFrame", frame)


@dataclass(frozen=True)
class CalibrationCurve:
    """The ``calibration`` field, laid out as ``sklearn.calibration.calibration_curve``: unpacks
    to (prob_true, prob_pred), one entry per non-empty bin; ``counts`` the records (summed
    weight) per bin, ``ece`` and ``mce`` the expected and maximum calibration error."""

    prob_true: FloatArray
    prob_pred: FloatArray
    counts: FloatArray
    ece: float | None
    mce: float | None
    strategy: str
    n_bins: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CalibrationCurve:
        return cls(
            prob_true=float_array(data["prob_true"]),
            prob_pred=float_array(data["prob_pred"]),
            counts=float_array(data["counts"]),
            ece=_optional_float(data.get("ece")),
            mce=_optional_float(data.get("mce")),
            strategy=str(data["strategy"]),
            n_bins=int(data["n_bins"]),
        )

    def __iter__(self) -> Iterator[FloatArray]:
        return iter((self.prob_true, self.prob_pred))

    def to_frame(self) -> pd.DataFrame:
        """Columns ``prob_true``, ``prob_pred``, ``count``, one row per non-empty bin."""
        pandas = required("pandas", "to_frame", "pandas")
        frame = pandas.DataFrame(
            {"prob_true": self.prob_true, "prob_pred": self.prob_pred, "count": self.counts}
        )
        return cast("pd.DataFrame", frame)


@dataclass(frozen=True)
class ThresholdRow:
    """One row of ``at_thresholds``: the confusion counts and rates at ``threshold``."""

    threshold: float
    tp: float
    fp: float
    tn: float
    fn: float
    precision: float | None
    recall: float | None
    f_beta: float | None
    fpr: float | None
    specificity: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ThresholdRow:
        return cls(
            threshold=float(data["threshold"]),
            tp=data["tp"],
            fp=data["fp"],
            tn=data["tn"],
            fn=data["fn"],
            precision=_optional_float(data.get("precision")),
            recall=_optional_float(data.get("recall")),
            f_beta=_optional_float(data.get("f_beta")),
            fpr=_optional_float(data.get("fpr")),
            specificity=_optional_float(data.get("specificity")),
        )


@dataclass(frozen=True)
class BestValue:
    """A maximum over every distinct score used as a threshold, and that threshold."""

    threshold: float
    value: float


@dataclass(frozen=True)
class BestThreshold:
    """The ``best_threshold`` field: the thresholds maximizing F-beta and Youden's J
    (TPR - FPR); ``None`` where undefined."""

    f_beta: BestValue | None
    youden_j: BestValue | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BestThreshold:
        return cls(f_beta=_best(data.get("f_beta")), youden_j=_best(data.get("youden_j")))


def _best(data: Any) -> BestValue | None:
    if data is None:
        return None
    return BestValue(threshold=float(data["threshold"]), value=float(data["value"]))


@dataclass(frozen=True)
class TprAtFpr:
    """One entry of ``tpr_at_fpr``: the largest TPR among the exact ROC points with FPR <=
    ``fpr``, and the threshold of the first point reaching it (``None`` for (0, 0))."""

    fpr: float
    tpr: float
    threshold: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TprAtFpr:
        return cls(
            fpr=float(data["fpr"]),
            tpr=float(data["tpr"]),
            threshold=_optional_float(data.get("threshold")),
        )


@dataclass(frozen=True)
class Ranking:
    """The ``ranking`` field (asked with ``ranking={"k": [...]}`` and ``user_ids``): per-user
    ranking metrics averaged over the users with a positive, each keyed by the cutoff k."""

    k: list[int]
    hit_rate: dict[int, float | None]
    precision: dict[int, float | None]
    recall: dict[int, float | None]
    ndcg: dict[int, float | None]
    map: dict[int, float | None]
    mrr: float | None
    users: int
    users_skipped: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ranking:
        return cls(
            k=[int(k) for k in data["k"]],
            hit_rate=_by_k(data["hit_rate"]),
            precision=_by_k(data["precision"]),
            recall=_by_k(data["recall"]),
            ndcg=_by_k(data["ndcg"]),
            map=_by_k(data["map"]),
            mrr=_optional_float(data.get("mrr")),
            users=int(data["users"]),
            users_skipped=int(data["users_skipped"]),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per k, columns ``hit_rate``, ``precision``, ``recall``, ``ndcg``, ``map``."""
        pandas = required("pandas", "to_frame", "pandas")
        columns = ("hit_rate", "precision", "recall", "ndcg", "map")
        frame = pandas.DataFrame(
            {c: [getattr(self, c).get(k) for k in self.k] for c in columns}, index=self.k
        )
        frame.index.name = "k"
        return cast("pd.DataFrame", frame)


def _by_k(data: Mapping[str, Any]) -> dict[int, float | None]:
    """A JSON object keyed by k (strings on the wire) keyed by int."""
    return {int(k): _optional_float(v) for k, v in data.items()}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


class MetricsResult(Result):
    """The answer of ``POST /metrics`` (and of a stream's or a user's metrics)."""

    @property
    def task(self) -> str:
        return str(self._data["task"])

    @property
    def count(self) -> int:
        return int(self._data["count"])

    @property
    def positives(self) -> int | None:
        return _optional_int(self._data.get("positives"))

    @property
    def negatives(self) -> int | None:
        return _optional_int(self._data.get("negatives"))

    @property
    def threshold(self) -> float | None:
        return self._optional_float("threshold")

    @property
    def beta(self) -> float | None:
        return self._optional_float("beta")

    @property
    def accuracy(self) -> float | None:
        return self._optional_float("accuracy")

    @property
    def precision(self) -> float | None:
        return self._optional_float("precision")

    @property
    def recall(self) -> float | None:
        return self._optional_float("recall")

    @property
    def f1(self) -> float | None:
        return self._optional_float("f1")

    @property
    def f_beta(self) -> float | None:
        return self._optional_float("f_beta")

    @property
    def auc(self) -> float | None:
        return self._optional_float("auc")

    @property
    def log_loss(self) -> float | None:
        return self._optional_float("log_loss")

    @property
    def warnings(self) -> list[str]:
        return list(self._data.get("warnings", []))

    @property
    def confusion(self) -> Confusion | None:
        """Binary confusion counts; ``None`` for a multiclass answer."""
        c = self._data.get("confusion")
        return None if c is None else Confusion(c["tp"], c["fp"], c["tn"], c["fn"])

    @property
    def confusion_matrix(self) -> Any:
        """Multiclass C x C matrix, rows = true class (a NumPy array when NumPy is installed)."""
        return nd_array(self._data.get("confusion_matrix"))

    @property
    def top_k_accuracy(self) -> dict[int, float | None]:
        """Multiclass top-k accuracy keyed by k (the wire keys are strings)."""
        return {int(k): v for k, v in (self._data.get("top_k_accuracy") or {}).items()}

    @property
    def gauc(self) -> Interval | None:
        g = self._data.get("gauc")
        return None if g is None else Interval(g)

    @property
    def roc(self) -> RocCurve | None:
        r = self._data.get("roc")
        return None if r is None else RocCurve.from_json(r)

    @property
    def pr(self) -> PrCurve | None:
        """The ``pr_curve`` field."""
        p = self._data.get("pr_curve")
        return None if p is None else PrCurve.from_json(p)

    @property
    def auc_ci(self) -> Interval | None:
        """DeLong's interval of ``auc`` (``lower``, ``upper``, ``std_error``, ``level``)."""
        ci = self._data.get("auc_ci")
        return None if ci is None else Interval(ci)

    @property
    def average_precision(self) -> float | None:
        return self._optional_float("average_precision")

    @property
    def brier_score(self) -> float | None:
        return self._optional_float("brier_score")

    @property
    def mcc(self) -> float | None:
        """Matthews correlation coefficient at ``threshold``."""
        return self._optional_float("mcc")

    @property
    def balanced_accuracy(self) -> float | None:
        return self._optional_float("balanced_accuracy")

    @property
    def specificity(self) -> float | None:
        return self._optional_float("specificity")

    @property
    def npv(self) -> float | None:
        """Negative predictive value, tn / (tn + fn)."""
        return self._optional_float("npv")

    @property
    def cohen_kappa(self) -> float | None:
        return self._optional_float("cohen_kappa")

    @property
    def calibration(self) -> CalibrationCurve | None:
        c = self._data.get("calibration")
        return None if c is None else CalibrationCurve.from_json(c)

    @property
    def calibration_ratio(self) -> float | None:
        """Sum of predictions over sum of labels (1 = calibrated on average)."""
        return self._optional_float("calibration_ratio")

    @property
    def normalized_entropy(self) -> float | None:
        return self._optional_float("normalized_entropy")

    @property
    def best_threshold(self) -> BestThreshold | None:
        b = self._data.get("best_threshold")
        return None if b is None else BestThreshold.from_json(b)

    @property
    def at_thresholds(self) -> list[ThresholdRow] | None:
        """One row per threshold asked with ``thresholds=[...]``, in that order."""
        rows = self._data.get("at_thresholds")
        return None if rows is None else [ThresholdRow.from_json(r) for r in rows]

    @property
    def tpr_at_fpr(self) -> list[TprAtFpr] | None:
        """One entry per FPR asked with ``tpr_at_fpr=[...]``."""
        rows = self._data.get("tpr_at_fpr")
        return None if rows is None else [TprAtFpr.from_json(r) for r in rows]

    @property
    def partial_auc(self) -> float | None:
        """``roc_auc_score(max_fpr=...)`` (McClish-standardized), when ``max_fpr`` was given."""
        return self._optional_float("partial_auc")

    @property
    def ranking(self) -> Ranking | None:
        r = self._data.get("ranking")
        return None if r is None else Ranking.from_json(r)

    @property
    def auc_error_bound(self) -> float | None:
        """Stream metrics: certified bound on |auc - exact auc| (0 while exact)."""
        return self._optional_float("auc_error_bound")

    @property
    def confusion_error_bound(self) -> float | None:
        """Stream metrics: certified bound on each confusion count's error."""
        return self._optional_float("confusion_error_bound")

    @property
    def gauc_error_bound(self) -> float | None:
        """Stream metrics: certified bound on |gauc - exact gauc| (``None`` without users)."""
        return self._optional_float("gauc_error_bound")

    @property
    def user_id(self) -> str | None:
        """The user's id, for a user's metrics."""
        user = self._data.get("user_id")
        return None if user is None else str(user)

    @property
    def stream(self) -> str | None:
        """The stream's name, for stream metrics."""
        stream = self._data.get("stream")
        return None if stream is None else str(stream)

    def to_frame(self) -> pd.DataFrame:
        """Multiclass: the per-class table (one row per class). Binary: one row per scalar
        metric (column ``value``), nested objects flattened as ``gauc.value``, ``confusion.tp``."""
        pandas = required("pandas", "to_frame", "pandas")
        if self._data.get("task") == "multiclass" and self._data.get("per_class"):
            frame = pandas.DataFrame(self._data["per_class"])
            frame.index.name = "class"
            return cast("pd.DataFrame", frame)
        scalars = flat_scalars(self._data)
        return cast(
            "pd.DataFrame", pandas.DataFrame({"value": list(scalars.values())}, index=list(scalars))
        )


def flat_scalars(data: Mapping[str, Any]) -> dict[str, float | None]:
    """Every number of ``data``, nested objects one level deep as ``outer.inner``."""
    out: dict[str, float | None] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                if _is_number_or_null(inner):
                    out[f"{key}.{sub}"] = None if inner is None else float(inner)
        elif _is_number_or_null(value) and key not in ("count", "positives", "negatives"):
            out[key] = None if value is None else float(value)
    return out


def _minus(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else x - y


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _is_number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


class CompareResult(Result):
    """The answer of ``POST /metrics/compare``: both models' metrics and their differences."""

    @property
    def a(self) -> MetricsResult:
        return MetricsResult(self._data["a"])

    @property
    def b(self) -> MetricsResult:
        return MetricsResult(self._data["b"])

    @property
    def auc_diff(self) -> Interval | None:
        d = self._data.get("auc_diff")
        return None if d is None else Interval(d)

    @property
    def gauc_diff(self) -> Interval | None:
        d = self._data.get("gauc_diff")
        return None if d is None else Interval(d)

    @property
    def warnings(self) -> list[str]:
        return list(self._data.get("warnings", []))

    def to_frame(self) -> pd.DataFrame:
        """The two models' scalar metrics side by side (columns ``a``, ``b``, ``b - a``)."""
        pandas = required("pandas", "to_frame", "pandas")
        a, b = flat_scalars(self._data["a"]), flat_scalars(self._data["b"])
        names = [k for k in a if k in b]
        diff = [_minus(b[k], a[k]) for k in names]
        frame = pandas.DataFrame(
            {"a": [a[k] for k in names], "b": [b[k] for k in names], "b - a": diff}, index=names
        )
        return cast("pd.DataFrame", frame)


class ArrayResult(Result):
    """An answer of the loss, normalization, activation or optimizer routes.

    Array fields (``output``, ``gradient``, ``loss`` with reduction ``none``, ``mean``, ...) are
    NumPy arrays when NumPy is installed; ``state`` (optimizers) stays the JSON object, to be
    passed back as it is.
    """

    def __getattr__(self, name: str) -> Any:
        value = super().__getattr__(name)
        return value if name == "state" else nd_array(value)


@dataclass(frozen=True)
class PushResult:
    """What a push did: ``accepted`` records in ``requests`` requests; ``count`` and ``users``
    are the stream's totals after the last one."""

    stream: str
    accepted: int
    count: int
    users: int
    requests: int


class ParamInfo(Result):
    """One parameter of a catalogue entry: ``name``, ``type`` (``number``, ``integer``,
    ``boolean``, ``string``, ``array``, ``nested array``, ...), ``default`` (``None`` when
    there is none), ``values`` (a string parameter's accepted values) and ``description``."""

    @property
    def name(self) -> str:
        return str(self._data["name"])

    @property
    def type(self) -> str:
        return str(self._data["type"])

    @property
    def default(self) -> Any:
        return self._data.get("default")

    @property
    def values(self) -> list[str] | None:
        values = self._data.get("values")
        return None if values is None else [str(v) for v in values]

    @property
    def description(self) -> str:
        return str(self._data.get("description", ""))


class CatalogueEntry(Result):
    """A loss, activation, normalization or optimizer as its catalogue describes it: ``name``,
    ``aliases``, ``summary`` and ``parameters``; the resource's own keys (``formula``,
    ``gradient``, ``stats_shape``, ``torch``, ``state_buffers``) are attributes too."""

    @property
    def name(self) -> str:
        return str(self._data["name"])

    @property
    def aliases(self) -> list[str]:
        return [str(a) for a in self._data.get("aliases", [])]

    @property
    def summary(self) -> str:
        return str(self._data.get("summary", ""))

    @property
    def parameters(self) -> list[ParamInfo]:
        return [ParamInfo(p) for p in self._data.get("parameters", [])]

    def parameter(self, name: str) -> ParamInfo:
        """The parameter ``name``; KeyError naming the valid ones when there is none."""
        for p in self.parameters:
            if p.name == name:
                return p
        valid = ", ".join(p.name for p in self.parameters) or "none"
        raise KeyError(f"{self.name} has no parameter {name!r}; it has: {valid}")


class StreamSummary(Result):
    """A stream as ``GET /streams`` lists it (``name``, ``count``, ``users``, ``created_at``,
    ``updated_at``, timestamps as the server's RFC 3339 text); ``GET /streams/{name}`` adds
    ``exact`` and ``auc_error_bound``."""

    @property
    def name(self) -> str:
        return str(self._data["name"])

    @property
    def count(self) -> int:
        return int(self._data["count"])

    @property
    def users(self) -> int:
        return int(self._data["users"])

    @property
    def created_at(self) -> str:
        return str(self._data["created_at"])

    @property
    def updated_at(self) -> str:
        return str(self._data["updated_at"])

    @property
    def exact(self) -> bool | None:
        """False once the stream's global aggregate was compacted (``GET /streams/{name}``)."""
        exact = self._data.get("exact")
        return None if exact is None else bool(exact)

    @property
    def auc_error_bound(self) -> float | None:
        return self._optional_float("auc_error_bound")


@dataclass(frozen=True)
class StreamUser:
    """One user of a stream: records, positive records and AUC (``None`` with one class)."""

    user_id: str
    count: int
    positives: int
    auc: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StreamUser:
        return cls(
            user_id=str(data["user_id"]),
            count=int(data["count"]),
            positives=int(data["positives"]),
            auc=_optional_float(data.get("auc")),
        )


class UsersPage(Result):
    """One page of ``GET /streams/{name}/users``: ``users`` in ``order``, and ``next_cursor``
    (pass it as ``cursor`` for the next page; ``None`` on the last)."""

    @property
    def stream(self) -> str:
        return str(self._data["stream"])

    @property
    def order(self) -> str:
        return str(self._data["order"])

    @property
    def users(self) -> list[StreamUser]:
        return [StreamUser.from_json(u) for u in self._data["users"]]

    @property
    def next_cursor(self) -> str | None:
        cursor = self._data.get("next_cursor")
        return None if cursor is None else str(cursor)

    def __iter__(self) -> Iterator[StreamUser]:
        return iter(self.users)

    def __len__(self) -> int:
        return len(self._data["users"])

    def to_frame(self) -> pd.DataFrame:
        """Columns ``user_id``, ``count``, ``positives``, ``auc``, one row per user."""
        pandas = required("pandas", "to_frame", "pandas")
        columns = ("user_id", "count", "positives", "auc")
        frame = pandas.DataFrame(
            {c: [u.get(c) for u in self._data["users"]] for c in columns}, columns=list(columns)
        )
        return cast("pd.DataFrame", frame)


class Svg(str):
    """An SVG chart as the server drew it: the document's text (a ``str``), shown inline by
    Jupyter, and ``save(path)`` writes it to a file."""

    __slots__ = ()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the SVG to ``path`` (UTF-8) and returns the path."""
        target = Path(path)
        target.write_text(self, encoding="utf-8")
        return target

    def _repr_svg_(self) -> str:
        return str(self)
