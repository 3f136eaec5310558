"""Inference back-ends: each runs named graphs on tensors behind one small interface."""
