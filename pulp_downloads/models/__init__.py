"""The app's models: plain rows, no storing, syncing or downloading logic."""
from .artifact import Artifact
from .content import ContentFlight, ContentUnit
from .remote import SECRET_FIELDS, Remote
from .task import PendingArtifactFile, SyncTask
from .worker import Worker

__all__ = ["Artifact", "ContentFlight", "ContentUnit", "PendingArtifactFile", "Remote", "SECRET_FIELDS", "SyncTask",
           "Worker"]
