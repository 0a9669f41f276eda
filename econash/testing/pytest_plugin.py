"""pytest fixtures for econash and its plugin authors (installed through the pytest11 entry point).

Fixtures: ``econash_fake_backend`` (factory), ``econash_plugin_manager``, ``econash_registries``,
``econash_register_plugin`` and ``econash_cli``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import pytest

from econash.testing.fake import FakeBackend


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: loads a real model or runs long; deselect with -m 'not slow'")


@pytest.fixture
def econash_fake_backend() -> Callable[..., FakeBackend]:
    """Factory for fake backends: ``econash_fake_backend(script=["4", "5"])``."""
    return FakeBackend


@pytest.fixture
def econash_plugin_manager() -> Any:
    """A fresh plugin manager with every installed plugin loaded (no warnings printed)."""
    from econash.plugins import make_plugin_manager

    return make_plugin_manager(warn=False)


@pytest.fixture
def econash_register_plugin(econash_plugin_manager: Any) -> Iterator[Callable[..., str]]:
    """Register a throwaway plugin object (a module or class with hookimpls) for one test."""
    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        name = name or f"test-plugin-{len(names)}"
        econash_plugin_manager.register(plugin, name=name)
        names.append(name)
        return name

    yield register
    for name in names:
        if econash_plugin_manager.get_plugin(name) is not None:
            econash_plugin_manager.unregister(name=name)


@pytest.fixture
def econash_registries(econash_plugin_manager: Any) -> Any:
    """Registries built from ``econash_plugin_manager`` (build it after registering test plugins)."""
    from econash.registry import Registries

    return Registries.from_plugin_manager(econash_plugin_manager)


@pytest.fixture
def econash_cli(econash_plugin_manager: Any) -> Callable[..., Any]:
    """Run the econash CLI in process: ``result = econash_cli(["list", "tasks"])``."""
    from click.testing import CliRunner

    from econash.cli import build_cli

    def invoke(args: Sequence[str], **kwargs: Any) -> Any:
        runner = CliRunner()
        return runner.invoke(build_cli(econash_plugin_manager), list(args), catch_exceptions=False, **kwargs)

    return invoke
