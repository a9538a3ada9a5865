"""SageMaker entry points: ``train.py`` (script-mode training) and ``inference.py`` (serving)."""
