"""What the offline preview engine leaves out of Pulumi's SDK runtime, and why mocks never miss it.

``kexpose preview`` runs the real stack program (the components, the typed pulumi-kubernetes
resources, the SDK's Output and registration machinery) against a mock monitor in-process. A
real ``pulumi up`` talks to an engine over gRPC and needs all of the SDK's bookkeeping; a mock
run needs only the registrations. Profiling a 500-app stack (3,000 resources) showed where the
rest went (sampled cpu time; shares are approximate), and each item here removes one cost
without changing what is registered:

- **The cyclic garbage collector** (about half of the cpu time at 500 apps, and why the run grew
  faster than the stack): the SDK keeps every resource, Output and future alive until the
  program ends, and each collection of the oldest generation walks all of them again, so a run
  of n resources pays O(n²). Almost everything the run frees goes by reference counting (peak
  memory of ``kexpose preview`` at 1,000 apps: 420 MB with it paused, 462 MB before), so it is
  paused for the run (:func:`paused_gc`), the run's objects are set aside for the collector
  afterwards, and the next run hands them back (:func:`release_frozen`).
- **A worker thread per monitor call** (a few percent of the cpu time, more of the wall clock on
  a busy machine, where each hand-off waits for the interpreter lock): the SDK sends each
  registration through the event loop's default executor because a real monitor call blocks on
  gRPC. A mock answers at once, so :class:`InlineExecutor` runs the call where it is made; no
  thread hand-off, no lock, no event loop per worker thread.
- **Aliases** (about 10%): pulumi-kubernetes declares the old API versions of each kind as
  aliases (``apps/v1beta1`` for a Deployment, ...) so that the engine can match old state; the
  SDK turns each into URN Outputs for every resource. A mock monitor has no state and drops
  them; :func:`drop_aliases` removes them before the SDK computes anything.
- **The wire format's round trip** (about 5%): the monitor decodes each registration's inputs
  with :func:`decode_properties` (the SDK's rules, three times faster) and answers with
  :func:`encode_plain` (the SDK's serializer, run without an event loop).
- **Source positions** (about 20%, before the rest): the SDK captures and converts the Python
  call stack at every registration for the engine's diagnostics
  (:func:`skip_source_positions`).
- **Work done again for every resource** (about 8%; :func:`sdk_fast_paths`): the SDK reads a
  resource class's output types from its annotations (``typing.get_type_hints``) at each
  registration, and builds a URN Output that it uses only when there is no monitor at all.

None of this runs under a real ``pulumi up``: only :mod:`kexpose.preview` installs it.
"""

from __future__ import annotations

import concurrent.futures
import gc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import pulumi
from pulumi.runtime import rpc

__all__ = [
    "InlineExecutor",
    "decode_properties",
    "drop_aliases",
    "encode_plain",
    "paused_gc",
    "release_frozen",
    "sdk_fast_paths",
    "skip_source_positions",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor that runs each call at once on the calling thread.

    For an event loop's default executor (``loop.set_default_executor`` takes only a
    ThreadPoolExecutor, hence the base class; no thread is ever started). The call runs inside
    the event loop's callback, so it must not block: mock monitor calls return at once.
    """

    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting task, as a pool's worker does
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


def drop_aliases(
    args: pulumi.ResourceTransformationArgs,
) -> pulumi.ResourceTransformationResult | None:
    """A stack transformation that removes a resource's aliases (the mock monitor has no state
    to match them against, and never sees them: ``MockResourceArgs`` has no aliases)."""
    if not args.opts.aliases:
        return None
    opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions())
    opts.aliases = None
    return pulumi.ResourceTransformationResult(args.props, opts)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (if it was on), and resume it after.

    What the block leaves alive is set aside first (``gc.freeze``): the collector never saw
    it, so it all sits in the youngest generation, and the first collections after the block
    would walk every object of the run (about 1.5 s after a 1,000-app run). The SDK keeps
    those objects alive until the next run anyway; :func:`release_frozen` hands them back.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def release_frozen() -> None:
    """Hand what earlier blocks set aside back to the collector, and collect it.

    For the start of a run, once the SDK's settings of the previous run are replaced: its
    resources and Outputs have become garbage, and a frozen object is never collected.
    (``gc.unfreeze`` is process-wide: it also releases what anyone else froze.)
    """
    if gc.get_freeze_count():
        gc.unfreeze()
        gc.collect()


def skip_source_positions() -> None:
    """Stop the SDK from capturing a Python stack trace for every resource.

    The SDK walks and converts the whole call stack at each registration so that the engine can
    show source positions (``pulumi.runtime.resource._get_stack_trace``); the mock monitor has
    no use for them. This replaces a private SDK function, so it is checked for first; without
    it the run is only slower.
    """
    from pulumi.runtime import resource as sdk_resource
    from pulumi.runtime.proto import source_pb2

    if hasattr(sdk_resource, "_get_stack_trace"):
        empty: Callable[..., Any] = source_pb2.StackTrace
        sdk_resource._get_stack_trace = empty


@contextmanager
def sdk_fast_paths() -> Iterator[None]:
    """For the block, two SDK helpers give the same results with less work; restored after.

    - ``pulumi._types.resource_types(cls)``, called at every registration to read the output
      types of the resource's class from its annotations, is kept per class (a class's
      annotations do not change; each caller gets its own copy of the mapping).
    - ``pulumi.runtime.resource.create_urn`` with plain strings (the SDK computes a URN this
      way after each registration request, for running without a monitor) computes the same
      string at once instead of through four chained Outputs; anything else goes to the SDK.

    Both replace private SDK functions, so each is checked for first; without them the run is
    only slower.
    """
    from pulumi import _types
    from pulumi.runtime import resource as sdk_resource

    saved: list[tuple[Any, str, Any]] = []
    if hasattr(_types, "resource_types"):
        original_types = _types.resource_types
        by_class: dict[type, dict[str, type]] = {}

        def resource_types(resource_cls: type) -> dict[str, type]:
            found = by_class.get(resource_cls)
            if found is None:
                found = by_class[resource_cls] = original_types(resource_cls)
            return dict(found)

        saved.append((_types, "resource_types", original_types))
        _types.resource_types = resource_types
    if hasattr(sdk_resource, "create_urn"):
        original_urn = sdk_resource.create_urn

        def create_urn(
            name: Any, type_: Any, parent: Any = None, project: Any = None, stack: Any = None
        ) -> pulumi.Output[str]:
            if isinstance(name, str) and isinstance(type_, str) and isinstance(parent, str):
                # The SDK's formula: the parent URN up to its last "::", "$", type, "::", name.
                return pulumi.Output.from_input(f"{parent[: parent.rfind('::')]}${type_}::{name}")
            return original_urn(name, type_, parent, project, stack)

        saved.append((sdk_resource, "create_urn", original_urn))
        sdk_resource.create_urn = create_urn
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


class _SpecialValueError(Exception):
    """A wire value other than plain data or a secret (unknown, an asset, a resource reference)."""


def _decode(value: Any) -> Any:
    """One wire value (a protobuf Value) as ``rpc.deserialize_property`` gives it.

    The same rules, for the values a mock run sees: null dropped from mappings, and a secret
    inside a list or mapping makes the whole container the secret (the SDK "pushes secretness
    up"). Anything else special raises _SpecialValueError, and the caller falls back to the
    SDK's decoder; this one is three times faster because it reads each value's kind once.
    """
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        fields = value.struct_value.fields
        if rpc._special_sig_key in fields:
            if fields[rpc._special_sig_key].string_value != rpc._special_secret_sig:
                raise _SpecialValueError
            return rpc.wrap_rpc_secret(_decode(fields["value"]))
        mapping = _decode_fields(fields)
        if any(rpc.is_rpc_secret(v) for v in mapping.values()):
            return rpc.wrap_rpc_secret({k: rpc.unwrap_rpc_secret(v) for k, v in mapping.items()})
        return mapping
    if kind == "list_value":
        items = [_decode(v) for v in value.list_value.values]
        if any(rpc.is_rpc_secret(v) for v in items):
            return rpc.wrap_rpc_secret([rpc.unwrap_rpc_secret(v) for v in items])
        return items
    if kind == "string_value":
        if value.string_value == rpc.UNKNOWN:
            raise _SpecialValueError
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None


def _decode_fields(fields: Any) -> dict[str, Any]:
    out = {}
    for key, value in fields.items():
        decoded = _decode(value)
        if decoded is not None:
            out[key] = decoded
    return out


def decode_properties(struct: Any) -> dict[str, Any]:
    """``rpc.deserialize_properties`` of a registration's inputs (see :func:`_decode`)."""
    try:
        if rpc._special_sig_key in struct.fields:
            raise _SpecialValueError
        return _decode_fields(struct.fields)
    except _SpecialValueError:
        return dict(rpc.deserialize_properties(struct))


def encode_plain(state: Mapping[str, Any]) -> Any:
    """``rpc.serialize_properties`` of plain data, without an event loop.

    The SDK's serializer is a coroutine only because it awaits the Outputs and futures in what
    it is given; a mock answer is plain data, so the coroutine finishes at its first step.
    """
    steps = rpc.serialize_properties(dict(state), {})
    try:
        steps.send(None)
    except StopIteration as done:
        return done.value
    steps.close()
    raise TypeError("a mock answer holds an awaitable; answers must be plain data")
