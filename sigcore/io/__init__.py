"""Built-in file formats (reader and writer plugins)."""
