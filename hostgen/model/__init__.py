"""The int8 model: reading .tflite files, the TFLM op table, the arena, the budget, quantization, the reference model."""
