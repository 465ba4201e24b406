"""The catalogues (GET /loss, /activation, /normalize, /optimizer and one entry of each)
through the client, and that what they list is what the routes take."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import evald


def catalogues(
    client: evald.Client,
) -> dict[
    str, tuple[Callable[[], list[evald.CatalogueEntry]], Callable[[str], evald.CatalogueEntry]]
]:
    return {
        "loss": (client.losses, client.loss_info),
        "activation": (client.activations, client.activation_info),
        "normalize": (client.normalizations, client.normalization_info),
        "optimizer": (client.optimizers, client.optimizer_info),
    }


@pytest.mark.parametrize("route", ["loss", "activation", "normalize", "optimizer"])
def test_every_listed_entry_is_answered_by_name_and_alias(client: evald.Client, route: str) -> None:
    listing, info = catalogues(client)[route]
    entries = listing()
    assert entries, route
    assert entries == [evald.CatalogueEntry(e) for e in client.request("GET", f"/{route}")]
    for entry in entries:
        assert entry.summary, entry.name
        assert info(entry.name) == entry
        for alias in entry.aliases:
            assert info(alias) == entry
        for parameter in entry.parameters:
            assert parameter.name
            assert parameter.type in (
                "number",
                "integer",
                "boolean",
                "string",
                "array",
                "nested array",
                "number | array",
            ), (entry.name, parameter.name, parameter.type)
            assert entry.parameter(parameter.name) == parameter


def test_loss_entry_is_typed(client: evald.Client) -> None:
    smooth_l1 = client.loss_info("smooth_l1")
    assert smooth_l1.name == "smooth_l1"
    assert smooth_l1.parameter("reduction").values == ["mean", "sum", "none"]
    assert smooth_l1.parameter("reduction").default == "mean"
    beta = smooth_l1.parameter("beta")
    assert beta.type == "number"
    assert beta.default == 1.0
    assert beta.values is None
    assert beta.description
    assert "beta" in smooth_l1.formula  # a resource's own key, as an attribute
    with pytest.raises(KeyError, match="no parameter 'gamma'"):
        smooth_l1.parameter("gamma")
    assert client.loss_info("ce").name == "cross_entropy"  # an alias resolves to its entry


def test_listed_defaults_are_what_the_routes_use(client: evald.Client) -> None:
    p, t = np.array([0.0, 3.0, -0.4]), np.array([0.5, 0.0, 0.2])
    beta = client.loss_info("smooth_l1").parameter("beta").default
    implicit = client.loss("smooth_l1", p, t, reduction="none")
    explicit = client.loss("smooth_l1", p, t, reduction="none", beta=beta)
    np.testing.assert_array_equal(implicit.loss, explicit.loss)
    eps = client.normalization_info("layer").parameter("eps").default
    x = np.array([[1.0, 2.0, 4.0]])
    np.testing.assert_array_equal(
        client.normalize("layer", x).output, client.normalize("layer", x, eps=eps).output
    )
    lr = client.optimizer_info("sgd").parameter("lr").default
    step = client.optimizer_step("sgd", [1.0], [0.5])
    np.testing.assert_allclose(step.params, [1.0 - lr * 0.5], rtol=0, atol=1e-15)


def test_optimizer_entries_carry_their_own_keys(client: evald.Client) -> None:
    adam = client.optimizer_info("adam")
    assert adam.torch == "torch.optim.Adam"
    assert {b["name"] for b in adam.state_buffers} >= {"exp_avg", "exp_avg_sq"}
    assert {p.name for p in adam.parameters} >= {"lr", "betas", "eps", "weight_decay"}


@pytest.mark.parametrize("route", ["loss", "activation", "normalize", "optimizer"])
def test_unknown_names_are_404_listing_the_valid_ones(client: evald.Client, route: str) -> None:
    listing, info = catalogues(client)[route]
    with pytest.raises(evald.EvaldError) as caught:
        info("nope")
    assert caught.value.status == 404
    assert caught.value.slug == "not-found"
    assert "'nope'" in str(caught.value)
    names = {n for entry in listing() for n in (entry.name, *entry.aliases)}
    assert set(caught.value.extra["valid"]) == names
