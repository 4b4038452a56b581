"""PATCH semantics: JSON patch, JSON merge patch, strategic merge patch, server-side apply."""
