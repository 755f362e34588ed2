"""The faultline int8 engine: a .tflite model compiled offline into a numpy reference,
plain C99 and an allocation-free MicroPython module, bit-exact with TFLM's reference kernels.
"""

TFLM_VERSION = "tflite-micro 0.dev20261023182759"  # the PyPI build whose reference kernels the engine matches (pyproject pins it)
