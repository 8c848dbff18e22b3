"""held_interrupts: one Ctrl-C during a job's clean-up is held off, a second is obeyed, and
the handler before it is back afterwards."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from videodub.run.interrupts import held_interrupts


def press() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_one_press_is_held_a_second_is_obeyed_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    done = []
    with held_interrupts():
        press()
        done.append("after one press")
    assert done == ["after one press"] and signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt), held_interrupts():
        press()
        press()
        done.append("never")
    assert done == ["after one press"] and signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_nothing_is_held():
    seen: list[object] = []

    def job() -> None:
        with held_interrupts():
            seen.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=job)
    thread.start()
    thread.join()
    assert seen == [before]
