"""Tests of controllers/garbagecollector."""
