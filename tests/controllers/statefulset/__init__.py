"""StatefulSet controller: identity, ordering, scaling, updates, revisions, claims."""
