"""Small tools every layer uses: atomic writes, code-keyed caches, finding installed commands."""
