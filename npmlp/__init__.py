"""npmlp: a small, exact NumPy MLP trainer for tabular regression models that ship as ONNX."""

__version__ = "0.1.0"
