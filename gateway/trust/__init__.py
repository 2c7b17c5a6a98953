"""Data trust: freshness manifests of answers (``manifest``), OpenLineage run events (``lineage``, sent by
``emitter`` asynchronously), and the engine's hook that records both (``recorder.Trust``)."""

from gateway.trust.manifest import Manifest, ManifestStore
from gateway.trust.recorder import Trust

__all__ = ["Manifest", "ManifestStore", "Trust"]
