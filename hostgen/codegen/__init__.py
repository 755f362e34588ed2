"""Generating a board's build: templates, the one build/rebuild path, board families, and the build report."""
