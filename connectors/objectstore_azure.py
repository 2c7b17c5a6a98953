"""Azure Blob Storage locations: ``az://container/prefix`` (also ``azure://`` and
``abfs[s]://container@account.dfs.core.windows.net/prefix``) for every source kind; see ``connectors.objectstore``
for what a store hands each library. Azurite (Microsoft's emulator) is what the tests run against."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlparse

import pyarrow.fs as pafs

from connectors.objectstore_base import AZURE_SCHEMES, ObjectStore, setting

#: Azure options a source with an ``az://`` path may set; each falls back to the first environment variable set
#: among those named beside it (object_store's names first, then the Azure CLI's)
AZURE_OPTIONS: dict[str, tuple[str, ...]] = {
    "endpoint": ("AZURE_STORAGE_ENDPOINT",),
    "account_name": ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"),
    "account_key": ("AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_KEY"),
    "sas_token": ("AZURE_STORAGE_SAS_TOKEN",),
    "client_id": ("AZURE_CLIENT_ID",),
    "client_secret": ("AZURE_CLIENT_SECRET",),
    "tenant_id": ("AZURE_TENANT_ID",),
}

_ENV_LOCK = threading.Lock()  # DataFusion's Azure store takes a custom endpoint from the environment only


@dataclass(frozen=True)
class AzureStore(ObjectStore):
    """An ``az://container/prefix`` location in an Azure storage account (or an emulator such as Azurite).

    Attributes (besides ``ObjectStore``'s; ``bucket`` is the container):
        account_name: the storage account (required: from the option, the ``abfs://`` URL's host or
            ``AZURE_STORAGE_ACCOUNT_NAME``).
        account_key, sas_token: a shared key or a SAS token (``sv=...&sig=...``); at most one.
        client_id, client_secret, tenant_id: a service principal (all three); with none of these the default
            credential chain (managed identity, environment) is used.
        endpoint: the Blob service URL, path-style, as in a connection string's ``BlobEndpoint``
            (``http://127.0.0.1:10000/devstoreaccount1``; ``/<account>`` is added when the URL has no path);
            None for ``https://<account>.blob.core.windows.net``.
    """

    account_name: str = ""
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    tenant_id: str | None = None

    scheme: ClassVar[str] = "az"
    url_schemes: ClassVar[tuple[str, ...]] = AZURE_SCHEMES
    noun: ClassVar[str] = "container"

    @classmethod
    def from_url(cls, parsed: Any, options: dict[str, Any]) -> AzureStore:
        """The location of a parsed ``az://container/prefix`` or ``abfs[s]://container@account.dfs.../prefix``
        URL. Raises ValueError when no account is named or both a key and a SAS token are given."""
        settings = {key: setting(options, key, *env) for key, env in AZURE_OPTIONS.items()}
        container, _, host = parsed.netloc.partition("@")
        if host and not options.get("account_name"):
            settings["account_name"] = host.split(".", 1)[0]
        if not settings["account_name"]:
            raise ValueError("an az:// path needs the storage account: set account_name (or "
                             "AZURE_STORAGE_ACCOUNT_NAME)")
        if settings["account_key"] and settings["sas_token"]:
            raise ValueError("account_key and sas_token are exclusive; set one")
        endpoint = settings["endpoint"]
        if endpoint and not urlparse(endpoint).path.strip("/"):
            settings["endpoint"] = endpoint.rstrip("/") + "/" + settings["account_name"]
        return cls(bucket=container, prefix=parsed.path.strip("/"), **settings)

    @functools.cached_property
    def filesystem(self) -> pafs.AzureFileSystem:
        """A pyarrow Azure filesystem over this account (its Blob endpoint when one is set)."""
        kwargs: dict[str, Any] = {}
        if self.endpoint:
            endpoint = urlparse(self.endpoint)
            kwargs.update(blob_storage_authority=endpoint.netloc, blob_storage_scheme=endpoint.scheme,
                          dfs_storage_authority=endpoint.netloc, dfs_storage_scheme=endpoint.scheme)
        if self.account_key:
            kwargs["account_key"] = self.account_key
        elif self.sas_token:
            kwargs["sas_token"] = self.sas_token.lstrip("?")
        elif self.client_id and self.client_secret and self.tenant_id:
            kwargs.update(client_id=self.client_id, client_secret=self.client_secret, tenant_id=self.tenant_id)
        return pafs.AzureFileSystem(self.account_name, **kwargs)

    def datafusion_store(self) -> Any:
        """DataFusion's ``MicrosoftAzure`` object store for this container. The binding takes no endpoint,
        but reads ``AZURE_STORAGE_ENDPOINT`` from the environment when it builds the store (object_store's
        ``from_env``), so a custom endpoint is set there for that moment, under a lock."""
        from datafusion.object_store import MicrosoftAzure  # only object-store sources load the bindings

        kwargs: dict[str, Any] = {"account": self.account_name, "access_key": self.account_key}
        if self.sas_token:
            kwargs["sas_query_pairs"] = parse_qsl(self.sas_token.lstrip("?"), keep_blank_values=True)
        if self.client_id and self.client_secret and self.tenant_id:
            kwargs.update(client_id=self.client_id, client_secret=self.client_secret, tenant_id=self.tenant_id)
        if self.endpoint:
            kwargs["allow_http"] = self.endpoint.startswith("http:")
        with _ENV_LOCK:
            saved = os.environ.get("AZURE_STORAGE_ENDPOINT")
            try:
                if self.endpoint:
                    os.environ["AZURE_STORAGE_ENDPOINT"] = self.endpoint
                return MicrosoftAzure(container_name=self.bucket, **kwargs)
            finally:
                if saved is None:
                    os.environ.pop("AZURE_STORAGE_ENDPOINT", None)
                else:
                    os.environ["AZURE_STORAGE_ENDPOINT"] = saved

    def storage_options(self) -> dict[str, str]:
        """The settings under delta-rs's (object_store crate's) names; an endpoint is used as given
        (path-style, with the account), over plain HTTP when it says ``http:``."""
        options = {"azure_storage_account_name": self.account_name}
        for name, value in (("azure_storage_account_key", self.account_key),
                            ("azure_storage_sas_token", self.sas_token.lstrip("?") if self.sas_token else None),
                            ("azure_client_id", self.client_id), ("azure_client_secret", self.client_secret),
                            ("azure_tenant_id", self.tenant_id), ("azure_storage_endpoint", self.endpoint)):
            if value:
                options[name] = value
        if self.endpoint and self.endpoint.startswith("http:"):
            options["allow_http"] = "true"
        return options

    def iceberg_warehouse(self) -> str:
        """``abfs://container/prefix``: the warehouse URL pyiceberg's pyarrow FileIO reads (it knows no ``az://``;
        with the account in the URL's host it would take ``container@account...`` for the container)."""
        return "abfs://" + self.key()

    def iceberg_properties(self) -> dict[str, str]:
        """The settings under pyiceberg's names (``adls.*``), with its pyarrow FileIO chosen (``AzureFileSystem``;
        for ``abfs://`` pyiceberg would otherwise prefer fsspec's, which needs adlfs)."""
        props = {"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO", "adls.account-name": self.account_name}
        if self.endpoint:
            endpoint = urlparse(self.endpoint)
            props.update({"adls.blob-storage-authority": endpoint.netloc, "adls.blob-storage-scheme": endpoint.scheme,
                          "adls.dfs-storage-authority": endpoint.netloc, "adls.dfs-storage-scheme": endpoint.scheme})
        for name, value in (("adls.account-key", self.account_key),
                            ("adls.sas-token", self.sas_token.lstrip("?") if self.sas_token else None),
                            ("adls.client-id", self.client_id), ("adls.client-secret", self.client_secret),
                            ("adls.tenant-id", self.tenant_id)):
            if value:
                props[name] = value
        return props
