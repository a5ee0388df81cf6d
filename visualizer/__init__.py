"""bpttlab visualizer: the Dash app.

Importing this package sets OpenBLAS / OpenMP / MKL to one thread each (unless already set), before
NumPy loads: the app runs background jobs in forked processes, and forking while a BLAS thread
pool is busy can deadlock the child (seen with OpenBLAS when Train was pressed during a
recompute). The server's parallelism comes from request threads and worker processes instead.
"""
import os as _os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_name, "1")
