"""Stop signals of the twin's long commands (fit, follow, feed): installed for the duration of a `with`,
in the main thread only."""

import signal
import threading

from brainsim.errors import Interrupted, StopTimeout

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
"""What stops a fit or a follower (feed leaves SIGUSR1 alone)."""


def interrupt_name(error):
    """The stop signal behind a member's failure (a member run stopped by Ctrl-C or SIGTERM), or None."""
    if isinstance(error, KeyboardInterrupt):
        return "SIGINT"
    cause = error.__cause__
    if isinstance(cause, (Interrupted, StopTimeout)):
        return cause.signal_name
    return None


class StopSignals:
    """`signals` received set `received` (the signal's name); with `interrupt`, the handler also raises
    KeyboardInterrupt at once (giving up the work in progress), else the caller acts on `received` at its
    next safe point. Outside the main thread nothing is installed."""

    def __init__(self, signals, interrupt):
        self.signals, self.interrupt = signals, interrupt
        self.received, self.previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.signals}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        return False

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        if self.interrupt:
            raise KeyboardInterrupt(self.received)

    def check(self, error, *args):
        """Raise error(the signal's name, *args) when a signal has been received."""
        if self.received:
            raise error(self.received, *args)
