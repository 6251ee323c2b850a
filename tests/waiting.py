"""Waiting for what a test can observe, with a deadline: never sleep-and-hope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")
POLL = 0.02


def wait_for(predicate: Callable[[], T], timeout: float, message: str | Callable[[], str]) -> T:
    """Poll `predicate` every 20 ms until it returns something truthy; fail after `timeout` s.

    `message` may be a callable, to describe the last state seen only when it is needed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {_text(message)}")
        time.sleep(POLL)


async def wait_for_async(
    predicate: Callable[[], T], timeout: float, message: str | Callable[[], str]
) -> T:
    """`wait_for` for code inside the event loop: the loop keeps running while we poll."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {_text(message)}")
        await asyncio.sleep(POLL)


def _text(message: str | Callable[[], str]) -> str:
    return message() if callable(message) else message
