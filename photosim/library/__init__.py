"""The application layer: the product's use cases as one API for the command line and the app.

:class:`Library` is one photo library (one catalog file) and what a person does with it: add,
protect and remove folders; scan; group duplicates; find similar photos; tag photos and find
them by words; plan, run and undo a cleanup; list the history; describe the library; evaluate
it against ground truth. The command line (:mod:`photosim.cli`) and the desktop app
(:mod:`photosim.gui`) call only this package, :mod:`photosim.config` and the types re-exported
here; an import-linter contract keeps them from reaching into :mod:`photosim.core` themselves,
so each use case is written once. :mod:`photosim.library.cluster` embeds archives too big
for one desktop on a Ray cluster, in Parquet shards that :meth:`Library.attach_shards` imports.

Long work (scan, cleanup) is a generator that yields :class:`Progress` and honours a
:class:`CancelToken`, driven by a progress bar in the CLI and by a worker thread in the app.
"""

from __future__ import annotations

from photosim.core.cancel import CancelToken
from photosim.core.catalog import STATUS_OK, CatalogError, CatalogVersionError, Photo
from photosim.core.cleanup import (
    QUARANTINE_DIRNAME,
    CleanupError,
    CleanupPlan,
    CleanupResult,
    SessionInfo,
    UndoResult,
)
from photosim.core.dedup.grouping import (
    TIERS,
    DuplicatesError,
    Group,
    GroupingResult,
    GroupingSession,
    Member,
)
from photosim.core.dedup.keeper import RULES
from photosim.core.errors import explain
from photosim.core.evaluate import Truth, TruthError, load_truth
from photosim.core.index.learned import LearnError, Projection
from photosim.core.index.vectors import HASH_MODEL
from photosim.core.scan.imageio import SNIFF_BYTES, open_upright, sniff
from photosim.core.search import Hit, SearchError, SearchResult
from photosim.core.tags import (
    STOP_WORDS,
    TAG_FLOOR,
    ImageTags,
    Tag,
    TagHit,
    TagQueryError,
    TagSearchError,
    TagSearchResult,
)
from photosim.core.textsearch import MODES as SEARCH_MODES
from photosim.core.types import (
    Embedder,
    Error,
    Progress,
    ScanStage,
    ScanSummary,
    TextImageEmbedder,
)
from photosim.library.cluster import (
    AttachSummary,
    ClusterError,
    ClusterOptions,
    IndexSummary,
    ShardsFailedError,
    index_shards,
)
from photosim.library.library import Library, load_embedder, pca_min_descriptors

__all__ = [
    "HASH_MODEL",
    "QUARANTINE_DIRNAME",
    "RULES",
    "SEARCH_MODES",
    "SNIFF_BYTES",
    "STATUS_OK",
    "STOP_WORDS",
    "TAG_FLOOR",
    "TIERS",
    "AttachSummary",
    "CancelToken",
    "CatalogError",
    "CatalogVersionError",
    "CleanupError",
    "ClusterError",
    "ClusterOptions",
    "CleanupPlan",
    "CleanupResult",
    "DuplicatesError",
    "Embedder",
    "Error",
    "Group",
    "GroupingResult",
    "GroupingSession",
    "Hit",
    "ImageTags",
    "IndexSummary",
    "LearnError",
    "Library",
    "Member",
    "Photo",
    "Progress",
    "Projection",
    "ScanStage",
    "ScanSummary",
    "SearchError",
    "SearchResult",
    "SessionInfo",
    "ShardsFailedError",
    "Tag",
    "TagHit",
    "TagQueryError",
    "TagSearchError",
    "TagSearchResult",
    "TextImageEmbedder",
    "Truth",
    "TruthError",
    "UndoResult",
    "explain",
    "index_shards",
    "load_embedder",
    "load_truth",
    "open_upright",
    "pca_min_descriptors",
    "sniff",
]
