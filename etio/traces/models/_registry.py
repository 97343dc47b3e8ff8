"""The model registry: every architecture a study can name is one folder of this package.

``etio/traces/models/<name>/`` is the architecture ``name``: ``network.py`` holds its ``nn.Module``
and how many of its models run at once (the torch code), ``__init__.py`` calls
:func:`register_model` once (no torch: listing the names, checking a config and planning a study
must not wait for torch). :func:`list_models` lists the folders without importing them;
:func:`get_model` returns the registered :class:`ModelFamily`. Code outside this package asks the
registry and never compares an architecture's name.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from etio.core.errors import EtioInputError, check_choice

if TYPE_CHECKING:   # pragma: no cover
    import torch
    from torch import nn

_PACKAGE = "etio.traces.models"
_REGISTRY: dict[str, "ModelFamily"] = {}

#: ``forward(params, buffers, x, train, each)`` of many models stacked ``[V·K, ...]`` (see
#: :meth:`ModelFamily.many`): ``x`` is ``[K, b, ...]`` shared by the V members of a model id, or with
#: ``each=True`` ``[V·K, b, ...]``; the result is the logits ``[V·K, b, classes]``.
ManyForward = Callable[..., "torch.Tensor"]


@dataclass(frozen=True)
class ModelFamily:
    """One architecture: its single model, its many-models-at-once forward and its parameter count.

    ``etio/traces/models/<name>/__init__.py`` registers it (no torch there: listing and planning
    read it); its ``network.py`` holds the torch code, read through these methods:

    - ``build(width, num_classes, input_shape)`` (required): a freshly initialised ``nn.Module``;
    - ``stacked_features(skeleton, h, step)``: the forward pass up to the classifier for the
      models stacked along the channel dimension (:mod:`etio.traces.models._stacked`), and the
      classifier's name; ``STACKED_RULES``: ``((block type, rule(step, module, name, x)), ...)``,
      the stacked form of the family's own blocks; ``LAYOUT_BY_SIZE`` (default True): convolution
      inputs in the layout the map's size calls for (False: channels last throughout). Without
      ``stacked_features``, many models run under ``torch.func.vmap``: exact, slow for networks
      of many small operations;
    - ``train_forward``, ``member_state``, ``query_forward``: override the defaults below (a
      family whose models of different widths share a job, ``mixed_widths``, needs them).
    """

    name: str
    #: Members of different widths, and of every optimisation setting, train in one job.
    mixed_widths: bool = False

    @property
    def network(self):
        """The family's torch code (``etio.traces.models.<name>.network``)."""
        return importlib.import_module(f"{_PACKAGE}.{self.name}.network")

    def _hook(self, what: str):
        return getattr(self.network, what, None)

    # ---- one model ----------------------------------------------------------------------------
    def build(self, width: int, num_classes: int, input_shape: tuple[int, ...]) -> "nn.Module":
        """A freshly initialised model (uses the global torch RNG and default device)."""
        return self.network.build(width, num_classes, tuple(input_shape))

    def num_params(self, width: int, num_classes: int, input_shape: tuple[int, ...]) -> int:
        """NumParams of the model at ``width``: its trainable scalars."""
        return count_params(self.name, width, num_classes, tuple(input_shape))

    # ---- many models at once ------------------------------------------------------------------
    def many(self, skeleton: "nn.Module", variants: int, models_per_variant: int) -> ManyForward:
        """The forward pass of ``variants · models_per_variant`` models of ``skeleton``'s shape."""
        if self._hook("stacked_features") is not None:
            # hundreds of small operations per pass: one channel-stacked network beats vmap's per-op cost
            from etio.traces.models._stacked import stacked_forward

            return stacked_forward(self.network, skeleton, variants, models_per_variant)
        from torch.func import functional_call, vmap

        v, k = variants, models_per_variant

        def forward(p, b, x, train=True, each=False):
            skeleton.train(train)
            xs = x if each else x.unsqueeze(0).expand(v, *x.shape).reshape(v * k, *x.shape[1:])
            return vmap(lambda pi, bi, xi: functional_call(skeleton, (pi, bi), (xi,)))(p, b, xs)

        return forward

    def train_forward(self, states: list[list[dict]], widths: list[int], num_classes: int,
                      input_shape: tuple[int, ...], device) -> tuple[dict, dict, ManyForward]:
        """(params, buffers, forward) of the models to train: ``states[i][j]`` is the initial state
        of model ``j`` of member ``i`` (of width ``widths[i]``), stacked member-major."""
        own = self._hook("train_forward")
        if own is not None:
            return own(states, widths, num_classes, tuple(input_shape), device)
        import torch

        v, k = len(states), len(states[0])
        skeleton = build_model(self.name, widths[0], num_classes, input_shape, device="meta")
        param_names = [n for n, _ in skeleton.named_parameters()]
        stacked = {n: torch.stack([state[n] for member in states for state in member]).to(device)
                   for n in states[0][0]}
        params = {n: stacked[n] for n in param_names}
        buffers = {n: t for n, t in stacked.items() if n not in params}
        return params, buffers, self.many(skeleton, v, k)

    def member_state(self, state: dict, width: int) -> dict:
        """A trained member's stacked state dict as a model of ``width`` holds it."""
        own = self._hook("member_state")
        return state if own is None else own(state, width)

    def query_forward(self, width: int, num_classes: int, input_shape: tuple[int, ...]):
        """``forward(state, x, each)`` of stored models: ``state`` stacked ``[M, ...]``; ``x`` is
        ``[n, ...]`` for every model or, with ``each``, ``[M, n, ...]`` (model i on ``x[i]``); the
        models are queried as they were trained (DenseNet161's attacks ran 3× slower under vmap)."""
        own = self._hook("query_forward")
        if own is not None:
            return own(width, num_classes, tuple(input_shape))
        skeleton = build_model(self.name, width, num_classes, input_shape, device="meta").eval()
        param_names = {n for n, _ in skeleton.named_parameters()}

        def forward(state: dict, x, each: bool):
            if not each:
                x = x.unsqueeze(0).expand(next(iter(state.values())).shape[0], *x.shape)
            params = {k: v for k, v in state.items() if k in param_names}
            buffers = {k: v for k, v in state.items() if k not in param_names}
            return self.many(skeleton, 1, len(x))(params, buffers, x, train=False, each=True)

        return forward


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------

def register_model(name: str, *, mixed_widths: bool = False) -> ModelFamily:
    """Register the architecture ``name``: called once, by ``etio/traces/models/<name>/__init__.py``."""
    if name not in list_models():
        raise ValueError(f"architecture {name!r} must be registered by {_PACKAGE}.{name}")
    _REGISTRY[name] = ModelFamily(name, mixed_widths=mixed_widths)
    return _REGISTRY[name]


@functools.lru_cache(maxsize=None)
def list_models() -> tuple[str, ...]:
    """Every architecture's name, sorted: the folders of this package (none is imported)."""
    here = [str(Path(__file__).parent)]
    return tuple(sorted(m.name for m in pkgutil.iter_modules(here) if m.ispkg and not m.name.startswith("_")))


def get_model(name: str) -> ModelFamily:
    """The registered family of architecture ``name`` (an input error naming the known ones otherwise).
    Torch is imported only when the family's models are built or run."""
    check_choice("architecture", name, list_models())
    if name not in _REGISTRY:
        importlib.import_module(f"{_PACKAGE}.{name}")
        if name not in _REGISTRY:
            raise ValueError(f"{_PACKAGE}.{name} does not call register_model")
    return _REGISTRY[name]


# --------------------------------------------------------------------------------------
# What every caller needs of a model
# --------------------------------------------------------------------------------------

def build_model(arch: str, width: int, num_classes: int, input_shape: tuple[int, ...],
                device: "torch.device | str | None" = None) -> "nn.Module":
    """A freshly initialised model (uses the global torch RNG; seed it before calling)."""
    family = get_model(arch)
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise EtioInputError(f"width {width!r} of {arch} is not a positive integer")
    import torch

    with torch.device(device) if device is not None else contextlib.nullcontext():
        return family.build(width, num_classes, tuple(input_shape))


@functools.lru_cache(maxsize=None)
def check_model(arch: str, width: int, num_classes: int, input_shape: tuple[int, ...], dataset: str = "") -> None:
    """Raise :class:`EtioInputError` unless ``arch`` at ``width`` runs on inputs of ``input_shape``.

    Built and run on the meta device: no memory, no compute (but DenseNet161 takes a fraction of a
    second to build; a valid model is remembered, an error is raised again).
    """
    import torch

    model = build_model(arch, width, num_classes, input_shape, device="meta")
    try:
        out = model(torch.empty((2, *input_shape), device="meta"))
    except Exception as exc:
        on = f" on dataset {dataset!r}" if dataset else ""
        raise EtioInputError(f"architecture {arch!r} with width {width} gives an invalid model{on} "
                             f"(input shape {tuple(input_shape)}): {exc}") from None
    if tuple(out.shape) != (2, num_classes):
        raise EtioInputError(f"architecture {arch!r} with width {width} outputs shape {tuple(out.shape)[1:]}, "
                             f"expected ({num_classes},)")


def num_params(model: "nn.Module") -> int:
    """NumParams: the number of trainable scalars (weights, biases, BN affine; no BN buffers)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


@functools.lru_cache(maxsize=None)
def count_params(arch: str, width: int, num_classes: int, input_shape: tuple[int, ...]) -> int:
    """NumParams of ``arch`` at ``width`` (built on the meta device)."""
    return num_params(build_model(arch, width, num_classes, input_shape, device="meta"))
