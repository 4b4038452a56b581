"""Tests of controllers/namespace."""
