"""The download library: fetch files through a Remote's settings, validate, and write them.

This package never imports the ORM: a :class:`DownloaderFactory` reads a Remote once into a
plain :class:`RemoteConfig` and everything below works on values. See
``docs/plugin-writers.md`` for the guide.
"""
from .addresses import DEFAULT_DENIED_NETWORKS, AddressPolicy
from .base import BaseDownloader
from .config import LibrarySettings, RemoteConfig, RetryPolicy, Secret, Timeouts
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
from .writers import CannotRestart, MemoryWriter, NullWriter, StreamWriter, TeeWriter, TempFileWriter, Writer

__all__ = [
    "AddressNotAllowed", "AddressPolicy", "AnswerTooLarge", "CallbackError", "TokenError", "DEFAULT_DENIED_NETWORKS", "BaseDownloader", "CannotRestart", "DigestValidationError", "DownloadCanceled", "DownloadError",
    "DownloadResult", "DownloadTimeout", "DownloadValidationError", "DownloaderFactory", "FactoryDefaults", "install_defaults",
    "FileDownloader", "GroupDownloader", "GroupReport", "HeadResult", "HttpDownloader",
    "HttpError", "IncompleteDownload", "InvalidHeader", "InvalidResponse", "LibrarySettings", "MemoryWriter", "NetworkError", "NotAuthorized",
    "NotFound", "NullWriter", "RemoteConfig", "RetryPolicy", "Secret", "SizeValidationError",
    "StreamWriter", "TLSError", "TeeWriter", "TempFileWriter", "Timeouts", "UnsupportedDigest",
    "UnsupportedURL", "Writer", "WriterError",
]
