"""faultline host toolchain: model, arena, code generation, flashing and serial tools."""

__version__ = "0.1.0"
