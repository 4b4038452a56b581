"""Tests of the controller-manager loops, one package per controller."""
