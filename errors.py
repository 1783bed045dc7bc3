"""Errors a user can act on, and the wrapper that turns them into one line and an exit code.

Exit codes (documented in the README): 0 success, 1 failure, 2 usage error,
130 interrupted by Ctrl-C (SIGINT), 143 terminated (SIGTERM).
"""
import argparse
import os
import signal
import sys

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class UsageError(Exception):
    """A flag or flag combination that cannot work: exit 2 before any work starts."""


class ToolError(Exception):
    """An expected failure (bad file, weights not found, out of memory): exit 1."""


class NumericalError(ToolError):
    """The loss became NaN or infinite; the run stops (the best finite image is kept)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; carries the exit code (BaseException, like KeyboardInterrupt)."""

    def __init__(self, exit_code):
        super().__init__(exit_code)
        self.exit_code = exit_code


class Stopped(BaseException):
    """A run that ended before its last iteration, carrying the best image it had: `cause` is the
    Interrupted (or, from Python, KeyboardInterrupt) or NumericalError that stopped it, `image`
    the best finite image so far (HxWx3 float32 pixel values). Raised through the layers of a
    run, each passing on the whole image it knows of (a tile's into the level's, a level's at
    full size); the pipeline returns it as a partial result. A BaseException, as Interrupted,
    so that handlers of ordinary errors do not swallow it."""

    def __init__(self, cause, image):
        super().__init__(cause, image)
        self.cause = cause
        self.image = image


def raise_interrupted(signum, frame):
    """The signal handler of the command-line tools: SIGINT and SIGTERM become Interrupted."""
    raise Interrupted(EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT)


def run_cli(main, argv=None):
    """Run main(argv); print expected failures as one line on stderr and exit with their code."""
    prog = os.path.basename(sys.argv[0]) or "neural_style.py"
    previous = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        main(argv)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except ToolError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(EXIT_FAILURE)
    except Interrupted as e:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(e.exit_code)
    except MemoryError:
        print(f"{prog}: error: out of memory; use smaller images (--width) or --network-type sqz",
              file=sys.stderr)
        sys.exit(EXIT_FAILURE)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors become a UsageError: one line, exit 2, via run_cli."""

    def error(self, message):
        raise UsageError(message)
