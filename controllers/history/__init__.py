"""ControllerRevision history shared by the StatefulSet and DaemonSet controllers.

`revisions` is pure (hashing, naming, ordering, equality); `api` makes the API calls.
"""

from controllers.history.api import (
    adopt_revision,
    create_revision,
    delete_revision,
    list_revisions,
    release_revision,
    update_revision_number,
)
from controllers.history.revisions import (
    HASH_LABEL,
    equal_revision,
    find_equal_revisions,
    new_revision,
    next_revision,
    owned_or_orphaned,
    raw_data,
    revision_hash,
    revision_name,
    revision_number,
    sort_revisions,
)

__all__ = [
    "HASH_LABEL", "adopt_revision", "create_revision", "delete_revision", "equal_revision", "find_equal_revisions",
    "list_revisions", "new_revision", "next_revision", "owned_or_orphaned", "raw_data", "release_revision",
    "revision_hash", "revision_name", "revision_number", "sort_revisions", "update_revision_number",
]
