# Benchmark-only shim: nptyping 2.5 (a PecanPy dependency) reads aliases numpy 2 removed.
import numpy as np

for _old, _new in (("bool8", "bool_"), ("object0", "object_"), ("int0", "intp"), ("uint0", "uintp"),
                   ("void0", "void"), ("bytes0", "bytes_"), ("str0", "str_"), ("float_", "float64"),
                   ("complex_", "complex128"), ("unicode_", "str_"), ("string_", "bytes_"), ("longfloat", "longdouble"),
                   ("singlecomplex", "complex64"), ("cfloat", "complex128"), ("longcomplex", "clongdouble"),
                   ("clongfloat", "clongdouble"), ("Inf", "inf"), ("NaN", "nan")):
    if not hasattr(np, _old):
        setattr(np, _old, getattr(np, _new))
