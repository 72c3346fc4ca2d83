#!/usr/bin/env python3
"""Generate oe-core.tar.gz, an OpenEmbedded-style root filesystem tarball: a setuid
binary, a hardlink, a symlink, a shared library and files owned by a non-root user."""
import io, sys, tarfile, os

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "oe-core.tar.gz")

def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime, ti.linkname = kind, mode, uid, gid, 1700000000, link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    return ti, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)

entries = [
    entry("./usr", tarfile.DIRTYPE, mode=0o755),
    entry("./usr/bin", tarfile.DIRTYPE, mode=0o755),
    entry("./usr/bin/oe-su", data=b"#!/bin/sh\necho setuid tool\n", mode=0o4755),
    entry("./usr/bin/oe-su-alias", tarfile.LNKTYPE, link="./usr/bin/oe-su"),
    entry("./usr/lib", tarfile.DIRTYPE, mode=0o755),
    entry("./usr/lib/libdemo.so.1", data=b"not really ELF\n", mode=0o755),
    entry("./usr/lib/libdemo.so", tarfile.SYMTYPE, mode=0o777, link="libdemo.so.1"),
    entry("./usr/share", tarfile.DIRTYPE, mode=0o755),
    entry("./usr/share/oe", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000),
    entry("./usr/share/oe/notes.txt", data=b"built by OpenEmbedded\n", mode=0o640, uid=1000, gid=1000),
]
with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
    for ti, f in entries:
        t.addfile(ti, f)
print(out)
