"""Tests of controllers/podgc."""
