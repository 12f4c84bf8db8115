"""npmlp: a small, exact NumPy MLP trainer for tabular regression models that ship as ONNX."""

import os

__version__ = "0.1.0"

# One BLAS thread unless told otherwise: npmlp's matrices are small, so threads buy little, and
# a fixed thread count keeps float results bit-identical from run to run. Takes effect only when
# npmlp is imported before numpy (as by the npmlp command); an explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
