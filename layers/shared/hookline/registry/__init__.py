"""The endpoint registry (EndpointsTable): model, item mapping and store, re-exported here.

- ``model``: Endpoint, HealthCheck, HealthStatus and the contract's constants (no I/O);
- ``items``: registry item <-> Endpoint (parse, serialise, scan-and-split of raw items);
- ``policy``: WritePolicy and check_endpoint, the one validation path of registry writes (network guard, prefix);
- ``store``: EndpointRegistry, the DynamoDB repository on an injected client;
- ``errors``: RegistryError and its subclasses (drawn in hookline/exceptions.py's tree).
"""

from __future__ import annotations

from hookline.registry.errors import (
    EndpointExistsError,
    EndpointNotFoundError,
    RegistryError,
    RegistryItemError,
    RegistryUnavailableError,
    SecretPrefixError,
    TargetNotAllowedError,
)
from hookline.registry.items import (
    InvalidItem,
    ItemScan,
    check_item,
    endpoint_from_item,
    endpoint_to_item,
    item_name,
    split_items,
    validate_name,
)
from hookline.registry.model import (
    DEFAULT_SECRET_PREFIX,
    DEFAULT_SERVICE_TYPE,
    DEFAULT_TIMEOUT_S,
    MAX_TIMEOUT_S,
    SCHEMES,
    Endpoint,
    HealthCheck,
    HealthState,
    HealthStatus,
    Scheme,
)
from hookline.registry.policy import MAX_URL_LENGTH, WritePolicy, check_endpoint
from hookline.registry.store import UPDATABLE_FIELDS, EndpointRegistry

__all__ = [
    "DEFAULT_SECRET_PREFIX",
    "DEFAULT_SERVICE_TYPE",
    "DEFAULT_TIMEOUT_S",
    "MAX_TIMEOUT_S",
    "MAX_URL_LENGTH",
    "SCHEMES",
    "UPDATABLE_FIELDS",
    "Endpoint",
    "EndpointExistsError",
    "EndpointNotFoundError",
    "EndpointRegistry",
    "HealthCheck",
    "HealthState",
    "HealthStatus",
    "InvalidItem",
    "ItemScan",
    "RegistryError",
    "RegistryItemError",
    "RegistryUnavailableError",
    "Scheme",
    "SecretPrefixError",
    "TargetNotAllowedError",
    "WritePolicy",
    "check_endpoint",
    "check_item",
    "endpoint_from_item",
    "endpoint_to_item",
    "item_name",
    "split_items",
    "validate_name",
]
