"""Bundled ONNX models (installed as ``streamgenre.models``); see README.md here."""
