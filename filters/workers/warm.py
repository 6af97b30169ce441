"""Imported once by the forkserver whose forks render the figures that miss the cache.

Importing torch and matplotlib and drawing a first figure cost seconds; paid here, once, every
worker forked afterwards inherits them instead of paying again.
"""

import gc
import importlib
import pkgutil
import signal

# Ctrl-C is the build's to handle; this helper process ends with it. It starts while the build
# holds its signals back (filters.workers.jobs): they are not held here.
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_SETMASK, set())

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # before pyplot: .run blocks draw with it, in no window
import matplotlib.pyplot  # noqa: E402,F401
import torch  # noqa: E402

import engine  # noqa: E402
import filters.kinds  # noqa: E402,F401  (every kind's file)
from filters.figures.render import warm_up  # noqa: E402

for module in pkgutil.iter_modules(engine.__path__):  # the whole engine: kinds import it in compute
    importlib.import_module(f"engine.{module.name}")

torch.zeros(2, 2) @ torch.zeros(2, 2)  # first-op set-up of the CPU kernels
warm_up()
# Move everything imported so far out of the garbage collector's reach: a forked worker then
# does not touch (and copy) these pages when it collects.
gc.freeze()
