"""Built-in similarity metrics (plugins)."""
