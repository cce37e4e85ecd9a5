"""One Prefect task per pipeline stage: thin adapters that load inputs, call components, write
outputs and log to MLflow. Each module also runs alone (``python -m tasks.<stage>``) for ``dvc repro``.
"""
