"""Google Cloud Storage locations of the Parquet and CSV kinds: ``path = "gs://bucket/prefix"``.

Everything goes through pyarrow's ``GcsFileSystem`` (GCS's JSON API): listing, Parquet footers, and the reads of
a query, which DataFusion runs over a pyarrow dataset of the listed objects (``dataset``; DataFusion pushes its
projection and filters into it, and the Hive partition values of each object prune whole objects).

Why not DataFusion's own GCS store (``datafusion.object_store.GoogleCloud``, the ``object_store`` crate), as for
S3 and Azure: it speaks GCS's XML API, and DataFusion opens a table with requests that the one GCS emulator
installable here (``gcp-storage-emulator``, PyPI) does not serve, so it could not be tested (tried with the store
pointed at the emulator by a service-account file with ``gcs_base_url`` and ``disable_oauth``):

- a folder table lists with ``GET /<bucket>?list-type=2&prefix=<key>/`` -> ``501 Not Implemented`` (the emulator
  routes ``/<bucket>/<object>`` only);
- a one-object table is opened with ``HEAD /<bucket>/<object>`` -> ``501 Unsupported method ('HEAD')``.

(fake-gcs-server, tried earlier, answered the XML listing with 404.) The JSON API that pyarrow uses is served, so
that is what is tested; a non-recursive listing there gets no folder prefixes back from the emulator, so ``list``
always lists recursively and derives the folders from the keys (one request per page either way).

Settings: ``endpoint`` (``http://127.0.0.1:4443`` for an emulator; plain HTTP when it says ``http:``),
``anonymous`` (no credentials: public buckets, emulators), ``credentials_file`` (a service-account key file;
else ``GOOGLE_APPLICATION_CREDENTIALS``, else Google's default credential chain: metadata server, gcloud).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from connectors.objectstore_base import GCS_SCHEMES, ObjectStore

#: GCS options a source with a ``gs://`` path may set; each falls back to the environment variable beside it
GCS_OPTIONS: dict[str, tuple[str, ...]] = {
    "endpoint": ("STORAGE_EMULATOR_HOST",),
    "credentials_file": ("GOOGLE_APPLICATION_CREDENTIALS",),
}
#: how long pyarrow's GCS client retries one call before it fails (its default is 15 minutes)
RETRY_S = 5.0

_ENV_LOCK = threading.Lock()  # the GCS client takes a key file from the environment only


@dataclass(frozen=True)
class GcsStore(ObjectStore):
    """A ``gs://bucket/prefix`` location (Google Cloud Storage, or an emulator given as ``endpoint``).

    Attributes (besides ``ObjectStore``'s):
        credentials_file: path of a service-account JSON key file; None for the default chain.
        anonymous: send no credentials at all (public buckets, emulators).
    """

    credentials_file: str | None = None
    anonymous: bool = False

    scheme: ClassVar[str] = "gs"
    url_schemes: ClassVar[tuple[str, ...]] = GCS_SCHEMES
    native_reads: ClassVar[bool] = False

    @classmethod
    def from_url(cls, parsed: Any, options: dict[str, Any]) -> GcsStore:
        """The location of a parsed ``gs://bucket/prefix`` URL with the source's options or the environment
        (``STORAGE_EMULATOR_HOST`` may be a bare ``host:port``, as Google's clients take it)."""
        settings = {key: options.get(key) or next((os.environ[e] for e in env if os.environ.get(e)), None)
                    for key, env in GCS_OPTIONS.items()}
        endpoint = settings["endpoint"]
        if endpoint and "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        anonymous = str(options.get("anonymous", False)).lower() in ("true", "1")
        return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"), endpoint=endpoint,
                   credentials_file=settings["credentials_file"], anonymous=anonymous)

    @functools.cached_property
    def filesystem(self) -> pafs.GcsFileSystem:
        """pyarrow's GCS filesystem over this location's endpoint, retrying a call at most ``RETRY_S`` seconds.
        A ``credentials_file`` is read by the GCS client as it is built (set as ``GOOGLE_APPLICATION_CREDENTIALS``
        for that moment, under a lock)."""
        kwargs: dict[str, Any] = {"anonymous": self.anonymous, "retry_time_limit": dt.timedelta(seconds=RETRY_S)}
        if self.endpoint:
            endpoint = urlparse(self.endpoint)
            kwargs.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme or "https")
        if self.anonymous or not self.credentials_file:
            return pafs.GcsFileSystem(**kwargs)
        with _ENV_LOCK:
            saved = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
            os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = self.credentials_file
            try:
                return pafs.GcsFileSystem(**kwargs)
            finally:
                if saved is None:
                    os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
                else:
                    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = saved

    def list(self, *parts: str, recursive: bool = True) -> list[pafs.FileInfo]:
        """As ``ObjectStore.list``, from one recursive listing: without ``recursive`` the objects directly below
        and the folders implied by deeper keys. Raises OSError (also for credentials the client cannot use)."""
        try:
            infos = super().list(*parts, recursive=True)
        except OSError:
            raise
        except pa.ArrowException as exc:  # e.g. ArrowInvalid for a key file the client cannot use
            raise OSError(str(exc)) from exc
        if recursive:
            return infos
        base = self.key(*parts)
        out: dict[str, pafs.FileInfo] = {}
        for info in infos:
            rest = info.path[len(base):].lstrip("/")
            if "/" not in rest:
                out[info.path] = info
            else:
                folder = f"{base}/{rest.split('/', 1)[0]}"
                out.setdefault(folder, pafs.FileInfo(folder, pafs.FileType.Directory))
        return sorted(out.values(), key=lambda info: info.path)

    def register(self, ctx: Any) -> None:
        """Nothing: DataFusion reads this location's tables through pyarrow datasets (``dataset``)."""

    def dataset(self, files: list[Any], folder: Any, partition_columns: list[tuple[str, pa.DataType]],
                extension: str, options: dict[str, Any]) -> ds.Dataset:
        """A pyarrow dataset of ``files`` (``ObjectPath``s of one table) read through ``filesystem``; the Hive
        ``partition_columns`` (name, type) are parsed from the keys below ``folder`` (the table's folder).
        ``extension``: ``.parquet``, or ``.csv`` read with the source's ``has_header`` and ``delimiter``."""
        file_format: ds.FileFormat = ds.ParquetFileFormat()
        if extension == ".csv":
            file_format = ds.CsvFileFormat(
                parse_options=pcsv.ParseOptions(delimiter=str(options.get("delimiter", ","))),
                read_options=pcsv.ReadOptions(autogenerate_column_names=not options.get("has_header", True)))
        paths = [self.key(f.key) for f in files]
        if not partition_columns:
            return ds.dataset(paths, filesystem=self.filesystem, format=file_format)
        partitioning = ds.partitioning(pa.schema(partition_columns), flavor="hive")
        return ds.dataset(paths, filesystem=self.filesystem, format=file_format, partitioning=partitioning,
                          partition_base_dir=self.key(folder.key))
