"""Fill a provisioned (stopped) Samba AD DC from a JSON spec on stdin.

Run with the *system* python3 (python3-samba is not importable from a venv):
    /usr/bin/python3 tests/samba_fill.py SMB_CONF < spec.json > ids.json

One process, one transaction, raw adds through Samba's Python bindings: about
2 ms per user, where `samba-tool user create` costs about 0.8 s per user.
Prints {sAMAccountName: [objectGUID, objectSid]} as Samba itself renders them,
so the tests compare syncd's decoding with Samba's, not with their own.
"""

from __future__ import annotations

import json
import sys

import ldb  # type: ignore[import-not-found]
from samba.auth import system_session  # type: ignore[import-not-found]
from samba.dcerpc import misc, security  # type: ignore[import-not-found]
from samba.ndr import ndr_unpack  # type: ignore[import-not-found]
from samba.param import LoadParm  # type: ignore[import-not-found]
from samba.samdb import SamDB  # type: ignore[import-not-found]

QUERY_POLICY = ("CN=Default Query Policy,CN=Query-Policies,CN=Directory Service,"
                "CN=Windows NT,CN=Services,{config}")


def main() -> None:
    spec = json.load(sys.stdin)
    lp = LoadParm()
    lp.load(sys.argv[1])
    db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
    db.transaction_start()
    try:
        for entry in spec["entries"]:
            db.add(entry)
        for account in spec["accounts"]:  # users that bind: need a real password
            db.newuser(account["name"], account["password"], userou=account["ou"],
                       surname=account["name"])
        set_max_val_range(db, spec["max_val_range"])
    except Exception:
        db.transaction_cancel()
        raise
    db.transaction_commit()
    ids = {}
    for msg in db.search(db.domain_dn(), scope=ldb.SCOPE_SUBTREE,
                         expression="(objectClass=user)",
                         attrs=["sAMAccountName", "objectGUID", "objectSid"]):
        guid = str(ndr_unpack(misc.GUID, msg["objectGUID"][0]))
        sid = str(ndr_unpack(security.dom_sid, msg["objectSid"][0]))
        ids[str(msg["sAMAccountName"][0])] = [guid, sid]
    json.dump(ids, sys.stdout)


def set_max_val_range(db: SamDB, value: int) -> None:
    """Replace MaxValRange in the default query policy's lDAPAdminLimits."""
    dn = QUERY_POLICY.format(config=db.get_config_basedn())
    limits = db.search(dn, scope=ldb.SCOPE_BASE, attrs=["lDAPAdminLimits"])[0]
    old = [str(v) for v in limits["lDAPAdminLimits"] if str(v).startswith("MaxValRange=")]
    msg = ldb.Message(ldb.Dn(db, dn))
    msg["del"] = ldb.MessageElement(old, ldb.FLAG_MOD_DELETE, "lDAPAdminLimits")
    db.modify(msg)
    msg = ldb.Message(ldb.Dn(db, dn))
    msg["add"] = ldb.MessageElement([f"MaxValRange={value}"], ldb.FLAG_MOD_ADD,
                                    "lDAPAdminLimits")
    db.modify(msg)


if __name__ == "__main__":
    main()
