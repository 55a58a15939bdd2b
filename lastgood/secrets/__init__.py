"""Secrets never travel with a diff: what is secret, how it is masked, and what looks like one.

- :mod:`.policy` reads ``[secrets]`` from ``lastgood.toml`` (key names, whole files, JSONPath-like
  selectors). It is small and is imported only when that table is written, so a rollback
  never pays for the rest of the package.
- :mod:`.values` finds the secret values in one file's text; :mod:`.mask` replaces them with
  markers in content views and diffs, consistently within one view.
- :mod:`.scan` finds what looks like a live credential outside a marked key, for the warning
  ``snapshot`` prints.

The store always keeps the real bytes: masking happens only where content is shown.
"""
