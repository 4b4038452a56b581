"""Tests of controllers/serviceaccount."""
