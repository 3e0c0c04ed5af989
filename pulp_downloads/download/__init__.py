"""The download library: fetch files through a Remote's settings, validate, and write them.

This package never imports the ORM: a :class:`DownloaderFactory` reads a Remote once into a
plain :class:`RemoteConfig` and everything below works on values. See
``docs/plugin-writers.md`` for the guide.
"""
from .addresses import DEFAULT_DENIED_NETWORKS, AddressPolicy
from .attempts import Attempt, ResumeFrom
from .base import BaseDownloader, OnHeaders, Progress, Validator
from .config import LibrarySettings, RemoteConfig, RemoteLike, RetryPolicy, Secret, Timeouts
from .events import Download, DownloadEvents
from .exceptions import (
    AddressNotAllowed,
    AnswerTooLarge,
    CallbackError,
    DigestValidationError,
    DownloadCanceled,
    DownloadError,
    DownloadTimeout,
    DownloadValidationError,
    HttpError,
    IncompleteDownload,
    InvalidHeader,
    InvalidResponse,
    NetworkError,
    NotAuthorized,
    NotFound,
    SizeValidationError,
    TLSError,
    TokenError,
    UnsupportedDigest,
    UnsupportedURL,
    WriterError,
)
from .factory import DownloaderFactory, FactoryDefaults, install_defaults
from .file import FileDownloader
from .group import GroupDownloader, GroupReport
from .http import HttpDownloader
from .result import DownloadResult, HeadResult
from .sink import ArtifactSink, SinkRequest, WriterChoice
from .writers import (CannotRestart, MemoryWriter, NullWriter, StreamWriter, TeeWriter,
                      TempFileWriter, Writer)

__all__ = [
    "DEFAULT_DENIED_NETWORKS", "AddressNotAllowed", "AddressPolicy", "AnswerTooLarge",
    "ArtifactSink", "Attempt", "BaseDownloader", "CallbackError", "CannotRestart",
    "DigestValidationError", "Download", "DownloadCanceled", "DownloadError", "DownloadEvents",
    "DownloadResult", "DownloadTimeout", "DownloadValidationError", "DownloaderFactory",
    "FactoryDefaults", "FileDownloader", "GroupDownloader", "GroupReport", "HeadResult",
    "HttpDownloader", "HttpError", "IncompleteDownload", "InvalidHeader", "InvalidResponse",
    "LibrarySettings", "MemoryWriter", "NetworkError", "NotAuthorized", "NotFound",
    "NullWriter", "OnHeaders", "Progress", "RemoteConfig", "RemoteLike", "ResumeFrom",
    "RetryPolicy", "Secret", "SinkRequest", "SizeValidationError", "StreamWriter", "TLSError",
    "TeeWriter", "TempFileWriter", "Timeouts", "TokenError", "UnsupportedDigest",
    "UnsupportedURL", "Validator", "Writer", "WriterChoice", "WriterError", "install_defaults",
]
