"""BMIKE-53 on disk: the language codes, reading the official layout, and downloading it."""
