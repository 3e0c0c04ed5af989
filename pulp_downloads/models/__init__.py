"""The app's models."""
from .artifact import Artifact, ArtifactError, artifact_path
from .content import ContentUnit
from .remote import SECRET_FIELDS, Remote

__all__ = ["Artifact", "ArtifactError", "ContentUnit", "Remote", "SECRET_FIELDS", "artifact_path"]
