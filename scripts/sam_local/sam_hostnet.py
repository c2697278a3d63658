"""`sam` with its Lambda containers on the host's network, for `make sam-local` (run it as the `sam` command).

    .venv/bin/python -m scripts.sam_local.sam_hostnet local invoke DeliveryFunction --env-vars ... -e ...

The functions must reach the local stack and the receivers on the host's 127.0.0.1, and the private dockerd of
`make sam-local` has no bridge network. `--docker-network host` does not do it: SAM publishes the emulator's port and
connects to it, which host networking ignores. So this changes three things in SAM CLI (pinned in
requirements-dev.txt: these are its internals) and nothing else:

- every Lambda container is created with ``network_mode=host`` and no published port; its runtime interface
  emulator listens on the loopback port SAM connects to, and its Runtime API on a free loopback port (not the fixed
  9001 that two containers, or another program of the host, would share);
- the ``--env-vars`` file's variables reach the function even when the template does not declare them (SAM passes
  only declared ones): ``AWS_ENDPOINT_URL`` and the tracing switches are local additions, not template variables;
- before a Lambda container is created, its final environment must pass ``confinement_problems`` (every AWS client
  on a loopback endpoint, tracing off, no proxy): host networking is not confined by dockerd's ``--bridge=none``.

SAM's once-a-week PyPI version check is skipped as well.
"""

from __future__ import annotations

import sys
from typing import Any

from docker.models.containers import ContainerCollection  # type: ignore[import-untyped]
from samcli.cli.main import cli  # type: ignore[import-untyped]
from samcli.lib.utils import version_checker  # type: ignore[import-untyped]
from samcli.local.docker.container import Container  # type: ignore[import-untyped]
from samcli.local.docker.lambda_container import LambdaContainer  # type: ignore[import-untyped]
from samcli.local.lambdafn.env_vars import EnvironmentVariables  # type: ignore[import-untyped]

from scripts.sam_local.environment import confinement_problems
from scripts.sam_local.system import free_loopback_port

__all__ = ["ConfinementError", "host_network_entrypoint", "install", "main"]

_RIE = "/var/rapid/aws-lambda-rie"


class ConfinementError(RuntimeError):
    """A Lambda container would run on the host's network with an environment that could leave loopback."""


def host_network_entrypoint(entrypoint: list[str], *, invoke_port: int, runtime_api_port: int) -> list[str]:
    """SAM's emulator entrypoint with both of its listeners on loopback ports of the host."""
    if not entrypoint or entrypoint[0] != _RIE:
        raise ConfinementError(f"unexpected Lambda container entrypoint {entrypoint!r} (debugging is not supported)")
    return [
        _RIE,
        "--runtime-interface-emulator-address",
        f"127.0.0.1:{invoke_port}",
        "--runtime-api-address",
        f"127.0.0.1:{runtime_api_port}",
        *entrypoint[1:],
    ]


def install() -> None:
    """Patch SAM CLI as the module docstring says."""
    create = Container.create
    create_in_docker = ContainerCollection.create
    resolve = EnvironmentVariables.resolve

    def create_on_host_network(self: Any, context: Any) -> Any:
        if isinstance(self, LambdaContainer):
            problems = confinement_problems(self._env_vars or {})
            if problems:
                raise ConfinementError("refusing to start a Lambda container: " + "; ".join(problems))
            self._entrypoint = host_network_entrypoint(
                list(self._entrypoint or []), invoke_port=self.rapid_port_host, runtime_api_port=free_loopback_port()
            )
            self._container_opts = {**(self._container_opts or {}), "network_mode": "host"}
            self._exposed_ports = None
        return create(self, context)

    def create_without_published_ports(self: Any, image: str, command: Any = None, **kwargs: Any) -> Any:
        if kwargs.get("network_mode") == "host":
            kwargs.pop("ports", None)  # docker-py refuses port bindings with host networking
        return create_in_docker(self, image, command, **kwargs)

    def resolve_with_file_variables(self: Any) -> dict[str, str]:
        result: dict[str, str] = resolve(self)
        for name, value in self.override_values.items():
            if name not in self.variables:
                result[name] = self._stringify_value(value)
        return result

    Container.create = create_on_host_network
    ContainerCollection.create = create_without_published_ports
    EnvironmentVariables.resolve = resolve_with_file_variables
    version_checker.fetch_and_compare_versions = lambda: None


def main() -> None:
    """Run the SAM CLI with the patches installed; arguments as for `sam`."""
    install()
    sys.exit(cli(prog_name="sam"))


if __name__ == "__main__":
    main()
