"""Shared builders for the hostile-input tests: valid files of each format, payload files and mutations."""
