"""Pages are drawn in turn (TRACKER_RENDER_SLOTS at once per dashboard process): a visitor who arrives while every
slot is taken is told so and starts when one frees, and a slot is given back however the page ends. After its first
page, a process's long-lived objects are left out of the garbage collection Streamlit runs after every page."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from tracker.app import common


class _Note:
    def __init__(self, shown: list):
        self.shown = shown

    def info(self, text, icon=None):
        self.shown.append(text)

    def empty(self):
        self.shown.append(None)


@pytest.fixture
def one_slot(monkeypatch):
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(common, "_RENDER_SLOTS", slots)
    shown: list = []
    monkeypatch.setattr(common.st, "empty", lambda: _Note(shown))
    return slots, shown


def test_a_visitor_waits_for_the_slot_and_is_told_why(one_slot):
    slots, shown = one_slot
    slots.acquire()  # another visitor's page is being drawn
    drawn = threading.Event()

    def visit():
        with common.render_slot():
            drawn.set()

    waiting = threading.Thread(target=visit)
    waiting.start()
    assert not drawn.wait(0.8)  # not drawn while the slot is taken
    assert shown and shown[0] == common.BUSY_NOTE
    slots.release()  # the other page is done
    waiting.join(5)
    assert drawn.is_set() and shown[-1] is None  # the note is cleared once the page starts


def test_the_slot_is_given_back_when_a_page_fails(one_slot):
    slots, shown = one_slot
    with pytest.raises(ZeroDivisionError):
        with common.render_slot():
            1 / 0
    assert slots.acquire(blocking=False)  # free again
    assert shown == []  # nobody waited: no note


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_a_bad_slot_count_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("TRACKER_RENDER_SLOTS", value)
    with pytest.raises(ValueError, match="TRACKER_RENDER_SLOTS must be a whole number"):
        common._render_slots()


def test_no_limit_when_asked(monkeypatch):
    monkeypatch.setenv("TRACKER_RENDER_SLOTS", "0")
    assert common._render_slots() is None


def test_after_the_first_page_the_long_lived_objects_leave_the_collections_and_later_garbage_is_still_collected():
    # in a process of its own: freezing is once per process, and this test session's objects are not the dashboard's
    script = textwrap.dedent("""
        import gc, weakref
        from tracker.app import common

        with common.render_slot():  # the first page
            pass
        frozen = gc.get_freeze_count()
        assert frozen > 10_000, frozen  # the imported libraries' objects: no longer walked after every page
        with common.render_slot():
            pass
        assert gc.get_freeze_count() == frozen, "frozen again"

        class Node:
            pass

        n = Node(); n.me = n; gone = weakref.ref(n); del n  # a later page's reference cycle
        gc.collect()
        assert gone() is None, "a later page's garbage was kept"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
