"""Boards and what talks to them: serial links, flashing, the firmware image, the virtual board, packets and streams."""
