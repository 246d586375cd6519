"""Shared fixtures: a plugin set made of test plugins, loaded the way acgmake loads its own."""

from __future__ import annotations

import os
import types
from collections.abc import Callable

import pytest

from acgmake import plugins as plugin_module
from acgmake.plugins import Plugins

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N runs N test processes side by side: each gets its share of the cores, not
    # all of them (torch, OpenMP and BLAS would otherwise each start a thread per core, and
    # the workers slow each other down; see the README, "Run the tests").
    _share = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(_share))


def _make_plugin(name: str, **hooks: Callable) -> types.ModuleType:
    """A plugin module whose hook functions are ``hooks`` (marked with ``@hookimpl``)."""
    from acgmake import hookimpl

    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        function.__name__ = hook_name
        setattr(module, hook_name, hookimpl(function))
    return module


@pytest.fixture
def make_plugin() -> Callable[..., types.ModuleType]:
    """Build a plugin module from hook functions: ``make_plugin("name", register_stages=f)``."""
    return _make_plugin


@pytest.fixture
def use_plugins(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Plugins]:
    """Make the CLI see exactly the given plugin modules (name -> module), nothing installed."""

    def install(*modules: types.ModuleType, builtin: bool = True) -> Plugins:
        plugins = Plugins()
        for module in modules:
            name = module.__name__
            plugins.add(module, name, "1.0", builtin=builtin and name.startswith("acgmake."))
        plugins._collect()
        monkeypatch.setattr(plugin_module, "_loaded", plugins)
        return plugins

    return install


@pytest.fixture
def one_torch_thread():
    """Small tensors run fastest on one thread, the more so on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def load_error():
    """``load_error(path)``: the one-line UserError message that loading generator ``path``
    gives (the test fails if it loads, or if the message is not one line naming the file)."""
    from pathlib import Path

    from acgmake.errors import UserError
    from acgmake.models import load_generator

    def message_for(path: Path) -> str:
        with pytest.raises(UserError) as caught:
            load_generator(path)
        message = caught.value.message
        assert "\n" not in message and str(path) in message
        return message

    return message_for


# ---------------------------------------------------------------------------------------------
# Robustness cases (tests/test_robust_*.py): cases tried and held per class, at the end.

_robust_outcomes: dict[int, list[int]] = {}


@pytest.fixture(autouse=True)
def _robust_memory_limit(request):
    """A robustness case run in this process gets an address-space limit of what the process
    maps now plus 3 GB (lifted after it): a regression that allocates without bound fails
    its test with MemoryError instead of taking the machine down. (Cases run in a subprocess
    get their own limit, see robust_support.acgmake_limited.)"""
    if request.node.get_closest_marker("robust") is None:
        yield
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as handle:
        mapped = int(handle.read().split()[0]) * resource.getpagesize()
    limit = mapped + 3 * 1024**3
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def pytest_collection_modifyitems(config, items):
    # Files with whole-chain (slow) tests first, most of them first, the rest in their order:
    # pytest -n hands files to the workers in this order (--dist loadfile), and a long file
    # handed out last keeps one core busy after the other has run out of work.
    slow: dict[str, int] = {}
    for item in items:
        slow.setdefault(item.nodeid.split("::")[0], 0)
        if item.get_closest_marker("slow") is not None:
            slow[item.nodeid.split("::")[0]] += 1
    items.sort(key=lambda item: -slow[item.nodeid.split("::")[0]])  # stable: order kept within
    for item in items:
        marker = item.get_closest_marker("robust")
        if marker is not None:
            # In the report's user properties, which pytest -n N sends from its workers to
            # the process that prints the summary.
            item.user_properties.append(("robust_class", int(marker.args[0])))


def pytest_runtest_logreport(report):
    fault_class = dict(report.user_properties).get("robust_class")
    if fault_class is None:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        tried_held = _robust_outcomes.setdefault(fault_class, [0, 0])
        tried_held[0] += 1
        tried_held[1] += int(report.passed)


def pytest_terminal_summary(terminalreporter):
    if not _robust_outcomes:
        return
    from robust_support import CLASSES

    terminalreporter.write_sep("-", "robustness cases: held / tried, by class (issue 14)")
    for number in sorted(_robust_outcomes):
        tried, held = _robust_outcomes[number]
        terminalreporter.write_line(f"{number}. {CLASSES[number]:<52} {held:>4} / {tried}")
