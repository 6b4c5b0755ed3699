"""Classifiers behind one protocol, built by kind from a model config."""

from __future__ import annotations

from energy_hpc.classifiers.base import Classifier, ClassifierContext, Prediction, build_classifier

__all__ = ["Classifier", "ClassifierContext", "Prediction", "build_classifier"]
