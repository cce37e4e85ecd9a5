"""Fitting a network with PyTorch Lightning and scoring it."""
