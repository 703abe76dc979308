"""``POST /agents/test_db_connection``: can ExeSQL reach this database? (ragflow's editor asks it.)

The host goes through the SSRF guard with the server's HTTP policy, as ExeSQL's own connections
do (:func:`taskcanvas.tools.http.check_host`), and the connection goes to the checked address.
PostgreSQL through asyncpg, MySQL / MariaDB / OceanBase through aiomysql, then ``SELECT 1``.
ragflow's other types (mssql, IBM DB2, trino) are refused: ExeSQL does not run them either.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from taskcanvas.api.deps import PrincipalDep, ServicesDep
from taskcanvas.api.ragflow._common import json_result, read_json, refuse, require_fields
from taskcanvas.tools.http import HttpPolicy, SsrfBlocked, check_host

_log = logging.getLogger(__name__)

router = APIRouter(tags=["ragflow: agents"])

_MYSQL_FAMILY: Final = ("mysql", "mariadb", "oceanbase")
_TIMEOUT: Final = 10.0


@router.post("/agents/test_db_connection", summary="Connect to a database as ExeSQL would")
async def test_db_connection(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    body = await read_json(request)
    require_fields(body, "db_type", "database", "username", "host", "port", "password")
    db_type = str(body["db_type"])
    if db_type != "postgres" and db_type not in _MYSQL_FAMILY:
        raise refuse(100, "Unsupported database type.", with_data=True)
    try:
        port = int(body["port"])
    except (TypeError, ValueError):
        raise refuse(101, f"port must be a number, got {body['port']!r}") from None
    host = str(body["host"] or "").strip()
    try:
        addresses = await check_host(host, HttpPolicy.from_settings(services.settings), port)
    except SsrfBlocked as e:
        _log.warning("test_db_connection refused host %r: %s", host, e.reason)
        if "could not resolve" in e.reason:
            raise refuse(102, f"Could not resolve host {host!r}.") from None
        raise refuse(102, f"Database host '{host}' is not allowed: {e.reason}") from None
    failure: BaseException | None = None
    for address in addresses:
        try:
            await _select_one(db_type, address, port, body)
            return json_result("Database Connection Successful!")
        except asyncio.CancelledError:
            raise
        except Exception as e:
            failure = e
    raise refuse(100, repr(failure), with_data=True)


async def _select_one(db_type: str, address: str, port: int, body: dict[str, Any]) -> None:
    user, password, database = str(body["username"]), str(body["password"] or ""), str(body["database"])
    if db_type == "postgres":
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(host=address, port=port, user=user, password=password or None,
                                     database=database, timeout=_TIMEOUT)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
        return
    import aiomysql  # type: ignore[import-untyped]

    conn = await aiomysql.connect(host=address, port=port, user=user, password=password, db=database,
                                  charset="utf8mb4", connect_timeout=_TIMEOUT)
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("SELECT 1")
    finally:
        conn.close()
