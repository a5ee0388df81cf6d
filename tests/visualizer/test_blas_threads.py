import os
import subprocess
import sys


def test_importing_the_app_pins_blas_to_one_thread_before_numpy_loads():
    """Forking background jobs while an OpenBLAS pool is busy can deadlock: the app uses one thread."""
    blas_vars = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in blas_vars}
    code = ("import visualizer.app, os, numpy; "
            "print(os.environ['OPENBLAS_NUM_THREADS'], numpy.__name__)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "numpy"]
