"""``atelier keys``: manage the API keys file (``ATELIER_API_KEYS_FILE``) of ``atelier serve``.

``new NAME`` prints a fresh key once, on stdout alone (``KEY=$(atelier keys new alice)``), and appends only
its SHA-256 to the file; ``list`` shows names and limits; ``revoke NAME`` removes a line. A running server
picks up the change on SIGHUP (``kill -HUP <pid>``), without a restart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.cli.common import add_json_arg, print_json, print_table, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys (the server's ATELIER_API_KEYS_FILE)")
    actions = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    new = actions.add_parser("new", help="make a key, print it once, append its hash to the keys file")
    new.add_argument("name", help="the key's name: what logs and metrics show (letters, digits, _ . -)")
    _add_file_arg(new)
    new.add_argument(
        "--rps", type=float, default=None, help="requests per second (default: ATELIER_DEFAULT_KEY_RPS)"
    )
    new.add_argument("--burst", type=int, default=None, help="requests at once above the rate (needs --rps)")
    new.set_defaults(func=run_new)

    ls = actions.add_parser("list", help="the keys file's names and limits (never keys)")
    _add_file_arg(ls)
    add_json_arg(ls, "the keys")
    ls.set_defaults(func=run_list)

    revoke = actions.add_parser("revoke", help="remove a key from the keys file (SIGHUP the server after)")
    revoke.add_argument("name", help="the key's name")
    _add_file_arg(revoke)
    revoke.set_defaults(func=run_revoke)


def _add_file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file", type=Path, default=None, help="the keys file (default: ATELIER_API_KEYS_FILE)"
    )


def _keys_file(args: argparse.Namespace) -> Path:
    if args.file is not None:
        path: Path = args.file
        return path
    configured = settings_from_args(args).api_keys_file
    if configured is None:
        raise ValueError("no keys file: pass --file FILE or set ATELIER_API_KEYS_FILE")
    return configured


def run_new(args: argparse.Namespace) -> int:
    from service.server.auth.keys import KeyEntry, append_key, check_limits, check_name, digest_of, new_key

    path = _keys_file(args)
    check_name(args.name)
    check_limits(args.rps, args.burst)
    key = new_key()
    append_key(path, KeyEntry(args.name, digest_of(key), args.rps, args.burst))
    print(key)
    print(
        f"atelier: key {args.name!r} added to {path}; it is shown only this once. "
        "A running server loads it on SIGHUP.",
        file=sys.stderr,
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    from service.server.auth.keys import read_keys

    entries = read_keys(_keys_file(args))
    rows = [
        {
            "name": e.name,
            "rps": e.rps,  # None: the server's default
            "burst": e.burst,
            "sha256_prefix": e.digest.hex()[:12],  # to match a line by eye; not enough to find the key
        }
        for e in entries
    ]
    if args.json:
        print_json({"keys": rows})
        return 0

    def shown(value: object) -> str:
        return "default" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    table = [[str(r["name"]), shown(r["rps"]), shown(r["burst"]), str(r["sha256_prefix"])] for r in rows]
    print_table(["NAME", "RPS", "BURST", "SHA256"], table)
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from service.server.auth.keys import remove_key

    path = _keys_file(args)
    remove_key(path, args.name)
    print(f"atelier: key {args.name!r} removed from {path}; SIGHUP the server to apply it.", file=sys.stderr)
    return 0
