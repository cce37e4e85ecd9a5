"""Watching a deployed model: distribution-shift detection with alibi-detect."""
