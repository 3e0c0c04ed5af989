"""The app's models."""
from .artifact import Artifact, ArtifactError, artifact_path
from .content import ContentUnit
from .remote import SECRET_FIELDS, Remote
from .task import PendingArtifactFile, SyncTask

__all__ = [
    "Artifact", "ArtifactError", "ContentUnit", "PendingArtifactFile", "Remote", "SECRET_FIELDS",
    "SyncTask", "artifact_path",
]
