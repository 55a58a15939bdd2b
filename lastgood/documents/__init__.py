"""Document change tracking (``[[watch.document]]``): files, folders and URLs that matter.

Each document is read, normalized (:mod:`.normalize`), compared with its newest stored version
by content hash, and on a change stored with its diff (:mod:`.diff`) and announced as a
``document-changed`` event (:mod:`.tracker`). :mod:`.query` reads the history back. The
watcher calls :func:`track` every cycle; ``lastgood documents check`` and cron call
:func:`track_all`. See docs/documents.md.

The submodules ``normalize`` and ``diff`` each hold a function of their own name; import those
from the submodule (``from lastgood.documents.normalize import normalize``).
"""

from __future__ import annotations

from lastgood.documents.diff import DocumentDiff
from lastgood.documents.normalize import MODES
from lastgood.documents.tracker import (
    DocumentChange,
    DocumentResult,
    apply_retention,
    content_of,
    track,
    track_all,
)

__all__ = [
    "MODES",
    "DocumentChange",
    "DocumentDiff",
    "DocumentResult",
    "apply_retention",
    "content_of",
    "track",
    "track_all",
]
