"""An LDAP read in Python and nothing else: syncd's python-ldap backend paging through a search.

    python bench/ldap_pager.py URL BIND_DN PASSWORD BASE FILTER ATTRIBUTE...

Connects, binds and pages through the search exactly as an LDAP source does (page
size 1000, the next page asked for before this one is handed over), but builds no
record, maps no one and plans nothing; prints the number of entries. bench_sync.py
runs it as a whole process beside `ldapsearch` and `syncd once`: its CPU is what
any Python reader over python-ldap pays (libldap, and the entries built as Python
objects); syncd's CPU beyond it is syncd's own work.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncd.sources.ldap.backends import ConnectSettings, connect


def main(argv: list[str]) -> int:
    url, bind_dn, password, base, search_filter, *attributes = argv
    settings = ConnectSettings(url=url, start_tls=False, ca_file=None, tls_verify=True,
                               tls_strict=True, connect_timeout=10.0, timeout=600.0)
    conn = connect("python-ldap", settings)
    conn.bind(bind_dn, password)
    entries = sum(len(page.entries) for page in
                  conn.search(base, "subtree", search_filter, attributes, 1000))
    conn.close()
    print(entries)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
