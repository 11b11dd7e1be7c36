"""A module for the warm starter's tests to run as `python -m`: it reports what it was started with.

`python -m recsys_assets_tests.support.warm_child MODE [ARG]`:
- `report`: prints its argv, working folder, a variable of its environment, the training-window setting
  (read on first use) and its parent's pid as one JSON line on stdout, and a line on stderr;
- `exit CODE`: `sys.exit(CODE)`; `raise`: an uncaught error; `sleep SECONDS`: sleeps.
"""

import json
import os
import sys
import time

from recsys_assets.settings import SETTINGS, environment_variable

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "report":
        print(
            json.dumps(
                {
                    "argv": sys.argv[1:],
                    "cwd": os.getcwd(),
                    "marker": environment_variable("WARM_CHILD_MARKER"),
                    "window": SETTINGS.training_window_days,
                    "ppid": os.getppid(),
                    "pid": os.getpid(),
                }
            )
        )
        print("to stderr", file=sys.stderr)
    elif mode == "exit":
        sys.exit(int(sys.argv[2]))
    elif mode == "raise":
        raise LookupError("raised in the child")
    elif mode == "sleep":
        print("sleeping", flush=True)
        time.sleep(float(sys.argv[2]))
