"""Python client for evald, the HTTP evaluation service.

>>> import evald
>>> client = evald.Client("http://localhost:8080")
>>> result = client.metrics(df["click"], df["score"], user_ids=df["uid"])
>>> result.auc, result.gauc.value
>>> fpr, tpr, thresholds = result.roc
>>> client.stream("ctr-v7").push(df, prediction="score", label="click", user_id="uid")
>>> client.stream("ctr-v7").plot("roc").save("roc.svg")
"""

from ._calls import Call, Retry
from ._client import AsyncClient, AsyncStream, Client, Stream
from ._errors import EvaldError
from ._results import (
    ArrayResult,
    BestThreshold,
    BestValue,
    CalibrationCurve,
    CatalogueEntry,
    CompareResult,
    Confusion,
    Interval,
    MetricsResult,
    ParamInfo,
    PrCurve,
    PushResult,
    Ranking,
    Result,
    RocCurve,
    StreamSummary,
    StreamUser,
    Svg,
    ThresholdRow,
    TprAtFpr,
    UsersPage,
)
from ._version import __version__

__all__ = [
    "ArrayResult",
    "AsyncClient",
    "AsyncStream",
    "BestThreshold",
    "BestValue",
    "CalibrationCurve",
    "Call",
    "CatalogueEntry",
    "Client",
    "CompareResult",
    "Confusion",
    "EvaldError",
    "Interval",
    "MetricsResult",
    "ParamInfo",
    "PrCurve",
    "PushResult",
    "Ranking",
    "Result",
    "Retry",
    "RocCurve",
    "Stream",
    "StreamSummary",
    "StreamUser",
    "Svg",
    "ThresholdRow",
    "TprAtFpr",
    "UsersPage",
    "__version__",
]
