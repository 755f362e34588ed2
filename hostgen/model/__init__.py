"""The model: reading, lowering and compiling int8 .tflite models."""
