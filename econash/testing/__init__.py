"""Test support for econash and for plugin authors: a fake backend and pytest fixtures."""

from econash.testing.fake import FakeBackend, FakeScriptExhausted, fake_token_count

__all__ = ["FakeBackend", "FakeScriptExhausted", "fake_token_count"]
