"""CURVE keys for the robot server and its clients (ZeroMQ's CurveZMQ, elliptic-curve
authentication and encryption of every message).

A key folder made by ``init_keys`` (``robot-rl robot-server --init-keys DIR``) holds::

    DIR/server.key                      the server's public key: copy it to every client
    DIR/server.key_secret               the server's secret key: stays on the robot's computer
    DIR/client.key, client.key_secret   a client key pair: the client's secret stays with it
    DIR/authorized_clients/client.key   public keys of the clients the server accepts

The server loads ``server.key_secret`` and accepts exactly the clients whose public keys are
in ``authorized_clients/`` (add a client by copying its ``.key`` there); a client loads its
``client.key_secret`` and the server's ``server.key``. Secret files are created readable by
their owner only. The default folder is ``$ROBOT_RL_KEYS`` or ``~/.robot_rl/keys``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

AUTHORIZED = "authorized_clients"


def default_key_dir() -> Path:
    """``$ROBOT_RL_KEYS`` or ``~/.robot_rl/keys``."""
    return Path(os.environ.get("ROBOT_RL_KEYS", "~/.robot_rl/keys")).expanduser()


def require_curve() -> None:
    """Raise unless this libzmq supports CURVE (it must: the robot is never left unauthenticated)."""
    if not zmq.has("curve"):
        raise RuntimeError(
            "this libzmq was built without CURVE security, which the robot server requires; "
            "install a pyzmq wheel (they bundle libzmq with libsodium)"
        )


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair (Z85-encoded, 40 bytes each)."""

    public: bytes
    secret: bytes


@dataclass(frozen=True)
class ServerKeys:
    """What the server needs: its key pair and the folder of authorized client public keys."""

    pair: KeyPair
    authorized: Path


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs: its key pair and the server's public key."""

    pair: KeyPair
    server_public: bytes


def init_keys(directory: str | Path, client: str = "client") -> Path:
    """Create a server key pair, one client key pair, and authorize that client.

    Existing keys are never overwritten.

    Returns:
        The key folder.

    Raises:
        FileExistsError: the folder already holds server keys.
    """
    require_curve()
    directory = Path(directory).expanduser()
    if (directory / "server.key_secret").exists():
        raise FileExistsError(f"{directory} already holds server keys; not overwriting them")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    (directory / AUTHORIZED).mkdir(exist_ok=True)
    _, server_secret = zmq.auth.create_certificates(directory, "server")
    client_public, client_secret = zmq.auth.create_certificates(directory, client)
    for secret in (server_secret, client_secret):
        Path(secret).chmod(0o600)
    (directory / AUTHORIZED / f"{client}.key").write_bytes(Path(client_public).read_bytes())
    return directory


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise FileNotFoundError(
            f"key file {path} does not exist; create keys with `robot-rl robot-server --init-keys DIR`"
        )
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path} is not a CURVE key file: {err}") from err
    if secret and secret_key is None:
        raise ValueError(f"{path} holds no secret key")
    return public, secret_key


def load_server_keys(directory: str | Path) -> ServerKeys:
    """The server's keys from a key folder (see the module docstring)."""
    directory = Path(directory).expanduser()
    public, secret = _load(directory / "server.key_secret", secret=True)
    authorized = directory / AUTHORIZED
    if not authorized.is_dir():
        raise FileNotFoundError(f"no folder of authorized client keys at {authorized}")
    return ServerKeys(KeyPair(public, secret), authorized)


def load_client_keys(directory: str | Path, client: str = "client") -> ClientKeys:
    """A client's keys from a key folder (see the module docstring)."""
    directory = Path(directory).expanduser()
    public, secret = _load(directory / f"{client}.key_secret", secret=True)
    server_public, _ = _load(directory / "server.key", secret=False)
    return ClientKeys(KeyPair(public, secret), server_public)
